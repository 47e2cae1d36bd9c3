"""The hydrophone worker: one job = one 5-minute miniSEED file.

Download (streamed, bounded) -> decode/merge -> plan clips -> render WAV +
image in the process pool -> upload -> write the file's manifest -> one
status record. Keys are deterministic, so a redelivered job overwrites the
same objects. The download and the uploads run outside the worker's compute
slots (``ctx.stage``): other jobs render meanwhile (runtime/stages.py).

Two output profiles (``HydroSettings.output``):

- ``specfleet``: ``{prefix}/{hydrophone path}/{YYYY_MM_DD}/{name}.wav|.png``.
- ``whaledr``: the original tool's ``megaptera/{hydrophone}/{YYYY_MM_DD}/{name}.wav|.jpg``
  and ``megaptera/whalemanifest.json``, the list the whaledr app reads.
  The original rebuilt that list once after a whole run by listing the
  bucket; here each job's done-marker is its part of the list, and the
  job that completes a day publishes the day and the list
  (``whalemanifest``): no job reads or writes the whole list, so no job's
  cost grows with the archive. Objects carry no ACL (the bucket enforces
  owner-only ACLs); the template's bucket policy makes the prefix readable.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ...outbound import FetchLimits, HostPolicy
from ...runtime import JobContext, Rejected, Transient
from ...runtime.pools import process_pool
from ...settings import Settings
from ...status import Stat
from ...storage import Put, Storage
from .archive import record_file, rejected_record, write_archive
from .clipper import ClipOptions, CutResult, cut_file
from .dsp import window_length
from .models import HydroJob, HydroStatus
from .naming import (
    clip_key,
    file_name,
    file_time,
    manifest_key,
    normalize_hydrophone,
    whaledr_day,
    whaledr_hydrophone,
    whaledr_key,
)
from .settings import HydroSettings
from .source import Decoded, decode_mseed, download
from .whalemanifest import publish_if_day_done


@dataclass
class HydroResources:
    """Per-worker-process resources: the render pool (uploads run on the
    process's shared upload threads, ``Storage.put_many``)."""

    pool: Executor

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def process_count(config: HydroSettings) -> int:
    return config.processes or os.cpu_count() or 1


def render_pool(processes: int) -> ProcessPoolExecutor:
    """Processes for clip rendering (see ``runtime.pools``): the fork server
    imports the rendering code once, so every pool after the first starts
    its processes in milliseconds."""
    return process_pool(processes, start_method="forkserver", preload=["specfleet.pipelines.hydrophone.clipper"])


def make_resources(settings: Settings, config: HydroSettings) -> HydroResources:
    return HydroResources(pool=render_pool(process_count(config)))


def hydrophone_of(job: HydroJob, config: HydroSettings) -> str:
    try:
        return normalize_hydrophone(job.hydrophone or config.hydrophone)
    except ValueError as err:
        raise Rejected(str(err)) from None


def source_policy(config: HydroSettings) -> HostPolicy:
    return HostPolicy.of(config.allowed_hosts, what="hydrophone source")


def fetch_limits(config: HydroSettings) -> FetchLimits:
    return FetchLimits(
        max_bytes=config.max_file_bytes,
        connect_timeout_s=config.connect_timeout_s,
        read_timeout_s=config.read_timeout_s,
        budget_s=config.fetch_budget_s,
    )


#: Fewest samples per FFT window that still make a spectrogram worth drawing.
MIN_WINDOW_SAMPLES = 16


def check_rate_fits(sample_rate: float, config: HydroSettings) -> None:
    """Refuse a rate too low for the spectrogram window (with the rate check
    turned off, a 20 Hz file would otherwise give one-sample windows)."""
    nfft = window_length(sample_rate, config.window_s)
    if nfft < MIN_WINDOW_SAMPLES:
        raise Rejected(
            f"sampling rate {sample_rate:g} Hz is too low: a {config.window_s:g} s window is {nfft} "
            f"sample(s), at least {MIN_WINDOW_SAMPLES} are needed"
        )


def decode_source(path: Path, config: HydroSettings, *, source: str) -> Decoded:
    """Decode and repair the local file ``path`` of ``source`` (URL or path,
    whose file name gives the nominal start) with the settings' parameters."""
    return decode_mseed(
        path, expected_rate=config.expected_sample_rate, file_seconds=config.file_seconds,
        gap_threshold_s=config.gap_threshold_s, nominal_start=file_time(file_name(source)),
    )


def read_source(url_or_path: str, config: HydroSettings) -> Decoded:
    """One source, a URL (fetched through the host policy, within the fetch
    limits) or a local path (size-checked), decoded."""
    with tempfile.TemporaryDirectory(prefix="hydro-src-") as tmp:
        return decode_source(fetch_source(url_or_path, config, Path(tmp)), config, source=url_or_path)


def fetch_and_cut(url_or_path: str, config: HydroSettings, out_dir: Path, pool: Executor | None) -> CutResult:
    """Read one source (URL or local path) and render its clips into ``out_dir``."""
    with tempfile.TemporaryDirectory(prefix="hydro-src-") as tmp:
        return cut_source(fetch_source(url_or_path, config, Path(tmp)), config, out_dir, pool, source=url_or_path)


def fetch_source(url_or_path: str, config: HydroSettings, tmp: Path) -> Path:
    """The source as a local file: a URL downloaded into folder ``tmp``, a path checked."""
    if url_or_path.startswith(("http://", "https://")):
        path = tmp / "source.mseed"
        download(url_or_path, path, policy=source_policy(config), limits=fetch_limits(config),
                 attempts=config.download_attempts)
        return path
    path = Path(url_or_path)
    if not path.is_file():
        raise Rejected(f"no such file: {path}")
    if path.stat().st_size > config.max_file_bytes:
        raise Rejected(f"file is {path.stat().st_size} bytes, over the {config.max_file_bytes}-byte limit")
    return path


def cut_source(path: Path, config: HydroSettings, out_dir: Path, pool: Executor | None, *, source: str) -> CutResult:
    """Decode the local file ``path`` and render its clips into ``out_dir``;
    each image's metadata names ``source`` (the job's URL or path)."""
    decoded = decode_source(path, config, source=source)
    check_rate_fits(decoded.sample_rate, config)
    result = cut_file(decoded, ClipOptions.from_settings(config).model_copy(update={"source": source}), out_dir, pool)
    if not result.clips:
        why = "; ".join(result.notes) or "no whole clip fits"
        raise Rejected(
            f"no clips: {decoded.seconds:.2f} s of data at {decoded.sample_rate:g} Hz "
            f"(a clip is {config.clip_s:g} s); {why}"
        )
    return result


def _upload_keys(job: HydroJob, config: HydroSettings, hydrophone: str, result: CutResult, image_ext: str) -> list[tuple[str, str, str]]:
    """``(key, file name in the output folder, content type)`` of every clip object."""
    ctypes = {"wav": "audio/wav", "png": "image/png", "jpg": "image/jpeg"}
    if config.output == "whaledr":
        try:
            station, day = whaledr_hydrophone(job.file_url), whaledr_day(job.file_url)
        except ValueError as err:
            raise Rejected(f"whaledr output: {err}") from None
        return [
            (whaledr_key(config.whaledr_prefix, station, day, c.name, ext), f"{c.name}.{ext}", ctypes[ext])
            for c in result.clips
            for ext in ("wav", image_ext)
        ]
    return [
        (clip_key(config.prefix, hydrophone, c.start, c.name, ext), f"{c.name}.{ext}", ctypes[ext])
        for c in result.clips
        for ext in ("wav", image_ext)
    ]


def handle_levels(job: HydroJob, ctx: JobContext, hydrophone: str) -> None:
    """The ``levels`` profile: one file's minutes of sound levels, stored for the day's reduce."""
    from obspy import UTCDateTime

    from .levels import runs_of
    from .levels_day import encode_minutes, file_minutes, minutes_key

    config: HydroSettings = ctx.config
    name = file_name(job.file_url)
    with tempfile.TemporaryDirectory(prefix="hydro-levels-") as tmp:
        ctx.stage("fetch")
        source = fetch_source(job.file_url, config, Path(tmp))
        ctx.stage("compute")
        cpu0 = time.thread_time()  # this job's thread: other jobs run beside it
        decoded = decode_mseed(source, expected_rate=config.expected_sample_rate)
    # The stretches of real recording the sample-count repair found (never
    # across a real break); the gap mask only for a decode without a repair.
    runs = (list(decoded.repaired.stretches) if decoded.repaired is not None
            else runs_of(decoded.data, decoded.gap_mask, UTCDateTime(decoded.start), decoded.sample_rate))
    if not runs:
        raise Rejected("no samples to compute levels from")
    try:
        result = file_minutes(runs, job.file_url)
    except ValueError as err:
        raise Rejected(f"levels: {err}") from None
    result.cpu_s = time.thread_time() - cpu0  # decoding included
    ctx.stage("upload")
    if ctx.cancelled.is_set():
        raise Transient("worker shutting down before upload")
    day = file_time(name) or decoded.start
    Storage(ctx.settings).put_bytes(minutes_key(config.levels_prefix, hydrophone, day.date(), name),
                                    encode_minutes(result), "application/octet-stream")
    have = int((result.effort_s > 0).sum())
    notes = [*decoded.notes, f"levels: {have} of {len(result.times)} minute(s) with whole audio"]
    ctx.report(HydroStatus(instance_id=ctx.instance_id, stat=Stat.DONE, file_url=job.file_url, clips=have),
               reason="; ".join(notes), key="done")


def archive_rejected(storage: Storage, job: HydroJob, config: HydroSettings, hydrophone: str, reason: str) -> None:
    """Record a bad file in its day's archive records (and finish the day if it was the last)."""
    name = file_name(job.file_url)
    start = file_time(name)
    if start is None:  # no day to file it under
        return
    record_file(storage, rejected_record(job.file_url, reason), prefix=config.archive_prefix, hydrophone=hydrophone,
                day=start.date(), source_name=name, day_files=job.day_files, gap_threshold_s=config.gap_threshold_s)


def handle(job: HydroJob, ctx: JobContext) -> None:
    settings, config = ctx.settings, ctx.config
    hydrophone = hydrophone_of(job, config)
    if config.output == "levels":
        handle_levels(job, ctx, hydrophone)
        return
    whaledr = config.output == "whaledr"
    if whaledr:  # refuse a URL the layout cannot name before any download
        try:
            whaledr_hydrophone(job.file_url)
            whaledr_day(job.file_url)
        except ValueError as err:
            raise Rejected(f"whaledr output: {err}") from None
    resources: HydroResources | None = ctx.resources
    storage = Storage(settings)
    opts = ClipOptions.from_settings(config)
    with tempfile.TemporaryDirectory(prefix="hydro-out-") as tmp:
        out_dir = Path(tmp)
        try:
            ctx.stage("fetch")
            source = fetch_source(job.file_url, config, out_dir)
            ctx.stage("compute")
            result = cut_source(source, config, out_dir, resources.pool if resources else None, source=job.file_url)
        except Rejected as err:
            if config.archive:  # the day's archive record says so: the day still finishes
                archive_rejected(storage, job, config, hydrophone, str(err))
            raise
        if source.parent == out_dir:  # downloaded: only the clips stay on disk while uploading
            source.unlink()
        ctx.stage("upload")
        if ctx.cancelled.is_set():
            raise Transient("worker shutting down before upload")
        uploads = _upload_keys(job, config, hydrophone, result, opts.image_format)
        storage.put_many(Put(key, out_dir / name, ctype) for key, name, ctype in uploads)
        written = sum((out_dir / name).stat().st_size for _, name, _ in uploads)
    name = file_name(job.file_url)
    day = file_time(name) or result.clips[0].start
    archived: list[str] = []
    if config.archive and result.repaired is not None:
        try:
            archived, _ = write_archive(
                storage, result.repaired, prefix=config.archive_prefix, hydrophone=hydrophone, day=day.date(),
                source=job.file_url, source_name=name, day_files=job.day_files, gap_threshold_s=config.gap_threshold_s,
            )
        except ValueError as err:  # not 24-bit counts (e.g. float samples): the clips stand, the day says why
            result.notes.append(f"no archive copy: {err}")
            archive_rejected(storage, job, config, hydrophone, f"no archive copy: {err}")
    repaired = result.repaired
    manifest = {
        "file_url": job.file_url,
        "clips": [c.name for c in result.clips],
        "keys": [u[0] for u in uploads] + archived,
        "notes": result.notes,
        "missing_s": repaired.missing_s if repaired else 0.0,
        "masked_s": result.masked_s,
        "pieces": repaired.pieces if repaired else 0,
        "breaks": len(repaired.breaks) if repaired else 0,
    }
    storage.put_bytes(
        manifest_key(config.manifest_prefix, hydrophone, day, name),
        json.dumps(manifest).encode(),
        "application/json",
    )
    notes = list(result.notes)
    if whaledr:  # the marker is this job's part of the whaledr manifest; the day's last job publishes
        notes += [n for n in [publish_if_day_done(storage, config, hydrophone, day, job.day_files)] if n]
    ctx.wrote = f"{len(result.clips)} clips, {written / 1e6:.1f} MB"
    ctx.report(
        HydroStatus(instance_id=ctx.instance_id, stat=Stat.DONE, file_url=job.file_url, clips=len(result.clips)),
        reason="; ".join(notes),
        key="done",
    )


