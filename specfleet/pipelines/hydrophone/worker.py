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
  bucket; here each job merges its own entries as its clips land
  (``merge_whale_manifest``): a read-modify-write that S3's conditional
  writes make safe between concurrent workers, and a set union that makes
  redelivery harmless.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from ...outbound import FetchLimits, HostPolicy
from ...runtime import JobContext, Rejected, Transient
from ...runtime.pools import process_pool
from ...settings import Settings
from ...status import Stat
from ...storage import PreconditionFailed, Put, Storage
from .clipper import ClipOptions, CutResult, cut_file
from .dsp import window_length
from .models import HydroJob, HydroStatus
from .naming import (
    clip_key,
    file_name,
    file_time,
    manifest_entry,
    manifest_key,
    normalize_hydrophone,
    whale_manifest_key,
    whaledr_day,
    whaledr_hydrophone,
    whaledr_key,
)
from .settings import HydroSettings
from .source import Decoded, decode_mseed, download


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


def read_source(url_or_path: str, config: HydroSettings) -> Decoded:
    """One source, a URL (fetched through the host policy, within the fetch
    limits) or a local path (size-checked), decoded."""
    with tempfile.TemporaryDirectory(prefix="hydro-src-") as tmp:
        return decode_mseed(fetch_source(url_or_path, config, Path(tmp)), expected_rate=config.expected_sample_rate)


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
    decoded = decode_mseed(path, expected_rate=config.expected_sample_rate)
    check_rate_fits(decoded.sample_rate, config)
    result = cut_file(decoded, replace(ClipOptions.from_settings(config), source=source), out_dir, pool)
    if not result.clips:
        why = "; ".join(result.notes) or "no whole clip fits"
        raise Rejected(
            f"no clips: {decoded.seconds:.2f} s of data at {decoded.sample_rate:g} Hz "
            f"(a clip is {config.clip_s:g} s); {why}"
        )
    return result


def merge_whale_manifest(
    storage: Storage, key: str, entries: list[str], *, acl: str | None = None, attempts: int = 20
) -> int:
    """Add ``entries`` to the JSON list at ``key``; returns the list's length.

    Read the list and its ETag, write the sorted union back only if the
    object is still that version (``If-Match``; ``If-None-Match: *`` when it
    does not exist yet), else read again. S3 checks and writes atomically, so
    concurrent workers never drop each other's entries; a union makes a
    redelivered job a no-op. A written list is read back once more before
    returning, and merged again if our entries are missing: that also covers
    a stale write landing just before the re-read on a store whose
    conditional writes are not atomic (moto's check and write are two steps).
    """
    wanted = set(entries)
    for attempt in range(max(1, attempts)):
        current = storage.get_with_etag(key)
        listed: list[str] = []
        if current is not None:
            try:
                listed = json.loads(current[0])
            except ValueError:
                listed = []  # a damaged list is rebuilt from the entries that land from now on
            if not isinstance(listed, list) or not all(isinstance(e, str) for e in listed):
                listed = []
        if wanted <= set(listed) and current is not None:
            return len(listed)
        merged = sorted(set(listed) | wanted)
        body = json.dumps(merged).encode()
        try:
            if current is None:
                storage.put_bytes(key, body, "application/json", acl=acl, if_none_match=True)
            else:
                storage.put_bytes(key, body, "application/json", acl=acl, if_match=current[1])
        except PreconditionFailed:
            time.sleep(random.uniform(0.0, min(1.0, 0.02 * 2**attempt)))  # jittered backoff
            continue
        # Loop: the next read confirms the entries are there (and returns).
    raise Transient(f"could not merge {len(wanted)} entries into {key} after {attempts} attempts (too many concurrent writers)")


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


def handle(job: HydroJob, ctx: JobContext) -> None:
    settings, config = ctx.settings, ctx.config
    hydrophone = hydrophone_of(job, config)
    whaledr = config.output == "whaledr"
    if whaledr:  # refuse a URL the layout cannot name before any download
        try:
            whaledr_hydrophone(job.file_url)
            whaledr_day(job.file_url)
        except ValueError as err:
            raise Rejected(f"whaledr output: {err}") from None
    acl = "public-read" if whaledr and config.public_read else None
    resources: HydroResources | None = ctx.resources
    storage = Storage(settings)
    opts = ClipOptions.from_settings(config)
    with tempfile.TemporaryDirectory(prefix="hydro-out-") as tmp:
        out_dir = Path(tmp)
        ctx.stage("fetch")
        source = fetch_source(job.file_url, config, out_dir)
        ctx.stage("compute")
        result = cut_source(source, config, out_dir, resources.pool if resources else None, source=job.file_url)
        if source.parent == out_dir:  # downloaded: only the clips stay on disk while uploading
            source.unlink()
        ctx.stage("upload")
        if ctx.cancelled.is_set():
            raise Transient("worker shutting down before upload")
        uploads = _upload_keys(job, config, hydrophone, result, opts.image_format)
        storage.put_many((Put(key, out_dir / name, ctype) for key, name, ctype in uploads), acl=acl)
        written = sum((out_dir / name).stat().st_size for _, name, _ in uploads)
    if whaledr:
        prefix = config.whaledr_prefix
        jpgs = [manifest_entry(prefix, key) for key, _, _ in uploads if key.endswith(".jpg")]
        merge_whale_manifest(storage, whale_manifest_key(prefix), jpgs, acl=acl)
    name = file_name(job.file_url)
    day = file_time(name) or result.clips[0].start
    manifest = {
        "file_url": job.file_url,
        "clips": [c.name for c in result.clips],
        "keys": [u[0] for u in uploads],
        "notes": result.notes,
    }
    storage.put_bytes(
        manifest_key(config.manifest_prefix, hydrophone, day, name),
        json.dumps(manifest).encode(),
        "application/json",
    )
    ctx.wrote = f"{len(result.clips)} clips, {written / 1e6:.1f} MB"
    ctx.report(
        HydroStatus(instance_id=ctx.instance_id, stat=Stat.DONE, file_url=job.file_url, clips=len(result.clips)),
        reason="; ".join(result.notes),
        key="done",
    )


