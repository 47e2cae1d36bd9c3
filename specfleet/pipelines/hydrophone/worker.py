"""The hydrophone worker: one job = one 5-minute miniSEED file.

Download (streamed, bounded) -> decode/merge -> plan clips -> render WAV +
PNG in the process pool -> upload to ``{prefix}/{hydrophone}/{YYYY_MM_DD}/``
-> write the file's manifest -> one status record. Keys are deterministic,
so a redelivered job overwrites the same objects.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ...outbound import FetchLimits, HostPolicy
from ...runtime import JobContext, Rejected, Transient
from ...settings import Settings
from ...status import Stat
from ...storage import Storage
from .clipper import ClipOptions, CutResult, cut_file
from .dsp import window_length
from .models import HydroJob, HydroStatus
from .naming import clip_key, file_name, file_time, manifest_key, normalize_hydrophone
from .source import decode_mseed, download


@dataclass
class HydroResources:
    """Per-worker-process resources: the render pool and upload threads."""

    pool: Executor
    uploads: ThreadPoolExecutor

    def close(self) -> None:
        self.uploads.shutdown(wait=True)
        self.pool.shutdown(wait=True, cancel_futures=True)


def process_count(settings: Settings) -> int:
    return settings.hydro_processes or os.cpu_count() or 1


def render_pool(processes: int) -> ProcessPoolExecutor:
    """Processes for clip rendering.

    forkserver, not fork: the worker process runs threads (heartbeat, boto3)
    and forking it could deadlock. The fork server imports the rendering code
    once, so every pool after the first starts its processes in milliseconds.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["specfleet.pipelines.hydrophone.clipper"])
    return ProcessPoolExecutor(max_workers=processes, mp_context=ctx)


def make_resources(settings: Settings, config: object = None) -> HydroResources:
    return HydroResources(
        pool=render_pool(process_count(settings)),
        uploads=ThreadPoolExecutor(max_workers=8, thread_name_prefix="hydro-upload"),
    )


def hydrophone_of(job: HydroJob, settings: Settings) -> str:
    try:
        return normalize_hydrophone(job.hydrophone or settings.hydro_hydrophone)
    except ValueError as err:
        raise Rejected(str(err)) from None


def source_policy(settings: Settings) -> HostPolicy:
    return HostPolicy.of(settings.hydro_allowed_hosts, what="hydrophone source")


def fetch_limits(settings: Settings) -> FetchLimits:
    return FetchLimits(
        max_bytes=settings.hydro_max_file_bytes,
        connect_timeout_s=settings.hydro_connect_timeout_s,
        read_timeout_s=settings.hydro_read_timeout_s,
        budget_s=settings.hydro_fetch_budget_s,
    )


#: Fewest samples per FFT window that still make a spectrogram worth drawing.
MIN_WINDOW_SAMPLES = 16


def check_rate_fits(sample_rate: float, settings: Settings) -> None:
    """Refuse a rate too low for the spectrogram window (with the rate check
    turned off, a 20 Hz file would otherwise give one-sample windows)."""
    nfft = window_length(sample_rate, settings.hydro_window_s)
    if nfft < MIN_WINDOW_SAMPLES:
        raise Rejected(
            f"sampling rate {sample_rate:g} Hz is too low: a {settings.hydro_window_s:g} s window is {nfft} "
            f"sample(s), at least {MIN_WINDOW_SAMPLES} are needed"
        )


def fetch_and_cut(url_or_path: str, settings: Settings, out_dir: Path, pool: Executor | None) -> CutResult:
    """Read one source (URL or local path) and render its clips into ``out_dir``."""
    with tempfile.TemporaryDirectory(prefix="hydro-src-") as tmp:
        if url_or_path.startswith(("http://", "https://")):
            path = Path(tmp) / "source.mseed"
            download(url_or_path, path, policy=source_policy(settings), limits=fetch_limits(settings),
                     attempts=settings.hydro_download_attempts)
        else:
            path = Path(url_or_path)
            if not path.is_file():
                raise Rejected(f"no such file: {path}")
            if path.stat().st_size > settings.hydro_max_file_bytes:
                raise Rejected(f"file is {path.stat().st_size} bytes, over the {settings.hydro_max_file_bytes}-byte limit")
        decoded = decode_mseed(path, expected_rate=settings.hydro_expected_sample_rate)
    check_rate_fits(decoded.sample_rate, settings)
    result = cut_file(decoded, ClipOptions.from_settings(settings), out_dir, pool)
    if not result.clips:
        why = "; ".join(result.notes) or "no whole clip fits"
        raise Rejected(
            f"no clips: {decoded.seconds:.2f} s of data at {decoded.sample_rate:g} Hz "
            f"(a clip is {settings.hydro_clip_s:g} s); {why}"
        )
    return result


def handle(job: HydroJob, ctx: JobContext) -> None:
    settings = ctx.settings
    hydrophone = hydrophone_of(job, settings)
    resources: HydroResources | None = ctx.resources
    storage = Storage(settings)
    with tempfile.TemporaryDirectory(prefix="hydro-out-") as tmp:
        out_dir = Path(tmp)
        result = fetch_and_cut(job.file_url, settings, out_dir, resources.pool if resources else None)
        if ctx.cancelled.is_set():
            raise Transient("worker shutting down before upload")
        uploads: list[tuple[str, Path, str]] = []
        for clip in result.clips:
            for ext, ctype in (("wav", "audio/wav"), ("png", "image/png")):
                key = clip_key(settings.hydro_prefix, hydrophone, clip.start, clip.name, ext)
                uploads.append((key, out_dir / f"{clip.name}.{ext}", ctype))

        def put(item: tuple[str, Path, str]) -> None:
            storage.put_bytes(item[0], item[1].read_bytes(), item[2])

        if resources is not None:
            list(resources.uploads.map(put, uploads))
        else:
            for item in uploads:
                put(item)
    name = file_name(job.file_url)
    day = file_time(name) or result.clips[0].start
    manifest = {
        "file_url": job.file_url,
        "clips": [c.name for c in result.clips],
        "keys": [u[0] for u in uploads],
        "notes": result.notes,
    }
    storage.put_bytes(
        manifest_key(settings.hydro_manifest_prefix, hydrophone, day, name),
        json.dumps(manifest).encode(),
        "application/json",
    )
    ctx.report(
        HydroStatus(instance_id=ctx.instance_id, stat=Stat.DONE, file_url=job.file_url, clips=len(result.clips)),
        reason="; ".join(result.notes),
        key="done",
    )


