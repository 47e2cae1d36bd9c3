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
import os
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ...runtime import JobContext, Rejected, Transient
from ...runtime.pools import process_pool
from ...settings import Settings
from ...storage import Storage
from ..melwindows import dsp
from ..melwindows.compute import (
    TrackResult,
    check_size,
    compute_track,
    mp3_windows,
    params_from_settings,
    put_windows,
    warm_up,
    window_status,
)
from ..melwindows.models import SpectoJob
from ..melwindows.settings import SpectroSettings

log = logging.getLogger("specfleet.spectrogram")


class SpectroPool:
    """A warmed process pool; ``compute`` runs one track in it."""

    def __init__(self, processes: int, params: dsp.SpectroParams):
        self.processes = max(1, processes)
        self.params = params
        self._lock = threading.Lock()
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # every process started and warmed up now, not on the first jobs
        return process_pool(self.processes, start_method="spawn", initializer=warm_up, initargs=(self.params,))

    def compute(self, path: str, *, source: str = "", track_id: str = "") -> TrackResult:
        pool = self._pool
        try:
            return pool.submit(compute_track, path, self.params, source=source, track_id=track_id).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:  # first thread to notice replaces it
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = self._start()
            raise Transient("spectrogram process crashed (pool restarted); the job will be retried") from None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_resources(settings: Settings, config: SpectroSettings) -> SpectroPool:
    processes = config.processes or os.cpu_count() or 1
    return SpectroPool(processes, params_from_settings(config))


# --- the job (runs in a worker thread) --------------------------------------------------
def handle(job: SpectoJob, ctx: JobContext) -> None:
    settings, config = ctx.settings, ctx.config
    key = job.source_key()
    suffix = Path(key).suffix
    if suffix.lower() != ".mp3":
        raise Rejected(f"{key}: expected an .mp3 object, got extension {suffix or 'none'!r}")
    storage = Storage(settings)
    ctx.stage("fetch")
    size = storage.size(key)
    if size is None:
        raise Rejected(f"no audio at s3://{storage.bucket}/{key}")
    check_size(size, key, config.max_mp3_bytes)
    pool: SpectroPool | None = ctx.resources if isinstance(ctx.resources, SpectroPool) else None
    with tempfile.TemporaryDirectory(prefix="specfleet-specto-") as tmp:
        path = Path(tmp) / "track.mp3"
        storage.download(key, path)
        ctx.stage("compute")  # the compute gate: downloads of other jobs go on meanwhile
        _, result = mp3_windows(path, key, config, ctx.cancelled, pool.compute if pool else None,
                                track_id=job.track_id)
    ctx.stage("upload")
    put_windows(storage, job.track_id, result, config.output_prefix, ctx.cancelled)
    for w in result.windows:
        ctx.report(window_status(ctx.instance_id, job.track_id, w), key=f"win{w.window.win}")
    ctx.wrote = f"{len(result.windows)} windows"


# --- one file, no queues (``specfleet spectrogram AUDIO``) ------------------------------
def spectrogram_file(path: str | Path, track_id: str, out_dir: str | Path, config: SpectroSettings) -> dict:
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
    check_size(path.stat().st_size, path.name, config.max_mp3_bytes)
    # The worker's own guards and computation, in this thread; nothing can cancel it.
    info, result = mp3_windows(path, path.name, config, threading.Event(), track_id=track_id, source=str(path))
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
