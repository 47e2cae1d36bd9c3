"""moto's SQS without per-message scans of the whole queue.

Why this module exists: moto 5.2 keeps a queue as a plain list and works out
each message's state from the clock, two datetime computations per message
per look. Every SendMessage reads ``Queue.attributes``, which counts the
visible, in-flight and delayed messages by three such scans; every received
message re-reads the attributes three times (its retention check); every
delete and visibility change walks the list for the receipt handle. So each
call costs O(queue length) of slow Python: 5,000 jobs took 11.5 minutes to
enqueue, 3,000 took 7.4 minutes (15.9 msg/s at depth 0, 4.2 at 2,000).

These subclasses keep moto's data model and answers and change only how the
same answers are found: the counts are kept up to date as messages come and
go, valid until the clock reaches the next time a message becomes visible or
stops being delayed (then one scan with one clock read); one attribute read
per GetQueueAttributes; a receipt-handle index for delete and visibility
changes. Sending and receiving still run moto's own code, but each receive
scan holds the queue's lock: moto alone can hand one message to two
receivers that poll at the same moment.

``install()`` hands moto's ``sqs_backends`` this backend class (BackendDict
builds one backend per account and region lazily from it). The stack process
calls it before the server starts, so S3/SNS/EC2/CloudFormation and SNS ->
SQS delivery keep working through the same moto server. Written against
moto 5.2 (pinned below 5.3 in pyproject.toml: it subclasses moto's internals).
Unlike moto, and like AWS, a message body or String attribute holding a
character outside SQS's set is refused with ``InvalidMessageContents``
(a batch with one such entry fails whole), and a second PurgeQueue on a
queue within 60 s is refused with ``PurgeQueueInProgress`` whatever moto's
settings say, so tests fail the way AWS would. So are SQS's limits
(``check_batch``, ``check_message``, ``check_visibility``): a message's size
counts its body and attributes in UTF-8 bytes (moto counts the body's
characters), at most 10 attributes, DeleteMessageBatch and
ChangeMessageVisibilityBatch are held to the same entry count and Id rules
as SendMessageBatch (moto checks only the latter), and a negative
VisibilityTimeout is refused (moto takes it).
tests/test_moto_sqs.py runs the same scenarios on moto's backend and this one
and compares the answers; tests/test_queues_scale.py runs 10,000 jobs.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from moto.core.utils import camelcase_to_underscores, unix_time, unix_time_millis
from moto.sqs.exceptions import (
    BatchEntryIdsNotDistinct,
    BatchRequestTooLong,
    InvalidAttributeName,
    InvalidBatchEntryId,
    InvalidParameterValue,
    PurgeQueueInProgress,
    QueueAlreadyExists,
    ReceiptHandleIsInvalid,
    SQSException,
    TooManyEntriesInBatchRequest,
)
from moto.sqs.models import Message, Queue, SQSBackend, sqs_backends

from ..queues import BATCH, MAX_ATTRIBUTES, MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, PURGE_INTERVAL_S, message_size

_NEVER = float("inf")

#: What SQS refuses in a message body or a String attribute: anything outside
#: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF (the SQS
#: API reference, SendMessage: MessageBody). moto accepts all of it.
_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class InvalidMessageContents(SQSException):
    """AWS's answer to a body or attribute holding a refused character; for
    SendMessageBatch the whole request fails with it."""

    def __init__(self, where: str, char: str):
        super().__init__(
            "InvalidMessageContents",
            f"Invalid binary character '#x{ord(char):X}' was found in the {where}, the set of allowed characters is "
            "#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
        )


def check_contents(body: str, attributes: dict[str, Any] | None) -> None:
    """Raise ``InvalidMessageContents`` as AWS would for this message."""
    found = _REFUSED.search(body or "")
    if found:
        raise InvalidMessageContents("message body", found.group())
    for name, attribute in (attributes or {}).items():
        values = attribute.values() if isinstance(attribute, dict) else [attribute]
        for value in values:
            found = _REFUSED.search(value) if isinstance(value, str) else None
            if found:
                raise InvalidMessageContents(f"message attribute {name!r}", found.group())


#: A batch entry's Id: "up to 80 characters ... alphanumeric characters,
#: hyphens (-), and underscores (_)" (Amazon SQS message quotas, batched
#: message ID). moto's ``\w`` also takes non-ASCII letters.
_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")

#: VisibilityTimeout's range, in seconds (SQS API reference, ReceiveMessage
#: and ChangeMessageVisibility).
MAX_VISIBILITY_S = 43200


def check_batch(action: str, ids: list[str]) -> None:
    """Raise as AWS does for the entries of ``action``'s batch request
    (SendMessage, DeleteMessage, ChangeMessageVisibility): none
    (``EmptyBatchRequest``), more than 10 (``TooManyEntriesInBatchRequest``),
    an Id outside the rules (``InvalidBatchEntryId``), or one Id twice
    (``BatchEntryIdsNotDistinct``). The whole request fails."""
    if not ids:
        raise SQSException("AWS.SimpleQueueService.EmptyBatchRequest",
                           f"There should be at least one {action}BatchRequestEntry in the request.")
    if len(ids) > BATCH:
        raise TooManyEntriesInBatchRequest(len(ids))
    if any(not isinstance(i, str) or not _BATCH_ID.fullmatch(i) for i in ids):
        raise InvalidBatchEntryId()
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise BatchEntryIdsNotDistinct(i)
        seen.add(i)


def check_message(body: str, attributes: dict[str, Any] | None, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
    """Raise ``InvalidParameterValue`` as AWS does for a message over the
    queue's size limit (body and attributes, in bytes) or with more than 10
    attributes."""
    if len(attributes or {}) > MAX_ATTRIBUTES:
        raise InvalidParameterValue(
            f"Number of message attributes [{len(attributes or {})}] exceeds the allowed maximum [{MAX_ATTRIBUTES}].")
    if message_size(body or "", attributes) > max_bytes:
        raise InvalidParameterValue(
            f"One or more parameters are invalid. Reason: Message must be shorter than {max_bytes} bytes.")


def check_visibility(seconds: int) -> None:
    """Raise ``InvalidParameterValue`` for a VisibilityTimeout outside 0..43200."""
    if not 0 <= int(seconds) <= MAX_VISIBILITY_S:
        raise InvalidParameterValue(
            f"Value {seconds} for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= {MAX_VISIBILITY_S}.")


@functools.cache
def _attribute_fields() -> dict[str, str]:
    """Queue attribute name -> the Queue field moto reads it from."""
    return {name: camelcase_to_underscores(name) for name in Queue.BASE_ATTRIBUTES + Queue.FIFO_ATTRIBUTES + Queue.KMS_ATTRIBUTES}


class IndexedQueue(Queue):
    """A moto queue whose counts and receipt-handle lookups are cheap.

    ``_messages_lock`` (moto's, re-entrant) guards the list and the counts, so
    a count computed from an older list never outlives a change.
    """

    def __init__(self, name: str, region: str, account_id: str, **kwargs: Any):
        super().__init__(name, region, account_id, **kwargs)
        #: Messages added to this queue by id (may include some since moved
        #: to a dead-letter queue: every lookup checks the list).
        self._by_id: dict[str, Message] = {}
        #: Every receipt handle given out here -> the message it was given to.
        self._by_handle: dict[str, Message] = {}
        #: (visible, in flight, delayed), valid while the clock (ms) is below
        #: ``_counts_valid_until``; None after a change.
        self._counts: tuple[int, int, int] | None = None
        self._counts_valid_until = 0.0

    # --- counts ------------------------------------------------------------------
    def _current_counts(self) -> tuple[int, int, int]:
        """(visible, in flight, delayed) as moto defines them: in flight while
        ``now <= visible_at``, delayed while ``now < delayed_until``, visible
        when neither."""
        with self._messages_lock:
            now = unix_time_millis()
            if self._counts is not None and now < self._counts_valid_until:
                return self._counts
            visible = in_flight = delayed = 0
            next_change = _NEVER
            for m in self._messages:
                is_delayed = now < m.delayed_until
                if is_delayed:
                    delayed += 1
                    next_change = min(next_change, m.delayed_until)
                if m.visible_at >= now:
                    in_flight += 1
                    next_change = min(next_change, m.visible_at)
                elif not is_delayed:
                    visible += 1
            self._counts, self._counts_valid_until = (visible, in_flight, delayed), next_change
            return self._counts

    def forget_counts(self) -> None:
        """Call after changing messages other than through this class."""
        with self._messages_lock:
            self._counts = None

    @property
    def approximate_number_of_messages(self) -> int:
        return self._current_counts()[0]

    @property
    def approximate_number_of_messages_not_visible(self) -> int:
        return self._current_counts()[1]

    @property
    def approximate_number_of_messages_delayed(self) -> int:
        return self._current_counts()[2]

    @property
    def attributes(self) -> dict[str, Any]:
        """moto's ``Queue.attributes``, with the attribute -> field names
        worked out once (moto converts each name from camel case per call,
        and SendMessage reads the attributes for every message)."""
        fields = _attribute_fields()
        names = list(self.BASE_ATTRIBUTES)
        if self.fifo_queue:
            names += self.FIFO_ATTRIBUTES
        if self.kms_master_key_id:  # type: ignore[attr-defined]
            names += self.KMS_ATTRIBUTES
        result: dict[str, Any] = {name: getattr(self, fields[name]) for name in names}
        if self.policy:
            result["Policy"] = self.policy
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy)
        for key, value in result.items():
            if isinstance(value, bool):
                result[key] = str(value).lower()
        return result

    @property
    def messages(self) -> list[Message]:
        """Visible messages, oldest first (moto's definition, one clock read)."""
        now = unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and now >= m.delayed_until]

    # --- changes -----------------------------------------------------------------
    def add_message(self, message: Message) -> None:
        with self._messages_lock:
            before = len(self._messages)
            counts, valid_until = self._counts, self._counts_valid_until
        super().add_message(message)  # appends under the lock (a FIFO duplicate is dropped)
        with self._messages_lock:
            appended = len(self._messages) == before + 1 and self._messages[-1] is message
            if appended:
                self._by_id[message.id] = message
            if counts is None or self._counts is not counts or not appended:
                self._counts = None  # something else changed meanwhile: count afresh
                return
            # Count the new message as _current_counts would.
            now = unix_time_millis()
            visible, in_flight, delayed = counts
            is_delayed = now < message.delayed_until
            if is_delayed:
                delayed += 1
                valid_until = min(valid_until, message.delayed_until)
            if message.visible_at >= now:  # only a message moved here mid-flight
                in_flight += 1
                valid_until = min(valid_until, message.visible_at)
            elif not is_delayed:
                visible += 1
            self._counts, self._counts_valid_until = (visible, in_flight, delayed), valid_until

    def note_received(self, received: list[Message]) -> None:
        """After moto's receive: its messages changed state (and some may have
        gone to the dead-letter queue); remember the new receipt handles.
        moto returns copies, so the originals are found by id."""
        with self._messages_lock:
            self._counts = None
            for copy in received:
                original = self._by_id.get(copy.id)
                if original is not None and original.receipt_handle == copy.receipt_handle:
                    self._by_handle[copy.receipt_handle] = original  # type: ignore[index]

    def find(self, receipt_handle: str) -> Message | None:
        """The message in this queue that ever had ``receipt_handle``, or None."""
        message = self._by_handle.get(receipt_handle)
        if message is not None and message in self._messages:
            return message
        # Not indexed, or moved to a dead-letter queue since: moto's own scan.
        return next((m for m in self._messages if m.had_receipt_handle(receipt_handle)), None)

    def delete_message(self, receipt_handle: str) -> None:
        if receipt_handle in self.deleted_messages:
            return  # moto accepts deleting a message twice
        message = self.find(receipt_handle)
        if message is None:
            raise ReceiptHandleIsInvalid()
        with self._messages_lock:
            if receipt_handle in self.deleted_messages:
                return  # deleted by another request meanwhile
            # A new list, as moto does, so a reader iterating the old one is unaffected.
            remaining = self._messages.copy()
            try:
                remaining.remove(message)
            except ValueError:
                raise ReceiptHandleIsInvalid() from None  # moved to the dead-letter queue meanwhile
            self._messages = remaining
            self._counts = None
            self._by_id.pop(message.id, None)
            handles = message.all_receipt_handles
            for handle in handles:
                self._by_handle.pop(handle, None)  # type: ignore[arg-type]
            self.pending_messages.discard(message)
            self.deleted_messages.update(handles)  # type: ignore[arg-type]


class IndexedSQSBackend(SQSBackend):
    """moto's SQS backend, making ``IndexedQueue`` queues and using their lookups."""

    @property
    def _url_module(self) -> Any:
        # moto finds a backend's routes next to the class's module; ours are moto's SQS routes.
        import moto.sqs.urls

        return moto.sqs.urls

    def create_queue(self, name: str, tags: dict[str, str] | None = None, **kwargs: Any) -> Queue:
        # moto's create_queue, building IndexedQueue instead of Queue.
        kwargs.pop("region", None)
        queue = self.queues.get(name)
        if queue:
            # moto declares is_created abstract (CloudFormation) and builds its own Queue the same way.
            new_queue = IndexedQueue(name, region=self.region_name, account_id=self.account_id, **kwargs)  # type: ignore[abstract]
            existing, wanted = queue.attributes, new_queue.attributes
            # Only the attributes sent with this request must match the existing queue.
            for key in kwargs:
                if existing.get(key) != wanted.get(key):
                    raise QueueAlreadyExists("The specified queue already exists.")
        else:
            queue = IndexedQueue(name, region=self.region_name, account_id=self.account_id, **kwargs)  # type: ignore[abstract]
            self.queues[name] = queue
        if tags:
            queue.tags = tags
        return queue

    def _max_message_bytes(self, queue_name: str) -> int:
        return min(MAX_MESSAGE_BYTES, int(self.get_queue(queue_name).maximum_message_size))  # type: ignore[attr-defined]

    def send_message(self, queue_name: str, message_body: str, message_attributes: dict[str, Any] | None = None,
                     *args: Any, **kwargs: Any) -> Message:
        # AWS refuses characters outside its set and counts bytes; moto stores them and counts characters.
        check_contents(message_body, message_attributes)
        check_message(message_body, message_attributes, self._max_message_bytes(queue_name))
        return super().send_message(queue_name, message_body, message_attributes, *args, **kwargs)

    def send_message_batch(
        self, queue_name: str, entries: dict[str, dict[str, Any]]
    ) -> tuple[list[Message], list[dict[str, Any]]]:
        # The request's rules fail it whole, checked before anything is sent; so does a refused
        # character (issue 24's choice; LocalStack fails only that entry). An entry over the
        # queue's MaximumMessageSize fails alone, the others are sent: AWS's answer quoted in
        # localstack/localstack#8570.
        check_batch("SendMessage", [entry.get("Id") for entry in entries.values()])  # type: ignore[misc]
        total = sum(message_size(e.get("MessageBody") or "", e.get("MessageAttributes")) for e in entries.values())
        if total > MAX_BATCH_BYTES:
            raise BatchRequestTooLong(total)
        max_bytes = self._max_message_bytes(queue_name)
        failed: list[dict[str, Any]] = []
        kept: dict[str, dict[str, Any]] = {}
        for key, entry in entries.items():
            check_contents(entry.get("MessageBody", ""), entry.get("MessageAttributes"))
            try:
                check_message(entry.get("MessageBody", ""), entry.get("MessageAttributes"), max_bytes)
            except InvalidParameterValue as err:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": err.code, "Message": err.message})
                continue
            kept[key] = entry
        if not kept:
            return [], failed
        sent, more_failed = super().send_message_batch(queue_name, kept)
        return sent, failed + more_failed

    def delete_message_batch(
        self, queue_name: str, receipts: list[dict[str, Any]]
    ) -> tuple[list[str], list[dict[str, str]]]:
        # moto checks only that no receipt handle comes twice.
        check_batch("DeleteMessage", [r.get("Id") for r in receipts])  # type: ignore[misc]
        return super().delete_message_batch(queue_name, receipts)

    def change_message_visibility_batch(
        self, queue_name: str, entries: list[dict[str, Any]]
    ) -> tuple[list[str], list[dict[str, str]]]:
        # moto checks none of the batch rules, and takes a negative timeout.
        check_batch("ChangeMessageVisibility", [e.get("Id") for e in entries])  # type: ignore[misc]
        success: list[str] = []
        failed: list[dict[str, str]] = []
        valid: list[dict[str, Any]] = []
        for entry in entries:
            try:
                check_visibility(int(entry.get("VisibilityTimeout", "")))
            except (InvalidParameterValue, TypeError, ValueError) as err:
                message = err.message if isinstance(err, InvalidParameterValue) else "Visibility timeout invalid"
                # moto annotates these entries as str -> str; SenderFault is a boolean, as moto sends it.
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": "InvalidParameterValue",  # type: ignore[dict-item]
                               "Message": message})
                continue
            valid.append(entry)
        if valid:
            success, more_failed = super().change_message_visibility_batch(queue_name, valid)
            failed += more_failed
        return success, failed

    def get_queue_attributes(self, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        # moto's, reading queue.attributes once instead of three times per name.
        queue = self.get_queue(queue_name)
        if not attribute_names:
            return {}
        valid_names = ["All"] + queue.BASE_ATTRIBUTES + queue.FIFO_ATTRIBUTES + queue.KMS_ATTRIBUTES
        invalid_name = next((name for name in attribute_names if name not in valid_names), None)
        if invalid_name or invalid_name == "":
            raise InvalidAttributeName(invalid_name)
        attributes = queue.attributes
        if "All" in attribute_names:
            return attributes
        return {name: attributes[name] for name in attribute_names if attributes.get(name) is not None}

    def is_message_valid_based_on_retention_period(self, queue_name: str, message: Message) -> bool:
        # moto reads all queue attributes (three scans) for this one number.
        retention_s = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
        return retention_s * 1000 + message.sent_timestamp > unix_time_millis()  # type: ignore[operator]

    def receive_message(
        self,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Message]:
        """moto's receive, one scan at a time per queue.

        moto scans for visible messages and marks them received without a
        lock, so two receivers at once can both be handed the same message.
        Here each scan runs under the queue's lock, without waiting (moto's
        ``wait=0`` path); a long poll repeats it on moto's schedule, waiting
        outside the lock.
        """
        check_visibility(visibility_timeout)  # moto refuses only > 43200
        queue = self.get_queue(queue_name)
        if not isinstance(queue, IndexedQueue):
            return super().receive_message(
                queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names
            )
        # moto's polling loop: scan; if nothing, wait up to a second (woken by
        # a new message) and scan again unless the wait time has passed.
        polling_end = unix_time() + wait_seconds_timeout
        while True:
            with queue._messages_lock:
                received = super().receive_message(queue_name, count, 0, visibility_timeout, message_attribute_names)
                queue.note_received(received)
            if received or not wait_seconds_timeout:
                return received
            queue.wait_for_messages(1)
            if unix_time() > polling_end:
                return []

    def change_message_visibility(self, queue_name: str, receipt_handle: str, visibility_timeout: int) -> None:
        check_visibility(visibility_timeout)  # moto refuses only > 43200
        queue = self.get_queue(queue_name)
        if not isinstance(queue, IndexedQueue):
            return super().change_message_visibility(queue_name, receipt_handle, visibility_timeout)
        message = queue.find(receipt_handle)
        if message is None:
            raise ReceiptHandleIsInvalid
        # moto's checks and effect, on the message found through the index.
        given_visibility_timeout = unix_time_millis() + int(visibility_timeout) * 1000
        if given_visibility_timeout - message.sent_timestamp > 43200 * 1000:  # type: ignore[operator]
            raise InvalidParameterValue(
                f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                "VisibilityTimeout for the message is beyond the limit [43200 seconds]"
            )
        message.change_visibility(visibility_timeout)
        queue.forget_counts()
        if message.visible and message in queue.pending_messages:
            queue.pending_messages.remove(message)

    def purge_queue(self, queue_name: str) -> None:
        # AWS refuses a second PurgeQueue on a queue within 60 s of the last
        # (SQS API reference, PurgeQueue: PurgeQueueInProgress). moto does
        # too, unless MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR=false;
        # here always, whatever the environment says.
        queue = self.get_queue(queue_name)
        with queue._messages_lock:
            now = unix_time()
            if queue.last_purged_at is not None and now - queue.last_purged_at < PURGE_INTERVAL_S:
                raise PurgeQueueInProgress(queue.name)
            queue.last_purged_at = now
            queue._messages = []
            queue._pending_messages = set()
        if isinstance(queue, IndexedQueue):
            with queue._messages_lock:
                queue._by_id.clear()
                queue._by_handle.clear()
                queue._counts = None


def install() -> None:
    """Make moto's SQS build ``IndexedSQSBackend`` backends. Call before the
    first SQS request: backends already built keep moto's class."""
    if sqs_backends.backend is IndexedSQSBackend:
        return
    if len(sqs_backends):
        raise RuntimeError("moto's SQS is already in use; install the indexed backend before the server starts")
    sqs_backends.backend = IndexedSQSBackend
