"""SQS's size and batch limits (issue 25): the embedded stack refuses what
AWS refuses, with AWS's error codes, and specfleet's own senders stay within
the limits.

The limits, from the Amazon SQS API reference and the SQS developer guide's
message quotas: a message -- body plus each attribute's name, type and value,
in UTF-8 bytes -- is at most 1 MiB (1,048,576 bytes; 256 KiB before AWS
raised it in August 2025), and so is the sum of one SendMessageBatch's
messages (``BatchRequestTooLong``); at most 10 attributes; a batch request
(SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch) has 1 to
10 entries (``EmptyBatchRequest``, ``TooManyEntriesInBatchRequest``) whose Ids
are 1 to 80 of ``A-Z a-z 0-9 - _`` (``InvalidBatchEntryId``) and distinct
(``BatchEntryIdsNotDistinct``); ReceiveMessage takes MaxNumberOfMessages 1 to
10, WaitTimeSeconds 0 to 20 and VisibilityTimeout 0 to 43,200. Over the JSON
protocol AWS names the batch errors ``AWS.SimpleQueueService.<name>`` (its
``x-amzn-query-error`` header; LocalStack answers the same).

moto alone counts a body's characters, not bytes, leaves the attributes out,
takes 11 attributes, a negative VisibilityTimeout, and a Delete or
ChangeMessageVisibility batch of any size with repeated or ill-formed Ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from specfleet.aws import error_code
from specfleet.local.stack import Namespace, StackState
from specfleet.pipelines import get_spec
from specfleet.queues import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, OutgoingMessage, _batches, ensure_queue
from specfleet.runtime import StatusSender
from specfleet.settings import Settings

MiB = 1_048_576


@pytest.fixture
def sqs(stack: StackState) -> Iterator[tuple[Any, str]]:
    """A raw boto3 SQS client on the stack and a fresh queue's URL."""
    client = boto3.client("sqs", endpoint_url=stack.endpoint_url, region_name=stack.region)
    url = client.create_queue(QueueName=f"limits-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    try:
        yield client, url
    finally:
        client.delete_queue(QueueUrl=url)


def refused(call: Callable[[], Any]) -> tuple[str, str]:
    """(error code, message) of a call that must fail."""
    with pytest.raises(ClientError) as err:
        call()
    return error_code(err.value), str(err.value.response["Error"].get("Message", ""))


def visible(client: Any, url: str) -> int:
    return int(client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
               ["Attributes"]["ApproximateNumberOfMessages"])


def test_limits_are_aws_s_one_mib():
    assert MAX_MESSAGE_BYTES == MAX_BATCH_BYTES == MiB


# --- message size: bytes, body and attributes ------------------------------------
def test_a_message_of_exactly_one_mib_is_taken_one_byte_more_is_refused(sqs):
    client, url = sqs
    client.send_message(QueueUrl=url, MessageBody="x" * MiB)
    code, message = refused(lambda: client.send_message(QueueUrl=url, MessageBody="x" * (MiB + 1)))
    assert code == "InvalidParameterValue"
    assert "Message must be shorter than 1048576 bytes" in message
    assert visible(client, url) == 1


def test_size_counts_utf8_bytes_not_characters(sqs):
    client, url = sqs
    body = "é" * (MiB // 2 + 1)  # 524,289 characters, 1,048,578 bytes: moto alone takes it
    assert refused(lambda: client.send_message(QueueUrl=url, MessageBody=body))[0] == "InvalidParameterValue"
    client.send_message(QueueUrl=url, MessageBody="é" * (MiB // 2))  # exactly 1 MiB of bytes
    assert visible(client, url) == 1


def test_attributes_count_towards_the_size(sqs):
    client, url = sqs
    name, data_type, value = "reason", "String", "y" * 100
    body = "x" * (MiB - len(name) - len(data_type) - len(value))
    attrs = {name: {"DataType": data_type, "StringValue": value}}
    client.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attrs)
    code, _ = refused(lambda: client.send_message(QueueUrl=url, MessageBody=body + "x", MessageAttributes=attrs))
    assert code == "InvalidParameterValue"
    binary = {"blob": {"DataType": "Binary", "BinaryValue": b"\x00" * 10}}
    code, _ = refused(lambda: client.send_message(QueueUrl=url, MessageBody="x" * (MiB - 15), MessageAttributes=binary))
    assert code == "InvalidParameterValue"  # 1,048,561 + "blob" + "Binary" + 10 bytes
    assert visible(client, url) == 1


def test_at_most_ten_attributes(sqs):
    client, url = sqs
    attrs = {f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)}
    code, message = refused(lambda: client.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=attrs))
    assert (code, message) == ("InvalidParameterValue", "Number of message attributes [11] exceeds the allowed maximum [10].")
    attrs.pop("a10")
    client.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=attrs)
    assert visible(client, url) == 1


# --- batches ------------------------------------------------------------------------
def test_a_send_batch_over_one_mib_in_total_fails_whole(sqs):
    client, url = sqs
    half = "é" * (MiB // 4 + 1)  # 262,145 characters, 524,290 bytes: two are over 1 MiB, moto alone takes them
    code, message = refused(lambda: client.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "a", "MessageBody": half}, {"Id": "b", "MessageBody": half}]))
    assert code == "AWS.SimpleQueueService.BatchRequestTooLong"
    assert "1048580 bytes" in message
    assert visible(client, url) == 0, "nothing of the refused batch was taken"


def test_an_entry_over_the_queue_s_own_limit_fails_alone(stack: StackState):
    """A queue's MaximumMessageSize may be below 1 MiB: a batch entry over it
    fails alone and the others are sent (AWS's answer, quoted in
    localstack/localstack#8570); the same message sent alone is refused."""
    client = boto3.client("sqs", endpoint_url=stack.endpoint_url, region_name=stack.region)
    url = client.create_queue(QueueName=f"small-{uuid.uuid4().hex[:12]}", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    try:
        answer = client.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "fits", "MessageBody": "x" * 1000, "MessageAttributes": {"a": {"DataType": "String", "StringValue": "b" * 17}}},
            {"Id": "over", "MessageBody": "x" * 1000, "MessageAttributes": {"a": {"DataType": "String", "StringValue": "b" * 18}}},
        ])
        assert [e["Id"] for e in answer["Successful"]] == ["fits"]  # 1000 + 1 + 6 + 17 = 1024 bytes
        assert [(e["Id"], e["Code"], e["SenderFault"]) for e in answer["Failed"]] == [("over", "InvalidParameterValue", True)]
        assert refused(lambda: client.send_message(QueueUrl=url, MessageBody="é" * 513))[0] == "InvalidParameterValue"
        assert visible(client, url) == 1
    finally:
        client.delete_queue(QueueUrl=url)


BATCH_CALLS: dict[str, Callable[[Any, str, list[str]], Any]] = {
    "SendMessageBatch": lambda c, url, ids: c.send_message_batch(
        QueueUrl=url, Entries=[{"Id": i, "MessageBody": f"m{n}"} for n, i in enumerate(ids)]),
    "DeleteMessageBatch": lambda c, url, ids: c.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": i, "ReceiptHandle": f"handle-{n}"} for n, i in enumerate(ids)]),
    "ChangeMessageVisibilityBatch": lambda c, url, ids: c.change_message_visibility_batch(
        QueueUrl=url, Entries=[{"Id": i, "ReceiptHandle": f"handle-{n}", "VisibilityTimeout": 5}
                               for n, i in enumerate(ids)]),
}


@pytest.mark.parametrize("action", sorted(BATCH_CALLS))
def test_batch_entry_rules_hold_for_every_batch_action(sqs, action):
    client, url = sqs
    call = BATCH_CALLS[action]
    cases = {
        "AWS.SimpleQueueService.EmptyBatchRequest": [],
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest": [f"e{i}" for i in range(11)],
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct": ["same", "same"],
    }
    for expected, ids in cases.items():
        assert refused(lambda ids=ids: call(client, url, ids))[0] == expected, (action, ids)
    for bad in ["a.b", "sp ace", "é", "x" * 81]:
        assert refused(lambda bad=bad: call(client, url, [bad]))[0] == "AWS.SimpleQueueService.InvalidBatchEntryId", bad
    # Ten well-formed Ids go through (the fake receipt handles fail entry by entry, not the request).
    answer = call(client, url, [f"ok_{i}-{'x' * 70}" for i in range(10)])
    assert len(answer.get("Successful", [])) + len(answer.get("Failed", [])) == 10
    assert visible(client, url) == (10 if action == "SendMessageBatch" else 0)


# --- receive and visibility parameters ------------------------------------------------
@pytest.mark.parametrize(("parameter", "value"), [
    ("MaxNumberOfMessages", 0), ("MaxNumberOfMessages", 11),
    ("WaitTimeSeconds", -1), ("WaitTimeSeconds", 21),
    ("VisibilityTimeout", -1), ("VisibilityTimeout", 43201),
])
def test_receive_parameters_out_of_range_are_refused(sqs, parameter, value):
    client, url = sqs
    client.send_message(QueueUrl=url, MessageBody="m")
    code, _ = refused(lambda: client.receive_message(QueueUrl=url, **{parameter: value}))
    assert code == "InvalidParameterValue"
    assert visible(client, url) == 1, "the refused receive took nothing"


def test_visibility_changes_out_of_range_are_refused(sqs):
    client, url = sqs
    client.send_message(QueueUrl=url, MessageBody="m")
    handle = client.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"][0]["ReceiptHandle"]
    for seconds in (-1, 43201):
        code, _ = refused(lambda s=seconds: client.change_message_visibility(
            QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=s))
        assert code == "InvalidParameterValue", seconds
        batch = client.change_message_visibility_batch(
            QueueUrl=url, Entries=[{"Id": "m", "ReceiptHandle": handle, "VisibilityTimeout": seconds}])
        assert [(f["Id"], f["Code"], f["SenderFault"]) for f in batch["Failed"]] == [("m", "InvalidParameterValue", True)]
    client.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    assert visible(client, url) == 1


# --- specfleet's own senders ----------------------------------------------------------
def test_batches_split_by_bytes_as_well_as_by_count():
    big = OutgoingMessage("é" * 200_000, {"reason": "r" * 1000})  # 400,000 + 6 + 6 + 1,000 bytes: two fit, three do not
    sizes = [[m.size for m in batch] for batch in _batches([big] * 5 + ["s"] * 12)]
    assert all(sum(batch) <= MAX_BATCH_BYTES and len(batch) <= 10 for batch in sizes)
    assert [len(batch) for batch in sizes] == [2, 2, 10, 3]
    assert sizes[0] == [401_012, 401_012]


def test_a_message_sqs_cannot_take_is_refused_before_anything_is_sent():
    ok = OutgoingMessage("x" * (MiB - 12), {"a": "bcdef"})  # 1,048,564 + 1 + 6 + 5 bytes: exactly 1 MiB
    assert ok.size == MiB
    assert [len(b) for b in _batches(["first", ok, "last"])] == [1, 1, 1]  # each pair is over 1 MiB
    batches = _batches(["first", ok, OutgoingMessage("é" * (MiB // 2 + 1)), "never"])
    assert [m.body for m in next(batches)] == ["first"]  # full: "first" and ok are over 1 MiB together
    with pytest.raises(ValueError, match=r"message 2 is 1,048,578 bytes .* at most 1,048,576"):
        next(batches)  # raised as soon as it is read: the batch held with ok is not sent either


def test_queue_send_gets_large_messages_through_the_strict_stack(settings: Settings):
    queue = ensure_queue(settings, settings.queue_prefix + "large")
    bodies = [f"{i}:" + "é" * 150_000 for i in range(7)]  # 300 kB each: 3 per batch at most, by bytes
    assert queue.send(bodies) == 7
    got: list[str] = []
    for _ in range(20):  # bounded: seven messages
        got += [m.body for m in queue.receive(10, wait_s=1)]
        if len(got) == 7:
            break
    assert sorted(got) == sorted(bodies)


def test_status_batches_near_the_limit_all_arrive(stack: StackState):
    ns = Namespace(stack, poller=False)  # no poller: the messages stay on the queue to be counted
    try:
        sender = StatusSender(ns.settings, get_spec("download"))
        messages = [OutgoingMessage(f"s{i}::" + "ü" * 120_000, {"reason": "r" * 500}) for i in range(10)]
        sender.send_many(messages)  # one status batch of ten, 2.4 MB: three SendMessageBatch calls
        assert sender.queue.depth()["visible"] == 10
    finally:
        ns.close()
