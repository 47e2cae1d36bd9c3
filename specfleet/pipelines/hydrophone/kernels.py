"""The numba loops behind ``dsp.frame_power`` (imported lazily: importing
numba costs ~0.3 s, which the CLI and the producer never need).

Compiled once and cached on disk (``cache=True``), so a fresh worker process
loads machine code instead of compiling it. Each replaces several numpy
passes over a frame block with one; the arithmetic is the same.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def windowed_frames(x, starts, window, out):
    """``out[i] = x[starts[i] : starts[i] + nfft] * window`` (float64), one pass."""
    nfft = window.shape[0]
    for i in range(starts.shape[0]):
        s = starts[i]
        for n in range(nfft):
            out[i, n] = x[s + n] * window[n]


@numba.njit(cache=True, nogil=True)
def power_extremes(spec, keep_bins, kept, row0):
    """Weighted power of bins 1..nfft/2 of each row of ``spec`` (rfft output):
    ``2 |X_k|^2``, Nyquist ``|X|^2`` (mlab's one-sided weights). Writes bins
    ``keep_bins`` of row ``i`` to ``kept[row0 + i]`` and returns
    ``(lo, lo_row, hi, hi_row)`` over all rows and bins."""
    half = spec.shape[1] - 1
    lo = 1.7976931348623157e308
    hi = -1.0
    lo_row = 0
    hi_row = 0
    for i in range(spec.shape[0]):
        for k in range(1, half + 1):
            re = spec[i, k].real
            im = spec[i, k].imag
            p = re * re + im * im
            if k < half:
                p *= 2.0
            if p < lo:
                lo = p
                lo_row = i
            if p > hi:
                hi = p
                hi_row = i
        for j in range(keep_bins.shape[0]):
            k = keep_bins[j]
            re = spec[i, k].real
            im = spec[i, k].imag
            p = re * re + im * im
            if k < half:
                p *= 2.0
            kept[row0 + i, j] = p
    return lo, lo_row, hi, hi_row


@numba.njit(cache=True, nogil=True)
def hann2_window_sums(y, turns, hop, n_frames, out):
    """``out[j] = sum_n w[n]^2 y[j*hop + n]`` for mlab's symmetric Hann ``w``
    of ``nfft = len(turns) + 1`` samples.

    ``w^2 = 3/8 - cos(q)/2 + cos(2q)/8`` with ``q = 2 pi n / (nfft - 1)``:
    three running sums of ``y``, ``y e^{iq}``, ``y e^{2iq}`` taken at every
    frame's start and end, then turned back to the frame's phase origin.
    ``turns[t] = e^{2 pi i t / (nfft - 1)}``. One pass over ``y``.
    """
    period = turns.shape[0]
    nfft = period + 1
    n = y.shape[0]
    c0 = np.empty(n + 1)
    c1 = np.empty(n + 1, dtype=np.complex128)
    c2 = np.empty(n + 1, dtype=np.complex128)
    c0[0] = 0.0
    c1[0] = 0.0
    c2[0] = 0.0
    s0 = 0.0
    s1 = 0.0 + 0.0j
    s2 = 0.0 + 0.0j
    t1 = 0
    t2 = 0
    for p in range(n):
        v = y[p]
        s0 += v
        s1 += v * turns[t1]
        s2 += v * turns[t2]
        c0[p + 1] = s0
        c1[p + 1] = s1
        c2[p + 1] = s2
        t1 += 1
        if t1 == period:
            t1 = 0
        t2 += 2
        if t2 >= period:
            t2 -= period
    for j in range(n_frames):
        m = j * hop
        r1 = (c1[m + nfft] - c1[m]) * turns[(period - m % period) % period]
        r2 = (c2[m + nfft] - c2[m]) * turns[(period - (2 * m) % period) % period]
        out[j] = 0.375 * (c0[m + nfft] - c0[m]) - 0.5 * r1.real + 0.125 * r2.real
