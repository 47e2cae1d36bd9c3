"""Local event-source mapping: what AWS Lambda's SQS trigger does, on one
machine. moto cannot run Lambda code without Docker, so one thread per
status queue long-polls it, hands each batch to the real Lambda handler
in-process as an SQS event, and deletes every record the handler did not
report in ``batchItemFailures``; those reappear after a short backoff."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..queues import Message, Queue, status_queue
from ..settings import STATUS_QUEUES, Settings
from ..status_writer import StatusWriter

log = logging.getLogger("specfleet.local.poller")

#: Seconds a failed record stays invisible before the poller retries it.
RETRY_VISIBILITY_S = 2


@dataclass
class LocalLambdaContext:
    function_name: str = "specfleet-status-writer"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:specfleet-status-writer"
    aws_request_id: str = ""
    log_group_name: str = "/aws/lambda/specfleet-status-writer"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def sqs_event(queue_arn: str, region: str, messages: list[Message]) -> dict[str, Any]:
    """The event Lambda's SQS trigger would deliver for ``messages``."""
    return {
        "Records": [
            {
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {"ApproximateReceiveCount": str(m.receive_count)},
                "messageAttributes": {
                    k: {"stringValue": v, "dataType": "String", "stringListValues": [], "binaryListValues": []}
                    for k, v in m.attributes.items()
                },
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class StatusPoller:
    def __init__(self, settings: Settings, wait_s: int = 1):
        self.settings = settings
        self.wait_s = wait_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.batches = 0
        self._lock = threading.Lock()

    def start(self) -> StatusPoller:
        for pipeline in STATUS_QUEUES:
            q = status_queue(self.settings, pipeline)
            t = threading.Thread(target=self._run, args=(q,), name=f"poll-{q.name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)

    def _run(self, queue: Queue) -> None:
        # One writer per thread: a psycopg2 connection must not be shared by
        # concurrent transactions.
        writer = StatusWriter(self.settings)
        from lambdas.status_writer.handler import build_handler

        handler = build_handler(lambda: writer)
        arn = queue.arn()
        while not self._stop.is_set():
            try:
                messages = queue.receive(10, wait_s=self.wait_s, visibility_s=60)
                if not messages:
                    continue
                self.poll_once(queue, arn, messages, handler)
            except Exception:
                log.exception("status poller on %s failed; retrying", queue.name)
                self._stop.wait(1)

    def poll_once(
        self, queue: Queue, arn: str, messages: list[Message], handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    ) -> list[str]:
        response = handler(sqs_event(arn, self.settings.region, messages), LocalLambdaContext(aws_request_id=uuid.uuid4().hex))
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in messages if m.message_id not in failed]
        queue.delete(done)
        if failed:
            queue.change_visibility([m for m in messages if m.message_id in failed], RETRY_VISIBILITY_S)
        with self._lock:
            self.batches += 1
        return sorted(failed)
