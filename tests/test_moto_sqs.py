"""specfleet.local.moto_sqs gives the same answers as moto's own SQS backend.

Each scenario runs on moto's ``SQSBackend`` and on ``IndexedSQSBackend``
in-process (each in its own fake account, registered in moto's
``sqs_backends`` so dead-letter queues resolve) and the observations must be
equal. The concurrency tests check what moto alone does not promise: one
message is never handed to two receivers at once.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.sqs.exceptions import SQSException
from moto.sqs.models import SQSBackend, sqs_backends

from helpers import wait_for
from specfleet.aws import error_code
from specfleet.local.moto_sqs import IndexedQueue, IndexedSQSBackend
from specfleet.queues import ensure_queue

REGION = "us-east-1"


def new_backend(cls: type[SQSBackend]) -> SQSBackend:
    account = str(uuid.uuid4().int)[:12]
    backend = cls(REGION, account)
    sqs_backends[account][REGION] = backend
    return backend


def counts(backend: SQSBackend, queue: str) -> tuple[int, int, int]:
    a = backend.get_queue_attributes(queue, ["All"])
    return (
        a["ApproximateNumberOfMessages"],
        a["ApproximateNumberOfMessagesNotVisible"],
        a["ApproximateNumberOfMessagesDelayed"],
    )


def error(call: Callable[[], Any]) -> str:
    try:
        call()
    except SQSException as err:
        return err.code
    return "no error"


def on_both(scenario: Callable[[SQSBackend], list[Any]]) -> tuple[list[Any], list[Any]]:
    return scenario(new_backend(SQSBackend)), scenario(new_backend(IndexedSQSBackend))


def lifecycle(b: SQSBackend) -> list[Any]:
    seen: list[Any] = []
    dlq = b.create_queue("jobs_dlq")
    b.create_queue(
        "jobs",
        VisibilityTimeout="30",
        RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq.queue_arn, "maxReceiveCount": "2"}),
    )
    for i in range(25):
        b.send_message("jobs", f"job-{i:02d}")
    b.send_message("jobs", "later-1", delay_seconds=60)
    b.send_message("jobs", "later-2", delay_seconds=60)
    seen.append(("sent", counts(b, "jobs")))

    first = b.receive_message("jobs", 10, 0, 30)
    seen.append(("received", [m.body for m in first], [m.approximate_receive_count for m in first]))
    seen.append(("after receive", counts(b, "jobs")))

    for m in first[:3]:
        b.delete_message("jobs", m.receipt_handle)
    b.delete_message("jobs", first[0].receipt_handle)  # a second delete is accepted
    seen.append(("after deletes", counts(b, "jobs")))
    seen.append(("bogus handle", error(lambda: b.delete_message("jobs", "not-a-handle"))))
    seen.append(("bogus visibility", error(lambda: b.change_message_visibility("jobs", "not-a-handle", 0))))

    b.change_message_visibility("jobs", first[3].receipt_handle, 0)
    b.change_message_visibility("jobs", first[4].receipt_handle, 0)
    seen.append(("two handed back", counts(b, "jobs")))

    # The handed-back pair is received again (second receive), then once
    # more: past maxReceiveCount they go to the dead-letter queue instead.
    again = b.receive_message("jobs", 2, 0, 30)
    seen.append(("again", [m.body for m in again], [m.approximate_receive_count for m in again]))
    old_handle = first[3].receipt_handle
    for m in again:
        b.change_message_visibility("jobs", m.receipt_handle, 0)
    third = b.receive_message("jobs", 10, 0, 30)
    seen.append(("third", sorted(m.body for m in third)))
    seen.append(("source", counts(b, "jobs"), "dlq", counts(b, "jobs_dlq")))
    seen.append(("old handle of a dead-lettered message", error(lambda: b.delete_message("jobs", old_handle))))

    # A message's older receipt handle still deletes it (moto's rule).
    b.change_message_visibility("jobs", third[0].receipt_handle, 0)
    newest = b.receive_message("jobs", 1, 0, 30)
    seen.append(("newest", [m.body for m in newest]))
    b.delete_message("jobs", third[0].receipt_handle)
    seen.append(("deleted by an older handle", counts(b, "jobs")))

    seen.append(("some attributes", sorted(b.get_queue_attributes("jobs", ["ApproximateNumberOfMessages", "VisibilityTimeout"]).items())))
    seen.append(("unknown attribute", error(lambda: b.get_queue_attributes("jobs", ["Nope"]))))
    b.purge_queue("jobs")
    seen.append(("purged", counts(b, "jobs")))
    return seen


def test_a_queue_lifecycle_gives_moto_s_answers():
    moto_says, indexed_says = on_both(lifecycle)
    assert indexed_says == moto_says
    # and the scenario really exercised something
    assert moto_says[0] == ("sent", (25, 0, 2))
    assert ("two handed back", (17, 5, 2)) in moto_says


def queue_attributes(b: SQSBackend) -> list[Any]:
    dlq = b.create_queue("d")
    b.create_queue("q", VisibilityTimeout="45", RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq.queue_arn, "maxReceiveCount": "3"}))
    b.create_queue("f.fifo", FifoQueue="true", ContentBasedDeduplication="true", KmsMasterKeyId="k")
    out = []
    for name in ("d", "q", "f.fifo"):
        attrs = dict(b.get_queue_attributes(name, ["All"]))
        del attrs["CreatedTimestamp"], attrs["LastModifiedTimestamp"]
        out.append(json.dumps(attrs, sort_keys=True).replace(b.account_id, "ACCOUNT"))
    out.append(error(lambda: b.create_queue("q", VisibilityTimeout="46")))  # exists with other attributes
    out.append(type(b.create_queue("q", VisibilityTimeout="45")).__name__.replace("Indexed", ""))
    # FIFO with content-based deduplication drops a duplicate body.
    b.send_message("f.fifo", "same", group_id="g")
    b.send_message("f.fifo", "same", group_id="g")
    out.append(counts(b, "f.fifo"))
    return out


def test_queue_attributes_and_fifo_dedup_are_moto_s():
    moto_says, indexed_says = on_both(queue_attributes)
    assert indexed_says == moto_says
    assert moto_says[-1] == (1, 0, 0)


@pytest.mark.slow  # fast lane: over ~2 s (the full suite runs it)
@pytest.mark.parametrize("kind", ["in flight", "delayed"])
def test_counts_follow_the_clock_when_a_message_becomes_visible(kind):
    # The indexed counts are cached until the next change in time; moto
    # recomputes them on every look. Both must agree once the second passes.
    outcomes = []
    for cls in (SQSBackend, IndexedSQSBackend):
        b = new_backend(cls)
        b.create_queue("q")
        if kind == "in flight":
            b.send_message("q", "x")
            assert [m.body for m in b.receive_message("q", 1, 0, 1)] == ["x"]
            assert counts(b, "q") == (0, 1, 0)
        else:
            b.send_message("q", "x", delay_seconds=1)
            assert counts(b, "q") == (0, 0, 1)
        wait_for(lambda b=b: counts(b, "q") == (1, 0, 0), timeout=10, what=f"{kind} message visible again")
        outcomes.append([m.body for m in b.receive_message("q", 10, 0, 30)])
    assert outcomes == [["x"], ["x"]]


def test_concurrent_receivers_and_senders_each_message_exactly_once():
    b = new_backend(IndexedSQSBackend)
    queue = b.create_queue("q", VisibilityTimeout="300")
    assert isinstance(queue, IndexedQueue)
    n_senders, per_sender, n_receivers = 2, 1000, 4
    got: Counter[str] = Counter()
    lock = threading.Lock()
    sending = threading.Event()
    sending.set()
    errors: list[BaseException] = []

    def send(k: int) -> None:
        try:
            for i in range(per_sender):
                b.send_message("q", f"{k}-{i}")
        except BaseException as err:
            errors.append(err)

    def receive() -> None:
        try:
            deadline = time.monotonic() + 120
            for _ in range(1_000_000):  # bounded in count and time; empty polls while senders lag are fine
                if time.monotonic() > deadline:
                    return
                batch = b.receive_message("q", 10, 0, 300)
                if not batch:
                    if not sending.is_set():
                        return
                    continue
                for m in batch:
                    b.delete_message("q", m.receipt_handle)
                with lock:
                    got.update(m.body for m in batch)
        except BaseException as err:
            errors.append(err)

    senders = [threading.Thread(target=send, args=(k,)) for k in range(n_senders)]
    receivers = [threading.Thread(target=receive) for _ in range(n_receivers)]
    for t in senders + receivers:
        t.start()
    for t in senders:
        t.join(60)
    sending.clear()
    for t in receivers:
        t.join(60)
    assert not errors, errors
    assert not any(t.is_alive() for t in senders + receivers)
    expected = {f"{k}-{i}" for k in range(n_senders) for i in range(per_sender)}
    assert set(got) == expected
    assert [body for body, times in got.items() if times > 1] == []
    assert counts(b, "q") == (0, 0, 0)
    assert queue._messages == []


def test_a_second_purge_within_60_s_is_refused_as_on_aws(monkeypatch):
    # moto lets this environment variable switch the check off; AWS cannot.
    monkeypatch.setenv("MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR", "false")
    b = new_backend(IndexedSQSBackend)
    b.create_queue("jobs")
    b.purge_queue("jobs")
    b.send_message("jobs", "kept")
    assert error(lambda: b.purge_queue("jobs")) == "AWS.SimpleQueueService.PurgeQueueInProgress"
    assert counts(b, "jobs")[0] == 1  # the refused purge removed nothing
    b.get_queue("jobs").last_purged_at -= 60  # as if a minute had passed
    b.purge_queue("jobs")
    assert counts(b, "jobs")[0] == 0


def test_the_stack_refuses_a_second_purge_within_60_s(settings):
    q = ensure_queue(settings, settings.queue_prefix + "purged_twice")
    q.purge()
    with pytest.raises(ClientError) as refused:
        q.purge()
    assert "PurgeQueueInProgress" in error_code(refused.value)
    assert refused.value.response["Error"]["Message"] == (
        f"Only one PurgeQueue operation on {q.name} is allowed every 60 seconds.")
