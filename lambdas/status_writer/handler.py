"""AWS Lambda entry point of the status writer (SQS trigger).

Configure the event source mapping with ``FunctionResponseTypes:
[ReportBatchItemFailures]``: the returned ``batchItemFailures`` lists only the
records that could not be stored, so SQS redelivers just those.

Powertools gives the typed event and structured JSON logs; the batch itself
is written by ``specfleet.status_writer.StatusWriter`` in one transaction
(powertools' BatchProcessor handles records one at a time, which would cost
one INSERT and commit per record).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import SQSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from specfleet.queues import Message, Queue
from specfleet.settings import Settings
from specfleet.status import InboundRecord
from specfleet.status_writer import StatusWriter, retry_after_s


# stderr so a local run keeps stdout clean for command output (Lambda sends both to CloudWatch)
class _ToLogging(logging.Handler):
    """Outside Lambda (the local poller, tests) the structured records go to
    the ``specfleet.status_writer`` logger like every other log, so the CLI
    sends them to its log file instead of the terminal."""

    target = logging.getLogger("specfleet.status_writer.lambda")

    def emit(self, record: logging.LogRecord) -> None:
        forwarded = logging.makeLogRecord(record.__dict__)
        forwarded.name, forwarded.msg, forwarded.args = self.target.name, self.format(record), ()
        forwarded.exc_info = forwarded.exc_text = None  # already in the formatted text
        self.target.handle(forwarded)


# In Lambda, JSON lines on stdout are what CloudWatch Logs collects.
logger = Logger(
    service="specfleet-status-writer",
    logger_handler=None if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") else _ToLogging(),
)
_writer: StatusWriter | None = None  # reused across warm invocations


def get_writer() -> StatusWriter:
    global _writer
    if _writer is None:
        _writer = StatusWriter(Settings())
    return _writer


@dataclass
class InvocationContext:
    """What the handler uses of a Lambda context, for calls without one
    (the local poller, a test, a console invoke with ``None``)."""

    function_name: str = "specfleet-status-writer"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:specfleet-status-writer"
    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    log_group_name: str = "/aws/lambda/specfleet-status-writer"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def to_records(event: SQSEvent) -> list[InboundRecord]:
    return [
        InboundRecord(
            message_id=r.message_id,
            queue_name=r.event_source_arn.rsplit(":", 1)[-1],
            body=r.body or "",
            attributes=text_attributes(r.raw_event.get("messageAttributes")),
            receive_count=_int(r.attributes.approximate_receive_count if r.attributes else None),
            receipt_handle=r.receipt_handle or "",
        )
        for r in event.records
    ]


def text_attributes(given: Any) -> dict[str, str]:
    """The String and Number message attributes of one record. A Binary
    attribute arrives with only ``binaryValue`` (no ``stringValue``); no
    status attribute is binary, so it and anything else not text is left
    out rather than failing the batch."""
    if not isinstance(given, dict):
        return {}
    return {
        k: v["stringValue"]
        for k, v in given.items()
        if isinstance(k, str) and isinstance(v, dict) and isinstance(v.get("stringValue"), str)
    }


def _int(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 1


def back_off(records: list[InboundRecord], failed_ids: list[str], settings: Settings) -> None:
    """Keep failed records invisible for a growing while (by their receive
    count) instead of the queue's fixed timeout, so a long database outage
    spends few receives before the dead-letter queue. Best effort: without
    it SQS still redelivers after the visibility timeout."""
    failed = set(failed_ids)
    by_queue: dict[str, list[Message]] = {}
    for rec in records:
        if rec.message_id in failed and rec.receipt_handle:
            by_queue.setdefault(rec.queue_name, []).append(
                Message(rec.message_id, rec.receipt_handle, rec.body, rec.receive_count)
            )
    for name, messages in by_queue.items():
        for m in messages:
            try:
                Queue(settings, name).change_visibility([m], retry_after_s(m.receive_count))
            except Exception as err:
                logger.warning("could not delay a failed record", extra={"queue": name, "error": str(err)[:200]})


def build_handler(writer: Callable[[], StatusWriter]) -> Callable[..., dict[str, Any]]:
    """The handler around a writer; the local poller builds one per stack."""

    @logger.inject_lambda_context
    @event_source(data_class=SQSEvent)
    def lambda_entry(event: SQSEvent, context: LambdaContext) -> dict[str, Any]:
        records = to_records(event)
        w = writer()
        result = w.write(records)
        if result.failed_ids:
            back_off(records, result.failed_ids, w.settings)
        logger.info(
            "status batch",
            extra={
                "records": len(records),
                "written": result.written,
                "duplicates": result.duplicates,
                "rejected": result.rejected,
                "failed": len(result.failed_ids),
                "alerts_sent": result.alerts_sent,
                "alerts_suppressed": result.alerts_suppressed,
            },
        )
        return {"batchItemFailures": [{"itemIdentifier": mid} for mid in result.failed_ids]}

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        return lambda_entry(event, context if context is not None else cast(LambdaContext, InvocationContext()))

    return handler


lambda_handler = build_handler(get_writer)
