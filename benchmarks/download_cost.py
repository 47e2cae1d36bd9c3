"""What one music track costs end to end -- download, mp3, spectrogram
windows -- on four paths, measured with the real workers in one process
(run through ``python benchmarks/download.py --cost --json``):

* ``original``: the original's path (SPEC.md): the download worker (yt-dlp
  lowest-quality audio -> ffmpeg mp3 -> ``audio/``), then per track the
  original spectrogram worker's work: the mp3 from S3, ``ffmpeg -i song.mp3
  song.wav``, ``librosa.load(wav, sr=16000)``, melspectrogram,
  power_to_db, the median floor and ``plt.imsave`` per window (the
  compute of ``benchmarks/spectrogram.py``'s baseline), each JPEG to S3, a
  status row per window. Its download step is ours (the original's was the
  same yt-dlp + ffmpeg conversion).
* ``two_stage``: the download worker, then the spectrogram worker (the mp3
  back from S3, libmpg123, our DSP).
* ``fused``: the download worker with ``SPECFLEET_MUSIC_FUSED=true``: mp3
  written, windows of the local mp3 (the same images as two-stage).
* ``fused_source_no_mp3``: fused, ``WRITE_MP3=false``, ``FUSED_SOURCE=source``:
  ffmpeg decodes the download once, no mp3 is encoded (other images).

Each path runs its real ``Worker`` (SQS receive/delete, S3, status sends)
on ``--tracks`` jobs of one 3-minute 44.1 kHz stereo AAC track served by
the local video site (unpaced loopback). CPU is this process's user+system
time plus its reaped children's (yt-dlp's and our ffmpeg runs); the video
site runs in a child process that is reaped only at the end, and the
embedded stack (moto, PostgreSQL) is another process, so neither is counted
(on AWS, S3 and SQS are not our CPU either). The spectrogram work runs in
the job threads (no process pool, whose warm-up would otherwise be counted).
One untimed round warms every path; then ``--rounds`` rounds interleave the
paths so a noisy neighbour slows them alike; figures are per-round medians.
S3 and SQS requests are counted on the boto3 clients (queue URL look-ups,
once per worker process, left out; with one job at a time every job has
its own receive and delete). $ per 1,000 tracks
uses ``specfleet/fleet/prices.json``: CPU seconds at the reference
instance's price per vCPU-second (on-demand and spot) plus S3 and SQS
request prices.
"""

from __future__ import annotations

import dataclasses
import io
import json
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

REFERENCE_INSTANCE = "c6i.large"
PATHS = ("original", "two_stage", "fused", "fused_source_no_mp3")
S3_GET_CLASS = {"GetObject", "HeadObject"}
#: Made once per worker process (queue URLs are looked up at start), not per track.
PER_PROCESS_CALLS = {"sqs:GetQueueUrl"}


# --- the video site, in its own process ---------------------------------------------------
def _serve_site(workdir: str, seconds: float, conn: Any, stop: Any) -> None:
    from specfleet.standins.video_site import VideoSite

    site = VideoSite(workdir).start()
    site.add_video("bench", "Bench Artist - Bench Track", seconds=seconds)  # the media file is already there
    conn.send((site.host, site.watch_url("bench")))
    stop.wait(3600)
    site.close()


def make_source(path: Path, seconds: float) -> Path:
    """benchmarks/spectrogram.py's 3-minute track (chords, a beat, noise) as
    44.1 kHz stereo AAC in MP4, what the site serves as the video's audio."""
    import subprocess

    from specto_original import music_signal

    from specfleet.ffmpeg import ffmpeg_path

    sr = 44100
    stereo = music_signal(seconds, sr)
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-f", "f32le", "-ar", str(sr), "-ac", "2", "-i", "-",
                    "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(path)],
                   input=stereo.tobytes(), check=True)
    return path


# --- the original spectrogram worker, as a handler ------------------------------------------
def original_handle(job: Any, ctx: Any) -> None:
    """The original spectrogram worker's per-track work (see the module doc)."""
    from spectrogram import baseline_track  # benchmarks/spectrogram.py

    from specfleet.pipelines.melwindows.models import SpectoStatus
    from specfleet.status import Stat
    from specfleet.storage import Storage

    storage = Storage(ctx.settings)
    with tempfile.TemporaryDirectory(prefix="bench-original-") as tmp:
        mp3 = Path(tmp) / "song.mp3"
        storage.download(job.source_key(), mp3)
        out = Path(tmp) / "out"
        out.mkdir()
        samples = baseline_track(str(mp3), str(out), job.track_id)
        for path in sorted(out.glob("*.jpg")):
            storage.put_bytes(f"spec/{path.name}", path.read_bytes(), "image/jpeg")
        for path, sample in zip(sorted(out.glob("*.jpg"), key=lambda p: int(p.stem.split("__")[1])), samples,
                                strict=True):
            win, ini, fin = (int(x) for x in path.stem.split("__")[1:])
            ctx.report(SpectoStatus(instance_id=ctx.instance_id, stat=Stat.DONE, track_id=job.track_id, win=win,
                                    ini=ini, fin=fin, rows=sample.shape[0], cols=sample.shape[1]), key=f"win{win}")


# --- measuring ----------------------------------------------------------------------------------
def cpu_seconds() -> float:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


class RequestCounter:
    """Counts API calls on this process's boto3 clients (botocore events)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._hooked: set[int] = set()

    def hook_all(self) -> None:
        from specfleet import aws

        for c in list(aws._clients.values()):
            if id(c) not in self._hooked:
                c.meta.events.register("before-call", self._count)
                self._hooked.add(id(c))

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def take(self) -> Counter[str]:
        with self._lock:
            out, self.calls = self.calls, Counter()
        return out


def main(*, tracks: int = 3, rounds: int = 3, seconds: float = 180.0) -> dict[str, Any]:
    from specfleet.local.stack import Namespace, start_detached, stop_detached
    from specfleet.pipelines import get_spec, job_queue
    from specfleet.pipelines.download.worker import make_resources as download_resources
    from specfleet.pipelines.melwindows.settings import SpectroSettings
    from specfleet.pipelines.music.settings import MusicSettings
    from specfleet.runtime import Worker
    from specfleet.runtime.spec import Ref
    from specfleet.storage import Storage

    load_start = [round(x, 2) for x in os.getloadavg()]
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="bench-dlcost-") as tmp:
        root = Path(tmp)
        (root / "site").mkdir()
        make_source(root / "site" / "bench.m4a", seconds)
        parent, child = ctx.Pipe()
        stop_site = ctx.Event()
        site = ctx.Process(target=_serve_site, args=(str(root / "site"), seconds, child, stop_site), daemon=True)
        site.start()
        host, url = parent.recv()
        state = start_detached(root / "stack", poller=False)
        ns = Namespace(state, name="benchdlcost", poller=False, wait_time_s=1)
        try:
            settings = ns.settings
            (root / "dl").mkdir()
            base = MusicSettings(extra_hosts=[host], tmp_dir=str(root / "dl"), concurrent_downloads=1)
            configs = {
                "plain": base,
                "fused": base.model_copy(update={"fused": True}),
                "fused_source_no_mp3": base.model_copy(
                    update={"fused": True, "write_mp3": False, "fused_source": "source"}),
            }
            spectro = SpectroSettings(processes=1)
            download_spec, spectro_spec = get_spec("download"), get_spec("spectrogram")
            # Warm resources made once (as a long-running worker has them), handed to every run.
            prebuilt = {name: download_resources(settings, c) for name, c in configs.items()}
            in_thread_spectro = dataclasses.replace(spectro_spec, resources=None)
            original_spectro = dataclasses.replace(spectro_spec, handler=Ref(original_handle), resources=None)

            def run(spec: Any, config: Any, bodies: list[dict[str, str]], queue: str, resources: Any = None) -> None:
                if resources is not None:
                    spec = dataclasses.replace(spec, resources=Ref(lambda _s, _c: resources))
                job_queue(settings, queue).send_json(bodies)
                worker = Worker(settings, spec, concurrency=1, max_jobs=len(bodies), config=config)
                worker.run()
                if worker.metrics().get("done", 0) != len(bodies):
                    raise RuntimeError(f"{spec.name}: {worker.metrics()}")

            def path_run(path: str, ids: list[str]) -> None:
                downloads = [{"track_id": t, "yt_url": url} for t in ids]
                if path in ("original", "two_stage"):
                    run(download_spec, base, downloads, "download", prebuilt["plain"])
                    spectro_run = original_spectro if path == "original" else in_thread_spectro
                    run(spectro_run, spectro, [{"track_id": t} for t in ids], "spectrogram")
                else:
                    name = "fused" if path == "fused" else "fused_source_no_mp3"
                    run(download_spec, configs[name], downloads, "download", prebuilt[name])

            counter = RequestCounter()
            results: dict[str, list[dict[str, Any]]] = {p: [] for p in PATHS}
            for r in range(rounds + 1):  # round 0 warms every path up, untimed
                for path in PATHS:
                    ids = [f"{path}_r{r}_{i}" for i in range(tracks)]
                    counter.hook_all()
                    counter.take()
                    started_cpu, started = cpu_seconds(), time.perf_counter()
                    path_run(path, ids)
                    cpu, wall = cpu_seconds() - started_cpu, time.perf_counter() - started
                    counter.hook_all()  # clients made during the run count from the next one
                    calls = counter.take()
                    if r:
                        results[path].append({"cpu": cpu / tracks, "wall": wall / tracks, "calls": calls,
                                              "load1": os.getloadavg()[0]})
            storage = Storage(settings)
            fidelity = compare_images(storage, rounds, root)
            sizes = object_sizes(storage, rounds, tracks)
        finally:
            ns.close()
            stop_detached(root / "stack")
            stop_site.set()
            site.join(30)
    prices = json.loads((ROOT / "specfleet" / "fleet" / "prices.json").read_text())
    return report(results, prices, fidelity, sizes, tracks=tracks, rounds=rounds, seconds=seconds,
                  load_start=load_start)


def compare_images(storage: Any, rounds: int, workdir: Path) -> dict[str, float]:
    """Lowest pixel correlation over the windows of the last round's first
    track, each path against two-stage and against the original."""
    from PIL import Image

    def pixels(track: str) -> dict[str, np.ndarray]:
        out = {}
        for key, _ in storage.list(f"spec/{track}__"):
            out[key.split("__", 1)[1]] = np.asarray(Image.open(io.BytesIO(storage.get_bytes(key))).convert("L"),
                                                    dtype=np.float64)
        return out

    images = {p: pixels(f"{p}_r{rounds}_0") for p in PATHS}
    out: dict[str, float] = {}
    for path in ("fused", "fused_source_no_mp3"):
        for against in ("two_stage", "original"):
            mine, theirs = images[path], images[against]
            if sorted(mine) != sorted(theirs):
                raise RuntimeError(f"{path} and {against} wrote different windows: {sorted(mine)} / {sorted(theirs)}")
            out[f"pixel_corr_{path}_vs_{against}"] = round(min(
                float(np.corrcoef(mine[w].ravel(), theirs[w].ravel())[0, 1]) for w in mine), 5)
        out[f"identical_jpegs_{path}_vs_two_stage"] = all(
            np.array_equal(images[path][w], images["two_stage"][w]) for w in images[path])
    out["windows_per_track"] = len(images["two_stage"])
    return out


def object_sizes(storage: Any, rounds: int, tracks: int) -> dict[str, dict[str, float]]:
    """Bytes each path wrote per track (the last round's objects)."""
    out = {}
    for path in PATHS:
        ids = [f"{path}_r{rounds}_{i}" for i in range(tracks)]
        mp3 = sum(size for t in ids for _, size in storage.list(f"audio/{t}.mp3"))
        spec = sum(size for t in ids for _, size in storage.list(f"spec/{t}__"))
        out[path] = {"mp3_bytes": mp3 / tracks, "window_bytes": spec / tracks}
    return out


def report(results: dict[str, list[dict[str, Any]]], prices: dict[str, Any], fidelity: dict[str, Any],
           sizes: dict[str, dict[str, float]], *, tracks: int, rounds: int, seconds: float,
           load_start: list[float]) -> dict[str, Any]:
    instance = prices["instances"][REFERENCE_INSTANCE]
    per_vcpu_s = {kind: instance[f"{kind}_hour"] / instance["vcpus"] / 3600 for kind in ("on_demand", "spot")}
    s3, sqs = prices["s3"], prices["sqs"]
    paths: dict[str, Any] = {}
    for path, runs in results.items():
        cpu = statistics.median(r["cpu"] for r in runs)
        calls: Counter[str] = Counter()
        for r in runs:
            calls.update(r["calls"])
        per_track = {k: v / (tracks * len(runs)) for k, v in sorted(calls.items()) if k not in PER_PROCESS_CALLS}
        s3_get = sum(v for k, v in per_track.items() if k.startswith("s3:") and k[3:] in S3_GET_CLASS)
        s3_put = sum(v for k, v in per_track.items() if k.startswith("s3:") and k[3:] not in S3_GET_CLASS)
        sqs_calls = sum(v for k, v in per_track.items() if k.startswith("sqs:"))
        requests_usd = 1000 * (s3_get / 1000 * s3["get_per_1000"] + s3_put / 1000 * s3["put_per_1000"]
                               + sqs_calls / 1e6 * sqs["per_million_requests"])
        paths[path] = {
            "cpu_s_per_track": round(cpu, 3),
            "cpu_s_per_track_per_round": [round(r["cpu"], 3) for r in runs],
            "wall_s_per_track": round(statistics.median(r["wall"] for r in runs), 3),
            "loadavg_1min_per_round": [round(r["load1"], 2) for r in runs],
            "requests_per_track": {k: round(v, 2) for k, v in per_track.items()},
            "s3_bytes_written_per_track": round(sizes[path]["mp3_bytes"] + sizes[path]["window_bytes"]),
            "usd_per_1000_tracks": {
                "compute_on_demand": round(1000 * cpu * per_vcpu_s["on_demand"], 4),
                "compute_spot": round(1000 * cpu * per_vcpu_s["spot"], 4),
                "requests": round(requests_usd, 4),
                "total_on_demand": round(1000 * cpu * per_vcpu_s["on_demand"] + requests_usd, 4),
                "total_spot": round(1000 * cpu * per_vcpu_s["spot"] + requests_usd, 4),
            },
        }
    base = paths["original"]["cpu_s_per_track"]
    return {
        "benchmark": "download_cost",
        "track": f"{seconds:g} s, 44.1 kHz stereo AAC 128 kbps in MP4 from the local video site; mp3 VBR q5",
        "tracks_per_path_per_round": tracks,
        "rounds": rounds,
        "reference_instance": REFERENCE_INSTANCE,
        "loadavg_start": load_start,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "paths": paths,
        "cpu_vs_original": {p: round(paths[p]["cpu_s_per_track"] / base, 3) for p in PATHS},
        "fused_vs_two_stage_cpu": round(paths["fused"]["cpu_s_per_track"] / paths["two_stage"]["cpu_s_per_track"], 3),
        **fidelity,
    }


if __name__ == "__main__":
    print(json.dumps(main()))
