"""Runtime and status-writer throughput, as ratios against baselines run in
the same process on the same local stack.

* ``overhead_ratio``: seconds per job through ``Worker`` with a no-op handler
  divided by seconds per job of a bare boto3 loop (receive 10 + batch delete)
  on the same queue. Goal <= 1.1.
* ``writer_speedup``: rows/s of ``StatusWriter`` (batches of 10, as the SQS
  trigger delivers them, on a warm connection) divided by rows/s of the
  original design (a new connection and one INSERT + commit per message).
  Goal >= 10.

Usage: python benchmarks/runtime.py [--json] [--jobs N] [--rows N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2

from specfleet.aws import client
from specfleet.jobs import Job
from specfleet.local.stack import Namespace, start_detached, stop_detached
from specfleet.pipelines import job_queue, status_queue
from specfleet.pipelines.echo import SPEC as ECHO
from specfleet.pipelines.echo import EchoStatus
from specfleet.runtime import JobContext, Ref, Worker
from specfleet.runtime.middleware import Heartbeat, Metrics
from specfleet.status import InboundRecord, Stat, StatusRecord
from specfleet.status_writer import StatusWriter


def _noop(job: Job, ctx: JobContext) -> None:
    return None


def _failure(job: Job | None, ctx: JobContext, stat: Stat) -> StatusRecord:
    return EchoStatus(instance_id=ctx.instance_id, stat=stat, job_id="x")


#: The echo pipeline with a handler that does nothing: what is left is the runtime.
NOOP = dataclasses.replace(ECHO, handler=Ref(_noop), failure_status=_failure)


def fill(ns: Namespace, n: int) -> None:
    job_queue(ns.settings, "echo").send_json({"job_id": f"b{i}"} for i in range(n))


def raw_boto3(ns: Namespace, n: int) -> float:
    sqs = client("sqs", ns.settings)
    url = job_queue(ns.settings, "echo").url
    done = 0
    start = time.perf_counter()
    while done < n:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if msgs:
            sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]
            )
            done += len(msgs)
    return time.perf_counter() - start


def through_runtime(ns: Namespace, n: int) -> float:
    settings = ns.settings.model_copy(update={"wait_time_s": 1})
    worker = Worker(settings, NOOP, concurrency=10, max_jobs=n,
                    middleware=[Heartbeat(settings.visibility_timeout_s), Metrics()])
    start = time.perf_counter()
    worker.run()
    elapsed = time.perf_counter() - start
    assert worker.metrics().get("done") == n, worker.metrics()
    return elapsed


def writer_original(ns: Namespace, bodies: list[str]) -> float:
    """The original: per message, connect, INSERT, commit, close."""
    dsn = ns.settings.db_dsn.get_secret_value()  # type: ignore[union-attr]
    start = time.perf_counter()
    for body in bodies:
        f = body.split("::")
        conn = psycopg2.connect(dsn)
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO status_echo (msg_key, instance_id, stat, job_id, date) VALUES (%s, %s, %s, %s, %s)",
                (uuid.uuid4().hex, f[0], int(f[1]), f[2], f[3]),
            )
        conn.commit()
        conn.close()
    return time.perf_counter() - start


def writer_ours(ns: Namespace, bodies: list[str]) -> float:
    writer = StatusWriter(ns.settings)
    queue_name = status_queue(ns.settings, "echo").name
    batches = [
        [InboundRecord(uuid.uuid4().hex, queue_name, b) for b in bodies[i:i + 10]] for i in range(0, len(bodies), 10)
    ]
    start = time.perf_counter()
    for batch in batches:
        result = writer.write(batch)
        assert result.written == len(batch), result
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--jobs", type=int, default=600)
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    root = Path(tempfile.mkdtemp(prefix="specfleet-bench-"))
    state = start_detached(root / "stack", poller=False)
    try:
        ns = Namespace(state, poller=False)
        raw_times, rt_times = [], []
        # Interleave rounds so drift in machine load hits both sides alike.
        for _ in range(args.rounds):
            fill(ns, args.jobs)
            raw_times.append(raw_boto3(ns, args.jobs))
            fill(ns, args.jobs)
            rt_times.append(through_runtime(ns, args.jobs))
        raw_s, rt_s = min(raw_times), min(rt_times)

        bodies = [EchoStatus(instance_id="i-bench", stat=Stat.DONE, job_id=f"j{i}").encode() for i in range(args.rows)]
        orig_times, ours_times = [], []
        for _ in range(args.rounds):
            orig_times.append(writer_original(ns, bodies))
            ours_times.append(writer_ours(ns, bodies))
        orig_s, ours_s = min(orig_times), min(ours_times)
    finally:
        stop_detached(root / "stack")

    result = {
        "jobs": args.jobs,
        "raw_boto3_jobs_per_s": round(args.jobs / raw_s, 1),
        "runtime_jobs_per_s": round(args.jobs / rt_s, 1),
        "overhead_ratio": round(rt_s / raw_s, 3),
        "overhead_goal": 1.1,
        "rows": args.rows,
        "writer_original_rows_per_s": round(args.rows / orig_s, 1),
        "writer_rows_per_s": round(args.rows / ours_s, 1),
        "writer_speedup": round(orig_s / ours_s, 2),
        "writer_speedup_goal": 10,
        "rounds": args.rounds,
    }
    if not args.json:
        for k, v in result.items():
            print(f"{k:>28}: {v}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
