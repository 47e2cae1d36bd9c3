"""The mel-window core shared by the spectrogram pipeline and fused download
workers: one track's windows computed (decode, mel dB, paint, JPEG with
metadata), the guards every path applies before and while decoding, the
upload of the windows and their ``status_specto`` rows. Pure but for reading
a file and, in ``put_windows``, writing to S3; the pipelines add queues,
pools and their own sources."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...runtime import Rejected, Skipped, Transient
from ...status import Stat
from ...storage import Put, Storage
from . import dsp, imagemeta
from .models import SpectoStatus
from .params import pick
from .settings import SpectroSettings


def params_from_settings(config: SpectroSettings) -> dsp.SpectroParams:
    """The declared parameters (``params.py``) as the settings give them."""
    return pick(config)


# --- the CPU part (runs in pool processes) -----------------------------------------
@dataclass(frozen=True)
class WindowResult:
    window: dsp.Window
    rows: int
    cols: int
    jpeg: bytes


@dataclass(frozen=True)
class TrackResult:
    duration_s: int
    windows: list[WindowResult]


def compute_track(path: str, params: dsp.SpectroParams, *, source: str = "", track_id: str = "") -> TrackResult:
    """Decode one file and encode all its windows (pure but for reading ``path``).
    Each JPEG carries its parameters in a comment (``imagemeta``), naming
    ``source`` (the S3 key or path) and ``track_id``.
    Raises ``dsp.TooLongError`` once the audio proves longer than
    ``params.max_duration_s``, whatever its header said."""
    db, duration = dsp.track_mel_db(path, params)
    track = imagemeta.track_metadata(params, imagemeta.render_path_of_file(path, params), source=source,
                                     track_id=track_id)
    return windows_from_db(db, duration, params, track)


def compute_decoded(
    samples: np.ndarray, rate: int, source_rate: int, params: dsp.SpectroParams, *, decoder: str,
    source: str = "", track_id: str = "",
) -> TrackResult:
    """``compute_track`` for mono samples already decoded by ``decoder`` (at
    ``rate``, from a ``source_rate`` stream): the fused download path."""
    db, duration = dsp.mel_db_decoded(samples, rate, source_rate, params)
    render = imagemeta.render_path(source_rate, params, mpeg=False, decoder=decoder)
    return windows_from_db(db, duration, params,
                           imagemeta.track_metadata(params, render, source=source, track_id=track_id))


def windows_from_db(db: np.ndarray, duration: int, params: dsp.SpectroParams, track: dict[str, str]) -> TrackResult:
    """Every window of a track's dB array, painted and JPEG-encoded with the
    track's metadata (``imagemeta.track_metadata``) and its own."""
    windows = [
        WindowResult(img.window, img.rows, img.cols, imagemeta.encode_window(img, params, track))
        for img in dsp.db_window_images(db, duration, params)
    ]
    return TrackResult(duration, windows)


def warm_up(params: dsp.SpectroParams) -> int:
    """A pool process's initializer: keep freed memory mapped (see
    ``keep_freed_memory``) and pay every first-call cost (``warm_up_dsp``)."""
    keep_freed_memory()
    warm_up_dsp(params)
    return os.getpid()


#: The common (decoded rate, stream rate) pairs of mp3s: 44.1 and 48 kHz
#: streams at half rate (the stretch and the two FFT sizes), and a resampled one.
MP3_DECODED_RATES: tuple[tuple[int, int], ...] = ((22050, 44100), (24000, 48000), (8000, 8000))


def warm_up_dsp(params: dsp.SpectroParams, rates: tuple[tuple[int, int], ...] = MP3_DECODED_RATES) -> None:
    """Pay every first-call cost once per process: imports, libmpg123, the mel
    filterbanks and soxr responses, loading the numba kernels from their
    on-disk cache, soxr's filter design, Pillow's JPEG encoder, for signals
    at each (rate, stream rate) of ``rates``."""
    from . import mpg123

    mpg123.available()
    rng = np.random.default_rng(0)
    seconds = params.window_s + 1
    for rate, source_rate in rates:
        mono = (rng.standard_normal(seconds * rate) * 0.1).astype(np.float32)
        db, duration = dsp.mel_db_decoded(mono, rate, source_rate, params)
        for img in dsp.db_window_images(db, duration, params):
            dsp.encode_jpeg(img.pixels, quality=params.jpeg_quality)


def keep_freed_memory() -> None:
    """Ask glibc to keep freed memory for reuse (Linux only; a no-op elsewhere).

    A track's arrays are tens of MB each. By default glibc serves those with
    mmap and hands them back to the kernel on free, so every track
    page-faults them in afresh: ~4,000 faults and 20 ms of system time per
    3-minute track, measured. A pool process does one track after another,
    so keeping the memory mapped costs nothing but its peak size.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 512 << 20)
    mallopt(m_trim_threshold, 1 << 30)


# --- the guards and the upload (run in a job thread) -------------------------------
def window_status(instance_id: str, track_id: str, window: WindowResult) -> SpectoStatus:
    """The done row of one window written to S3."""
    return SpectoStatus(
        instance_id=instance_id, stat=Stat.DONE, track_id=track_id,
        win=window.window.win, ini=window.window.ini, fin=window.window.fin, rows=window.rows, cols=window.cols,
    )


def check_size(size: int, key: str, max_mp3_bytes: int) -> None:
    """The size guards (the original's 10 MB rule): ``Rejected``/``Skipped``."""
    if size == 0:
        raise Rejected(f"{key} is empty (0 bytes)")
    if size > max_mp3_bytes:
        raise Skipped(
            f"{key} is {size / 1e6:.1f} MB, over the {max_mp3_bytes / 1e6:g} MB limit "
            "(SPECFLEET_SPECTRO_MAX_MP3_BYTES)"
        )


def check_audio(info: dsp.AudioInfo, key: str, max_duration_s: float) -> None:
    """The guards that need only the header: raise ``Rejected``/``Skipped``.
    The header is outside input: ``too_long`` catches a header that lies."""
    if info.format != "MP3":
        raise Rejected(f"{key} holds {info.format} audio, not MP3")
    if info.duration_s > max_duration_s:
        raise Skipped(
            f"{key} is {info.duration_s / 60:.1f} min long, over the "
            f"{max_duration_s / 60:g} min limit (SPECFLEET_SPECTRO_MAX_DURATION_S)"
        )


def too_long(info: dsp.AudioInfo, key: str, max_duration_s: float) -> Skipped:
    """The skip for a track whose header passed ``check_audio`` but whose
    frames ran past the limit while decoding (decoding stopped there)."""
    return Skipped(
        f"{key} holds over {max_duration_s / 60:g} min of audio, over the limit "
        f"(SPECFLEET_SPECTRO_MAX_DURATION_S), though its header claims {info.duration_s / 60:.1f} min: "
        "decoding stopped at the limit"
    )


def mp3_windows(
    path: Path, key: str, config: SpectroSettings, cancelled: threading.Event,
    compute: Callable[..., TrackResult] | None = None, *, track_id: str = "", source: str | None = None,
) -> tuple[dsp.AudioInfo, TrackResult]:
    """The header and the windows of the local mp3 ``path`` (``key`` names it
    in reasons) behind every guard that needs the file: header, duration
    while decoding, at least one window. Raises ``Rejected``/``Skipped``/
    ``Transient``. ``compute``: where the CPU work runs (``SpectroPool.compute``;
    default: ``compute_track`` in this thread). The JPEGs name ``source``
    (default ``key``) and ``track_id`` in their metadata."""
    try:
        info = dsp.probe(path)
    except dsp.AudioError as err:
        raise Rejected(f"{key}: {err}") from None
    check_audio(info, key, config.max_duration_s)
    if cancelled.is_set():
        raise Transient("worker shutting down")
    try:
        result = (compute or _compute_here(config))(str(path), source=key if source is None else source,
                                                     track_id=track_id)
    except dsp.TooLongError:
        raise too_long(info, key, config.max_duration_s) from None
    except dsp.AudioError as err:
        raise Rejected(f"{key}: {err}") from None
    if not result.windows:
        raise no_windows(key, result.duration_s, config.min_duration_s)
    return info, result


def _compute_here(config: SpectroSettings) -> Callable[..., TrackResult]:
    params = params_from_settings(config)
    return lambda path, **meta: compute_track(path, params, **meta)


def no_windows(key: str, duration_s: int, min_duration_s: int) -> Rejected:
    return Rejected(f"{key} is {duration_s} s long, shorter than {min_duration_s} s: no windows")


def put_windows(
    storage: Storage, track_id: str, result: TrackResult, prefix: str, cancelled: threading.Event
) -> None:
    """Upload every window's JPEG to ``{prefix}{track_id}__{win}__{ini}__{fin}.jpg``
    (on the storage's shared upload threads)."""
    if cancelled.is_set():
        raise Transient("worker shutting down")
    storage.put_many(Put(dsp.window_key(track_id, w.window, prefix), w.jpeg, "image/jpeg") for w in result.windows)


