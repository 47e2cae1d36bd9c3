"""Queue.send with several batches in flight, and the embedded stack's SQS
at the scale of a hydrophone month (timings live in benchmarks/queues.py)."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import botocore.exceptions
import pytest

from specfleet.pipelines import job_queue
from specfleet.pipelines.hydrophone.models import HydroJob
from specfleet.queues import Queue

HYDROPHONE = "CE02SHBP/LJ01D/11-HYDBBA106"


def hydrophone_bodies(n: int) -> list[str]:
    """Jobs for ``n`` consecutive 5-minute files from 2017-10-09."""
    start = dt.datetime(2017, 10, 9)
    bodies = []
    for i in range(n):
        t = start + dt.timedelta(minutes=5 * i)
        url = (
            f"https://rawdata.oceanobservatories.org/files/{HYDROPHONE}/{t:%Y/%m/%d}/"
            f"OO-HYVM1--YDH-{t:%Y-%m-%dT%H:%M:%S}.000000.mseed"
        )
        bodies.append(HydroJob(file_url=url, hydrophone=HYDROPHONE).body())
    return bodies


def drain(queue: Queue, expected: int, receivers: int = 4) -> Counter[str]:
    """Receive + delete with ``receivers`` threads until ``expected`` came
    back or each thread saw the queue empty three polls running."""
    got: Counter[str] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        empty = 0
        try:
            for _ in range(expected):  # bounded: each useful poll takes up to 10
                with lock:
                    if sum(got.values()) >= expected:
                        return
                batch = queue.receive(10, wait_s=1, visibility_s=300)
                if not batch:
                    empty += 1
                    if empty >= 3:
                        return
                    continue
                empty = 0
                assert queue.delete(batch) == []
                with lock:
                    got.update(m.body for m in batch)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(receivers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    return got


def test_send_keeps_batches_in_flight_reports_progress_and_delivers_all(settings):
    queue = job_queue(settings, "hydrophone")
    bodies = hydrophone_bodies(95)
    progress: list[tuple[int, str]] = []
    sent = queue.send(bodies, on_sent=lambda n: progress.append((n, threading.current_thread().name)))
    assert sent == 95
    assert sorted(n for n, _ in progress) == [5] + [10] * 9
    assert {name for _, name in progress} == {threading.current_thread().name}  # called in the caller's thread
    got = drain(queue, 95)
    assert sorted(got) == sorted(bodies) and set(got.values()) == {1}


def test_send_one_at_a_time_delivers_the_same(settings):
    queue = job_queue(settings, "hydrophone")
    bodies = hydrophone_bodies(25)
    assert queue.send(iter(bodies), senders=1) == 25
    got = drain(queue, 25, receivers=1)
    assert sorted(got) == sorted(bodies) and set(got.values()) == {1}


def test_send_raises_when_sqs_refuses_a_batch(settings):
    queue = job_queue(settings, "hydrophone")
    bodies = hydrophone_bodies(40)
    bodies[25] = "a NUL \x00 SQS refuses"  # InvalidMessageContents: the embedded stack refuses the batch
    with pytest.raises(botocore.exceptions.ClientError):
        queue.send(bodies)
    # The refused batch (messages 20-29) never arrives; others may have.
    got = drain(queue, 40)
    assert not set(got) & set(bodies[20:30])
    assert set(got.values()) <= {1}


def test_send_refuses_a_message_over_1_mib_before_sqs_sees_it(settings):
    queue = job_queue(settings, "hydrophone")
    bodies = hydrophone_bodies(40)
    bodies[25] = "x" * (1024 * 1024 + 1)  # over SQS's 1 MiB message limit
    with pytest.raises(ValueError, match="message 25 is 1,048,577 bytes"):
        queue.send(bodies)
    got = drain(queue, 40)
    assert not set(got) & set(bodies[20:30])  # its batch is never sent
    assert set(got.values()) <= {1}


@pytest.mark.slow
def test_ten_thousand_jobs_are_counted_and_come_back_exactly_once(settings):
    queue = job_queue(settings, "hydrophone")
    bodies = hydrophone_bodies(10_000)
    assert len(set(bodies)) == 10_000
    progress: list[int] = []
    assert queue.send(bodies, on_sent=progress.append) == 10_000
    assert sum(progress) == 10_000
    assert queue.depth() == {"visible": 10_000, "in_flight": 0, "delayed": 0}

    got = drain(queue, 10_000)
    assert len(got) == 10_000
    assert [body for body, times in got.items() if times != 1] == []
    assert set(got) == set(bodies)
    assert queue.depth() == {"visible": 0, "in_flight": 0, "delayed": 0}
    assert queue.receive(10, wait_s=1) == []
