"""Stopping a worker while its long poll is open (issue 25).

SQS returns a message made visible (ChangeMessageVisibility 0) during an
open long poll to that very poll. A worker that handed its running job back
as soon as it was told to stop, with its own long poll still open, got the
job straight back, handed it back again, and the job reached the next worker
with two of its receives spent. The worker now stops receiving first and
hands the job back only once its last poll has returned.

The first test checks that the embedded SQS behaves as SQS does here, so the
second can fail the way it would on AWS. Which request is the open poll is
told from a loopback proxy's request count: nothing else of the worker's
talks to SQS while its job runs (no heartbeat, nothing to settle).
"""

from __future__ import annotations

import dataclasses
import threading
from urllib.parse import urlsplit

import pytest

from helpers import count, wait_for
from specfleet.jobs import Job
from specfleet.local.stack import Namespace
from specfleet.pipelines import get_spec, job_queue
from specfleet.pipelines.echo import EchoJob, EchoStatus
from specfleet.queues import Queue
from specfleet.runtime import JobContext, Metrics, Ref, Transient, Worker
from specfleet.settings import Settings
from specfleet.standins.faults import FaultProxy
from specfleet.status import Stat, StatusRecord


def _proxy_to(settings: Settings) -> FaultProxy:
    return FaultProxy(("127.0.0.1", int(urlsplit(settings.endpoint_url).port or 0)))


def _posts(proxy: FaultProxy) -> int:
    return proxy.snapshot().requests["POST"]


def test_a_message_made_visible_reaches_a_long_poll_already_open(settings: Settings) -> None:
    jobs = job_queue(settings, "echo")
    jobs.send_json([{"job_id": "back"}])
    [taken] = jobs.receive(1, wait_s=1, visibility_s=300)
    with _proxy_to(settings) as proxy:
        polling = Queue(settings.model_copy(update={"endpoint_url": proxy.url}), jobs.name)
        _ = polling.url  # resolved now: the poll is the next request through the proxy
        before = _posts(proxy)
        got = []
        poll = threading.Thread(target=lambda: got.extend(polling.receive(1, wait_s=10)))
        poll.start()
        wait_for(lambda: _posts(proxy) > before, timeout=10, interval=0.01, what="the long poll to reach SQS")
        jobs.change_visibility([taken], 0)
        poll.join(20)
    # Not after the poll's 10 s with nothing: the open poll got it, on its second receive.
    assert [(m.message_id, m.receive_count) for m in got] == [(taken.message_id, 2)]


class _Recording:
    """The echo handler, recording which worker started the job on which
    receive; on the worker named ``holder`` the job runs until cancelled."""

    def __init__(self, holder: str):
        self.holder = holder
        self.started: list[tuple[str, int]] = []
        self.holding = threading.Event()

    def handle(self, job: EchoJob, ctx: JobContext) -> None:
        self.started.append((ctx.instance_id, ctx.message.receive_count))
        if ctx.instance_id == self.holder:
            self.holding.set()
            if ctx.cancelled.wait(120):
                raise Transient("worker shutting down")
        ctx.report(EchoStatus(instance_id=ctx.instance_id, stat=Stat.DONE, job_id=job.job_id), key="done")


def _failure(job: Job | None, ctx: JobContext, stat: Stat) -> StatusRecord:
    return EchoStatus(instance_id=ctx.instance_id, stat=stat, job_id="x")


@pytest.mark.slow
def test_stopping_with_a_long_poll_open_hands_the_job_on_with_one_receive_spent(namespace: Namespace) -> None:
    s = namespace.settings
    jobs = job_queue(s, "echo")
    jobs.send_json([{"job_id": "long"}])
    handler = _Recording(holder="stopping")
    spec = dataclasses.replace(get_spec("echo"), handler=Ref(handler.handle), failure_status=_failure)
    with _proxy_to(s) as proxy:
        # Two slots, one job: while it runs, the worker long-polls for another (5 s).
        stopping = Worker(s.model_copy(update={"endpoint_url": proxy.url, "instance_id": "stopping",
                                               "wait_time_s": 5, "visibility_timeout_s": 300, "drain_s": 0}),
                          spec, concurrency=2, middleware=[Metrics()])
        codes: list[int] = []
        thread = threading.Thread(target=lambda: codes.append(stopping.run()))
        thread.start()
        try:
            assert handler.holding.wait(60), "the stopping worker never started the job"
            before = _posts(proxy)
            wait_for(lambda: _posts(proxy) > before, timeout=30, interval=0.01, what="a long poll open")
            stopping.stop()  # what SIGTERM does
        finally:
            thread.join(60)
    assert codes == [0]
    assert stopping.handed_back == 1 and stopping.metrics().get("released") == 1
    assert handler.started == [("stopping", 1)]  # never received again by the worker that stopped

    taker = Worker(s.model_copy(update={"instance_id": "taker", "wait_time_s": 1}), spec, concurrency=1, max_jobs=1,
                   middleware=[Metrics()])
    assert taker.run() == 0
    # SQS's ApproximateReceiveCount: one receive by the worker that stopped, one by the taker.
    assert handler.started == [("stopping", 1), ("taker", 2)]
    assert taker.metrics().get("done") == 1
    wait_for(lambda: count(s, "status_echo") == 1, what="the job's status row")
    assert count(s, "status_echo", "instance_id = 'taker' AND stat = 1") == 1
    assert jobs.depth() == {"visible": 0, "in_flight": 0, "delayed": 0}
