"""Runtime and status-writer throughput, as ratios against baselines run in
the same process on the same local stack.

* ``overhead_ratio``: CPU seconds per job through ``Worker`` with a handler
  that only reports its job done (the echo pipeline's status message)
  divided by CPU seconds per job of a bare boto3 loop doing the same SQS
  work: receive 10 (with the attributes the worker asks for), send the ten
  status messages (made by the same code as the handler's: same bodies and
  attributes) in one batch to the status queue, delete the ten in one
  batch. CPU is this process's plus the stack process's (moto's server
  answers every call): on a shared machine it moves far less with other
  sessions' load than wall time does, which is reported too
  (``overhead_ratio_wall``, and the load average before and after). A
  worker's fixed cost (pre-flight checks, threads) is in the ratio, spread
  over ``--jobs``; ``runtime_startup_cpu_ms`` says how much it is and
  ``overhead_ratio_after_startup`` leaves it out. Goal <= 1.1.
* ``writer_speedup``: rows/s of ``StatusWriter`` (batches of 10, as the SQS
  trigger delivers them, on a warm connection) divided by rows/s of the
  original design (a new connection and one INSERT + commit per message).
  Goal >= 10.

Usage: python benchmarks/runtime.py [--json] [--jobs N] [--rows N] [--rounds N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg2

from specfleet.aws import client
from specfleet.jobs import Job
from specfleet.local.stack import Namespace, start_detached, stop_detached
from specfleet.pipelines import job_queue, status_queue
from specfleet.pipelines.echo import SPEC as ECHO
from specfleet.pipelines.echo import EchoJob, EchoStatus
from specfleet.runtime import JobContext, Ref, StatusSender, Worker
from specfleet.runtime.middleware import Heartbeat, Metrics
from specfleet.status import InboundRecord, Stat, StatusRecord
from specfleet.status_writer import StatusWriter

INSTANCE = "i-bench"


def _done(job: EchoJob, ctx: JobContext) -> None:
    ctx.report(EchoStatus(instance_id=ctx.instance_id, stat=Stat.DONE, job_id=job.job_id), key="done")


def _failure(job: Job | None, ctx: JobContext, stat: Stat) -> StatusRecord:
    return EchoStatus(instance_id=ctx.instance_id, stat=stat, job_id="x")


#: The echo pipeline with a handler that only reports its job done: what is
#: left is the runtime and the SQS work every job needs.
NOOP = dataclasses.replace(ECHO, handler=Ref(_done), failure_status=_failure)


@dataclasses.dataclass(frozen=True)
class Cost:
    wall_s: float
    cpu_s: float  # this process + the stack process


def _stack_cpu_s(pid: int) -> float:
    """utime + stime of the stack process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, run: Callable[[], None]) -> Cost:
    wall, cpu, stack = time.perf_counter(), time.process_time(), _stack_cpu_s(pid)
    run()
    return Cost(time.perf_counter() - wall, time.process_time() - cpu + _stack_cpu_s(pid) - stack)


def fill(ns: Namespace, n: int) -> None:
    job_queue(ns.settings, "echo").send_json({"job_id": f"b{i}"} for i in range(n))


def raw_boto3(ns: Namespace, n: int) -> None:
    """The SQS work the runtime must do per ten jobs, with nothing else: one
    receive (as the worker asks), the ten jobs' status messages (made as the
    handler makes them) in one batch, one batch delete."""
    settings = ns.settings.model_copy(update={"instance_id": INSTANCE})
    sqs = client("sqs", settings)
    url = job_queue(settings, "echo").url
    status_url = status_queue(settings, "echo").url
    sender = StatusSender(settings, NOOP)
    done = 0
    while done < n:
        msgs = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=settings.visibility_timeout_s,
            AttributeNames=["ApproximateReceiveCount"], MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not msgs:
            continue
        entries = []
        for i, m in enumerate(msgs):
            # The status message as the handler makes it (ctx.report): the same
            # bodies, the same attributes, the same code.
            record = EchoStatus(instance_id=INSTANCE, stat=Stat.DONE, job_id=json.loads(m["Body"])["job_id"])
            status = sender.message(record, dedupe_key=f"{m['MessageId']}/done")
            entries.append({"Id": str(i), "MessageBody": status.body, "MessageAttributes": {
                k: {"DataType": "String", "StringValue": v} for k, v in status.attributes.items()}})
        sqs.send_message_batch(QueueUrl=status_url, Entries=entries)
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]
        )
        done += len(msgs)


def through_runtime(ns: Namespace, n: int) -> None:
    settings = ns.settings.model_copy(update={"wait_time_s": 1, "instance_id": INSTANCE})
    worker = Worker(settings, NOOP, concurrency=10, max_jobs=n,
                    middleware=[Heartbeat(settings.visibility_timeout_s), Metrics()])
    worker.run()
    assert worker.metrics().get("done", 0) == n, worker.metrics()


def drain_statuses(ns: Namespace, n: int) -> None:
    """Empty the status queue between runs (no poller: nothing else reads it)."""
    q = status_queue(ns.settings, "echo")
    got = 0
    while got < n:
        batch = q.receive(10, wait_s=1)
        if not batch:
            break
        q.delete(batch)
        got += len(batch)
    assert got == n, f"{got} status messages for {n} jobs"


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
        load_start = os.getloadavg()
        raw_costs, rt_costs = [], []
        # Interleave rounds so drift in machine load hits both sides alike.
        for _ in range(args.rounds):
            fill(ns, args.jobs)
            raw_costs.append(measured(state.pid, lambda: raw_boto3(ns, args.jobs)))
            drain_statuses(ns, args.jobs)
            fill(ns, args.jobs)
            rt_costs.append(measured(state.pid, lambda: through_runtime(ns, args.jobs)))
            drain_statuses(ns, args.jobs)
        load_end = os.getloadavg()
        # What one worker costs before its first job and after its last (pre-flight
        # checks, threads): in overhead_ratio too, spread over the jobs.
        startup = min((measured(state.pid, lambda: through_runtime(ns, 0)) for _ in range(args.rounds)),
                      key=lambda c: c.cpu_s)
        raw_s, rt_s = min(c.wall_s for c in raw_costs), min(c.wall_s for c in rt_costs)
        raw_cpu, rt_cpu = min(c.cpu_s for c in raw_costs), min(c.cpu_s for c in rt_costs)

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
        "overhead_ratio": round(rt_cpu / raw_cpu, 3),
        "overhead_goal": 1.1,
        "overhead_ratio_wall": round(rt_s / raw_s, 3),
        "raw_boto3_cpu_ms_per_job": round(raw_cpu / args.jobs * 1000, 3),
        "runtime_cpu_ms_per_job": round(rt_cpu / args.jobs * 1000, 3),
        "runtime_startup_cpu_ms": round(startup.cpu_s * 1000, 1),
        "overhead_ratio_after_startup": round((rt_cpu - startup.cpu_s) / raw_cpu, 3),
        "baseline": "per 10 jobs: ReceiveMessage (10, with ApproximateReceiveCount and all message attributes), "
                    "SendMessageBatch of the 10 status messages to the status queue, DeleteMessageBatch",
        "cpu": "this process + the stack process (moto's server), best of the rounds",
        "rows": args.rows,
        "writer_original_rows_per_s": round(args.rows / orig_s, 1),
        "writer_rows_per_s": round(args.rows / ours_s, 1),
        "writer_speedup": round(orig_s / ours_s, 2),
        "writer_speedup_goal": 10,
        "rounds": args.rounds,
        # os.getloadavg() before and after the overhead rounds (2 shared cores: above 2 they queue)
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in load_end],
    }
    if not args.json:
        for k, v in result.items():
            print(f"{k:>28}: {v}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
