"""The spectrogram worker: ``audio/{track_id}.mp3`` -> one greyscale JPEG per
30 s window at ``spec/{track_id}__{win}__{ini}__{fin}.jpg`` and one
``status_specto`` row per window.

Job threads (one per in-flight job) do the I/O: size check, download, a
header-only probe for the duration guard, uploads. The CPU work runs in a
process pool made once per worker (``make_resources``) and warmed before the
first job, so every core is busy and no job pays import or first-call costs.
Only the computation holds one of the worker's compute slots (``ctx.stage``):
the next tracks download and the last ones upload meanwhile (runtime/stages.py).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from ...runtime import JobContext, Rejected, Skipped, Transient
from ...settings import Settings
from ...status import Stat
from ...storage import Put, Storage
from . import dsp
from .models import SpectoJob, SpectoStatus

log = logging.getLogger("specfleet.spectrogram")


def params_from_settings(settings: Settings) -> dsp.SpectroParams:
    return dsp.SpectroParams(
        sample_rate=settings.spectro_sample_rate,
        n_fft=settings.spectro_n_fft,
        hop_length=settings.spectro_hop,
        n_mels=settings.spectro_n_mels,
        fmax=settings.spectro_fmax,
        top_db=settings.spectro_top_db,
        window_s=settings.spectro_window_s,
        step_s=settings.spectro_step_s,
        min_duration_s=settings.spectro_min_duration_s,
        max_duration_s=settings.spectro_max_duration_s,
        jpeg_quality=settings.spectro_jpeg_quality,
    )


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


def compute_track(path: str, params: dsp.SpectroParams) -> TrackResult:
    """Decode one file and encode all its windows (pure but for reading ``path``).
    Raises ``dsp.TooLongError`` once the audio proves longer than
    ``params.max_duration_s``, whatever its header said."""
    db, duration = dsp.track_mel_db(path, params)
    windows = [
        WindowResult(img.window, img.rows, img.cols, dsp.encode_jpeg(img.pixels, quality=params.jpeg_quality))
        for img in dsp.db_window_images(db, duration, params)
    ]
    return TrackResult(duration, windows)


def warm_up(params: dsp.SpectroParams) -> int:
    """Pay every first-call cost once per process: imports, libmpg123, the mel
    filterbanks and soxr responses, loading the numba kernels from their
    on-disk cache, soxr's filter design, Pillow's JPEG encoder. Runs in each
    pool process."""
    import numpy as np

    from . import mpg123

    keep_freed_memory()
    mpg123.available()
    rng = np.random.default_rng(0)
    seconds = params.window_s + 1
    # The common decoded rates: 44.1 and 48 kHz streams at half rate (the
    # stretch and the two FFT sizes), and a resampled one.
    for rate, source_rate in ((22050, 44100), (24000, 48000), (8000, 8000)):
        mono = (rng.standard_normal(seconds * rate) * 0.1).astype(np.float32)
        db, duration = dsp.mel_db_decoded(mono, rate, source_rate, params)
        for img in dsp.db_window_images(db, duration, params):
            dsp.encode_jpeg(img.pixels, quality=params.jpeg_quality)
    return os.getpid()


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


class SpectroPool:
    """A warmed process pool; ``compute`` runs one track in it."""

    def __init__(self, processes: int, params: dsp.SpectroParams):
        self.processes = max(1, processes)
        self.params = params
        self._lock = threading.Lock()
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the worker process has live threads and boto3 clients.
        pool = ProcessPoolExecutor(
            self.processes, mp_context=multiprocessing.get_context("spawn"), initializer=warm_up, initargs=(self.params,)
        )
        # One task per process so all of them start (and warm up) now, not on the first jobs.
        for f in [pool.submit(os.getpid) for _ in range(self.processes)]:
            f.result(timeout=300)
        return pool

    def compute(self, path: str) -> TrackResult:
        pool = self._pool
        try:
            return pool.submit(compute_track, path, self.params).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:  # first thread to notice replaces it
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = self._start()
            raise Transient("spectrogram process crashed (pool restarted); the job will be retried") from None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_resources(settings: Settings, config: object = None) -> SpectroPool:
    processes = settings.spectro_processes or os.cpu_count() or 1
    return SpectroPool(processes, params_from_settings(settings))


# --- the job (runs in a worker thread) --------------------------------------------------
def _status(ctx: JobContext, track_id: str, stat: Stat, window: dsp.Window, rows: int, cols: int) -> SpectoStatus:
    return SpectoStatus(
        instance_id=ctx.instance_id, stat=stat, track_id=track_id,
        win=window.win, ini=window.ini, fin=window.fin, rows=rows, cols=cols,
    )


def check_audio(info: dsp.AudioInfo, key: str, settings: Settings) -> None:
    """The guards that need only the header: raise ``Rejected``/``Skipped``.
    The header is outside input: ``too_long`` catches a header that lies."""
    if info.format != "MP3":
        raise Rejected(f"{key} holds {info.format} audio, not MP3")
    if info.duration_s > settings.spectro_max_duration_s:
        raise Skipped(
            f"{key} is {info.duration_s / 60:.1f} min long, over the "
            f"{settings.spectro_max_duration_s / 60:g} min limit (spectro_max_duration_s)"
        )


def too_long(info: dsp.AudioInfo, key: str, settings: Settings) -> Skipped:
    """The skip for a track whose header passed ``check_audio`` but whose
    frames ran past the limit while decoding (decoding stopped there)."""
    return Skipped(
        f"{key} holds over {settings.spectro_max_duration_s / 60:g} min of audio, over the limit "
        f"(spectro_max_duration_s), though its header claims {info.duration_s / 60:.1f} min: "
        "decoding stopped at the limit"
    )


def handle(job: SpectoJob, ctx: JobContext) -> None:
    settings = ctx.settings
    key = job.source_key()
    suffix = Path(key).suffix
    if suffix.lower() != ".mp3":
        raise Rejected(f"{key}: expected an .mp3 object, got extension {suffix or 'none'!r}")
    storage = Storage(settings)
    ctx.stage("fetch")
    size = storage.size(key)
    if size is None:
        raise Rejected(f"no audio at s3://{storage.bucket}/{key}")
    if size == 0:
        raise Rejected(f"{key} is empty (0 bytes)")
    if size > settings.spectro_max_mp3_bytes:
        raise Skipped(
            f"{key} is {size / 1e6:.1f} MB, over the {settings.spectro_max_mp3_bytes / 1e6:g} MB limit "
            "(spectro_max_mp3_bytes)"
        )
    with tempfile.TemporaryDirectory(prefix="specfleet-specto-") as tmp:
        path = Path(tmp) / "track.mp3"
        storage.download(key, path)
        try:
            info = dsp.probe(path)
        except dsp.AudioError as err:
            raise Rejected(f"{key}: {err}") from None
        check_audio(info, key, settings)
        if ctx.cancelled.is_set():
            raise Transient("worker shutting down")
        pool: SpectroPool | None = ctx.resources if isinstance(ctx.resources, SpectroPool) else None
        ctx.stage("compute")
        try:
            result = pool.compute(str(path)) if pool else compute_track(str(path), params_from_settings(settings))
        except dsp.TooLongError:
            raise too_long(info, key, settings) from None
        except dsp.AudioError as err:
            raise Rejected(f"{key}: {err}") from None
    if not result.windows:
        raise Rejected(
            f"{key} is {result.duration_s} s long, shorter than {settings.spectro_min_duration_s} s: no windows"
        )
    prefix = settings.spectro_output_prefix
    ctx.stage("upload")
    if ctx.cancelled.is_set():
        raise Transient("worker shutting down")
    storage.put_many(Put(dsp.window_key(job.track_id, w.window, prefix), w.jpeg, "image/jpeg") for w in result.windows)
    for w in result.windows:
        ctx.report(_status(ctx, job.track_id, Stat.DONE, w.window, w.rows, w.cols), key=f"win{w.window.win}")


# --- one file, no queues (``specfleet spectrogram AUDIO``) ------------------------------
def spectrogram_file(path: str | Path, track_id: str, out_dir: str | Path, settings: Settings) -> dict:
    """Run one track's work locally with the worker's guards; write the JPEGs
    to ``out_dir`` and return a summary. Raises ``Rejected``/``Skipped``."""
    from ...jobs import _check_track_id

    try:
        _check_track_id(track_id)
    except ValueError as err:
        raise Rejected(f"track id {track_id!r}: {err}") from None
    path = Path(path)
    if not path.is_file():
        raise Rejected(f"{path} is not a file")
    if path.suffix.lower() != ".mp3":
        raise Rejected(f"{path.name}: expected an .mp3 file, got extension {path.suffix or 'none'!r}")
    size = path.stat().st_size
    if size > settings.spectro_max_mp3_bytes:
        raise Skipped(f"{path.name} is {size / 1e6:.1f} MB, over the {settings.spectro_max_mp3_bytes / 1e6:g} MB limit")
    try:
        info = dsp.probe(path)
        check_audio(info, path.name, settings)
        result = compute_track(str(path), params_from_settings(settings))
    except dsp.TooLongError:
        raise too_long(info, path.name, settings) from None
    except dsp.AudioError as err:
        raise Rejected(str(err)) from None
    if not result.windows:
        raise Rejected(f"{path.name} is {result.duration_s} s long: no windows")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    windows = []
    for w in result.windows:
        target = out / Path(dsp.window_key(track_id, w.window, prefix="")).name
        target.write_bytes(w.jpeg)
        windows.append({"win": w.window.win, "ini": w.window.ini, "fin": w.window.fin,
                        "rows": w.rows, "cols": w.cols, "path": str(target)})
    return {"track_id": track_id, "duration_s": result.duration_s, "source_sample_rate": info.sample_rate,
            "source_channels": info.channels, "windows": windows}
