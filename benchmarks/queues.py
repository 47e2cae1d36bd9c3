"""The embedded stack's SQS at the scale of a hydrophone month.

Starts the embedded stack (``start_detached`` + a ``Namespace`` with its
status poller running, as in the tests and the demo), then on the hydrophone
job queue:

* enqueues ``--jobs`` realistic hydrophone job bodies (one 5-minute
  ``.mseed`` file each, consecutive times, as the producer sends them) with
  ``Queue.send``, timing every 1,000 as the queue grows;
* reads the queue depth ``--depth-queries`` times at full depth (latency);
* drains it with ``--receivers`` threads doing ``Queue.receive`` (10 at a
  time) + ``Queue.delete``, timing every 1,000 as the queue shrinks, and
  checks every job came back exactly once.

Then, for comparison, enqueues ``--baseline-jobs`` the way the stack did
before: moto's own SQS (``python -m moto.server``) with one batch in flight
at a time, and reports our send rate over that one's at the same depths.

Goal: enqueuing 10,000 jobs in under 60 s. Loopback only. Every loop is
bounded by ``--max-seconds``. The load average is reported before and after.

Usage: python benchmarks/queues.py [--json] [--jobs N] [--receivers R] [--baseline-jobs N] [--max-seconds S]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from specfleet.local.postgres import free_port
from specfleet.local.stack import Namespace, destroy_data, start_detached, stop_detached
from specfleet.pipelines import job_queue
from specfleet.pipelines.hydrophone.models import HydroJob
from specfleet.queues import SENDERS, Queue, ensure_queue
from specfleet.settings import Settings

HYDROPHONE = "CE02SHBP/LJ01D/11-HYDBBA106"
ARCHIVE = "https://rawdata.oceanobservatories.org/files/"
STEP = 1000  # messages per timed slice
ENQUEUE_GOAL_S = 60.0


def hydrophone_bodies(n: int, start: dt.datetime = dt.datetime(2017, 10, 9)) -> Iterator[str]:
    """``n`` job bodies for consecutive 5-minute files, as the producer makes them."""
    for i in range(n):
        t = start + dt.timedelta(minutes=5 * i)
        url = (
            f"{ARCHIVE}{HYDROPHONE}/{t:%Y/%m/%d}/"
            f"OO-HYVM1--YDH-{t:%Y-%m-%dT%H:%M:%S}.000000.mseed"
        )
        yield HydroJob(file_url=url, hydrophone=HYDROPHONE).body()


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else float("inf")


def enqueue(
    queue: Queue, bodies: list[str], deadline: float, senders: int = SENDERS
) -> tuple[float, list[dict[str, float]], int]:
    """Send ``bodies`` in slices of ``STEP``; return total seconds, per-slice
    rates and how many were sent before ``deadline``."""
    slices = []
    total = 0.0
    for start in range(0, len(bodies), STEP):
        if time.monotonic() > deadline:
            return total, slices, start
        chunk = bodies[start:start + STEP]
        t0 = time.perf_counter()
        sent = queue.send(chunk, senders=senders)
        elapsed = time.perf_counter() - t0
        assert sent == len(chunk), (sent, len(chunk))
        total += elapsed
        slices.append({"depth_before": start, "msgs_per_s": rate(len(chunk), elapsed)})
    return total, slices, len(bodies)


def depth_latency(queue: Queue, queries: int) -> tuple[dict[str, int], dict[str, float]]:
    times = []
    depth: dict[str, int] = {}
    for _ in range(queries):
        t0 = time.perf_counter()
        depth = queue.depth()
        times.append((time.perf_counter() - t0) * 1000)
    return depth, {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}


def drain(
    queue: Queue, n: int, receivers: int, deadline: float
) -> tuple[float, list[dict[str, float]], dict[str, int]]:
    """``receivers`` threads receive (10 at a time) + delete until ``n``
    messages came back or each saw the queue empty three times running;
    return seconds, rates per ``STEP`` messages and how often each body came."""
    seen: dict[str, int] = {}
    marks: list[tuple[int, float]] = [(0, time.perf_counter())]  # (received, when) at each STEP
    lock = threading.Lock()
    errors: list[BaseException] = []

    def receive_until_done() -> None:
        empty_polls = 0
        try:
            while empty_polls < 3 and time.monotonic() < deadline:
                with lock:
                    if sum(seen.values()) >= n:
                        return
                batch = queue.receive(10, wait_s=1, visibility_s=300)
                if not batch:
                    empty_polls += 1
                    continue
                empty_polls = 0
                failed = queue.delete(batch)
                if failed:
                    raise RuntimeError(f"{len(failed)} deletes refused")
                with lock:
                    for m in batch:
                        seen[m.body] = seen.get(m.body, 0) + 1
                    total = sum(seen.values())
                    if total // STEP > marks[-1][0] // STEP or total >= n:
                        marks.append((total, time.perf_counter()))
        except BaseException as err:  # reported by the caller
            errors.append(err)

    threads = [threading.Thread(target=receive_until_done, name=f"receiver-{i}") for i in range(receivers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    slices = [
        {"depth_before": n - before, "msgs_per_s": rate(after - before, t1 - t0)}
        for (before, t0), (after, t1) in zip(marks, marks[1:], strict=False)
    ]
    return marks[-1][1] - marks[0][1], slices, seen


def plain_moto_baseline(jobs: int, deadline: float) -> dict[str, object]:
    """What the stack did before: moto's own SQS (``python -m moto.server``,
    the same werkzeug server) and one batch in flight at a time."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        ready_by = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > ready_by or server.poll() is not None:
                    raise RuntimeError("moto.server did not start") from None
                time.sleep(0.1)  # waiting for a child to listen, not synchronising work
        settings = Settings(endpoint_url=f"http://127.0.0.1:{port}", region="us-east-1", queue_prefix="baseline_")
        queue = ensure_queue(settings, job_queue(settings, "hydrophone").name)
        enqueue_s, slices, sent = enqueue(queue, list(hydrophone_bodies(jobs)), deadline, senders=1)
        return {
            "jobs": jobs,
            "sent": sent,
            "senders": 1,
            "enqueue_s": round(enqueue_s, 2),
            "send_msgs_per_s_by_depth": slices,
            "depth_query_ms_full": depth_latency(queue, 5)[1],
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def run(
    jobs: int, max_seconds: float, depth_queries: int, receivers: int, baseline_jobs: int
) -> dict[str, object]:
    deadline = time.monotonic() + max_seconds
    bodies = list(hydrophone_bodies(jobs))
    root = Path(tempfile.mkdtemp(prefix="specfleet-bench-queues-"))
    result: dict[str, object] = {"jobs": jobs, "loadavg_before": loadavg()}
    state = start_detached(root / "stack", poller=True)
    ns = None
    try:
        ns = Namespace(state, wait_time_s=1)
        queue = job_queue(ns.settings, "hydrophone")
        result["depth_query_ms_empty"] = depth_latency(queue, depth_queries)[1]
        enqueue_s, send_slices, sent = enqueue(queue, bodies, deadline)
        result.update(
            sent=sent,
            enqueue_s=round(enqueue_s, 2),
            enqueue_goal_s=ENQUEUE_GOAL_S * jobs / 10_000,
            enqueue_msgs_per_s=rate(sent, enqueue_s),
            send_msgs_per_s_by_depth=send_slices,
        )
        result["depth_after_enqueue"], result["depth_query_ms_full"] = depth_latency(queue, depth_queries)
        drain_s, receive_slices, seen = drain(queue, sent, receivers, deadline)
        expected = set(bodies[:sent])
        result.update(
            receivers=receivers,
            drain_s=round(drain_s, 2),
            receive_delete_msgs_per_s_by_depth=receive_slices,
            received_distinct=len(seen),
            received_twice_or_more=sum(1 for c in seen.values() if c > 1),
            missing=len(expected - set(seen)),
            unexpected=len(set(seen) - expected),
            depth_after_drain=queue.depth(),
        )
    finally:
        if ns:
            ns.close()
        stop_detached(root / "stack")
        destroy_data(root)
    if baseline_jobs:
        baseline = plain_moto_baseline(baseline_jobs, deadline)
        ours = {s["depth_before"]: s["msgs_per_s"] for s in result["send_msgs_per_s_by_depth"]}  # type: ignore[attr-defined]
        result["baseline_plain_moto_one_sender"] = baseline
        result["send_speedup_at_same_depth"] = [
            {"depth_before": s["depth_before"], "ratio": round(ours[s["depth_before"]] / s["msgs_per_s"], 1)}
            for s in baseline["send_msgs_per_s_by_depth"]  # type: ignore[attr-defined]
            if s["depth_before"] in ours
        ]
    result["timed_out"] = time.monotonic() > deadline
    result["loadavg_after"] = loadavg()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs to enqueue (default 10,000)")
    parser.add_argument("--max-seconds", type=float, default=1800, help="give up after this long (default 1800)")
    parser.add_argument("--depth-queries", type=int, default=20, help="depth queries timed per depth (default 20)")
    parser.add_argument("--receivers", type=int, default=4, help="threads receiving + deleting at once (default 4)")
    parser.add_argument(
        "--baseline-jobs", type=int, default=1000,
        help="jobs to enqueue on plain moto, one batch at a time, for comparison (default 1,000; 0 skips)",
    )
    args = parser.parse_args()
    if min(args.jobs, args.depth_queries, args.receivers) < 1 or args.baseline_jobs < 0 or args.max_seconds <= 0:
        parser.error("--jobs, --depth-queries, --receivers must be >= 1, --baseline-jobs >= 0, --max-seconds > 0")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = run(args.jobs, args.max_seconds, args.depth_queries, args.receivers, args.baseline_jobs)
    if not args.json:
        for k, v in result.items():
            print(f"{k:>34}: {v}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
