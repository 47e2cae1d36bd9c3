"""Fleet throughput end to end (issue 19): real worker processes, S3 and SQS
behind a loopback proxy that models AWS's network, against the same workers
with the proxy out of the way.

    python benchmarks/fleet.py --json [--write] [--pipelines hydrophone,spectrogram]
                                      [--jobs N | --jobs hydrophone=N ...] [--rounds R]

Per pipeline, one ``specfleet work <pipeline>`` process (as on an instance,
with its shipped defaults: job slots, compute slots, process pool) takes a
batch of realistic jobs from the embedded stack (moto's server):

* hydrophone: 5-minute 64 kHz Steim2 miniSEED files (``realistic_signal``,
  ~41 MB each) from the OOI stand-in -> 60 WAV + 60 PNG clips per file;
* spectrogram: 3-minute 44.1 kHz stereo 128 kb/s mp3s (ffmpeg, as
  ``benchmarks/spectrogram.py`` makes them) in S3 -> 9 JPEG windows each;
* search: yt-dlp queries against the local video site's search API;
* download: yt-dlp downloads of 3-minute tracks from the local video site,
  ffmpeg to mp3, to S3;
* echo: the runtime alone (no work: SQS round trips only).

The network model. Workers reach S3 and SQS through two ``FaultProxy``s
(specfleet/standins/faults.py; the worker's endpoints,
``AWS_ENDPOINT_URL_S3``/``_SQS``, simply point at them), and the
hydrophone archive through a third. Defaults (``--latency-ms``,
``--mb-per-s``) from AWS's published S3 figures:

* time to first byte 50 ms per request: "Best Practices Design Patterns:
  Optimizing Amazon S3 Performance" (AWS whitepaper), section "Timeouts and
  Retries for Latency-Sensitive Applications": small requests (< 512 KB)
  have "median latencies ... often in the tens of milliseconds range"
  (https://docs.aws.amazon.com/whitepapers/latest/s3-optimizing-performance-best-practices/timeouts-and-retries-for-latency-sensitive-applications.html).
  The 100-200 ms often quoted for S3's first-byte latency is the tail:
  ``--latency-ms 150`` measures it;
* 85 MB/s per connection, each way: same whitepaper, "Horizontal Scaling
  and Request Parallelization for High Throughput": one concurrent request
  per 85-90 MB/s of desired throughput;
* request rates, 3,500 PUT/COPY/POST/DELETE and 5,500 GET/HEAD per second
  per partitioned prefix (S3 User Guide, "Best practices design patterns:
  optimizing Amazon S3 performance",
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html):
  one worker sends far fewer, so the proxy does not throttle; the JSON says
  how many instances one prefix carries (``instances_per_prefix``).

The same latency applies to SQS (its requests take tens of milliseconds
too) and, for want of a measurement, to the OOI archive. The video site (a
stand-in for YouTube) is paced per connection at ``--site-bytes-per-s``
(150 kB/s: a 3-minute track's source in ~9 s, the original's per-song
time, SPEC.md), not measured against YouTube.

Compute-bound baseline: the same worker process with the proxies passing
traffic at loopback speed (no latency, no cap; the site unpaced). That is
the worker's whole per-job work with I/O waits near zero, so
``ratio = end-to-end / compute-bound`` is what the modelled network costs.
Runs alternate (baseline, modelled; then modelled, baseline; ...) for
``--rounds`` rounds; figures are medians over rounds.

Rates are steady state: the jobs finished between the ``k``-th and the
``(N-k)``-th completion over that time, ``k`` = the worker's job slots
(while a backlog keeps every slot busy, as in a fleet), from the status
messages' SentTimestamp; ``makespan_jobs_per_hour`` (enqueue to last) is
reported too. Per vCPU = rate / os.cpu_count() (the worker sizes its pool
and slots by it). The machine is shared: moto, the proxies and stand-ins
(this process) and other sessions use the same cores in both runs; their
CPU is reported (``stack_cpu_s_per_job``) with the load average at the start
and end of every run.

Bytes and requests per job are counted at the proxies (the worker's traffic
only: the benchmark talks to moto directly). Cost per 1,000 jobs comes from
``plan.py`` with ``prices.json`` on ``--instance-types``: compute, S3
requests (PUT-class, GET-class), SQS, and reading the results out once.

``--write`` writes ``specfleet/fleet/throughput.json`` (or ``--out``): every
figure with the command, parameters and date that produced it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from specfleet.aws import client  # noqa: E402
from specfleet.fleet.plan import plan  # noqa: E402
from specfleet.fleet.settings import FleetSettings  # noqa: E402
from specfleet.fleet.throughput import BENCHMARK, load_prices  # noqa: E402
from specfleet.local.stack import EMULATOR_CREDENTIALS, Namespace, destroy_data, start_detached, stop_detached  # noqa: E402
from specfleet.pipelines import job_queue, status_queue  # noqa: E402
from specfleet.settings import Settings  # noqa: E402
from specfleet.standins.faults import FaultProxy, ProxyStats  # noqa: E402

PIPELINES = ("hydrophone", "spectrogram", "search", "download", "echo")
DEFAULT_JOBS = {"hydrophone": 8, "spectrogram": 40, "search": 12, "download": 8, "echo": 200}
#: Pipelines whose work is CPU-bound: their rate scales with vCPUs.
CPU_BOUND = {"hydrophone", "spectrogram"}
#: S3's published first-byte latency and per-connection bandwidth (see module doc).
DEFAULT_LATENCY_MS = 50.0
DEFAULT_MB_PER_S = 85.0
PUTS_PER_PREFIX_S = 3500
GETS_PER_PREFIX_S = 5500
#: The video site's pacing per connection (module doc).
DEFAULT_SITE_BYTES_PER_S = 150_000
#: What each measurement could not model; ``fleet plan`` repeats it as a note.
CAVEATS = {
    "hydrophone": "The OOI archive was modelled like S3 (first byte, bandwidth per connection); its real speed "
                  "was not measured.",
    "spectrogram": "",
    "search": "Measured against the local video-site stand-in, which answers at once: YouTube's search time is "
              "not modelled, so this is the worker's own ceiling; real searches are slower, and a rate that "
              "avoids bans may be lower still (SPECFLEET_RATE_LIMIT_PER_MIN).",
    "download": "The video site (a stand-in) was paced at {site_bytes_per_s} bytes/s per connection (150000 makes "
                "a 3-minute track's source take ~9 s, the original's per-song time, SPEC.md); not measured "
                "against YouTube.",
    "echo": "The runtime alone: SQS round trips at the modelled latency, no work.",
}
REFERENCE_INSTANCE = "c6i.large"
DEFAULT_INSTANCE_TYPES = ("c6i.large", "c5.4xlarge")
HYDROPHONE = "CE02SHBP/LJ01D/11-HYDBBA106"
DAY = dt.date(2017, 10, 9)
TRACK_SECONDS = 180.0
#: Longest wait for one batch: per job, plus a floor (a busy machine).
RUN_TIMEOUT_PER_JOB_S = 30.0
RUN_TIMEOUT_MIN_S = 180.0
WARMUP_TIMEOUT_S = 600.0
DEFAULT_THROUGHPUT = ROOT / "specfleet" / "fleet" / "throughput.json"


class BenchError(RuntimeError):
    pass


def loadavg() -> list[float]:
    return [round(float(x), 2) for x in Path("/proc/loadavg").read_text().split()[:3]]


# --- CPU of a process tree ------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def _stat_cpu(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid`` in seconds (0 if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2:].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / _TICK


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                out += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    except OSError:
        pass
    return out


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants (each counts its reaped
    children: no double counting)."""
    total, todo, seen = 0.0, [pid], set()
    while todo and len(seen) < 10_000:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _stat_cpu(p)
        todo += _children(p)
    return total


# --- the network model -------------------------------------------------------------------
@dataclass(frozen=True)
class NetModel:
    latency_ms: float
    mb_per_s: float
    site_bytes_per_s: int

    def apply(self, proxies: list[FaultProxy], site: Any) -> None:
        for p in proxies:
            p.slow(latency_s=self.latency_ms / 1000.0, bytes_per_s=self.mb_per_s * 1e6)
        if site is not None:
            site.throttle_bytes_per_s = self.site_bytes_per_s


COMPUTE_BOUND = NetModel(0.0, 0.0, 0)


# --- per-pipeline job makers -------------------------------------------------------------
@dataclass
class Env:
    """What the pipelines' job makers share: the stack, the stand-ins, the cache."""

    ns: Namespace
    work: Path
    cache: Path
    archive: FaultProxy | None = None
    ooi: Any = None
    site: Any = None
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.ns.settings


def _hydro_signal(cache: Path) -> np.ndarray:
    from specfleet.standins import mseed_synth as synth

    path = cache / "hydro-realistic-300s-seed0.npy"
    if path.exists():
        return np.load(path)
    data = synth.realistic_signal(300.0, seed=0)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, data)
    return data


def prepare_hydrophone(env: Env, n: int) -> Callable[[str, int], list[dict[str, Any]]]:
    """``n + 1`` five-minute files (one for warm-up) on the OOI stand-in, behind the archive proxy."""
    from specfleet.standins import mseed_synth as synth
    from specfleet.standins.ooi_archive import OOIServer, day_dir, file_name_for

    signal_data = _hydro_signal(env.cache)
    folder = day_dir(env.work / "ooi", HYDROPHONE, DAY)
    t0 = dt.datetime.combine(DAY, dt.time())
    names = []
    for i in range(n + 1):
        start = t0 + dt.timedelta(minutes=5 * i)
        name = file_name_for(start)
        (folder / name).write_bytes(synth.mseed_bytes(signal_data, start))
        names.append(name)
    env.ooi = OOIServer(env.work / "ooi").start()
    host, port = urlsplit(env.ooi.base_url).hostname, urlsplit(env.ooi.base_url).port
    env.archive = FaultProxy((str(host), int(port or 0))).start()
    base = f"{env.archive.url}/files/{HYDROPHONE}/{DAY:%Y/%m/%d}/"
    env.extra_env["hydrophone"] = {
        "SPECFLEET_HYDRO_ALLOWED_HOSTS": json.dumps([urlsplit(env.archive.url).netloc]),
        "SPECFLEET_HYDRO_BASE_URL": f"{env.archive.url}/files/",
    }

    def jobs(tag: str, count: int) -> list[dict[str, Any]]:
        # The same files every run (their clips overwrite the same keys): warm-up is the last one.
        if tag == "warm":
            return [{"file_url": base + names[-1], "hydrophone": HYDROPHONE}]
        return [{"file_url": base + names[i], "hydrophone": HYDROPHONE} for i in range(count)]

    return jobs


def prepare_spectrogram(env: Env, n: int) -> Callable[[str, int], list[dict[str, Any]]]:
    """One 3-minute mp3 (ffmpeg) under ``n + 1`` track ids in S3."""
    from spectrogram import make_track

    from specfleet.storage import Storage

    mp3 = env.cache / "track-180s-44k1-stereo-128k.mp3"
    if not mp3.exists():
        env.cache.mkdir(parents=True, exist_ok=True)
        make_track(mp3, TRACK_SECONDS)
    data = mp3.read_bytes()
    storage = Storage(env.settings)
    ids = [f"fleetbench{i}" for i in range(n)] + ["fleetbenchwarm"]
    for track in ids:
        storage.put_bytes(f"audio/{track}.mp3", data, "audio/mpeg")

    def jobs(tag: str, count: int) -> list[dict[str, Any]]:
        return [{"track_id": "fleetbenchwarm"}] if tag == "warm" else [{"track_id": ids[i]} for i in range(count)]

    return jobs


def _video_site(env: Env) -> Any:
    from specfleet.standins.video_site import VideoSite

    if env.site is None:
        env.site = VideoSite(env.cache / "video-site").start()
        tmp = env.work / "music-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        music = {
            "SPECFLEET_MUSIC_EXTRA_HOSTS": json.dumps([env.site.host]),
            "SPECFLEET_MUSIC_SEARCH_URL": env.site.search_api_url,
            "SPECFLEET_MUSIC_TMP_DIR": str(tmp),
        }
        env.extra_env["search"] = music
        env.extra_env["download"] = music
    return env.site


def prepare_search(env: Env, n: int) -> Callable[[str, int], list[dict[str, Any]]]:
    site = _video_site(env)
    for i in range(n + 1):
        site.add_video(f"sr{i}", f"Fleet Bench Artist - Search Song {i}", seconds=4.0, views=1000 + i)

    def jobs(tag: str, count: int) -> list[dict[str, Any]]:
        picks = [n] if tag == "warm" else range(count)
        return [{"track_id": f"s{tag}_{i}", "query": f"Search Song {i} Fleet Bench Artist"} for i in picks]

    return jobs


def prepare_download(env: Env, n: int) -> Callable[[str, int], list[dict[str, Any]]]:
    site = _video_site(env)
    for i in range(n + 1):
        site.add_video(f"dl{i}", f"Fleet Bench Artist - Download Song {i}", seconds=TRACK_SECONDS)

    def jobs(tag: str, count: int) -> list[dict[str, Any]]:
        # Fresh track ids every run: the worker skips tracks already in S3.
        picks = [n] if tag == "warm" else range(count)
        return [{"track_id": f"d{tag}_{i}", "yt_url": site.watch_url(f"dl{i}")} for i in picks]

    return jobs


def prepare_echo(env: Env, n: int) -> Callable[[str, int], list[dict[str, Any]]]:
    def jobs(tag: str, count: int) -> list[dict[str, Any]]:
        return [{"job_id": f"e{tag}_{i}"} for i in range(1 if tag == "warm" else count)]

    return jobs


PREPARE = {
    "hydrophone": prepare_hydrophone,
    "spectrogram": prepare_spectrogram,
    "search": prepare_search,
    "download": prepare_download,
    "echo": prepare_echo,
}


# --- one worker process ---------------------------------------------------------------
class WorkerProcess:
    """``specfleet work <pipeline>`` with S3 and SQS pointed at the proxies."""

    def __init__(self, pipeline: str, env: Env, s3: FaultProxy, sqs: FaultProxy, log: Path):
        # The caller's SPECFLEET_* tuning (SPECFLEET_IO_SLOTS...) passes through
        # (and is recorded: ``worker_env``); where the worker's traffic goes does not.
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith(("AWS_ENDPOINT_URL", "SPECFLEET_ENDPOINT_URL"))}
        ns_env = env.ns.env()
        environ.update(EMULATOR_CREDENTIALS)
        environ.update({
            "AWS_REGION": ns_env["AWS_REGION"], "AWS_DEFAULT_REGION": ns_env["AWS_REGION"],
            # No AWS_ENDPOINT_URL: botocore then takes one endpoint per service.
            "AWS_ENDPOINT_URL_S3": s3.url, "AWS_ENDPOINT_URL_SQS": sqs.url,
            "SPECFLEET_QUEUE_PREFIX": ns_env["SPECFLEET_QUEUE_PREFIX"], "SPECFLEET_BUCKET": ns_env["SPECFLEET_BUCKET"],
            "SPECFLEET_INSTANCE_ID": f"fleetbench-{pipeline}", "SPECFLEET_WAIT_TIME_S": "5", "COLUMNS": "200",
            "PYTHONPATH": str(ROOT),
            **env.extra_env.get(pipeline, {}),
        })
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([sys.executable, "-m", "specfleet.cli.main", "work", pipeline],
                                     env=environ, stdout=self._out, stderr=subprocess.STDOUT, cwd=env.work)

    def slots(self) -> int:
        """Job slots, from the worker's banner ("N at once")."""
        found = re.search(r"(\d+)\s+at\s+once", self.log.read_text(errors="replace"))
        if not found:
            raise BenchError(f"no worker banner in {self.log}")
        return int(found.group(1))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()


# --- a batch and its completions -------------------------------------------------------
class StatusReader:
    """Reads a pipeline's status queue straight from moto: per job key, its
    messages' latest SentTimestamp (the job's completion)."""

    def __init__(self, settings: Settings, pipeline: str):
        self.sqs = client("sqs", settings)
        self.url = status_queue(settings, pipeline).url
        self.rows: dict[str, list[float]] = {}
        self.failed: list[str] = []

    def poll(self) -> int:
        """Read what is there (waiting up to a second); returns how many."""
        resp = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                        AttributeNames=["SentTimestamp"])
        messages = resp.get("Messages", [])
        for m in messages:
            fields = m["Body"].split("::")
            if len(fields) < 3:
                self.failed.append(m["Body"][:200])
                continue
            if fields[1] != "1":
                self.failed.append(m["Body"][:200])
            self.rows.setdefault(fields[2], []).append(int(m["Attributes"]["SentTimestamp"]) / 1000.0)
        if messages:
            self.sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
        return len(messages)

    def wait(self, keys: list[str], rows_per_job: int, timeout_s: float, worker: WorkerProcess) -> list[float]:
        """Completion times of ``keys`` (each done once it has ``rows_per_job`` rows)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.failed:
                raise BenchError(f"jobs failed: {self.failed[:3]} (worker log {worker.log})")
            if all(len(self.rows.get(k, ())) >= rows_per_job for k in keys):
                return sorted(max(self.rows[k]) for k in keys)
            if not worker.alive():
                raise BenchError(f"the worker exited ({worker.proc.returncode}); see {worker.log}")
            self.poll()
        done = sum(1 for k in keys if len(self.rows.get(k, ())) >= rows_per_job)
        raise BenchError(f"only {done} of {len(keys)} jobs done after {timeout_s:.0f}s; see {worker.log}")


def job_key(body: dict[str, Any]) -> str:
    return str(body.get("file_url") or body.get("track_id") or body.get("job_id"))


def steady_rate(completions: list[float], slots: int) -> tuple[float, int, int]:
    """Jobs per second between the ``k``-th and ``(N-k)``-th completions, ``k``
    = job slots (fewer when the batch is small): the stretch where a backlog
    keeps every slot busy. Returns (rate, first, last) completion numbers."""
    n = len(completions)
    k = min(slots, max(1, (n - 2) // 3))
    i, j = k, n - k
    if j - i < 2:
        i, j = 1, n
    span = completions[j - 1] - completions[i - 1]
    if span <= 0:
        raise BenchError(f"{n} completions too close together to time")
    return (j - i) / span, i, j


@dataclass
class Run:
    mode: str
    jobs: int
    seconds: float
    jobs_per_hour: float
    makespan_jobs_per_hour: float
    window: tuple[int, int]
    worker_cpu_s_per_job: float
    stack_cpu_s_per_job: float
    loadavg_start: list[float]
    loadavg_end: list[float]
    traffic: dict[str, ProxyStats]

    def as_dict(self, cpus: int) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "jobs": self.jobs,
            "seconds": round(self.seconds, 2),
            "jobs_per_hour": round(self.jobs_per_hour, 1),
            "jobs_per_hour_per_vcpu": round(self.jobs_per_hour / cpus, 1),
            "makespan_jobs_per_hour": round(self.makespan_jobs_per_hour, 1),
            "steady_window": list(self.window),
            "worker_cpu_s_per_job": round(self.worker_cpu_s_per_job, 3),
            "stack_cpu_s_per_job": round(self.stack_cpu_s_per_job, 3),
            "loadavg_start": self.loadavg_start,
            "loadavg_end": self.loadavg_end,
        }


def run_batch(mode: str, net: NetModel, bodies: list[dict[str, Any]], *, env: Env, pipeline: str,
              worker: WorkerProcess, proxies: dict[str, FaultProxy], stack_pid: int, rows_per_job: int,
              slots: int) -> Run:
    net.apply(list(proxies.values()), env.site)
    reader = StatusReader(env.settings, pipeline)
    before = {name: p.snapshot() for name, p in proxies.items()}
    load_start = loadavg()
    cpu_worker, cpu_stack, cpu_self = tree_cpu(worker.proc.pid), tree_cpu(stack_pid), time.process_time()
    started = time.time()
    job_queue(env.settings, pipeline).send_json(bodies)
    timeout = max(RUN_TIMEOUT_MIN_S, RUN_TIMEOUT_PER_JOB_S * len(bodies))
    completions = reader.wait([job_key(b) for b in bodies], rows_per_job, timeout, worker)
    cpu_worker = tree_cpu(worker.proc.pid) - cpu_worker
    cpu_stack = tree_cpu(stack_pid) - cpu_stack + time.process_time() - cpu_self
    load_end = loadavg()
    traffic = {name: p.snapshot().minus(before[name]) for name, p in proxies.items()}
    rate, first, last = steady_rate(completions, slots)
    n = len(bodies)
    return Run(mode, n, completions[-1] - started, rate * 3600, n / (completions[-1] - started) * 3600,
               (first, last), cpu_worker / n, cpu_stack / n, load_start, load_end, traffic)


def warm_up(env: Env, pipeline: str, make: Callable[[str, int], list[dict[str, Any]]], worker: WorkerProcess) -> int:
    """One job through the fresh worker (pool start, imports, first calls);
    returns the status rows per job (spectrogram: one per window)."""
    reader = StatusReader(env.settings, pipeline)
    [body] = make("warm", 1)
    job_queue(env.settings, pipeline).send_json([body])
    reader.wait([job_key(body)], 1, WARMUP_TIMEOUT_S, worker)
    # A job's rows go out together: read until a poll finds nothing more.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and reader.poll():
        pass
    return len(reader.rows[job_key(body)])


# --- figures ----------------------------------------------------------------------------------
def per_job_traffic(runs: list[Run]) -> dict[str, Any]:
    """Requests and bytes per job at each proxy, over the end-to-end runs."""
    out: dict[str, Any] = {}
    jobs = sum(r.jobs for r in runs)
    for name in runs[0].traffic:
        requests: dict[str, float] = {}
        up = down = 0
        for r in runs:
            t = r.traffic[name]
            up += t.bytes_up
            down += t.bytes_down
            for method, count in t.requests.items():
                requests[method] = requests.get(method, 0) + count
        out[name] = {
            "requests": {m: round(c / jobs, 2) for m, c in sorted(requests.items())},
            "bytes_up": round(up / jobs),
            "bytes_down": round(down / jobs),
        }
    return out


def throughput_row(pipeline: str, e2e_per_vcpu_h: float, compute_per_vcpu_h: float, ratio: float,
                   traffic: dict[str, Any], e2e_rate_h: float, provenance: dict[str, Any],
                   prices: dict[str, Any]) -> dict[str, Any]:
    s3 = traffic.get("s3", {"requests": {}, "bytes_up": 0})
    sqs = traffic.get("sqs", {"requests": {}})
    puts = sum(v for m, v in s3["requests"].items() if m in ("PUT", "POST", "DELETE"))
    gets = sum(v for m, v in s3["requests"].items() if m in ("GET", "HEAD"))
    cpu_bound = pipeline in CPU_BOUND
    vcpus = prices["instances"][REFERENCE_INSTANCE]["vcpus"]
    per_instance = e2e_per_vcpu_h * vcpus if cpu_bound else e2e_rate_h
    loads = f"load average {provenance['loadavg_start'][0]} -> {provenance['loadavg_end'][0]}"
    return {
        "jobs_per_instance_hour": round(per_instance, 1),
        "reference_instance_type": REFERENCE_INSTANCE,
        "scales_with_vcpus": cpu_bound,
        "jobs_per_vcpu_hour": round(e2e_per_vcpu_h, 1),
        "compute_bound_jobs_per_vcpu_hour": round(compute_per_vcpu_h, 1),
        "end_to_end_vs_compute_bound": round(ratio, 3),
        "objects_per_job": round(s3["requests"].get("PUT", 0.0), 2),
        "bytes_per_job": int(s3["bytes_up"]),
        "s3_put_requests_per_job": round(puts, 2),
        "s3_get_requests_per_job": round(gets, 2),
        "sqs_requests_per_job": round(sum(sqs["requests"].values()), 2),
        "source": (
            f"{BENCHMARK} ({provenance['date']}): one `specfleet work {pipeline}` process on "
            f"{provenance['cpus']} shared vCPUs, S3/SQS through a proxy at "
            f"{provenance['parameters']['latency_ms']:g} ms first byte and "
            f"{provenance['parameters']['mb_per_s']:g} MB/s per connection; end to end "
            f"{ratio:.0%} of compute-bound; {loads}. "
            + ("Per vCPU x the reference type's vCPUs." if cpu_bound else
               "Per worker process at its default concurrency (not scaled by vCPUs).")
        ),
        "caveat": CAVEATS[pipeline].format(**provenance["parameters"]),
        "measured": provenance,
    }


def cost_per_1000(table_path: Path, pipeline: str, instance_types: list[str]) -> dict[str, Any]:
    """Dollars per 1,000 jobs on each type, from plan.py (one instance; the
    stack's fixed costs left out: they depend on the run, not the job)."""
    settings = FleetSettings(fleet_throughput_file=str(table_path))
    jobs = 1_000_000  # plan rounds to cents: plan a million, divide
    out: dict[str, Any] = {}
    for itype in instance_types:
        p = plan(settings, pipeline, jobs, instance_type=itype, instances=1)
        scale = 1000 / jobs
        lines = {
            "compute_on_demand": p.compute_on_demand_usd, "compute_spot": p.compute_spot_usd,
            "s3_requests": p.s3_put_usd + p.s3_get_usd, "sqs": p.sqs_usd, "transfer_out": p.egress_usd,
        }
        row = {k: round(v * scale, 5) for k, v in lines.items()}
        row["total_spot"] = round(sum(v for k, v in lines.items() if k != "compute_on_demand") * scale, 5)
        row["total_on_demand"] = round(sum(v for k, v in lines.items() if k != "compute_spot") * scale, 5)
        row["storage_per_month"] = round(p.s3_storage_month_usd * scale, 5)
        row["jobs_per_instance_hour"] = p.jobs_per_instance_hour
        out[itype] = row
    return out


# --- main -------------------------------------------------------------------------------------------
def parse_jobs(values: list[str], pipelines: list[str]) -> dict[str, int]:
    counts = {p: DEFAULT_JOBS[p] for p in pipelines}
    for v in values:
        name, _, number = v.rpartition("=")
        try:
            n = int(number)
        except ValueError:
            raise SystemExit(f"--jobs {v!r}: expected N or PIPELINE=N") from None
        if n < 4:
            raise SystemExit(f"--jobs {v!r}: at least 4 jobs per run")
        if name and name not in PIPELINES:
            raise SystemExit(f"--jobs {v!r}: unknown pipeline {name!r} (known: {', '.join(PIPELINES)})")
        for p in ([name] if name else pipelines):
            if p in counts:
                counts[p] = n
    return counts


def measure(pipeline: str, n: int, rounds: int, net: NetModel, env: Env, s3: FaultProxy, sqs: FaultProxy,
            stack_pid: int, log_dir: Path) -> dict[str, Any]:
    make = PREPARE[pipeline](env, n)
    proxies = {"s3": s3, "sqs": sqs}
    if pipeline == "hydrophone" and env.archive is not None:
        proxies["archive"] = env.archive
    worker = WorkerProcess(pipeline, env, s3, sqs, log_dir / f"{pipeline}.log")
    try:
        COMPUTE_BOUND.apply(list(proxies.values()), env.site)
        rows_per_job = warm_up(env, pipeline, make, worker)
        slots = worker.slots()
        runs: dict[str, list[Run]] = {"compute_bound": [], "end_to_end": []}
        for r in range(rounds):
            order = [("compute_bound", COMPUTE_BOUND), ("end_to_end", net)]
            for mode, model in order if r % 2 == 0 else order[::-1]:
                print(f"  {pipeline}: round {r + 1}/{rounds}, {mode}, {n} jobs ...", file=sys.stderr, flush=True)
                runs[mode].append(run_batch(mode, model, make(f"r{r}{mode[0]}", n), env=env, pipeline=pipeline,
                                            worker=worker, proxies=proxies, stack_pid=stack_pid,
                                            rows_per_job=rows_per_job, slots=slots))
    finally:
        worker.stop()
    cpus = os.cpu_count() or 1
    ratios = [e.jobs_per_hour / c.jobs_per_hour for e, c in zip(runs["end_to_end"], runs["compute_bound"],
                                                                   strict=True)]
    e2e = statistics.median(r.jobs_per_hour for r in runs["end_to_end"])
    compute = statistics.median(r.jobs_per_hour for r in runs["compute_bound"])
    traffic = per_job_traffic(runs["end_to_end"])
    puts_per_job = sum(v for m, v in traffic["s3"]["requests"].items() if m in ("PUT", "POST", "DELETE"))
    return {
        "jobs": n,
        "rounds": rounds,
        "job_slots": slots,
        "status_rows_per_job": rows_per_job,
        "end_to_end_jobs_per_hour": round(e2e, 1),
        "end_to_end_jobs_per_hour_per_vcpu": round(e2e / cpus, 1),
        "compute_bound_jobs_per_hour": round(compute, 1),
        "compute_bound_jobs_per_hour_per_vcpu": round(compute / cpus, 1),
        "ratio": round(statistics.median(ratios), 3),
        "ratios": [round(x, 3) for x in ratios],
        "per_job": traffic,
        #: Instances one S3 prefix carries at this rate before its PUT budget.
        "instances_per_prefix": (round(PUTS_PER_PREFIX_S / (puts_per_job * e2e / 3600), 1)
                                 if puts_per_job else None),
        "runs": [r.as_dict(cpus) for mode in ("compute_bound", "end_to_end") for r in runs[mode]],
        "worker_log": str(worker.log),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="Print one JSON object last.")
    ap.add_argument("--write", action="store_true", help="Write the measured figures to throughput.json.")
    ap.add_argument("--out", type=Path, default=DEFAULT_THROUGHPUT, help="Where --write writes.")
    ap.add_argument("--pipelines", default=",".join(PIPELINES), help="Comma-separated (default: all).")
    ap.add_argument("--jobs", action="append", default=[], metavar="N|PIPELINE=N",
                    help=f"Jobs per run (default {DEFAULT_JOBS}).")
    ap.add_argument("--rounds", type=int, default=1, help="Baseline/modelled pairs per pipeline (median).")
    ap.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_MS, help="First-byte latency per request.")
    ap.add_argument("--mb-per-s", type=float, default=DEFAULT_MB_PER_S, help="Bandwidth per connection, each way.")
    ap.add_argument("--site-bytes-per-s", type=int, default=DEFAULT_SITE_BYTES_PER_S,
                    help="The video site's pacing per connection.")
    ap.add_argument("--instance-types", default=",".join(DEFAULT_INSTANCE_TYPES))
    ap.add_argument("--cache", type=Path, default=ROOT / ".specfleet" / "fleetbench-cache",
                    help="Generated inputs kept between runs (the 5-minute signal, the mp3, site media).")
    args = ap.parse_args()
    pipelines = [p.strip() for p in args.pipelines.split(",") if p.strip()]
    unknown = sorted(set(pipelines) - set(PIPELINES))
    if unknown or not pipelines:
        raise SystemExit(f"--pipelines: unknown {unknown or 'none given'} (known: {', '.join(PIPELINES)})")
    if not 1 <= args.rounds <= 10:
        raise SystemExit("--rounds must be 1..10")
    if args.latency_ms < 0 or args.mb_per_s < 0 or args.site_bytes_per_s < 0:
        raise SystemExit("--latency-ms, --mb-per-s and --site-bytes-per-s must be >= 0")
    counts = parse_jobs(args.jobs, pipelines)
    instance_types = [t.strip() for t in args.instance_types.split(",") if t.strip()]
    prices = load_prices(FleetSettings())
    missing = [t for t in [*instance_types, REFERENCE_INSTANCE] if t not in prices["instances"]]
    if missing:
        raise SystemExit(f"--instance-types: no price for {missing} in prices.json")
    net = NetModel(args.latency_ms, args.mb_per_s, args.site_bytes_per_s)
    command = "python " + " ".join([BENCHMARK, *sys.argv[1:]])
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    cpus = os.cpu_count() or 1
    load_start = loadavg()

    work = Path(tempfile.mkdtemp(prefix="specfleet-fleetbench-"))
    log_dir = ROOT / ".specfleet" / "fleetbench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    state = start_detached(work / "stack", poller=False)
    env: Env | None = None
    s3 = sqs = None
    try:
        ns = Namespace(state, name="fleetbench", poller=False, wait_time_s=1)
        env = Env(ns, work, args.cache)
        port = int(urlsplit(state.endpoint_url).port or 0)
        s3 = FaultProxy(("127.0.0.1", port)).start()
        sqs = FaultProxy(("127.0.0.1", port)).start()
        for pipeline in pipelines:
            print(f"{pipeline}: {counts[pipeline]} jobs per run", file=sys.stderr, flush=True)
            results[pipeline] = measure(pipeline, counts[pipeline], args.rounds, net, env, s3, sqs, state.pid,
                                        log_dir)
    finally:
        for thing in (s3, sqs, env and env.archive, env and env.ooi, env and env.site):
            if thing is not None:
                thing.close()
        stop_detached(work / "stack")
        destroy_data(work / "stack")
        shutil.rmtree(work, ignore_errors=True)
    load_end = loadavg()

    parameters = {
        "latency_ms": args.latency_ms, "mb_per_s": args.mb_per_s, "site_bytes_per_s": args.site_bytes_per_s,
        "rounds": args.rounds, "jobs": counts, "cpus": cpus,
        "worker_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("SPECFLEET_")},
    }
    table: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {"pipelines": {}}
    table["_about"] = (
        f"Jobs one worker instance finishes per hour, per pipeline, measured end to end by `python {BENCHMARK} "
        "--json --write` (real worker processes; S3 and SQS behind a proxy modelling AWS's latency and "
        "bandwidth). Each row says which command, parameters and date produced it ('measured'); `fleet plan` "
        "and autoscaling refuse rows that do not. Re-measure on the instance type you run, or point "
        "SPECFLEET_FLEET_THROUGHPUT_FILE at your own copy. 'scales_with_vcpus' marks CPU-bound pipelines "
        "whose rate is scaled by the vCPU ratio for other instance types."
    )
    for pipeline, res in results.items():
        e2e_runs = [r for r in res["runs"] if r["mode"] == "end_to_end"]
        provenance = {
            "command": command, "date": date, "parameters": {**parameters, "jobs": res["jobs"]}, "cpus": cpus,
            "loadavg_start": e2e_runs[0]["loadavg_start"], "loadavg_end": e2e_runs[-1]["loadavg_end"],
        }
        table["pipelines"][pipeline] = throughput_row(
            pipeline, res["end_to_end_jobs_per_hour_per_vcpu"], res["compute_bound_jobs_per_hour_per_vcpu"],
            res["ratio"], res["per_job"], res["end_to_end_jobs_per_hour"], provenance, prices)
    with tempfile.TemporaryDirectory() as tmp:
        draft = Path(tmp) / "throughput.json"
        draft.write_text(json.dumps(table, indent=2) + "\n")
        for pipeline, res in results.items():
            res["usd_per_1000_jobs"] = cost_per_1000(draft, pipeline, instance_types)
        if args.write:
            args.out.write_text(draft.read_text())

    out = {
        "benchmark": "fleet",
        "command": command,
        "date": date,
        "parameters": parameters,
        "network_model": {
            "s3_sqs_first_byte_ms": args.latency_ms, "per_connection_mb_per_s": args.mb_per_s,
            "s3_put_per_prefix_s": PUTS_PER_PREFIX_S, "s3_get_per_prefix_s": GETS_PER_PREFIX_S,
            "video_site_bytes_per_s": args.site_bytes_per_s,
        },
        "cpus": cpus,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "pipelines": results,
        "written": str(args.out) if args.write else None,
    }
    if not args.json:
        for name, res in results.items():
            print(f"{name:>12}: {res['end_to_end_jobs_per_hour_per_vcpu']:>9.1f} jobs/h/vCPU end to end, "
                  f"{res['compute_bound_jobs_per_hour_per_vcpu']:>9.1f} compute-bound, ratio {res['ratio']:.3f}",
                  file=sys.stderr)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
