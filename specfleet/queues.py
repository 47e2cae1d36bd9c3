"""SQS queues: creation with dead-letter queues, batch send/receive/delete,
visibility changes and depth. The only module that speaks SQS.

Each call goes out on its call class's client (``retries.py``: who retries
it and its timeouts): receives as ``RECEIVE``, deletes as ``SETTLE``,
visibility changes and sends as the caller says, the rest as ``CONTROL``.
None of them retries on its own."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from .aws import client
from .retries import CONTROL, RECEIVE, SETTLE, CallClass
from .settings import Settings

BATCH = 10  # SQS's limit for batch send/receive/delete
#: SQS's size limits (Amazon SQS API reference, SendMessage, SendMessageBatch
#: and MessageAttributeValue; AWS raised both from 256 KiB to 1 MiB in
#: August 2025): a message -- its body and each attribute's name, type and
#: value, in UTF-8 bytes -- is at most 1 MiB, and so is the sum of the
#: messages of one SendMessageBatch. A message has at most 10 attributes.
MAX_MESSAGE_BYTES = 1_048_576
MAX_BATCH_BYTES = 1_048_576
MAX_ATTRIBUTES = 10
DLQ_SUFFIX = "_dlq"
#: Attributes every queue gets, here and in the CloudFormation template and
#: elasticmq.conf (both rendered by ``specfleet infra render`` from these).
LONG_POLL_S = 20
RETENTION_S = 4 * 24 * 3600
DLQ_RETENTION_S = 14 * 24 * 3600
#: SQS refuses a second PurgeQueue on a queue within this many seconds
#: (PurgeQueueInProgress).
PURGE_INTERVAL_S = 60
#: Batches one ``Queue.send`` keeps in flight at once (see ``Queue.send``).
SENDERS = 4


#: Batch-entry error codes that are the sender's fault whatever ``SenderFault``
#: says: sending the same entry again cannot succeed.
SENDER_CODES = frozenset({"InvalidMessageContents", "InvalidParameterValue", "MessageTooLong"})


@dataclass(frozen=True)
class Message:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1
    #: The String and Number message attributes (their text values).
    attributes: dict[str, str] = field(default_factory=dict)
    #: Every message attribute as SQS returned it (``DataType`` and
    #: ``StringValue`` or ``BinaryValue`` bytes), Binary ones included.
    raw_attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: When this process received it (``time.monotonic``): its visibility
    #: timeout runs from here until a heartbeat extends it.
    received_at: float = field(default_factory=time.monotonic, compare=False)

    @classmethod
    def from_sqs(cls, raw: dict[str, Any]) -> Message:
        given = raw.get("MessageAttributes", {})
        # A Binary attribute has no StringValue: it is not text, so not in ``attributes``.
        attrs = {k: v["StringValue"] for k, v in given.items() if isinstance(v.get("StringValue"), str)}
        return cls(
            message_id=raw["MessageId"],
            receipt_handle=raw["ReceiptHandle"],
            body=raw["Body"],
            receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
            attributes=attrs,
            raw_attributes=given,
        )


def message_size(body: str, attributes: Mapping[str, Mapping[str, Any]] | None = None) -> int:
    """The bytes SQS counts for a message: its body and each attribute's
    name, data type and value (``StringValue`` as UTF-8, ``BinaryValue`` as
    given), attributes as SQS's API takes them."""
    size = len(body.encode("utf-8", "surrogatepass"))
    for name, attribute in (attributes or {}).items():
        size += len(name.encode("utf-8", "surrogatepass")) + len(str(attribute.get("DataType", "")).encode())
        value = attribute.get("BinaryValue", attribute.get("StringValue", ""))
        size += len(value) if isinstance(value, bytes | bytearray) else len(str(value).encode("utf-8", "surrogatepass"))
    return size


@dataclass(frozen=True)
class OutgoingMessage:
    body: str
    attributes: dict[str, str] = field(default_factory=dict)

    def sqs_attributes(self) -> dict[str, dict[str, str]]:
        """The attributes as SendMessage takes them (String; empty ones left out: SQS refuses them)."""
        return {k: {"DataType": "String", "StringValue": v} for k, v in self.attributes.items() if v != ""}

    @property
    def size(self) -> int:
        """What SQS counts against ``MAX_MESSAGE_BYTES`` and ``MAX_BATCH_BYTES``."""
        return message_size(self.body, self.sqs_attributes())


class Queue:
    """One SQS queue, addressed by its real name."""

    def __init__(self, settings: Settings, name: str):
        self.settings = settings
        self.name = name
        self._url: str | None = None

    @property
    def sqs(self) -> Any:
        """The client of ``CONTROL`` calls (``calls`` for the others)."""
        return client("sqs", self.settings)

    def calls(self, call: CallClass) -> Any:
        """The client of ``call``-class calls."""
        return client("sqs", self.settings, call=call)

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = self.sqs.get_queue_url(QueueName=self.name)["QueueUrl"]
        return self._url

    # --- producing ------------------------------------------------------------
    def send(
        self,
        messages: Iterable[str | OutgoingMessage],
        *,
        senders: int = SENDERS,
        on_sent: Callable[[int], None] | None = None,
        call: CallClass = CONTROL,
    ) -> int:
        """Send in batches of at most 10 messages and ``MAX_BATCH_BYTES``;
        raise if SQS refuses any entry after retries, and ``ValueError``
        before sending a message larger than SQS takes (``MAX_MESSAGE_BYTES``).

        With more than one batch, up to ``senders`` batches are in flight at
        once (default ``SENDERS``): one SendMessageBatch is a round trip
        (~20 ms to AWS, ~10 ms of the emulator's CPU), so one at a time caps a
        producer at a few hundred messages a second. At most ``2 * senders``
        batches are read ahead of the ones in flight. ``on_sent(n)`` is
        called in the calling thread after each batch of ``n`` is accepted.
        If a batch fails, the batches not yet sent are dropped and the error
        is raised (what was sent stays sent, as when sending one at a time).
        ``call``: the call class (``SETTLE`` for a job's own sends, whose
        caller retries them; ``CONTROL`` lets botocore retry).
        """
        batches = _batches(messages)
        sent = 0
        head = list(itertools.islice(batches, 2))
        if senders <= 1 or len(head) < 2:
            for batch in itertools.chain(head, batches):
                n = self._send_batch(batch, call)
                sent += n
                if on_sent:
                    on_sent(n)
            return sent
        _ = self.url  # resolve once here, not in every sender thread
        pool = ThreadPoolExecutor(max_workers=senders, thread_name_prefix=f"send-{self.name}")
        in_flight: set[Future[int]] = set()

        def collect(done: set[Future[int]]) -> None:
            nonlocal sent
            for future in done:
                n = future.result()  # raises the batch's error
                sent += n
                if on_sent:
                    on_sent(n)

        try:
            for batch in itertools.chain(head, batches):
                if len(in_flight) >= 2 * senders:
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    collect(done)
                in_flight.add(pool.submit(self._send_batch, batch, call))
            done, in_flight = wait(in_flight)
            collect(done)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return sent

    def _send_batch(self, batch: Sequence[OutgoingMessage], call: CallClass = CONTROL) -> int:
        entries = {}
        for i, m in enumerate(batch):
            entry: dict[str, Any] = {"Id": str(i), "MessageBody": m.body}
            if m.attributes:
                entry["MessageAttributes"] = m.sqs_attributes()
            entries[str(i)] = entry
        sqs = self.calls(call)
        # Entries SQS failed on its side are sent again at once (only those):
        # the batch contract, not a retry of the call (retries.py).
        for _attempt in range(5):
            resp = sqs.send_message_batch(QueueUrl=self.url, Entries=list(entries.values()))
            for ok in resp.get("Successful", []):
                entries.pop(ok["Id"], None)
            failed = resp.get("Failed", [])
            if not entries:
                return len(batch)
            # LocalStack marks refused characters SenderFault=false; the code says whose fault it is.
            if any(f.get("SenderFault") or f.get("Code") in SENDER_CODES for f in failed):
                raise RuntimeError(f"SQS refused messages on {self.name}: {failed}")
        raise RuntimeError(f"SQS kept failing to accept {len(entries)} messages on {self.name}")

    def send_json(self, payloads: Iterable[dict[str, Any]], **kwargs: Any) -> int:
        return self.send((json.dumps(p, separators=(",", ":")) for p in payloads), **kwargs)

    # --- consuming ------------------------------------------------------------
    def receive(self, max_messages: int = BATCH, wait_s: int = 20, visibility_s: int | None = None) -> list[Message]:
        kwargs: dict[str, Any] = {
            "QueueUrl": self.url,
            "MaxNumberOfMessages": max(1, min(BATCH, max_messages)),
            "WaitTimeSeconds": max(0, min(20, wait_s)),
            "AttributeNames": ["ApproximateReceiveCount"],
            "MessageAttributeNames": ["All"],
        }
        if visibility_s is not None:
            kwargs["VisibilityTimeout"] = visibility_s
        resp = self.calls(RECEIVE).receive_message(**kwargs)
        return [Message.from_sqs(m) for m in resp.get("Messages", [])]

    def delete(self, messages: Sequence[Message]) -> list[Message]:
        """Delete in batches (``SETTLE`` calls: one attempt each, the caller
        retries); return the messages SQS would not delete."""
        failed: list[Message] = []
        sqs = self.calls(SETTLE)
        for start in range(0, len(messages), BATCH):
            chunk = {str(i): m for i, m in enumerate(messages[start:start + BATCH])}
            resp = sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": i, "ReceiptHandle": m.receipt_handle} for i, m in chunk.items()],
            )
            failed.extend(chunk[f["Id"]] for f in resp.get("Failed", []))
        return failed

    def change_visibility(
        self, messages: Sequence[Message], seconds: int, *, call: CallClass = SETTLE
    ) -> list[Message]:
        """Set visibility for a batch (0 hands messages back); return failures.
        ``call``: ``SETTLE`` (a job's retry delay or hand-back) or
        ``HEARTBEAT`` (one short attempt; the next beat is its retry)."""
        failed: list[Message] = []
        sqs = self.calls(call)
        for start in range(0, len(messages), BATCH):
            chunk = {str(i): m for i, m in enumerate(messages[start:start + BATCH])}
            resp = sqs.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": i, "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": int(seconds)}
                    for i, m in chunk.items()
                ],
            )
            failed.extend(chunk[f["Id"]] for f in resp.get("Failed", []))
        return failed

    def depth(self) -> dict[str, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return {
            "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
        }

    def purge(self) -> None:
        self.sqs.purge_queue(QueueUrl=self.url)

    def max_receive_count(self) -> int | None:
        """The receives after which SQS moves a message to the dead-letter
        queue (the queue's RedrivePolicy ``maxReceiveCount``), or None when
        the queue has no valid redrive policy. One GetQueueAttributes."""
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["RedrivePolicy"])
        raw = attrs.get("Attributes", {}).get("RedrivePolicy")
        try:
            # SQS gives the policy as JSON text, its count as a number or a string.
            count = int(json.loads(raw)["maxReceiveCount"]) if raw else None
        except (ValueError, TypeError, KeyError):
            return None
        return count if count is not None and count >= 1 else None

    def arn(self) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]


def _batches(messages: Iterable[str | OutgoingMessage]) -> Iterator[list[OutgoingMessage]]:
    """Batches SQS takes: at most ``BATCH`` messages and ``MAX_BATCH_BYTES``
    together (SQS refuses the whole SendMessageBatch otherwise). A message
    over ``MAX_MESSAGE_BYTES`` raises ``ValueError`` as soon as it is read
    (the batch gathered before it is not sent)."""
    batch: list[OutgoingMessage] = []
    batch_bytes = 0
    for n, m in enumerate(messages):
        message = m if isinstance(m, OutgoingMessage) else OutgoingMessage(m)
        size = message.size
        if size > MAX_MESSAGE_BYTES:
            raise ValueError(f"message {n} is {size:,} bytes (body and attributes); SQS takes at most "
                             f"{MAX_MESSAGE_BYTES:,}: store the payload in S3 and send its key")
        if batch and batch_bytes + size > MAX_BATCH_BYTES:
            yield batch
            batch, batch_bytes = [], 0
        batch.append(message)
        batch_bytes += size
        if len(batch) == BATCH:  # at once: a slow producer's full batch is not held back
            yield batch
            batch, batch_bytes = [], 0
    if batch:
        yield batch


def dead_letter_queue(queue: Queue) -> Queue:
    return Queue(queue.settings, queue.name + DLQ_SUFFIX)


def ensure_queue(
    settings: Settings, name: str, visibility_s: int | None = None, max_receives: int | None = None
) -> Queue:
    """Create ``name`` and its dead-letter queue (redrive after
    ``max_receives`` receives, default ``settings.max_receives``). Idempotent."""
    sqs = client("sqs", settings)
    dlq_url = sqs.create_queue(
        QueueName=name + DLQ_SUFFIX, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_S)}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attrs = {
        "VisibilityTimeout": str(visibility_s or settings.visibility_timeout_s),
        "ReceiveMessageWaitTimeSeconds": str(LONG_POLL_S),
        "MessageRetentionPeriod": str(RETENTION_S),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives or settings.max_receives)}),
    }
    try:
        url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
    except sqs.exceptions.QueueNameExists:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attrs)
    queue = Queue(settings, name)
    queue._url = url
    return queue


def redrive(queue: Queue, limit: int | None = None) -> int:
    """Move messages from ``queue``'s DLQ back to ``queue``; return how many.

    Each message is sent before it is deleted from the DLQ, so a crash in
    between duplicates a job (harmless: jobs are idempotent) but never loses one.
    """
    dlq = dead_letter_queue(queue)
    moved = 0
    while limit is None or moved < limit:
        batch = dlq.receive(BATCH if limit is None else min(BATCH, limit - moved), wait_s=1, visibility_s=60)
        if not batch:
            break
        queue.send(OutgoingMessage(m.body, m.attributes) for m in batch)
        dlq.delete(batch)
        moved += len(batch)
    return moved
