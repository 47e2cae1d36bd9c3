"""The whaledr manifest's cost per job, at a small archive and at a month.

Starts the embedded stack (moto's S3 server), then for each archive size
(``small``: nothing published yet; ``month``: ``--days`` published days of
288 files x 60 clips, 17,280 entries each, 518,400 for 30 days, ~30 MB)
runs ``--jobs`` whaledr jobs' manifest work on ``--writers`` threads at
once, over two new days of ``--jobs``/2 files each. A job's manifest work is
what ``worker.handle`` does once its clips are up: write its done-marker
(its 60 JPEG + 60 WAV keys: its part of the manifest), then
``whalemanifest.publish_if_day_done`` (list the day's markers; the day's last
job publishes the day part and rebuilds the list).

Reported per size: jobs that failed (contention or otherwise), S3 requests,
bytes sent + received and thread CPU time per ordinary job (median and
max), the publishes' total cost, and the published list's size; then the
month / small ratio of the per-job figures (goal: ~1, i.e. independent of
the manifest's size). With ``--legacy-entries N`` (> 0) the old scheme
(every job reads the whole list, merges, writes it back If-Match) runs
once too, at a manifest of N entries, as the baseline a job used to pay.

Loopback only; every loop bounded (``--max-seconds``). The load average is
reported before and after.

Usage: python benchmarks/manifest.py [--json] [--jobs 48] [--writers 12] [--days 30] [--legacy-entries 17280]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from specfleet.aws import client
from specfleet.local.stack import Namespace, destroy_data, start_detached, stop_detached
from specfleet.pipelines.hydrophone import naming, whalemanifest
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.settings import Settings
from specfleet.storage import Storage

HYDRO = "CE02SHBP/LJ01D/11-HYDBBA106"
CLIPS = 60


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Meter:
    """S3 requests and bytes per thread (a job's own calls), plus those of the
    publish's reader threads (``whale-read-*``) in one shared account."""

    def __init__(self, settings: Settings) -> None:
        self.local = threading.local()
        self.lock = threading.Lock()
        self.readers = {"requests": 0, "bytes": 0}
        events = client("s3", settings).meta.events
        events.register("before-send.s3", self._sent)
        events.register("after-call.s3", self._received)

    def _account(self) -> dict[str, int]:
        if threading.current_thread().name.startswith("whale-read"):
            return self.readers
        if not hasattr(self.local, "counts"):
            self.local.counts = {"requests": 0, "bytes": 0}
        return self.local.counts

    def _sent(self, request: Any, **_: Any) -> None:
        body = request.body
        size = len(body) if isinstance(body, (bytes, bytearray)) else int(request.headers.get("Content-Length", 0) or 0)
        with self.lock:
            counts = self._account()
            counts["requests"] += 1
            counts["bytes"] += size

    def _received(self, http_response: Any, **_: Any) -> None:
        with self.lock:
            self._account()["bytes"] += int(http_response.headers.get("content-length", 0) or 0)

    def take(self) -> dict[str, int]:
        counts = getattr(self.local, "counts", {"requests": 0, "bytes": 0})
        self.local.counts = {"requests": 0, "bytes": 0}
        return dict(counts)


def clip_keys(day: dt.date, minute: int) -> tuple[str, list[str]]:
    start = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
    names = [f"OO_HYVM1__YDH_{start + dt.timedelta(seconds=5 * i):%Y_%m_%dT%H_%M_%S}" for i in range(CLIPS)]
    keys = [naming.whaledr_key("megaptera", "LJ01D", f"{day:%Y_%m_%d}", n, ext) for n in names for ext in ("wav", "jpg")]
    return f"OO-HYVM1--YDH-{start:%Y-%m-%dT%H:%M:%S}.000000.mseed", keys


def seed(storage: Storage, config: HydroSettings, days: int) -> int:
    """``days`` published day parts (the month before), then the list built from them."""
    first = dt.date(2017, 9, 1)
    for d in range(days):
        day = first + dt.timedelta(days=d)
        t0 = dt.datetime.combine(day, dt.time())
        entries = [f"LJ01D___{day:%Y_%m_%d}___OO_HYVM1__YDH_{t0 + dt.timedelta(seconds=5 * i):%Y_%m_%dT%H_%M_%S}"
                   for i in range(288 * CLIPS)]
        storage.put_bytes(whalemanifest.day_part_key(config, HYDRO, day), json.dumps(entries).encode())
    return whalemanifest.publish_manifest(storage, config).entries if days else 0


def run_jobs(settings: Settings, config: HydroSettings, meter: Meter, jobs: int, writers: int,
             deadline: float) -> dict[str, Any]:
    days = [dt.date(2017, 10, 9), dt.date(2017, 10, 10)]
    per_day = max(1, jobs // 2)
    work = [(days[i % 2], 5 * (i // 2)) for i in range(per_day * 2)]
    barrier = threading.Barrier(writers)
    lock = threading.Lock()
    ordinary: list[dict[str, float]] = []
    publishing: list[dict[str, float]] = []
    failures: list[str] = []
    expected: set[str] = set()

    def writer(w: int) -> None:
        storage = Storage(settings)
        barrier.wait(timeout=120)
        for day, minute in work[w::writers]:
            if time.monotonic() > deadline:
                with lock:
                    failures.append("deadline")
                return
            name, keys = clip_keys(day, minute)
            before = storage.etag(whalemanifest.whale_manifest_key(config.whaledr_prefix))
            meter.take()  # the probe above is the benchmark's, not the job's
            cpu0, t0 = time.thread_time(), time.perf_counter()
            try:
                storage.put_bytes(naming.manifest_key(config.manifest_prefix, HYDRO, day, name),
                                  json.dumps({"file_url": name, "keys": keys, "notes": []}).encode())
                note = whalemanifest.publish_if_day_done(storage, config, HYDRO, day, per_day)
            except Exception as err:  # counted: the goal is none
                with lock:
                    failures.append(f"{type(err).__name__}: {err}")
                continue
            counts = meter.take()
            after = storage.etag(whalemanifest.whale_manifest_key(config.whaledr_prefix))
            meter.take()
            row = {"requests": counts["requests"], "bytes": counts["bytes"],
                   "cpu_ms": (time.thread_time() - cpu0) * 1000, "wall_ms": (time.perf_counter() - t0) * 1000}
            with lock:
                expected.update(naming.manifest_entry("megaptera", k) for k in keys if k.endswith(".jpg"))
                if note:
                    failures.append(note)
                (publishing if after != before and counts["requests"] > 3 else ordinary).append(row)

    cpu_before = time.process_time()
    started = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(w,), name=f"writer-{w}") for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline - time.monotonic()))
    wall = time.perf_counter() - started

    def summary(rows: list[dict[str, float]], field: str) -> dict[str, float]:
        values = [r[field] for r in rows] or [0.0]
        return {"median": round(statistics.median(values), 1), "max": round(max(values), 1)}

    return {
        "jobs": len(work), "writers": writers, "failed": len(failures), "failures": failures[:5],
        "wall_s": round(wall, 2), "jobs_per_s": round(len(work) / wall, 1) if wall else None,
        "process_cpu_s": round(time.process_time() - cpu_before, 2),
        "ordinary_jobs": len(ordinary),
        "per_job_requests": summary(ordinary, "requests"), "per_job_bytes": summary(ordinary, "bytes"),
        "per_job_cpu_ms": summary(ordinary, "cpu_ms"), "per_job_wall_ms": summary(ordinary, "wall_ms"),
        "publishing_jobs": len(publishing),
        "publish_requests": int(sum(r["requests"] for r in publishing)) + meter.readers["requests"],
        "publish_bytes": int(sum(r["bytes"] for r in publishing)) + meter.readers["bytes"],
        "publish_wall_ms": summary(publishing, "wall_ms"),
        "expected_new_entries": len(expected),
    }


def legacy_merge(storage: Storage, key: str, entries: list[str], attempts: int = 20) -> None:
    """The old scheme, as the worker did it before: read the whole list,
    union, write back If-Match (``Storage.merge_json_list``)."""
    storage.merge_json_list(key, entries, attempts=attempts)


def run_legacy(settings: Settings, meter: Meter, entries: int, jobs: int, writers: int,
               deadline: float) -> dict[str, Any]:
    storage = Storage(settings)
    key = "megaptera/whalemanifest.json"
    storage.put_bytes(key, json.dumps([f"LJ01D___2017_09_01___x{i:07d}" for i in range(entries)]).encode())
    rows: list[dict[str, float]] = []
    failures: list[str] = []
    lock = threading.Lock()
    work = [(dt.date(2017, 10, 9), 5 * i) for i in range(jobs)]

    def writer(w: int) -> None:
        for day, minute in work[w::writers]:
            if time.monotonic() > deadline:
                return
            _, keys = clip_keys(day, minute)
            meter.take()
            cpu0 = time.thread_time()
            try:
                legacy_merge(Storage(settings), key, [naming.manifest_entry("megaptera", k) for k in keys
                                                      if k.endswith(".jpg")])
            except Exception as err:
                with lock:
                    failures.append(f"{type(err).__name__}: {err}")
                continue
            counts = meter.take()
            with lock:
                rows.append({"requests": counts["requests"], "bytes": counts["bytes"],
                             "cpu_ms": (time.thread_time() - cpu0) * 1000})

    started = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline - time.monotonic()))
    return {
        "manifest_entries": entries, "jobs": jobs, "writers": writers, "failed": len(failures),
        "wall_s": round(time.perf_counter() - started, 2),
        "per_job_requests_median": statistics.median([r["requests"] for r in rows]) if rows else None,
        "per_job_bytes_median": statistics.median([r["bytes"] for r in rows]) if rows else None,
        "per_job_cpu_ms_median": round(statistics.median([r["cpu_ms"] for r in rows]), 1) if rows else None,
    }


def run(jobs: int, writers: int, days: int, legacy_entries: int, max_seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + max_seconds
    root = Path(tempfile.mkdtemp(prefix="specfleet-bench-manifest-"))
    result: dict[str, Any] = {"loadavg_before": loadavg()}
    state = start_detached(root / "stack", poller=False)
    try:
        config = HydroSettings(output="whaledr")
        warm = Namespace(state, wait_time_s=1)  # clients, connections, imports: not any size's cost
        try:
            run_jobs(warm.settings, config, Meter(warm.settings), writers * 2, writers, deadline)
        finally:
            warm.close()
        for size, seeded_days in (("small", 0), ("month", days)):
            ns = Namespace(state, wait_time_s=1)
            try:
                storage = Storage(ns.settings)
                seeded = seed(storage, config, seeded_days)
                meter = Meter(ns.settings)
                part = run_jobs(ns.settings, config, meter, jobs, writers, deadline)
                published = json.loads(storage.get_bytes(whalemanifest.whale_manifest_key(config.whaledr_prefix)))
                part.update(seeded_entries=seeded, published_entries=len(published),
                            published_mb=round(len(json.dumps(published)) / 1e6, 1),
                            published_is_union=len(published) == seeded + part["expected_new_entries"])
                result[size] = part
                if size == "small" and legacy_entries:
                    result["legacy_baseline"] = run_legacy(ns.settings, Meter(ns.settings), legacy_entries,
                                                           min(jobs, 24), writers, deadline)
            finally:
                ns.close()
    finally:
        stop_detached(root / "stack")
        destroy_data(root)
    small, month = result["small"], result["month"]

    def ratio(field: str) -> float | None:
        a, b = small[field]["median"], month[field]["median"]
        return round(b / a, 2) if a else None

    result["month_over_small_per_job"] = {f: ratio(f) for f in ("per_job_requests", "per_job_bytes",
                                                                  "per_job_cpu_ms")}
    result["no_job_failed"] = small["failed"] == 0 and month["failed"] == 0
    result["loadavg_after"] = loadavg()
    result["timed_out"] = time.monotonic() > deadline
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--jobs", type=int, default=48, help="jobs per size, over two days (default 48)")
    parser.add_argument("--writers", type=int, default=12, help="threads working at once (default 12)")
    parser.add_argument("--days", type=int, default=30, help="published days before the run at month size (30)")
    parser.add_argument("--legacy-entries", type=int, default=17_280,
                        help="manifest size for the old read-merge-write baseline (default 17,280: one day; 0 skips)")
    parser.add_argument("--max-seconds", type=float, default=900, help="give up after this long (default 900)")
    args = parser.parse_args()
    if min(args.jobs, args.writers) < 2 or args.days < 1 or args.legacy_entries < 0 or args.max_seconds <= 0:
        parser.error("--jobs and --writers must be >= 2, --days >= 1, --legacy-entries >= 0, --max-seconds > 0")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = run(args.jobs, args.writers, args.days, args.legacy_entries, args.max_seconds)
    if not args.json:
        for k, v in result.items():
            print(f"{k:>28}: {v}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
