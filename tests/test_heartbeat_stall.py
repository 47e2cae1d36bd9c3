"""SQS stalls (accepts connections, never answers) for a minute while a
3-minute job runs with a 120 s visibility timeout (issue 25): the heartbeat
keeps the job invisible, so a second worker on the same queue never gets it,
the job is done once, and every failed call is retried by its one owner
(retries.py) -- no layer retries underneath it."""

from __future__ import annotations

import logging
import re
import threading
import time
from urllib.parse import urlsplit

import pytest

from helpers import count, query, wait_for
from specfleet.local.stack import Namespace
from specfleet.pipelines import get_spec, job_queue
from specfleet.queues import Message, dead_letter_queue
from specfleet.runtime.middleware import Heartbeat, Metrics, Middleware, WorkerControl
from specfleet.runtime.worker import Worker
from specfleet.standins.faults import FaultProxy

VISIBILITY_S = 120
JOB_S = 180
STALL_S = 60


class Received(Middleware):
    """Every message this worker started a job for."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def before_process(self, worker: WorkerControl, message: Message) -> None:
        self.ids.append(message.message_id)


def hold_stall(seconds: float, threads: list[threading.Thread]) -> None:
    """Keep the stall in place for ``seconds`` (the length of the fault is
    the fault itself), checking every second that both workers live."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert all(t.is_alive() for t in threads), "a worker stopped during the stall"
        time.sleep(1)


@pytest.mark.slow
def test_a_60_s_sqs_stall_never_hands_a_running_job_to_a_second_worker(stack, caplog):
    ns = Namespace(stack, wait_time_s=1, visibility_timeout_s=VISIBILITY_S)
    moto_port = int(urlsplit(stack.endpoint_url).port or 0)
    proxy = FaultProxy(("127.0.0.1", moto_port)).start()
    workers: list[Worker] = []
    threads: list[threading.Thread] = []
    try:
        s = ns.settings
        q = job_queue(s, "echo")
        q.send_json([{"job_id": "long", "sleep_s": JOB_S}])
        # Both workers talk to SQS only through the proxy; the status poller does not.
        via = s.model_copy(update={"endpoint_url": proxy.url, "outage_backoff_max_s": 4.0})
        beat = Heartbeat(VISIBILITY_S)
        first = Worker(via.model_copy(update={"instance_id": "first"}), get_spec("echo"), concurrency=2,
                       middleware=[beat, Metrics()])
        received = Received()
        second = Worker(via.model_copy(update={"instance_id": "second"}), get_spec("echo"), concurrency=2,
                        middleware=[Heartbeat(VISIBILITY_S), Metrics(), received])
        workers = [first, second]
        with caplog.at_level(logging.DEBUG):  # botocore's retry handler logs each retry at DEBUG
            threads.append(threading.Thread(target=first.run, name="first", daemon=True))
            threads[0].start()
            wait_for(lambda: first.inflight(), timeout=60, what="the first worker to take the job")
            threads.append(threading.Thread(target=second.run, name="second", daemon=True))
            threads[1].start()
            wait_for(lambda: any("worker second consuming" in r.getMessage() for r in caplog.records),
                     timeout=60, what="the second worker to start consuming")
            started = time.monotonic()
            before = proxy.snapshot()
            proxy.stall()
            hold_stall(STALL_S, threads)
            during = proxy.snapshot().minus(before)
            proxy.restore()
            restored = time.monotonic()
            wait_for(lambda: count(s, "status_echo") >= 1, timeout=JOB_S + 90,
                     what="the job's status row after the stall")
            wait_for(lambda: q.depth() == {"visible": 0, "in_flight": 0, "delayed": 0}, timeout=60,
                     what="the job deleted")
            for w in workers:
                w.stop()
            for t in threads:
                t.join(60)
            assert not any(t.is_alive() for t in threads)

        # Done once, by the worker that took it; the other never received it.
        assert query(s, "SELECT job_id, stat, instance_id FROM status_echo") == [("long", 1, "first")]
        assert first.metrics().get("done") == 1
        assert received.ids == [] and "done" not in second.metrics()
        assert dead_letter_queue(q).depth()["visible"] == 0
        assert restored - started >= STALL_S

        text = [r.getMessage() for r in caplog.records]
        # One owner per failed call: botocore never retried underneath, and each
        # connection opened during the stall is one attempt some owner logged.
        assert not [t for t in text if "Retry needed" in t], "botocore retried under the call's owner"
        failed_beats = [t for t in text if t.startswith("heartbeat could not extend")]
        receive_failures = [t for t in text if re.match(r"lost \S+ during receive|\S+ still unreachable after", t)]
        assert receive_failures, "the receive loops met the stall"
        logged = len(failed_beats) + len(receive_failures)
        print(f"stall: {during.connections} connections opened, {len(failed_beats)} failed beats, "
              f"{len(receive_failures)} failed receives, {beat.beats} beats")
        # At most one call per loop was still waiting when the stall ended (two
        # receive loops, one heartbeat with jobs); each attempt is one connection at most.
        assert during.connections <= logged + 3, (during.connections, logged)
        # The stall cost the heartbeat at least one beat, and it said when the visibility lapses.
        assert beat.failures >= 1 and beat.beats >= 2
        assert len(failed_beats) == beat.failures
        assert all("the next beat in" in t and "the first visibility lapses at" in t for t in failed_beats)
        # A stall shorter than the visibility timeout minus one interval never lets it lapse.
        assert not [t for t in text if "visibility lapse" in t and t.startswith("job ")]
    finally:
        for w in workers:
            w.stop()
        proxy.close()
        ns.close()
