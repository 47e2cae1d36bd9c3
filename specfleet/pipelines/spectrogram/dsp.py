"""Mel-spectrogram windows of a music track, as pure array -> array functions.

Reference: the original worker (librosa 0.7 era) did, per track::

    y, sr = librosa.load(wav, sr=16000)                       # mono, soxr/kaiser resampling
    S = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=256, fmax=8000, n_fft=1024, hop_length=512)
    S_dB = librosa.power_to_db(S, ref=np.max)                 # top_db=80
    for each window (ini, fin) in seconds:
        sample = S_dB[:, int(ini / (hop/sr)):int(fin / (hop/sr))]   # a *view*
        sample[sample < median(sample)] = sample.min()               # in place!
        plt.imsave(f"{track}__{win}__{ini}__{fin}.jpg", sample, cmap="gray_r", origin="lower")

We compute the same numbers with fewer passes: decode once (libsndfile),
resample once (soxr HQ, what ``librosa.load`` uses), one float32 STFT per
track, the |X|^2 -> mel projection fused in one numba loop over each filter's
few non-zero bins (cached filterbank, compiled code cached on disk), dB via
numpy's vectorised float32 ``log``, and each window encoded straight from the
array with Pillow (no matplotlib figure). Only I/O (``decode``/``probe``)
touches files.

Edge rules (the original's loop, with its two corner cases made explicit):

* ``duration = floor(samples / sr)`` whole seconds, as the original.
* Windows start every ``step_s`` (20 s) and last ``window_s`` (30 s):
  win 0 = 0-30 s, win 1 = 20-50 s, ... while the window fits.
* **Last partial window**: when the next window would run past the end, the
  last window is anchored to the end, ``(duration - 30, duration)``, so it is
  full length and overlaps its neighbour more (the original's rule; a 40 s
  track gives 0-30 and 10-40).
* The original then emitted that end-anchored window *again* when it equalled
  the previous one (30 s -> 0-30 twice; 50 s -> 0-30, 20-50, 20-50). We drop
  that duplicate; the numbering of all other windows is unchanged.
* **Tracks shorter than one window** (``min_duration_s <= duration < 30``):
  one window ``(0, duration)`` with fewer columns. The original computed
  ``ini = duration - 30 < 0`` there and sliced from the *end* of the array,
  a silent bug; ours keeps the whole short track.
* Tracks shorter than ``min_duration_s`` (default 1 s) give no windows; the
  worker rejects them.
* The median floor filters each window's *view* of the one dB array in place,
  window after window, exactly as the original: the 10 s a window shares with
  the previous one has already been floored by it. Keeping this makes our
  images match the ones already produced.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np
import scipy.fft

#: ``gray_r`` as 8-bit grey levels: matplotlib maps a normalised value v to
#: LUT index ``min(int(v * 256), 255)``; its 256-entry reversed grey ramp,
#: truncated to bytes, is this (checked against matplotlib in the tests).
_GRAY_R = (np.linspace(1.0, 0.0, 256) * 255).astype(np.uint8)


@dataclass(frozen=True)
class SpectroParams:
    """Every knob of the computation, with the original's values as defaults."""

    #: Decode, downmix and resample to this rate (Hz).
    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 256
    fmin: float = 0.0
    #: Upper edge of the mel filterbank (Hz); the original used 8 kHz.
    fmax: float = 8000.0
    #: ``power_to_db(ref=np.max, amin=1e-10, top_db=80)``.
    amin: float = 1e-10
    top_db: float = 80.0
    window_s: int = 30
    step_s: int = 20
    #: Tracks shorter than this many whole seconds give no windows.
    min_duration_s: int = 1
    jpeg_quality: int = 75


@dataclass(frozen=True)
class Window:
    win: int
    ini: int
    fin: int


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says, read without decoding."""

    format: str
    sample_rate: int
    channels: int
    frames: int
    duration_s: float


class AudioError(ValueError):
    """A file is not audio we can decode; the message says why."""


# --- I/O at the edges -----------------------------------------------------------
def probe(path: str | Path) -> AudioInfo:
    """Header-only look at an audio file (no decoding; microseconds even for
    an hour-long mp3 with a Xing/Info header, an estimate from the bitrate
    otherwise)."""
    import soundfile as sf

    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise AudioError(f"{path.name} is empty (0 bytes)")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        # libsndfile says "File does not exist" for formats it cannot sniff.
        detail = "format not recognised" if "does not exist" in str(err) else str(err)
        raise AudioError(f"{path.name} ({size} bytes) is not a decodable audio file: {detail}") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{path.name} holds no audio frames")
    return AudioInfo(
        format=str(info.format),
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
        duration_s=float(info.frames) / float(info.samplerate),
    )


def decode(path: str | Path, *, sample_rate: int = 16000) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate`` — the same numbers as
    ``librosa.load(path, sr=sample_rate)`` (libsndfile, channel mean, soxr HQ,
    length fixed to ``ceil(n * ratio)``) without librosa's import cost."""
    import soundfile as sf

    try:
        data, native_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(f"{Path(path).name} could not be decoded: {err}") from None
    if data.size == 0:
        raise AudioError(f"{Path(path).name} decoded to no samples")
    return to_mono_resampled(data, native_sr, sample_rate=sample_rate)


def to_mono_resampled(data: np.ndarray, native_sr: int, *, sample_rate: int = 16000) -> np.ndarray:
    """(frames, channels) float32 -> mono float32 at ``sample_rate``."""
    import soxr

    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 1:
        mono = data
    elif data.shape[1] == 2:  # the common case; 10x faster than a strided mean, same values
        mono = (data[:, 0] + data[:, 1]) * np.float32(0.5)
    else:
        mono = data.mean(axis=1, dtype=np.float32)
    if not np.all(np.isfinite(mono)):
        raise AudioError("audio contains NaN or infinite samples")
    if native_sr == sample_rate:
        return np.ascontiguousarray(mono)
    out = soxr.resample(mono, native_sr, sample_rate, quality="HQ")
    n_out = int(math.ceil(mono.shape[0] * sample_rate / native_sr))
    if out.shape[0] < n_out:  # librosa's fix_length
        out = np.pad(out, (0, n_out - out.shape[0]))
    return np.ascontiguousarray(out[:n_out], dtype=np.float32)


# --- the spectrogram -----------------------------------------------------------
@dataclass(frozen=True)
class MelBands:
    """librosa's Slaney mel filterbank (float32) with each filter's non-zero
    bin range: 256 filters x 513 bins, but each filter touches only a handful
    of bins, so the projection loops over ``lo[m]:hi[m]`` only."""

    weights: np.ndarray  # (n_mels, n_fft // 2 + 1) float32, C-contiguous
    lo: np.ndarray  # (n_mels,) int64: first non-zero bin
    hi: np.ndarray  # (n_mels,) int64: one past the last non-zero bin


@lru_cache(maxsize=8)
def mel_filterbank(
    *, sample_rate: int = 16000, n_fft: int = 1024, n_mels: int = 256, fmin: float = 0.0, fmax: float = 8000.0
) -> MelBands:
    """Built once per process (``librosa.filters.mel`` is plain numpy)."""
    from librosa.filters import mel

    weights = np.ascontiguousarray(
        mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=np.float32)
    )
    lo = np.zeros(n_mels, dtype=np.int64)
    hi = np.zeros(n_mels, dtype=np.int64)
    for m, row in enumerate(weights):
        nz = np.flatnonzero(row)
        if nz.size:  # an all-zero filter (too many mels for n_fft) keeps lo == hi: output 0
            lo[m], hi[m] = nz[0], nz[-1] + 1
    return MelBands(weights, lo, hi)


@lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    # Periodic Hann, as scipy.signal.get_window("hann", n, fftbins=True) / librosa.
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def stft(y: np.ndarray, *, n_fft: int = 1024, hop_length: int = 512) -> np.ndarray:
    """Complex64 STFT as (frames, n_fft//2 + 1): centred frames with zero
    padding (librosa >= 0.10 defaults), so frames = 1 + len(y) // hop."""
    pad = n_fft // 2
    padded = np.pad(np.asarray(y, dtype=np.float32), (pad, pad))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    return scipy.fft.rfft(frames * _hann(n_fft), axis=-1)


def power_spectrogram(y: np.ndarray, *, n_fft: int = 1024, hop_length: int = 512) -> np.ndarray:
    """|STFT|^2 as (n_fft//2 + 1, frames) float32 (kept for tests; ``mel_db``
    never materialises it)."""
    spec = stft(y, n_fft=n_fft, hop_length=hop_length)
    power = spec.real * spec.real
    power += spec.imag * spec.imag
    return power.T


@lru_cache(maxsize=1)
def _mel_power_kernel():  # type: ignore[no-untyped-def]
    """The fused |X|^2 -> mel projection, compiled once and cached on disk
    (``cache=True``), so a fresh process loads it instead of compiling."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def mel_power(spec, weights, lo, hi, out):  # type: ignore[no-untyped-def]
        # One pass over the complex STFT: no (bins, frames) power array, no
        # sparse-matrix machinery; the same float32 sums in the same order.
        for t in range(spec.shape[0]):
            for m in range(weights.shape[0]):
                acc = np.float32(0.0)
                for k in range(lo[m], hi[m]):
                    c = spec[t, k]
                    acc += weights[m, k] * (c.real * c.real + c.imag * c.imag)
                out[m, t] = acc
        return out

    return mel_power


def mel_power(y: np.ndarray, params: SpectroParams = SpectroParams()) -> np.ndarray:
    """Mel power spectrogram (n_mels, frames) float32, what
    ``librosa.feature.melspectrogram(y, power=2)`` gives."""
    spec = stft(y, n_fft=params.n_fft, hop_length=params.hop_length)
    bands = mel_filterbank(
        sample_rate=params.sample_rate, n_fft=params.n_fft, n_mels=params.n_mels, fmin=params.fmin, fmax=params.fmax
    )
    out = np.empty((params.n_mels, spec.shape[0]), dtype=np.float32)
    return _mel_power_kernel()(spec, bands.weights, bands.lo, bands.hi, out)


def mel_db(y: np.ndarray, params: SpectroParams = SpectroParams()) -> np.ndarray:
    """Mel power spectrogram in dB relative to its maximum, clipped ``top_db``
    below it: (n_mels, frames) float32, what ``power_to_db(melspectrogram(y),
    ref=np.max)`` gives."""
    return power_to_db(mel_power(y, params), amin=params.amin, top_db=params.top_db)


#: 10 / ln(10): dB from the natural log. numpy's float32 ``log`` is SIMD
#: vectorised and ~5x faster than its ``log10``; the results differ by < 1e-4 dB.
_DB_PER_NEPER = np.float32(10.0 / math.log(10.0))


def power_to_db(power: np.ndarray, *, amin: float = 1e-10, top_db: float | None = 80.0) -> np.ndarray:
    """``librosa.power_to_db(power, ref=np.max, amin=amin, top_db=top_db)``,
    in float32; overwrites and returns ``power``."""
    ref = np.float32(max(amin, float(power.max(initial=0.0))))
    db = np.maximum(power, np.float32(amin), out=power)
    np.log(db, out=db)
    db *= _DB_PER_NEPER
    db -= np.float32(10.0) * np.log10(ref)
    if top_db is not None:
        np.maximum(db, db.max() - np.float32(top_db), out=db)
    return db


# --- windows -------------------------------------------------------------------------
def whole_seconds(n_samples: int, sample_rate: int) -> int:
    return int(math.floor(n_samples / sample_rate))


def window_plan(duration_s: int, *, window_s: int = 30, step_s: int = 20, min_duration_s: int = 1) -> list[Window]:
    """The windows of a track ``duration_s`` whole seconds long (rules in the
    module docstring)."""
    if window_s <= 0 or step_s <= 0:
        raise ValueError("window_s and step_s must be positive")
    if duration_s < max(1, min_duration_s):
        return []
    if duration_s < window_s:
        return [Window(0, 0, duration_s)]
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end = start + window_s
        if end <= duration_s:
            spans.append((start, end))
            start += step_s
            if start >= duration_s:
                break
        else:
            last = (duration_s - window_s, duration_s)
            if last != spans[-1]:  # the original repeated it; we do not
                spans.append(last)
            break
    return [Window(i, a, b) for i, (a, b) in enumerate(spans)]


def frame_span(ini: int, fin: int, *, sample_rate: int = 16000, hop_length: int = 512) -> tuple[int, int]:
    """Column range of a window, computed exactly as the original did
    (``int(seconds / (hop / sr))``), so shapes match: 937 or 938 columns."""
    step = hop_length / sample_rate
    return int(ini / step), int(fin / step)


def floor_below_median(block: np.ndarray) -> np.ndarray:
    """Set values below the block's median to its minimum, in place (the
    original's "median filter"); returns ``block``."""
    # np.median's own arithmetic (partition at the middle pair, float32 mean
    # of the two) on one contiguous copy, without its NaN checks and copies.
    flat = np.ascontiguousarray(block).reshape(-1)
    n = flat.size
    if n == 0:
        return block
    k = n // 2
    if n % 2:
        threshold = np.partition(flat, k)[k]
    else:
        part = np.partition(flat, [k - 1, k])
        threshold = np.mean(part[k - 1 : k + 1])
    np.copyto(block, flat.min(), where=block < threshold)
    return block


def to_gray_r(block: np.ndarray) -> np.ndarray:
    """dB block -> uint8 image as ``plt.imsave(cmap="gray_r", origin="lower")``
    paints it: min-max normalised, loud = dark, low frequencies at the bottom."""
    lo = block.min()
    span = block.max() - lo
    if span > 0:
        scaled = (block - lo) / span
        scaled *= np.float32(256)
        index = scaled.astype(np.intp)
        np.clip(index, 0, 255, out=index)
    else:  # matplotlib maps a constant image to the bottom of the colormap
        index = np.zeros(block.shape, dtype=np.intp)
    return _GRAY_R[index[::-1]]


def encode_jpeg(pixels: np.ndarray, *, quality: int = 75) -> bytes:
    """Greyscale (mode L) JPEG of a uint8 array."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), mode="L").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@dataclass(frozen=True)
class WindowImage:
    window: Window
    #: The filtered dB block (n_mels, cols) — kept for tests and benchmarks.
    db: np.ndarray
    pixels: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.db.shape[0])

    @property
    def cols(self) -> int:
        return int(self.db.shape[1])


def window_images(y: np.ndarray, params: SpectroParams = SpectroParams()) -> Iterator[WindowImage]:
    """Every window of a mono track at ``params.sample_rate`` as filtered dB
    block + greyscale pixels, in window order (the order matters: see the
    in-place median rule above)."""
    duration = whole_seconds(len(y), params.sample_rate)
    plan = window_plan(
        duration, window_s=params.window_s, step_s=params.step_s, min_duration_s=params.min_duration_s
    )
    if not plan:
        return
    db = mel_db(y, params)
    for window in plan:
        a, b = frame_span(window.ini, window.fin, sample_rate=params.sample_rate, hop_length=params.hop_length)
        block = floor_below_median(db[:, a:b])  # a view: later windows see this
        yield WindowImage(window, block.copy(), to_gray_r(block))


def window_key(track_id: str, window: Window, prefix: str = "spec/") -> str:
    return f"{prefix}{track_id}__{window.win}__{window.ini}__{window.fin}.jpg"
