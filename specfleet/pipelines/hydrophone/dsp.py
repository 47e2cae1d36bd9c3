"""Pure signal functions for the hydrophone pipeline (array in, array out).

Two renderings of a clip's spectrogram (``SpectrogramParams.render``):

``"original"`` (default) reproduces the original tool's image cell for
cell. The original computed the full ``mlab.specgram`` (4096-sample Hann
window, hop 21: ~15,000 frames x 2048 bins), took 10*log10, and drew it
with ``imshow(interpolation="nearest")`` into a 512x512 figure, so every
pixel shows exactly ONE spectrogram cell. ``original_pixel_cells`` works out
which (the tests check it against real matplotlib renderings), and
``original_index`` computes only those cells: ~506 frames, not 15,000. Its
colours run over 50 %-95 % of the min..max dB of ALL cells of the clip, and
that span is the expensive part; ``span_power`` finds it three ways
(``SpectrogramParams.span``, see there).

``"mean"`` is specfleet's earlier rendering: ``frames_per_column`` frames per
pixel column, dB averaged per pixel, span over the computed frames only and
floored 160 dB below the max. Smoother, cheaper (~2 frames per column, no
span pass) and stable under small time shifts, but darker than the
original's images on real data (a narrower span puts more pixels at colour
0) and it blurs clicks across a column.

No matplotlib figure is involved in either.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, get_args

import numpy as np
import scipy.fft

from .params import CLIP, SPECTROGRAM, Align, Render, SpanMethod, SpectrogramParams

#: Full scale of a signed 32-bit WAV sample (obspy's ``rescale`` uses the same).
INT32_FULL_SCALE = 2**31 - 1

RENDERS = get_args(Render)
SPANS = get_args(SpanMethod)
ALIGNS = get_args(Align)
#: Colours of a matplotlib colormap, as imshow quantises a normalised value.
COLORMAP_SIZE = 256


def window_length(sample_rate: float, window_s: float = SPECTROGRAM.window_s) -> int:
    """Samples per FFT window: ``window_s`` rounded to the nearest power of two.

    >>> window_length(64000, 0.056)
    4096
    """
    if sample_rate <= 0 or window_s <= 0:
        raise ValueError("sample_rate and window_s must be positive")
    exact = sample_rate * window_s
    return int(2 ** round(math.log2(exact)))


def hop_length(nfft: int, overlap: float = SPECTROGRAM.overlap) -> int:
    """Samples between frames for ``overlap`` (mlab's ``noverlap = int(overlap * nfft)``)."""
    if not 0 <= overlap < 1:
        raise ValueError("overlap must be in [0, 1)")
    return max(1, nfft - int(overlap * nfft))


def frame_count(n_samples: int, nfft: int, hop: int) -> int:
    """Frames a full (reference) spectrogram of ``n_samples`` has."""
    return 0 if n_samples < nfft else (n_samples - nfft) // hop + 1


def ping_clip_plan(data: np.ndarray, sample_rate: float, *, clip_s: float = CLIP.clip_s) -> tuple[np.ndarray, np.ndarray]:
    """The original's clips: ``(start sample, length)`` of each.

    For each whole second ``s`` of the file (``int(duration) - 1`` of them,
    duration = (npts - 1) / rate as obspy's endtime - starttime) the
    original took ``np.argmax(data[s*rate:(s+1)*rate])`` -- the SIGNED
    maximum, where a sonar ping's first positive peak is -- and clip ``k``
    starts at the one found in second ``k * clip_s``. A clip was
    ``stream.slice(t, t + clip_s)``, both ends included: ``clip_s * rate + 1``
    samples, and the last clip of a file ends where the file does.
    """
    rate = float(sample_rate)
    if rate <= 0 or clip_s <= 0:
        raise ValueError("sample_rate and clip_s must be positive")
    step = int(round(clip_s))
    if step < 1 or abs(step - clip_s) > 1e-9:
        raise ValueError(f"align='ping' needs a whole number of seconds per clip, got {clip_s}")
    n = len(data)
    seconds = int((n - 1) / rate) - 1 if n else 0
    starts = []
    for s in range(0, max(seconds, 0), step):
        lo, hi = int(s * rate), int((s + 1) * rate)
        starts.append(lo + int(np.argmax(data[lo:hi])))
    first = np.asarray(starts, dtype=np.int64)
    wanted = int(round(clip_s * rate)) + 1
    return first, np.minimum(wanted, n - first)


def clip_starts(
    data: np.ndarray,
    sample_rate: float,
    *,
    clip_s: float = CLIP.clip_s,
    align: Align = "ping_abs",
    search_s: float = CLIP.ping_search_s,
) -> np.ndarray:
    """Start sample of every whole ``clip_s`` clip in ``data`` (specfleet's own plans).

    ``align="grid"`` cuts at 0, 5 s, 10 s, ... ``align="ping_abs"`` moves each
    grid start to the sample of largest ``|x|`` in its first ``search_s``
    seconds; a start that would leave less than a whole clip is pulled back
    to ``len - clip``. Unlike the original (``ping_clip_plan``) every clip is
    exactly ``clip_s * rate`` samples and a negative swing counts as a ping
    too: steadier clip lengths, but other start times than the original's.
    """
    clip_n = int(round(clip_s * sample_rate))
    if clip_n <= 0:
        raise ValueError("clip_s must be positive")
    n_clips = len(data) // clip_n
    grid = np.arange(n_clips, dtype=np.int64) * clip_n
    if align == "grid" or n_clips == 0:
        return grid
    if align != "ping_abs":
        raise ValueError(f"align must be 'ping_abs' or 'grid' here, got {align!r}")
    search_n = max(1, min(clip_n, int(round(search_s * sample_rate))))
    starts = np.empty_like(grid)
    for i, g in enumerate(grid):
        window = data[g : g + search_n]
        starts[i] = g + int(np.argmax(np.abs(window)))
    return np.minimum(starts, len(data) - clip_n)


def clip_plan(
    data: np.ndarray, sample_rate: float, *, clip_s: float = CLIP.clip_s, align: Align = CLIP.align,
    search_s: float = CLIP.ping_search_s,
) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, lengths)`` of the clips of ``data`` for ``align`` in ``ALIGNS``:
    ``"ping"`` is the original's plan (``ping_clip_plan``), ``"ping_abs"`` and
    ``"grid"`` specfleet's whole-clip plans (``clip_starts``)."""
    if align not in ALIGNS:
        raise ValueError(f"align must be one of {ALIGNS}, got {align!r}")
    if align == "ping":
        return ping_clip_plan(data, sample_rate, clip_s=clip_s)
    starts = clip_starts(data, sample_rate, clip_s=clip_s, align=align, search_s=search_s)
    return starts, np.full(len(starts), int(round(clip_s * sample_rate)), dtype=np.int64)


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
    clip: np.ndarray, sample_rate: float, params: SpectrogramParams = SPECTROGRAM,
    missing: np.ndarray | None = None,
) -> tuple[np.ndarray, float, float]:
    """Pixel-grid dB spectrogram ``(height, width)`` (row 0 = lowest frequency)
    plus the clip's min and max dB over all non-DC bins of the frames computed
    (the span the colour range is taken from); frames touching ``missing``
    samples (a real break) are left out of the span."""
    nfft = window_length(sample_rate, params.window_s)
    hop = hop_length(nfft, params.overlap)
    x = np.asarray(clip, dtype=np.float32)
    starts = column_frame_starts(len(x), nfft, hop, params.width, params.frames_per_column).ravel()
    weights = _sparse_frequency_weights(nfft, float(sample_rate), params.fmax_hz, params.height)
    n_bins = weights.shape[1]
    win = _hann(nfft)
    k = max(1, params.frames_per_column)
    views = np.lib.stride_tricks.sliding_window_view(x, nfft)  # no copy: frame i = x[i:i+nfft]
    bad = frames_touching(missing, starts, nfft) if missing is not None else np.zeros(len(starts), dtype=bool)
    pmin, pmax = np.inf, 0.0
    low_bins = np.empty((len(starts), n_bins), dtype=np.float32)
    chunk = 256  # frames per FFT batch: stays in cache, bounded memory (4 MB)
    for a in range(0, len(starts), chunk):
        frames = views[starts[a : a + chunk]] * win
        spec = scipy.fft.rfft(frames, axis=1, overwrite_x=True)
        power = np.square(spec.real)
        power += np.square(spec.imag)
        body = power[:, 1:]
        real = body[~bad[a : a + chunk]]
        if len(real):
            pmin = min(pmin, float(real.min()))
            pmax = max(pmax, float(real.max()))
        low_bins[a : a + chunk] = body[:, :n_bins]
    if math.isinf(pmin):  # every frame touches a break: nothing real to scale by
        pmin, pmax = 1.0, 1.0
    floor = max(pmax * params.floor_rel, float(np.finfo(np.float32).tiny))
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


def color_range(db_min: float, db_max: float, lo: float = SPECTROGRAM.color_lo, hi: float = SPECTROGRAM.color_hi) -> tuple[float, float]:
    """``vmin, vmax`` at fractions ``lo``/``hi`` of the ``db_min..db_max`` span."""
    span = db_max - db_min
    return db_min + lo * span, db_min + hi * span


@lru_cache(maxsize=4)
def colormap_lut(name: str = CLIP.cmap) -> np.ndarray:
    """``(256, 3)`` uint8 RGB lookup table of a matplotlib colormap, truncated
    to bytes as matplotlib's ``to_rgba(bytes=True)`` does for ``imshow``."""
    from matplotlib import colormaps  # the colormap data only, no figure machinery

    rgba = colormaps[name](np.linspace(0.0, 1.0, COLORMAP_SIZE))
    return (rgba[:, :3] * 255).astype(np.uint8)


def color_index(grid_db: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Colour-map index 0..255 per pixel ``(height, width)`` uint8, with low
    frequencies at the bottom (row 0 of ``grid_db`` is the lowest frequency)."""
    scale = 255.0 / max(vmax - vmin, 1e-9)
    idx = (grid_db[::-1] - vmin) * scale
    np.clip(idx, 0, 255, out=idx)
    return idx.astype(np.uint8)


#: The figure background the original's JPEGs show where the image does not reach.
BACKGROUND_RGB = (255, 255, 255)


def to_rgb(index: np.ndarray, cmap: str = CLIP.cmap, background: np.ndarray | None = None) -> np.ndarray:
    """RGB array ``(height, width, 3)`` of a colour-index image; pixels in the
    ``background`` mask are white (the original's figure background)."""
    rgb = colormap_lut(cmap)[index]
    if background is not None:
        rgb[background] = BACKGROUND_RGB
    return rgb


def spectrogram_index(
    clip: np.ndarray, sample_rate: float, params: SpectrogramParams = SPECTROGRAM
) -> np.ndarray:
    """Colour-index image of one clip, ``(height, width)`` uint8 (0 = ``vmin``)."""
    grid, db_min, db_max = spectrogram_db(clip, sample_rate, params)
    vmin, vmax = color_range(db_min, db_max, params.color_lo, params.color_hi)
    return color_index(grid, vmin, vmax)


def spectrogram_image(
    clip: np.ndarray, sample_rate: float, params: SpectrogramParams = SPECTROGRAM, cmap: str = CLIP.cmap
) -> np.ndarray:
    """RGB spectrogram image of one clip, shape ``(height, width, 3)`` uint8."""
    return to_rgb(spectrogram_index(clip, sample_rate, params), cmap)


def render_index(
    clip: np.ndarray, sample_rate: float, params: SpectrogramParams = SPECTROGRAM
) -> tuple[np.ndarray, np.ndarray | None]:
    """Colour-index image ``(height, width)`` of one clip in ``params.render``'s
    way, and its background mask (``None`` when the image covers every pixel)."""
    if params.render == "original":
        index, background, _span = original_index(clip, sample_rate, params)
        return index, background
    return spectrogram_index(clip, sample_rate, params), None


def encode_png(
    index: np.ndarray, cmap: str = CLIP.cmap, compress_level: int = CLIP.png_compress_level, palette: bytes = b"",
    background: np.ndarray | None = None, metadata: Mapping[str, str] | None = None,
) -> bytes:
    """PNG bytes of a colour-index image: a palette PNG (the colormap is the
    palette: a third of the bytes to compress of RGB, the same pixels), or RGB
    when background pixels need a 257th colour. ``metadata``: one tEXt chunk
    per item (``imagemeta.clip_metadata``); the pixels do not change."""
    import io

    from PIL import Image

    info = _png_text(metadata)
    buf = io.BytesIO()
    if background is not None and background.any():
        Image.fromarray(to_rgb(index, cmap, background)).save(
            buf, format="PNG", compress_level=compress_level, pnginfo=info
        )
        return buf.getvalue()
    img = Image.frombuffer("P", (index.shape[1], index.shape[0]), np.ascontiguousarray(index).tobytes(), "raw", "P", 0, 1)
    img.putpalette(palette or colormap_lut(cmap).tobytes())
    img.save(buf, format="PNG", compress_level=compress_level, pnginfo=info)
    return buf.getvalue()


def _png_text(metadata: Mapping[str, str] | None) -> Any:
    if not metadata:
        return None
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in metadata.items():
        info.add_text(key, value)
    return info


def encode_jpeg(
    index: np.ndarray, cmap: str = CLIP.cmap, quality: int = CLIP.jpeg_quality, background: np.ndarray | None = None,
    dpi: int = 100, metadata: Mapping[str, str] | None = None,
) -> bytes:
    """JPEG bytes as the original's ``savefig(".jpg")`` wrote them: PIL, RGB
    (background white), quality 95 (matplotlib's ``savefig.jpeg_quality`` of
    the time), PIL's default 4:2:0 chroma subsampling, the figure's dpi in
    the header. Same pixels in, same bytes out. ``metadata``: a JSON object
    in a JPEG comment (COM) segment, which leaves the pixels alone."""
    import io
    import json

    from PIL import Image

    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1..100, got {quality}")
    buf = io.BytesIO()
    extra: dict[str, Any] = {"comment": json.dumps(dict(metadata), sort_keys=True).encode()} if metadata else {}
    Image.fromarray(to_rgb(index, cmap, background)).save(
        buf, format="JPEG", quality=quality, dpi=(dpi, dpi), **extra
    )
    return buf.getvalue()


def encode_wav(samples: np.ndarray, sample_rate: float) -> bytes:
    """int32 PCM WAV bytes at the native rate, normalised to full scale."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, normalize_int32(samples), int(round(sample_rate)), subtype="PCM_32", format="WAV")
    return buf.getvalue()


# --- the original's rendering (render="original") --------------------------------
@dataclass(frozen=True)
class PixelCells:
    """Which spectrogram cell each pixel of the original's image shows."""

    #: Frame (0-based, mlab's column) per pixel column, left to right; -1
    #: where the column lies outside the drawn image (figure background).
    frames: np.ndarray
    #: FFT bin (1..nfft/2; the DC row is dropped) per pixel row, TOP row
    #: first; -1 outside the image.
    bins: np.ndarray
    n_frames: int

    @property
    def background(self) -> np.ndarray | None:
        """``(height, width)`` mask of pixels showing the figure background, or ``None``."""
        if (self.frames >= 0).all() and (self.bins >= 0).all():
            return None
        return (self.bins < 0)[:, None] | (self.frames < 0)[None, :]


@lru_cache(maxsize=16)
def original_pixel_cells(
    n_samples: int, sample_rate: float, *, nfft: int, hop: int, width: int = SPECTROGRAM.width,
    height: int = SPECTROGRAM.height, fmax_hz: float = SPECTROGRAM.fmax_hz,
) -> PixelCells:
    """The cell the original's figure shows at every pixel.

    The original drew the flipped dB array with ``imshow(interpolation=
    "nearest", extent=(t0 - dt/2, t_last + 3 dt/2, f1 - df/2, f_last + 3 df/2))``
    -- its extent appends one more bin edge and then adds another half bin,
    so the image is stretched over one bin more than it has, in time and in
    frequency -- with x limited to 0..npts/rate and y to 0..fmax (kHz), on
    a 512x512 figure whose axes fill it. Matplotlib (Agg, nearest) colours
    each output pixel with the cell under the pixel's centre; pixels whose
    centre is outside the extent keep the transparent figure background
    (white in the JPEG): the first and last ~3 columns of a 5 s clip.
    The same arithmetic as the original's, in the original's units (s, kHz).
    """
    n_frames = frame_count(n_samples, nfft, hop)
    if n_frames < 2:
        raise ValueError(f"a clip of {n_samples} samples has {n_frames} frame(s); the original's extent needs 2")
    # mlab.specgram's frame centres and bin frequencies (freqs[1:] / 1e3 as the original).
    t = np.arange(nfft / 2, n_samples - nfft / 2 + 1, hop) / sample_rate
    freq = np.fft.fftfreq(nfft, 1 / sample_rate)[: nfft // 2 + 1]
    freq[-1] *= -1  # mlab makes the Nyquist frequency positive
    freq = freq[1:] / 1e3
    halfbin_time = (t[1] - t[0]) / 2.0
    halfbin_freq = (freq[1] - freq[0]) / 2.0
    left, right = t[0] - halfbin_time, (t[-1] + 2 * halfbin_time) + halfbin_time
    bottom, top = freq[0] - halfbin_freq, (freq[-1] + 2 * halfbin_freq) + halfbin_freq
    end = n_samples / sample_rate
    n_bins = len(freq)
    x = (np.arange(width) + 0.5) / width * end
    col = np.floor((x - left) / ((right - left) / n_frames)).astype(np.int64)
    col[(x < left) | (x >= right) | (col < 0) | (col >= n_frames)] = -1
    y = (height - np.arange(height) - 0.5) / height * (fmax_hz / 1e3)
    row = np.floor((y - bottom) / ((top - bottom) / n_bins)).astype(np.int64)
    inside = (y >= bottom) & (y < top) & (row >= 0) & (row < n_bins)
    bins = np.where(inside, row + 1, -1)
    col.setflags(write=False)
    bins.setflags(write=False)
    return PixelCells(frames=col, bins=bins, n_frames=n_frames)


@lru_cache(maxsize=8)
def _hann64(nfft: int) -> np.ndarray:
    w = np.hanning(nfft)  # mlab.window_hanning
    w.setflags(write=False)
    return w


@dataclass(frozen=True)
class Extremes:
    """Min and max power over some cells, and the frames holding them."""

    lo: float = math.inf
    hi: float = 0.0
    lo_frame: int = -1
    hi_frame: int = -1

    def merge(self, other: Extremes) -> Extremes:
        lo, lo_frame = (self.lo, self.lo_frame) if self.lo <= other.lo else (other.lo, other.lo_frame)
        hi, hi_frame = (self.hi, self.hi_frame) if self.hi >= other.hi else (other.hi, other.hi_frame)
        return Extremes(lo, hi, lo_frame, hi_frame)


def frame_power(
    x: np.ndarray, frames: np.ndarray, *, nfft: int, hop: int, keep_bins: np.ndarray | None = None, chunk: int = 64
) -> tuple[np.ndarray, Extremes]:
    """Power of whole frames in float64, as ``mlab.specgram`` up to one constant.

    Returns ``(kept, extremes)``: ``kept[i, j]`` is the power of bin
    ``keep_bins[j]`` in frame ``frames[i]`` (an empty array without
    ``keep_bins``); ``extremes`` runs over bins 1..nfft/2 of all the frames.
    Power is ``c_k |X_k|^2`` with mlab's one-sided weight ``c_k = 2`` except
    at DC and Nyquist (``c = 1``); mlab's ``1 / (rate * sum(w^2))`` is left
    out (see ``MLAB_SCALE``).
    """
    from . import kernels

    x = np.ascontiguousarray(x, dtype=np.float64)
    starts = np.asarray(frames, dtype=np.int64) * hop
    if len(starts) and (starts.min() < 0 or starts.max() + nfft > len(x)):
        raise ValueError("frame outside the clip")
    keep = np.asarray(keep_bins if keep_bins is not None else np.empty(0), dtype=np.int64)
    if len(keep) and (keep.min() < 1 or keep.max() > nfft // 2):
        raise ValueError(f"bins must be in 1..{nfft // 2}")
    win = _hann64(nfft)
    kept = np.empty((len(starts), len(keep)), dtype=np.float64)
    block = np.empty((min(chunk, max(len(starts), 1)), nfft), dtype=np.float64)
    found = Extremes()
    for a in range(0, len(starts), chunk):
        part = block[: len(starts[a : a + chunk])]
        kernels.windowed_frames(x, starts[a : a + chunk], win, part)
        spec = scipy.fft.rfft(part, axis=1)
        lo, lo_row, hi, hi_row = kernels.power_extremes(spec, keep, kept, a)
        found = found.merge(Extremes(lo, hi, int(frames[a + lo_row]), int(frames[a + hi_row])))
    return kept, found


def mlab_scale(sample_rate: float, nfft: int) -> float:
    """``mlab.specgram``'s PSD of ``data / 1e-6`` over ``frame_power``'s power."""
    return 1e12 / sample_rate / float(np.square(_hann64(nfft)).sum())


def mlab_frame_psd(x: np.ndarray, frame: int, *, nfft: int, hop: int, sample_rate: float) -> np.ndarray:
    """Bins 1..nfft/2 of one frame of the original's ``mlab.specgram(data / 1e-6)``,
    with mlab's very operations (so its rounding too): used to take the colour
    span's two extreme cells as the original computed them. The faintest
    cells lie ~250 dB below the loudest, where float64 round-off of the
    division by 1e-6 and of the FFT moves them by ~0.005 dB, enough to move
    a few pixels in a thousand to the next colour."""
    seg = np.asarray(x[frame * hop : frame * hop + nfft], dtype=np.float64) / 1e-6
    window = np.hanning(nfft)
    spec = np.fft.fft(seg * window, n=nfft)[: nfft // 2 + 1]
    psd = (np.conj(spec) * spec).real
    psd[1:-1] *= 2.0
    psd /= sample_rate
    psd /= (window**2).sum()
    return psd[1:]


def _row_kernels(nfft: int, rows: tuple[int, ...]) -> np.ndarray:
    """``(len(rows), nfft)`` windowed DFT kernels: frame value of bin ``k`` is ``sum(g_k * frame)``."""
    n = np.arange(nfft)
    w = _hann64(nfft)
    out = np.empty((len(rows), nfft), dtype=np.complex128)
    for i, k in enumerate(rows):
        if k == nfft // 2:
            out[i] = w * np.where(n % 2, -1.0, 1.0)  # exact, no rounded exponentials
        else:
            out[i] = w * np.exp(-2j * np.pi * k * n / nfft)
    return out


def _smooth_length(target: int) -> int:
    """Smallest ``2^a 3^b 5^c >= target``: pocketfft's fastest lengths (scipy's
    ``next_fast_len`` also allows 7 and 11, ~30 % slower here)."""
    best = 1 << max(target - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            n = p35
            while n < target:
                n *= 2
            best = min(best, n)
            p35 *= 3
        p5 *= 5
    return best


@lru_cache(maxsize=4)
def _fold_plan(n_samples: int, nfft: int, hop: int, rows: tuple[int, ...]) -> tuple[int, np.ndarray, np.ndarray]:
    """FFT length ``L = hop * M >= n_samples``, the kernel spectra (length L) of
    ``rows``, and the kernels' sums."""
    length = hop * _smooth_length(-(-n_samples // hop))
    kernels = _row_kernels(nfft, rows)
    # Correlation with g: spectrum X[f] * sum_n g[n] e^{+2 pi i f n / L} = X * conj(fft(conj(g))).
    spectra = np.conj(scipy.fft.fft(np.conj(kernels), length, axis=1))
    sums = kernels.sum(axis=1)
    spectra.setflags(write=False)
    sums.setflags(write=False)
    return length, spectra, sums


def windowed_energy(y: np.ndarray, *, nfft: int, hop: int) -> np.ndarray:
    """``sum_n w[n]^2 y[j*hop + n]`` for every frame ``j`` (``y`` = squared samples).

    mlab's symmetric Hann squared is ``3/8 - cos(q)/2 + cos(2q)/8`` with
    ``q = 2 pi n / (nfft - 1)``, so the weighted sum is three running sums of
    ``y``, ``y e^{iq}`` and ``y e^{2iq}``, differenced at each frame's ends:
    one O(n) pass for all frames (``kernels.hann2_window_sums``).
    """
    from . import kernels

    y = np.ascontiguousarray(y, dtype=np.float64)
    n_frames = frame_count(len(y), nfft, hop)
    out = np.empty(n_frames, dtype=np.float64)
    kernels.hann2_window_sums(y, _hann_turns(nfft), hop, n_frames, out)
    return out


@lru_cache(maxsize=4)
def _hann_turns(nfft: int) -> np.ndarray:
    turns = np.exp(2j * np.pi * np.arange(nfft - 1) / (nfft - 1))
    turns.setflags(write=False)
    return turns


def _full_spectrum(x: np.ndarray, length: int) -> np.ndarray:
    """Complex spectrum of real ``x`` zero-padded to ``length`` (all ``length`` bins)."""
    half = scipy.fft.rfft(x, length)
    full = np.empty(length, dtype=np.complex128)
    full[: len(half)] = half
    rest = length - len(half)
    full[len(half) :] = np.conj(half[1 : rest + 1][::-1])
    return full


def _fold_correlate(spectrum: np.ndarray, kernel_spectra: np.ndarray, hop: int, n_frames: int) -> np.ndarray:
    """Correlations sampled every ``hop`` samples: ``out[i, j] = sum_n g_i[n] x[j*hop + n]``.

    Sampling a sequence every ``hop`` samples folds its spectrum ``hop``
    times onto ``L / hop`` bins, so one short inverse FFT per kernel gives
    all ~15,000 frame values (instead of an inverse FFT of the whole length).
    """
    length = spectrum.shape[-1]
    product = kernel_spectra * spectrum
    folded = product.reshape(*product.shape[:-1], hop, length // hop).sum(axis=-2)
    return scipy.fft.ifft(folded, axis=-1)[..., :n_frames] / hop


@dataclass(frozen=True)
class Span:
    """Min and max power over the cells of a clip, and how sure they are."""

    lo: float
    hi: float
    #: Frames holding ``lo`` and ``hi``.
    lo_frame: int
    hi_frame: int
    #: ``hi`` is proven to be the max over every cell (bins 1..nfft/2, all frames).
    max_exact: bool
    #: ``lo`` is proven to be the min over every cell (only ``span="full"``).
    min_exact: bool
    #: Frames transformed whole (the image's frames included).
    frames_transformed: int
    n_frames: int


def all_frames_rows(
    x: np.ndarray, rows: tuple[int, ...], *, nfft: int, hop: int
) -> tuple[np.ndarray, np.ndarray]:
    """Complex DFT values of bins ``rows`` and the windowed energy of EVERY frame.

    Returns ``(values (len(rows), n_frames), energy (n_frames,))`` with
    ``values[i, j] = sum_n w[n] x[j*hop + n] e^{-2 pi i rows[i] n / nfft}`` and
    ``energy[j] = sum_n (w[n] x[j*hop + n])^2``, from one FFT of the clip
    (``_fold_correlate``) and running sums (``windowed_energy``): a few ms
    for a 5 s clip instead of 15,000 frame FFTs. The clip's mean is taken out before the FFTs and
    put back exactly afterwards (all of it is linear), which keeps float64
    round-off ~250 dB below the loudest cell: below the faintest Nyquist
    cells of real recordings.
    """
    x = np.asarray(x, dtype=np.float64)
    n_frames = frame_count(len(x), nfft, hop)
    length, spectra, sums = _fold_plan(len(x), nfft, hop, tuple(rows))
    mean = float(x.mean())
    centred = x - mean
    values = _fold_correlate(_full_spectrum(centred, length), spectra, hop, n_frames) + mean * sums[:, None]
    w2 = np.square(_hann64(nfft))
    # sum w^2 (centred + mean)^2, the cross term as one more weighted sum.
    energy = windowed_energy(np.square(centred) + 2.0 * mean * centred, nfft=nfft, hop=hop)
    energy += mean * mean * float(w2.sum())
    return values, energy


def span_power(
    x: np.ndarray,
    *,
    nfft: int,
    hop: int,
    method: SpanMethod = SPECTROGRAM.span,
    shown: tuple[np.ndarray, Extremes] | None = None,
    exact_rows: int = SPECTROGRAM.exact_rows,
    max_extra_frames: int = SPECTROGRAM.max_extra_frames,
) -> Span:
    """Min and max power over every cell (bins 1..nfft/2, every frame) of ``x``.

    ``shown`` is ``(frames, extremes)`` of frames already transformed whole
    (the image's), so their cells count without a second FFT. ``method`` is
    one of ``SPANS``, see ``SpectrogramParams.span`` for what each costs and
    guarantees. ``"pruned"`` proves its max with Parseval: a frame's bins
    1..nfft/2-1 hold (with mlab's weights) ``nfft * energy - P_dc - P_nyquist``
    in all, so once rows 1..``exact_rows`` are known for every frame, no
    other bin of a frame can exceed what is left of that; frames where it
    could are transformed whole.
    """
    if method not in SPANS:
        raise ValueError(f"span method must be one of {SPANS}, got {method!r}")
    x = np.asarray(x, dtype=np.float64)
    n_frames = frame_count(len(x), nfft, hop)
    if n_frames == 0:
        raise ValueError(f"clip of {len(x)} samples is shorter than one {nfft}-sample window")
    shown_frames = np.asarray(shown[0] if shown else np.empty(0), dtype=np.int64)
    found = shown[1] if shown else Extremes()

    def result(found: Extremes, max_exact: bool, min_exact: bool, transformed: int) -> Span:
        return Span(found.lo, found.hi, found.lo_frame, found.hi_frame, max_exact, min_exact, transformed, n_frames)

    if method == "full":
        _, found = frame_power(x, np.arange(n_frames), nfft=nfft, hop=hop, chunk=128)
        return result(found, True, True, n_frames)
    if method == "frames":
        if not len(shown_frames):
            raise ValueError("span='frames' needs the shown frames")
        return result(found, False, False, len(shown_frames))
    half = nfft // 2
    low_rows = tuple(range(1, min(exact_rows, half - 1) + 1))
    values, energy = all_frames_rows(x, (0, half, *low_rows), nfft=nfft, hop=hop)
    power = np.square(values.real)
    power += np.square(values.imag)
    power[2:] *= 2.0  # mlab's one-sided weight (not on DC or Nyquist)
    drawn = power[1:]  # the DC row is dropped
    lo_at = np.unravel_index(int(np.argmin(drawn)), drawn.shape)[1]
    hi_at = np.unravel_index(int(np.argmax(drawn)), drawn.shape)[1]
    found = found.merge(Extremes(float(drawn.min()), float(drawn.max()), int(lo_at), int(hi_at)))
    # What the other bins of each frame hold in all (Parseval); a small
    # relative margin covers round-off in the subtraction.
    left_over = nfft * energy - power.sum(axis=0)
    candidate = left_over + 1e-9 * nfft * energy > found.hi
    candidate[shown_frames] = False
    extra = np.flatnonzero(candidate)
    max_exact = len(extra) <= max_extra_frames
    if not max_exact:
        extra = extra[np.argsort(left_over[extra])[::-1][:max_extra_frames]]
    if len(extra):
        _, more = frame_power(x, np.sort(extra), nfft=nfft, hop=hop)
        found = found.merge(more)
    return result(found, max_exact, False, len(shown_frames) + len(extra))


def frames_touching(missing: np.ndarray, starts: np.ndarray, nfft: int) -> np.ndarray:
    """True for each frame (start sample in ``starts``) holding any ``missing`` sample."""
    counts = np.concatenate(([0], np.cumsum(missing, dtype=np.int64)))
    starts = np.asarray(starts, dtype=np.int64)
    return np.asarray((counts[np.minimum(starts + nfft, len(missing))] - counts[starts]) > 0)


def _db_floor(lo: float, hi: float) -> tuple[float, float]:
    # A zero power (digital silence, gap-filled samples) would make the
    # original's span infinite and its image blank: take it as 300 dB below the max.
    hi = hi if hi > 0 else 1.0
    return (lo if lo > 0 else hi * 1e-30), hi


def mpl_color_index(db: np.ndarray, vmin: float, vmax: float, n_colors: int = COLORMAP_SIZE) -> np.ndarray:
    """Colour index as matplotlib computes it for ``imshow(norm=Normalize(vmin, vmax))``:
    ``floor((v - vmin) / (vmax - vmin) * N)``, 1.0 mapped to ``N - 1``, under/over
    clipped to the first/last colour."""
    if not vmax > vmin:
        return np.zeros(db.shape, dtype=np.uint8)
    scaled = (db - vmin) / (vmax - vmin) * n_colors
    np.clip(scaled, 0, n_colors - 1, out=scaled)
    return scaled.astype(np.uint8)


def original_index(
    clip: np.ndarray, sample_rate: float, params: SpectrogramParams = SPECTROGRAM,
    missing: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, Span]:
    """The original's image of one clip as colour indices.

    Returns ``(index (height, width) uint8, background mask or None, span)``:
    each pixel's index is that of the one cell the original shows there
    (``original_pixel_cells``), in the colour range of the clip's span
    (``span_power`` with ``params.span``). The span's two extreme cells are
    then recomputed as mlab does (``mlab_frame_psd``), and the cells drawn
    are put in mlab's units, so ``vmin``/``vmax`` come out as the original's.

    ``missing`` (bool per sample, True where a real break left no recording):
    every frame touching it is left out of the span and its pixel columns
    are masked (drawn as background), so the samples put there stand for
    nothing and cannot stretch the colour range. The span then runs over
    every bin of every other frame (``span="full"`` on those; a clip across a
    break is rare) or, with ``span="frames"``, over the shown ones.
    """
    if missing is not None and np.any(missing):
        return _original_index_masked(clip, sample_rate, params, np.asarray(missing, dtype=bool))
    x = np.asarray(clip, dtype=np.float64)
    nfft = window_length(sample_rate, params.window_s)
    hop = hop_length(nfft, params.overlap)
    cells = original_pixel_cells(
        len(x), float(sample_rate), nfft=nfft, hop=hop, width=params.width, height=params.height,
        fmax_hz=params.fmax_hz,
    )
    frames, column_of = np.unique(cells.frames[cells.frames >= 0], return_inverse=True)
    bins, row_of = np.unique(cells.bins[cells.bins >= 0], return_inverse=True)
    kept, shown = frame_power(x, frames, nfft=nfft, hop=hop, keep_bins=bins)
    span = span_power(
        x, nfft=nfft, hop=hop, method=params.span, shown=(frames, shown),
        exact_rows=params.exact_rows, max_extra_frames=params.max_extra_frames,
    )
    lo = float(mlab_frame_psd(x, span.lo_frame, nfft=nfft, hop=hop, sample_rate=sample_rate).min())
    hi = float(mlab_frame_psd(x, span.hi_frame, nfft=nfft, hop=hop, sample_rate=sample_rate).max())
    lo, hi = _db_floor(lo, hi)
    db_lo, db_hi = 10.0 * math.log10(lo), 10.0 * math.log10(hi)
    vmin, vmax = color_range(db_lo, db_hi, params.color_lo, params.color_hi)
    kept *= mlab_scale(sample_rate, nfft)
    np.maximum(kept, lo, out=kept)
    cell_index = mpl_color_index(10.0 * np.log10(kept), vmin, vmax)  # (shown frames, shown bins)
    index = np.zeros((params.height, params.width), dtype=np.uint8)
    index[np.ix_(np.flatnonzero(cells.bins >= 0), np.flatnonzero(cells.frames >= 0))] = cell_index[column_of][:, row_of].T
    return index, cells.background, span


def _original_index_masked(
    clip: np.ndarray, sample_rate: float, params: SpectrogramParams, missing: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, Span]:
    x = np.asarray(clip, dtype=np.float64)
    if len(missing) != len(x):
        raise ValueError(f"missing mask has {len(missing)} entries for {len(x)} samples")
    nfft = window_length(sample_rate, params.window_s)
    hop = hop_length(nfft, params.overlap)
    cells = original_pixel_cells(
        len(x), float(sample_rate), nfft=nfft, hop=hop, width=params.width, height=params.height,
        fmax_hz=params.fmax_hz,
    )
    n_frames = frame_count(len(x), nfft, hop)
    bad = frames_touching(missing, np.arange(n_frames, dtype=np.int64) * hop, nfft)
    column_bad = (cells.frames >= 0) & bad[np.maximum(cells.frames, 0)]
    drawn_cols = (cells.frames >= 0) & ~column_bad
    background = (cells.bins < 0)[:, None] | ~drawn_cols[None, :]
    index = np.zeros((params.height, params.width), dtype=np.uint8)
    valid = np.flatnonzero(~bad)
    if not len(valid) or not drawn_cols.any():  # nothing real to draw
        return index, background, Span(1.0, 1.0, -1, -1, False, False, 0, n_frames)
    frames, column_of = np.unique(cells.frames[drawn_cols], return_inverse=True)
    bins, row_of = np.unique(cells.bins[cells.bins >= 0], return_inverse=True)
    kept, shown = frame_power(x, frames, nfft=nfft, hop=hop, keep_bins=bins)
    if params.span == "frames":
        found, exact, transformed = shown, False, len(frames)
    else:
        _, found = frame_power(x, valid, nfft=nfft, hop=hop, chunk=128)
        exact, transformed = True, len(valid)
    span = Span(found.lo, found.hi, found.lo_frame, found.hi_frame, exact, exact, transformed, n_frames)
    lo = float(mlab_frame_psd(x, span.lo_frame, nfft=nfft, hop=hop, sample_rate=sample_rate).min())
    hi = float(mlab_frame_psd(x, span.hi_frame, nfft=nfft, hop=hop, sample_rate=sample_rate).max())
    lo, hi = _db_floor(lo, hi)
    vmin, vmax = color_range(10.0 * math.log10(lo), 10.0 * math.log10(hi), params.color_lo, params.color_hi)
    kept *= mlab_scale(sample_rate, nfft)
    np.maximum(kept, lo, out=kept)
    cell_index = mpl_color_index(10.0 * np.log10(kept), vmin, vmax)
    index[np.ix_(np.flatnonzero(cells.bins >= 0), np.flatnonzero(drawn_cols))] = cell_index[column_of][:, row_of].T
    return index, background, span


# --- the colour range with the image (for its metadata) ----------------------------
@dataclass(frozen=True)
class RenderedClip:
    """A clip's image as colour indices, and the dB range its colours span."""

    index: np.ndarray
    background: np.ndarray | None
    #: dB drawn as the first and the last colour.
    vmin: float
    vmax: float
    #: Faintest and loudest cell of the clip in dB (vmin/vmax are fractions of this span).
    db_lo: float
    db_hi: float


def render_clip(
    clip: np.ndarray, sample_rate: float, params: SpectrogramParams = SPECTROGRAM,
    missing: np.ndarray | None = None,
) -> RenderedClip:
    """``render_index`` and the colour range it used.

    ``render="original"``: the span's two extreme cells are taken the way
    ``original_index`` takes them (``mlab_frame_psd`` of the span's frames,
    two more 4096-point FFTs), so ``vmin``/``vmax`` are the ones its colours
    came from (a test checks them against matplotlib's own ``mlab.specgram``).

    ``missing``: samples a real break left without recording (bool per
    sample): masked in the image, left out of the colour range."""
    if missing is not None and not np.any(missing):
        missing = None
    if params.render == "original":
        index, background, span = original_index(clip, sample_rate, params, missing)
        x = np.asarray(clip, dtype=np.float64)
        nfft = window_length(sample_rate, params.window_s)
        hop = hop_length(nfft, params.overlap)
        lo = float(mlab_frame_psd(x, span.lo_frame, nfft=nfft, hop=hop, sample_rate=sample_rate).min())
        hi = float(mlab_frame_psd(x, span.hi_frame, nfft=nfft, hop=hop, sample_rate=sample_rate).max())
        lo, hi = _db_floor(lo, hi)
        db_lo, db_hi = 10.0 * math.log10(lo), 10.0 * math.log10(hi)
        vmin, vmax = color_range(db_lo, db_hi, params.color_lo, params.color_hi)
        return RenderedClip(index, background, vmin, vmax, db_lo, db_hi)
    grid, db_lo, db_hi = spectrogram_db(clip, sample_rate, params, missing)
    vmin, vmax = color_range(db_lo, db_hi, params.color_lo, params.color_hi)
    background = None
    if missing is not None:
        nfft = window_length(sample_rate, params.window_s)
        hop = hop_length(nfft, params.overlap)
        starts = column_frame_starts(len(clip), nfft, hop, params.width, params.frames_per_column)
        bad_cols = np.asarray(frames_touching(missing, starts.ravel(), nfft).reshape(starts.shape).any(axis=1))
        background = np.broadcast_to(bad_cols[None, :], (params.height, params.width)).copy()
    return RenderedClip(color_index(grid, vmin, vmax), background, vmin, vmax, db_lo, db_hi)
