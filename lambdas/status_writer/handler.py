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
import sys
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import SQSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from specfleet.settings import Settings
from specfleet.status_writer import InboundRecord, StatusWriter

# stderr so a local run keeps stdout clean for command output (Lambda sends both to CloudWatch)
logger = Logger(service="specfleet-status-writer", logger_handler=logging.StreamHandler(sys.stderr))
_writer: StatusWriter | None = None  # reused across warm invocations


def get_writer() -> StatusWriter:
    global _writer
    if _writer is None:
        _writer = StatusWriter(Settings())
    return _writer


def to_records(event: SQSEvent) -> list[InboundRecord]:
    return [
        InboundRecord(
            message_id=r.message_id,
            queue_name=r.event_source_arn.rsplit(":", 1)[-1],
            body=r.body or "",
            attributes={k: (v.string_value or "") for k, v in (r.message_attributes or {}).items()},
        )
        for r in event.records
    ]


def build_handler(writer: Callable[[], StatusWriter]) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The handler around a writer; the local poller builds one per stack."""

    @logger.inject_lambda_context
    @event_source(data_class=SQSEvent)
    def handler(event: SQSEvent, context: LambdaContext) -> dict[str, Any]:
        records = to_records(event)
        result = writer().write(records)
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

    return handler


lambda_handler = build_handler(get_writer)
