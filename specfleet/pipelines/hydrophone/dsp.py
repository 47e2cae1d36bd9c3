"""Pure signal functions for the hydrophone pipeline (array in, array out).

The reference tool computed a full 99.5 %-overlap spectrogram per 5-second
clip (~15,000 FFT frames of 4096 samples) and let matplotlib shrink it to a
512-pixel-wide image. ``spectrogram_image`` computes only what the image
needs: ``frames_per_column`` frames spread evenly over the time span each
pixel column stands for, the dB values averaged per pixel (the same
averaging the fidelity reference uses), colour-mapped through a lookup
table. No matplotlib figure is involved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft

#: Full scale of a signed 32-bit WAV sample (obspy's ``rescale`` uses the same).
INT32_FULL_SCALE = 2**31 - 1


@dataclass(frozen=True)
class SpectrogramParams:
    """Reference parameters of the original tool (SPEC.md section 1)."""

    #: Analysis window in seconds, rounded to the nearest power of two of samples.
    window_s: float = 0.056
    #: Fraction of a window shared with the next one (0.995 -> hop of 21 samples at 4096).
    overlap: float = 0.995
    width: int = 512
    height: int = 512
    fmax_hz: float = 11_000.0
    #: Colour range as fractions of the clip's min..max dB span.
    color_lo: float = 0.50
    color_hi: float = 0.95
    #: FFT frames computed per pixel column (the reference computes ~29).
    frames_per_column: int = 4
    #: Power below ``max * floor_rel`` (160 dB down) counts as the floor: it only
    #: keeps exact zeros (gap-filled samples) finite in dB; real noise is far above
    #: it, so the colour range stays the original's min-max span.
    floor_rel: float = 1e-16
    #: Average per pixel in ``"db"`` (like the reference grid) or ``"power"`` (cheaper).
    average: str = "db"


def window_length(sample_rate: float, window_s: float = 0.056) -> int:
    """Samples per FFT window: ``window_s`` rounded to the nearest power of two.

    >>> window_length(64000, 0.056)
    4096
    """
    if sample_rate <= 0 or window_s <= 0:
        raise ValueError("sample_rate and window_s must be positive")
    exact = sample_rate * window_s
    return int(2 ** round(math.log2(exact)))


def hop_length(nfft: int, overlap: float = 0.995) -> int:
    """Samples between frames for ``overlap`` (mlab's ``noverlap = int(overlap * nfft)``)."""
    if not 0 <= overlap < 1:
        raise ValueError("overlap must be in [0, 1)")
    return max(1, nfft - int(overlap * nfft))


def frame_count(n_samples: int, nfft: int, hop: int) -> int:
    """Frames a full (reference) spectrogram of ``n_samples`` has."""
    return 0 if n_samples < nfft else (n_samples - nfft) // hop + 1


def clip_starts(
    data: np.ndarray,
    sample_rate: float,
    *,
    clip_s: float = 5.0,
    align: str = "ping",
    search_s: float = 1.0,
) -> np.ndarray:
    """Start sample of every whole clip in ``data``.

    ``align="grid"`` cuts at 0, 5 s, 10 s, ... ``align="ping"`` (the
    original's default) moves each grid start to the loudest sample in its
    first ``search_s`` seconds, where a sonar ping begins; a start that
    would leave less than a whole clip is pulled back to ``len - clip``.
    """
    clip_n = int(round(clip_s * sample_rate))
    if clip_n <= 0:
        raise ValueError("clip_s must be positive")
    n_clips = len(data) // clip_n
    grid = np.arange(n_clips, dtype=np.int64) * clip_n
    if align == "grid" or n_clips == 0:
        return grid
    if align != "ping":
        raise ValueError(f"align must be 'ping' or 'grid', got {align!r}")
    search_n = max(1, min(clip_n, int(round(search_s * sample_rate))))
    starts = np.empty_like(grid)
    for i, g in enumerate(grid):
        window = data[g : g + search_n]
        starts[i] = g + int(np.argmax(np.abs(window)))
    return np.minimum(starts, len(data) - clip_n)


def align_to_pings(data: np.ndarray, sample_rate: float, clip_s: float = 5.0, search_s: float = 1.0) -> np.ndarray:
    """Ping-aligned clip starts (see ``clip_starts``)."""
    return clip_starts(data, sample_rate, clip_s=clip_s, align="ping", search_s=search_s)


def normalize_int32(clip: np.ndarray) -> np.ndarray:
    """Scale to int32 full scale exactly as obspy's WAV writer with ``rescale=True``
    (``x / max|x| * (2**31 - 1)``, truncated). A silent clip stays zero."""
    x = np.asarray(clip, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return np.zeros(x.shape, dtype=np.int32)
    return (x / peak * INT32_FULL_SCALE).astype(np.int32)


@lru_cache(maxsize=8)
def frequency_weights(nfft: int, sample_rate: float, fmax_hz: float, height: int) -> np.ndarray:
    """``(height, n_bins)`` matrix averaging FFT bins 1..n_bins into pixel rows.

    Row ``r`` (0 = lowest frequency) covers ``[r, r+1) * fmax/height`` Hz; bin
    ``k`` covers ``[k - 1/2, k + 1/2) * df``. Weights are the overlap, each row
    normalised to sum 1. The DC bin is dropped, as in the original.
    """
    df = sample_rate / nfft
    n_bins = min(nfft // 2, int(math.ceil(fmax_hz / df + 0.5)))
    edges_lo = (np.arange(1, n_bins + 1) - 0.5) * df
    edges_hi = edges_lo + df
    row_lo = np.arange(height) * fmax_hz / height
    row_hi = row_lo + fmax_hz / height
    overlap = np.clip(
        np.minimum(row_hi[:, None], edges_hi[None, :]) - np.maximum(row_lo[:, None], edges_lo[None, :]), 0, None
    )
    overlap /= np.maximum(overlap.sum(axis=1, keepdims=True), 1e-30)
    return overlap.astype(np.float32)


@lru_cache(maxsize=8)
def _sparse_frequency_weights(nfft: int, sample_rate: float, fmax_hz: float, height: int) -> scipy.sparse.csr_matrix:
    import scipy.sparse

    # Each pixel row touches two or three bins: a sparse product is ~100x cheaper.
    return scipy.sparse.csr_matrix(frequency_weights(nfft, sample_rate, fmax_hz, height))


@lru_cache(maxsize=8)
def _hann(nfft: int) -> np.ndarray:
    # mlab.window_hanning is np.hanning (symmetric); match it.
    return np.hanning(nfft).astype(np.float32)


def column_frame_starts(n_samples: int, nfft: int, hop: int, width: int, frames_per_column: int) -> np.ndarray:
    """Start samples of the frames sampled for each pixel column, shape ``(width, k)``.

    Column ``c`` stands for reference frames ``[c, c+1) * F / width``; we take
    ``k`` frames at the centres of ``k`` equal parts of that range.
    """
    total = frame_count(n_samples, nfft, hop)
    if total == 0:
        raise ValueError(f"clip of {n_samples} samples is shorter than one {nfft}-sample window")
    k = max(1, frames_per_column)
    pos = (np.arange(width)[:, None] + (np.arange(k)[None, :] + 0.5) / k) * total / width
    idx = np.minimum(np.floor(pos).astype(np.int64), total - 1)
    return idx * hop


def spectrogram_db(
    clip: np.ndarray, sample_rate: float, params: SpectrogramParams = SpectrogramParams()
) -> tuple[np.ndarray, float, float]:
    """Pixel-grid dB spectrogram ``(height, width)`` (row 0 = lowest frequency)
    plus the clip's min and max dB over all non-DC bins of the frames computed
    (the span the colour range is taken from)."""
    nfft = window_length(sample_rate, params.window_s)
    hop = hop_length(nfft, params.overlap)
    x = np.asarray(clip, dtype=np.float32)
    starts = column_frame_starts(len(x), nfft, hop, params.width, params.frames_per_column).ravel()
    weights = _sparse_frequency_weights(nfft, float(sample_rate), params.fmax_hz, params.height)
    n_bins = weights.shape[1]
    win = _hann(nfft)
    k = max(1, params.frames_per_column)
    views = np.lib.stride_tricks.sliding_window_view(x, nfft)  # no copy: frame i = x[i:i+nfft]
    pmin, pmax = np.inf, 0.0
    low_bins = np.empty((len(starts), n_bins), dtype=np.float32)
    chunk = 256  # frames per FFT batch: stays in cache, bounded memory (4 MB)
    for a in range(0, len(starts), chunk):
        frames = views[starts[a : a + chunk]] * win
        spec = scipy.fft.rfft(frames, axis=1, overwrite_x=True)
        power = np.square(spec.real)
        power += np.square(spec.imag)
        body = power[:, 1:]
        pmin = min(pmin, float(body.min()))
        pmax = max(pmax, float(body.max()))
        low_bins[a : a + chunk] = body[:, :n_bins]
    floor = max(pmax * params.floor_rel, np.finfo(np.float32).tiny)
    if params.average == "power":
        # Mean power per pixel, then dB: 1/k of the logarithms.
        cols = low_bins.reshape(params.width, k, n_bins).mean(axis=1)
        grid = 10.0 * np.log10(np.maximum(weights @ cols.T, floor))
    else:
        np.maximum(low_bins, floor, out=low_bins)
        # float32 natural log is SIMD-vectorised (~6x faster than log10).
        np.log(low_bins, out=low_bins)
        low_bins *= np.float32(10.0 / math.log(10.0))
        # Average the k frames of each column first (linear, so it commutes with the weights).
        cols = low_bins.reshape(params.width, k, n_bins).mean(axis=1)
        grid = np.asarray(weights @ cols.T, dtype=np.float32)
    return grid, 10.0 * math.log10(max(pmin, floor)), 10.0 * math.log10(max(pmax, floor))


def color_range(db_min: float, db_max: float, lo: float = 0.5, hi: float = 0.95) -> tuple[float, float]:
    """``vmin, vmax`` at fractions ``lo``/``hi`` of the ``db_min..db_max`` span."""
    span = db_max - db_min
    return db_min + lo * span, db_min + hi * span


@lru_cache(maxsize=4)
def colormap_lut(name: str = "viridis") -> np.ndarray:
    """``(256, 3)`` uint8 RGB lookup table of a matplotlib colormap."""
    from matplotlib import colormaps  # the colormap data only, no figure machinery

    rgba = colormaps[name](np.linspace(0.0, 1.0, 256))
    return (rgba[:, :3] * 255 + 0.5).astype(np.uint8)


def color_index(grid_db: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Colour-map index 0..255 per pixel ``(height, width)`` uint8, with low
    frequencies at the bottom (row 0 of ``grid_db`` is the lowest frequency)."""
    scale = 255.0 / max(vmax - vmin, 1e-9)
    idx = (grid_db[::-1] - vmin) * scale
    np.clip(idx, 0, 255, out=idx)
    return idx.astype(np.uint8)


def to_rgb(index: np.ndarray, cmap: str = "viridis") -> np.ndarray:
    """RGB array ``(height, width, 3)`` of a colour-index image."""
    return colormap_lut(cmap)[index]


def spectrogram_index(
    clip: np.ndarray, sample_rate: float, params: SpectrogramParams = SpectrogramParams()
) -> np.ndarray:
    """Colour-index image of one clip, ``(height, width)`` uint8 (0 = ``vmin``)."""
    grid, db_min, db_max = spectrogram_db(clip, sample_rate, params)
    vmin, vmax = color_range(db_min, db_max, params.color_lo, params.color_hi)
    return color_index(grid, vmin, vmax)


def spectrogram_image(
    clip: np.ndarray, sample_rate: float, params: SpectrogramParams = SpectrogramParams(), cmap: str = "viridis"
) -> np.ndarray:
    """RGB spectrogram image of one clip, shape ``(height, width, 3)`` uint8."""
    return to_rgb(spectrogram_index(clip, sample_rate, params), cmap)


def encode_png(index: np.ndarray, cmap: str = "viridis", compress_level: int = 1, palette: bytes = b"") -> bytes:
    """PNG bytes of a colour-index image as a palette PNG (the colormap is the
    palette): a third of the bytes to compress of RGB and the same pixels."""
    import io

    from PIL import Image

    img = Image.frombuffer("P", (index.shape[1], index.shape[0]), np.ascontiguousarray(index).tobytes(), "raw", "P", 0, 1)
    img.putpalette(palette or colormap_lut(cmap).tobytes())
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def encode_wav(samples: np.ndarray, sample_rate: float) -> bytes:
    """int32 PCM WAV bytes at the native rate, normalised to full scale."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, normalize_int32(samples), int(round(sample_rate)), subtype="PCM_32", format="WAV")
    return buf.getvalue()


# --- reference (for the benchmark and fidelity tests) ---------------------------
def reference_grid_db(
    clip: np.ndarray, sample_rate: float, params: SpectrogramParams = SpectrogramParams()
) -> tuple[np.ndarray, float, float]:
    """The original's full-resolution spectrogram (``mlab.specgram``, every
    frame) in dB, averaged down to the same pixel grid; plus its min/max dB."""
    from matplotlib import mlab

    nfft = window_length(sample_rate, params.window_s)
    noverlap = int(params.overlap * nfft)
    pxx, _freqs, _t = mlab.specgram(np.asarray(clip, dtype=np.float64), NFFT=nfft, Fs=sample_rate, noverlap=noverlap)
    pxx = pxx[1:]  # DC row dropped, as in the original
    floor = max(float(pxx.max()) * params.floor_rel, np.finfo(np.float32).tiny)
    db = 10.0 * np.log10(np.maximum(pxx, floor))
    weights = frequency_weights(nfft, float(sample_rate), params.fmax_hz, params.height)
    low = weights @ db[: weights.shape[1]].astype(np.float32)  # (height, frames)
    total = low.shape[1]
    edges = (np.arange(params.width + 1) * total / params.width).astype(np.int64)
    grid = np.add.reduceat(low, edges[:-1], axis=1) / np.diff(edges)[None, :]
    return grid.astype(np.float32), float(db.min()), float(db.max())


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / denom) if denom else 0.0
