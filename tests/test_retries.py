"""The retry table (retries.py) as the clients see it, and the heartbeat's
own retrying and warnings, without a stack: one beat at a time."""

from __future__ import annotations

import logging
import threading
import time

import botocore.exceptions
import pytest

from helpers import wait_for
from specfleet.aws import client
from specfleet.queues import Message
from specfleet.retries import (
    CLASSES,
    CONTROL,
    HEARTBEAT,
    RECEIVE,
    S3,
    SETTLE,
    heartbeat_deadline_s,
    heartbeat_interval_s,
)
from specfleet.runtime.middleware import Heartbeat
from specfleet.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return Settings(endpoint_url="http://127.0.0.1:9", wait_time_s=20, visibility_timeout_s=120)


def test_each_call_class_gets_its_own_client_with_its_attempts_and_timeouts(settings: Settings) -> None:
    configs = {c.name: client("sqs", settings, call=c).meta.config for c in CLASSES}
    # Calls whose owner is a loop of ours: botocore makes one attempt.
    for call in (RECEIVE, HEARTBEAT, SETTLE):
        assert configs[call.name].retries == {"mode": "standard", "total_max_attempts": 1}
    assert configs[CONTROL.name].retries["total_max_attempts"] == configs[S3.name].retries["total_max_attempts"] > 1
    assert configs[RECEIVE.name].read_timeout == settings.wait_time_s + 10  # the long poll and a margin
    beat = configs[HEARTBEAT.name]
    # A whole attempt ends within half an interval, before the next beat is due.
    assert beat.connect_timeout + beat.read_timeout <= heartbeat_interval_s(120) / 2
    assert client("sqs", settings, call=SETTLE) is client("sqs", settings, call=SETTLE)
    assert client("s3", settings).meta.config.retries["total_max_attempts"] == S3.attempts


@pytest.mark.parametrize("visibility_s", [30, 60, 120, 300, 900, 43200])
def test_a_stall_shorter_than_visibility_minus_one_interval_leaves_time_for_a_beat(visibility_s: int) -> None:
    interval = heartbeat_interval_s(visibility_s)
    deadline = heartbeat_deadline_s(visibility_s)
    # The stall ends before visibility - interval; the next beat starts within one
    # deadline after it and takes at most one deadline: it lands before the lapse.
    assert (visibility_s - interval) + 2 * deadline <= visibility_s
    assert deadline <= interval


class FakeWorker:
    """What the heartbeat sees of a worker: in-flight messages and one call."""

    def __init__(self, messages: list[Message]) -> None:
        self.stopping = threading.Event()
        self.messages = messages
        self.error: Exception | None = None
        self.calls = 0

    def inflight(self) -> list[Message]:
        return list(self.messages)

    def extend_visibility(self, messages: list[Message], seconds: int) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error

    def stop(self, banned: bool = False) -> None: ...

    def report_banned(self, message: Message, reason: str) -> None: ...


def message(message_id: str, age_s: float) -> Message:
    return Message(message_id, "r-" + message_id, "{}", received_at=time.monotonic() - age_s)


def test_a_failed_beat_is_retried_one_deadline_later_and_names_the_lapse(caplog: pytest.LogCaptureFixture) -> None:
    beat = Heartbeat(120)
    fresh, late, lapsed = message("fresh", 5), message("late", 110), message("lapsed", 130)
    worker = FakeWorker([fresh])
    worker.error = botocore.exceptions.ReadTimeoutError(endpoint_url="http://127.0.0.1:9/")
    with caplog.at_level(logging.INFO, logger="specfleet.runtime"):
        beat.poll(worker)
        assert beat.next_wait_s() == beat.deadline_s == 20 and beat.failures == 1
        [line] = [r.getMessage() for r in caplog.records]
        assert line.startswith("heartbeat could not extend 1 job(s) (ReadTimeoutError")
        assert "the next beat in 20 s is its retry" in line and "(in 115 s)" in line
        caplog.clear()
        worker.messages = [fresh, late, lapsed]
        beat.poll(worker)
        lines = [r.getMessage() for r in caplog.records]
        assert any(t.startswith("job late: its visibility lapses at") and "before the next beat can land" in t
                   for t in lines)
        assert any(t.startswith("job lapsed: its visibility lapsed at") and "(10 s ago)" in t for t in lines)
        assert not any(t.startswith("job fresh") for t in lines)
        caplog.clear()
        worker.error = None
        beat.poll(worker)
        assert beat.next_wait_s() == beat.interval_s == 40 and beat.beats == 1
        assert [r.getMessage() for r in caplog.records] == ["heartbeat extended 3 job(s) again after 2 failed beat(s)"]
    assert worker.calls == 3  # one attempt per beat: no retry inside a beat


def test_the_heartbeat_beats_at_a_fixed_rate_and_faster_while_failing() -> None:
    beat = Heartbeat(120, interval_s=0.4)
    beat.deadline_s = 0.1  # scaled down: the timing, not the numbers, is what this checks
    worker = FakeWorker([message("m", 0)])
    worker.error = botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:9/")
    beat.before_worker_start(worker)
    try:
        started = time.monotonic()
        wait_for(lambda: worker.calls >= 6, timeout=10, interval=0.02, what="six beats")
        failing_s = time.monotonic() - started
        # First beat after one interval, then one every deadline: far sooner than an interval each.
        assert failing_s < 0.4 + 5 * 0.4
    finally:
        beat.after_worker_stop(worker)
