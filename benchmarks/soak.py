"""Soak under faults (issue 14): real worker processes and the status writer
keep going while a loopback fault proxy cuts their dependencies.

3 ``specfleet work echo`` processes and one ``specfleet local poll`` (the
status writer) run against the embedded stack through two ``FaultProxy``s:
one in front of moto's endpoint (SQS/S3/SNS), one in front of PostgreSQL.
While they work through the jobs, the AWS endpoint is cut for ``--cut`` s
twice and PostgreSQL once. Everything stays on loopback; the run is bounded
by ``--limit`` seconds and the job count.

Reports ``jobs``, ``rows`` (status rows written), ``duplicates`` (rows beyond
one per job), ``lost`` (jobs with no row at the end), ``worker_exits``
(worker or writer processes that ended before they were told to),
``max_rss_mb`` (largest peak RSS of those processes), ``dlq`` (messages in
dead-letter queues) and the load average. Goal: lost 0, duplicates 0,
worker_exits 0.

Usage: python benchmarks/soak.py [--json] [--jobs 2000] [--workers 3] [--cut 30] [--limit 600]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from specfleet.db import connect
from specfleet.local.stack import Namespace, destroy_data, start_detached, stop_detached
from specfleet.pipelines import job_queue, status_queue
from specfleet.queues import dead_letter_queue
from specfleet.standins.faults import FaultProxy


def _port(url: str) -> int:
    return int(urlsplit(url).port or 0)


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _rows(ns: Namespace) -> tuple[int, int]:
    conn = connect(ns.settings)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT job_id) FROM status_echo WHERE stat = 1")
            total, distinct = cur.fetchone()
            return int(total), int(distinct)
    finally:
        conn.close()


def run(jobs: int, workers: int, cut_s: float, limit_s: float, job_s: float, log_dir: Path) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="specfleet-soak-"))
    state = start_detached(root, poller=False)
    ns = Namespace(state, poller=False, visibility_timeout_s=60)
    dsn = ns.settings.db_dsn.get_secret_value()  # type: ignore[union-attr]
    aws = FaultProxy(("127.0.0.1", _port(state.endpoint_url))).start()
    pg = FaultProxy(("127.0.0.1", _port(dsn))).start()
    env = {
        **os.environ, **ns.env(),
        "AWS_ENDPOINT_URL": aws.url,
        "SPECFLEET_DB_DSN": dsn.replace(f":{_port(dsn)}/", f":{pg.address[1]}/"),
        "SPECFLEET_WAIT_TIME_S": "2",
        "SPECFLEET_VISIBILITY_TIMEOUT_S": "60",
        "SPECFLEET_OUTAGE_BACKOFF_MAX_S": "8",
        "SPECFLEET_DB_CONNECT_TIMEOUT_S": "3",
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    log_dir.mkdir(parents=True, exist_ok=True)

    def spawn(name: str, *args: str) -> None:
        log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        procs[name] = subprocess.Popen([sys.executable, "-m", "specfleet.cli.main", *args],
                                       env={**env, "SPECFLEET_INSTANCE_ID": name}, stdout=log, stderr=log)

    faults: list[dict[str, object]] = []
    try:
        enqueue_started = time.monotonic()
        job_queue(ns.settings, "echo").send_json({"job_id": f"s{i:05d}", "sleep_s": job_s} for i in range(jobs))
        enqueue_s = time.monotonic() - enqueue_started
        started = time.monotonic()
        spawn("writer", "local", "poll")
        for i in range(workers):
            spawn(f"worker-{i}", "work", "echo", "--concurrency", "4")
        # (seconds after start, proxy, name): AWS, PostgreSQL, AWS again.
        plan = [(30.0, aws, "aws"), (30.0 + 2 * cut_s, pg, "postgres"), (30.0 + 4 * cut_s, aws, "aws")]
        exits: dict[str, int] = {}
        done, next_fault = 0, 0
        active: tuple[float, FaultProxy] | None = None  # (ends at, proxy) of the fault in place
        while time.monotonic() - started < limit_s:
            now = time.monotonic() - started
            if active is None and next_fault < len(plan) and now >= plan[next_fault][0]:
                at, proxy, name = plan[next_fault]
                proxy.cut()
                active = (now + cut_s, proxy)
                faults.append({"at_s": round(now, 1), "what": name, "seconds": cut_s})
                next_fault += 1
            elif active is not None and now >= active[0]:
                active[1].restore()
                active = None
            for name, p in procs.items():
                if p.poll() is not None and name not in exits:
                    exits[name] = p.returncode
            if pg.mode == "pass":
                done = _rows(ns)[0]
            if done >= jobs and next_fault == len(plan) and active is None:
                break
            time.sleep(1)  # the soak's own clock: how often it looks, not a synchronisation
        elapsed = time.monotonic() - started
        aws.restore()
        pg.restore()
        total, distinct = _rows(ns)
        rss = max(_peak_rss_mb(p.pid) for p in procs.values())
        dlq = sum(dead_letter_queue(q).depth()["visible"]
                  for q in (job_queue(ns.settings, "echo"), status_queue(ns.settings, "echo")))
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        stop_codes = {name: p.wait(60) for name, p in procs.items()}
        return {
            "jobs": jobs,
            "rows": total,
            "duplicates": total - distinct,
            "lost": jobs - distinct,
            "worker_exits": len(exits),
            "exit_codes_after_sigterm": stop_codes,
            "dlq": dlq,
            "max_rss_mb": round(rss, 1),
            "faults": faults,
            "seconds": round(elapsed, 1),
            "enqueue_s": round(enqueue_s, 1),
            "workers": workers,
            "job_s": job_s,
            "logs": str(log_dir),
            "loadavg": os.getloadavg(),
        }
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        aws.close()
        pg.close()
        ns.close()
        stop_detached(root)
        destroy_data(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--cut", type=float, default=30.0, help="seconds each fault lasts")
    parser.add_argument("--limit", type=float, default=600.0, help="seconds the soak may run at most")
    parser.add_argument("--job-s", type=float, default=1.0, help="seconds each echo job works")
    parser.add_argument("--logs", type=Path, default=Path(".specfleet/soak"))
    args = parser.parse_args()
    result = run(args.jobs, args.workers, args.cut, args.limit, args.job_s, args.logs)
    if not args.json:
        for k, v in result.items():
            print(f"{k:>26}: {v}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
