"""The numba loops behind ``dsp`` (imported lazily: importing numba costs
~0.3 s, which the CLI and the producer never need).

Each kernel is compiled once and cached on disk (``cache=True``), so a fresh
worker process loads machine code instead of compiling it. They reproduce
the reference arithmetic exactly (same float32 operations in the same
order); the tests compare them bit for bit with numpy/matplotlib.
"""

from __future__ import annotations

import numba
import numpy as np

#: Buckets of the median search: enough that a bucket holds a few hundred of
#: a window's 240k values, few enough to scan in microseconds.
MEDIAN_BUCKETS = 4096


#: Frames per block of the mel projection: each filter weight is applied to
#: this many frames at once (one SIMD-friendly inner loop, no dependency chain).
MEL_BLOCK = 16


@numba.njit(cache=True, nogil=True)
def mel_power_hann(spec, weights, lo, hi, out):
    """Mel projection of |Hann-windowed STFT|^2, from the STFT of *unwindowed*
    frames.

    The periodic Hann window is 0.5 - 0.5 cos(2 pi n / N), so windowing in
    time is a 3-tap filter in frequency: Xw[k] = 0.5 X[k] - 0.25 (X[k-1] +
    X[k+1]), with X[-1] = conj X[1] and X[N/2+1] = conj X[N/2-1] for a real
    signal. Doing it here saves multiplying and copying every frame before
    the FFT (the FFT then reads a strided view of the signal directly).

    ``spec`` is the (frames, N/2+1) complex64 STFT viewed as float32 pairs,
    (frames, N+2); ``out`` is (n_mels, frames) float32. Frames go in blocks
    of ``MEL_BLOCK``: the power of a block is laid out bin-major, so each
    filter's few non-zero weights multiply a contiguous run of frames (3x
    faster than one frame at a time, whose short sums are latency-bound).

    ``weights`` may have fewer columns than the spectrum has bins: only those
    first bins are computed (an analysis at a higher rate than the filterbank
    needs: the bins above its top frequency are never used).
    """
    frames = spec.shape[0]
    n_bins = weights.shape[1]
    nyquist = spec.shape[1] // 2 - 1
    last = n_bins - 1 if n_bins - 1 == nyquist else n_bins  # the Nyquist edge, if computed
    half, quarter = np.float32(0.5), np.float32(0.25)
    power = np.zeros((n_bins, MEL_BLOCK), dtype=np.float32)
    acc = np.empty(MEL_BLOCK, dtype=np.float32)
    for t0 in range(0, frames, MEL_BLOCK):
        nt = min(MEL_BLOCK, frames - t0)
        for j in range(nt):
            row = spec[t0 + j]  # re, im, re, im, ...
            # Edges: X[0] and X[N/2] are real, their mirrored neighbours sum to 2 Re X[1].
            re = half * row[0] - half * row[2]
            im = half * row[1]
            power[0, j] = re * re + im * im
            for k in range(1, last):
                re = half * row[2 * k] - quarter * (row[2 * k - 2] + row[2 * k + 2])
                im = half * row[2 * k + 1] - quarter * (row[2 * k - 1] + row[2 * k + 3])
                power[k, j] = re * re + im * im
            if last < n_bins:
                re = half * row[2 * last] - half * row[2 * last - 2]
                im = half * row[2 * last + 1]
                power[last, j] = re * re + im * im
        for m in range(weights.shape[0]):
            acc[:] = 0
            for k in range(lo[m], hi[m]):  # each filter's few non-zero bins
                w = weights[m, k]
                for j in range(MEL_BLOCK):
                    acc[j] += w * power[k, j]
            for j in range(nt):
                out[m, t0 + j] = acc[j]
    return out


@numba.njit(cache=True, nogil=True)
def stretch(x, taps, out):
    """Resample ``x`` by ``(up + 1) / up`` (``up = taps.shape[1]``): output
    sample ``j`` is ``x`` interpolated at position ``j * (up + 1) / up``,
    zero outside ``x``.

    Output ``up * b + p`` sits at input ``(up + 1) * b + p`` plus the fraction
    ``p / up``, so within a block of ``up`` outputs the input index advances
    by exactly one per output: for each tap ``t`` the block is one
    multiply-add of two contiguous runs (``taps[t]`` and a slice of ``x``),
    which the compiler vectorises. ``taps`` is (K, up) float32, column ``p``
    the K-tap filter for fraction ``p / up`` (tap ``K // 2 - 1`` at the
    integer position).
    """
    taps_n, up = taps.shape
    half = taps_n // 2 - 1
    n = x.shape[0]
    n_out = out.shape[0]
    for b in range((n_out + up - 1) // up):
        o0 = up * b
        i0 = (up + 1) * b - half
        m = min(up, n_out - o0)
        block = out[o0 : o0 + m]
        block[:] = 0
        if i0 >= 0 and i0 + m - 1 + taps_n <= n:
            for t in range(taps_n):
                row = taps[t]
                xs = x[i0 + t : i0 + t + m]  # slices: non-negative indices, so no wraparound checks
                for p in range(m):
                    block[p] += row[p] * xs[p]
        else:  # the first and last blocks
            for t in range(taps_n):
                row = taps[t]
                for p in range(m):
                    i = i0 + p + t
                    if 0 <= i < n:
                        block[p] += row[p] * x[i]
    return out


@numba.njit(cache=True, nogil=True)
def _min_max(block):
    lo = block[0, 0]
    hi = block[0, 0]
    for r in range(block.shape[0]):
        for c in range(block.shape[1]):
            v = block[r, c]
            lo = min(lo, v)
            hi = max(hi, v)
    return lo, hi


@numba.njit(cache=True, nogil=True)
def _gather(block, lo, scale, first, last, count):
    """The values whose bucket is in ``first..last``, sorted. (A function of
    its own because, written out in ``_median``'s body, this loop ran 5x
    slower: 1.1 ms instead of 0.22 ms per window, measured.)"""
    picked = np.empty(count, dtype=np.float32)
    j = 0
    for r in range(block.shape[0]):
        for c in range(block.shape[1]):
            v = block[r, c]
            bucket = int((v - lo) * scale)
            if first <= bucket <= last:
                picked[j] = v
                j += 1
    picked.sort()
    return picked


@numba.njit(cache=True, nogil=True)
def _median(block, lo, hi, hist):
    rows, cols = block.shape
    n = rows * cols
    if hi == lo:
        return lo
    nb = hist.shape[0]
    scale = np.float32((nb - 1) / (hi - lo))
    hist[:] = 0
    for r in range(rows):
        for c in range(cols):
            hist[int((block[r, c] - lo) * scale)] += 1
    upper = n // 2  # rank of the upper middle value (0-based)
    lower = upper - 1 if n % 2 == 0 else upper
    seen = 0
    first = -1
    below = 0
    last = nb - 1
    for b in range(nb):
        if first < 0 and seen + hist[b] > lower:
            first, below = b, seen
        if seen + hist[b] > upper:
            last = b
            break
        seen += hist[b]
    picked = _gather(block, lo, scale, first, last, hist[first : last + 1].sum())
    if n % 2:
        return picked[upper - below]
    return np.float32(np.float32(picked[lower - below] + picked[upper - below]) / np.float32(2.0))


@numba.njit(cache=True, nogil=True)
def median(block, hist):
    """``np.median(block)`` for a 2-D float32 block (finite values), exactly:
    for an even count, the float32 mean of the two middle values.

    Bucketing by value is monotonic, so the k-th smallest value lies in the
    bucket where the cumulative count passes k: one pass counts, one gathers
    that bucket's few hundred values, a sort of those finishes. About 4x
    faster than ``np.partition`` on a 256 x 938 window, and it reads a strided
    view without copying it. ``hist`` is scratch of ``MEDIAN_BUCKETS`` int64.
    """
    lo, hi = _min_max(block)
    return _median(block, lo, hi, hist)


@numba.njit(cache=True, nogil=True)
def floor_and_paint(block, lut, pixels, hist):
    """Set values below the block's median to its minimum, in place, and
    paint the result as ``plt.imsave(cmap=..., origin="lower")`` does:
    min-max normalise, index ``min(int(v * 256), 255)`` into ``lut``, low
    rows at the bottom of ``pixels`` (uint8, same shape)."""
    rows, cols = block.shape
    lo, hi = _min_max(block)
    threshold = _median(block, lo, hi, hist)
    # The floor keeps min and max (the max is >= the median), so the span
    # is the filtered block's, as matplotlib would see it.
    span = np.float32(hi - lo)
    if span <= 0:  # matplotlib paints a constant image with the colormap's first colour
        pixels[:] = lut[0]
        return
    for r in range(rows):
        line = pixels[rows - 1 - r]
        for c in range(cols):
            v = block[r, c]
            v = lo if v < threshold else v  # a select, not a branch: half the values go each way
            block[r, c] = v
            line[c] = lut[min(int(np.float32(np.float32(v - lo) / span) * np.float32(256.0)), 255)]
