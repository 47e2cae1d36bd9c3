"""Workers and the status writer ride out outages (issue 14, item 2): a fault
proxy on loopback cuts the AWS endpoint or PostgreSQL for a minute; nothing
exits, nothing is lost, nothing is done twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

from helpers import count, query, wait_for
from specfleet.local.poller import StatusPoller
from specfleet.local.stack import Namespace
from specfleet.pipelines import get_spec, job_queue, status_queue
from specfleet.pipelines.echo import EchoStatus
from specfleet.queues import dead_letter_queue
from specfleet.runtime.status_sender import StatusSender
from specfleet.standins.faults import FaultProxy
from specfleet.status import Stat

OUTAGE_S = 60


def _port(url: str) -> int:
    return int(urlsplit(url).port or 0)


def hold_outage(seconds: float, alive: list[subprocess.Popen[bytes]]) -> None:
    """Keep the fault in place for ``seconds``, checking every second that no
    process died meanwhile (the length of the outage is the fault itself)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for proc in alive:
            assert proc.poll() is None, f"worker exited with {proc.returncode} during the outage"
        time.sleep(1)


@pytest.mark.slow
def test_worker_starts_against_a_dead_endpoint_and_rides_out_a_60_s_sqs_outage(stack):
    ns = Namespace(stack, wait_time_s=1, visibility_timeout_s=30)
    proxy = FaultProxy(("127.0.0.1", _port(stack.endpoint_url))).start()
    worker = None
    try:
        s = ns.settings
        ids = [f"o{i:02d}" for i in range(40)]
        job_queue(s, "echo").send_json({"job_id": j, "sleep_s": 0.3} for j in ids)
        proxy.cut()  # dead before the worker even starts
        env = {**os.environ, **ns.env(), "AWS_ENDPOINT_URL": proxy.url, "SPECFLEET_INSTANCE_ID": "rider",
               "SPECFLEET_WAIT_TIME_S": "1", "SPECFLEET_OUTAGE_BACKOFF_MAX_S": "4"}
        worker = subprocess.Popen([sys.executable, "-m", "specfleet.cli.main", "work", "echo", "--concurrency", "2"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: proxy.stats.resets >= 3, timeout=60, what="the worker to try the dead endpoint a few times")
        assert worker.poll() is None and count(s, "status_echo") == 0
        proxy.restore()
        wait_for(lambda: count(s, "status_echo") >= 8, timeout=60, what="jobs to flow once the endpoint is back")
        proxy.cut()  # now a minute-long outage in the middle of the work
        hold_outage(OUTAGE_S, [worker])
        proxy.restore()
        wait_for(lambda: count(s, "status_echo") == len(ids), timeout=120, what="every job done after the outage")
        rows = query(s, "SELECT job_id, count(*), min(stat) FROM status_echo GROUP BY job_id ORDER BY job_id")
        assert rows == [(j, 1, 1) for j in ids]  # every job, once, done
        assert worker.poll() is None
        q = job_queue(s, "echo")
        wait_for(lambda: q.depth() == {"visible": 0, "in_flight": 0, "delayed": 0}, what="the job queue empty")
        assert dead_letter_queue(q).depth()["visible"] == 0
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        log = worker.stderr.read().decode()  # type: ignore[union-attr]
        assert "lost " in log and "retrying with backoff" in log and " is back after " in log
        assert "Traceback" not in log
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        proxy.close()
        ns.close()


@pytest.mark.slow
def test_status_writer_rides_out_a_60_s_database_outage_without_dead_lettering(stack):
    ns = Namespace(stack, poller=False, wait_time_s=1)
    s = ns.settings
    dsn = s.db_dsn.get_secret_value()  # type: ignore[union-attr]
    pg = FaultProxy(("127.0.0.1", _port(dsn))).start()
    proxied = s.model_copy(update={"db_dsn": dsn.replace(f":{_port(dsn)}/", f":{pg.address[1]}/"),
                                   "outage_backoff_max_s": 4, "db_connect_timeout_s": 2})
    poller = StatusPoller(proxied).start()
    try:
        sender = StatusSender(s, get_spec("echo"))
        first = [f"w{i:03d}" for i in range(20)]
        for j in first:
            sender.send(EchoStatus(instance_id="i-1", stat=Stat.DONE, job_id=j), dedupe_key=f"{j}/done")
        wait_for(lambda: count(s, "status_echo") == 20, what="rows before the outage")
        pg.cut()
        later = [f"w{i:03d}" for i in range(20, 120)]
        for j in later:  # the status queue fills while the database is away
            sender.send(EchoStatus(instance_id="i-1", stat=Stat.DONE, job_id=j), dedupe_key=f"{j}/done")
        end = time.monotonic() + OUTAGE_S
        while time.monotonic() < end:  # the outage lasts a minute; the poller threads must live through it
            assert all(t.is_alive() for t in poller._threads)
            time.sleep(1)
        pg.restore()
        wait_for(lambda: count(s, "status_echo") == 120, timeout=120, what="every row after the outage")
        assert query(s, "SELECT count(DISTINCT job_id) FROM status_echo") == [(120,)]
        sq = status_queue(s, "echo")
        wait_for(lambda: sq.depth() == {"visible": 0, "in_flight": 0, "delayed": 0}, what="status queue empty")
        assert dead_letter_queue(sq).depth()["visible"] == 0
    finally:
        poller.stop()
        pg.close()
        ns.close()
