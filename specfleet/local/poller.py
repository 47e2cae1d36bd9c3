"""Local event-source mapping: what AWS Lambda's SQS trigger does, on one
machine. moto cannot run Lambda code without Docker, so one thread per
status queue long-polls it, hands each batch to the real Lambda handler
in-process as an SQS event, and deletes every record the handler did not
report in ``batchItemFailures``; those reappear after the backoff the
handler gave them. While the database is unreachable the poller takes no
more messages (a Lambda would keep being invoked; the handler's growing
backoff is what bounds its receives there). Its loop is the one retry
owner of its receives, deletes and database connects (``retries.py``)."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..pipelines import specs
from ..queues import Message, Queue
from ..runtime.outage import Outages, client_endpoint, is_outage
from ..settings import Settings
from ..status_writer import StatusWriter

log = logging.getLogger("specfleet.local.poller")

#: The outage key of the status database.
DATABASE = "status database"


def lambda_attribute(raw: dict[str, Any]) -> dict[str, Any]:
    """One message attribute as Lambda's SQS event gives it: String and
    Number types (and their custom ``Number.x`` forms) carry ``stringValue``;
    Binary carries only ``binaryValue``, base64 text, and no ``stringValue``
    (AWS Lambda developer guide, "Using Lambda with Amazon SQS", example
    event; powertools' ``SQSMessageAttribute`` models the same fields)."""
    data_type = str(raw.get("DataType", "String"))
    event: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": data_type}
    if data_type.split(".", 1)[0] == "Binary":
        value = raw.get("BinaryValue", b"")
        event["binaryValue"] = base64.b64encode(value if isinstance(value, bytes) else str(value).encode()).decode("ascii")
    else:
        event["stringValue"] = str(raw.get("StringValue", ""))
    return event


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
                    k: lambda_attribute(v)
                    for k, v in (
                        m.raw_attributes
                        or {k: {"DataType": "String", "StringValue": v} for k, v in m.attributes.items()}
                    ).items()
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
        self.outages = Outages(initial_s=settings.outage_backoff_initial_s, max_s=settings.outage_backoff_max_s)
        self.wait_s = wait_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.batches = 0
        self._lock = threading.Lock()

    def start(self) -> StatusPoller:
        for spec in specs():
            q = spec.statuses(self.settings)
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
        sqs_endpoint = client_endpoint(queue.sqs)
        arn = ""
        while not self._stop.is_set():
            try:
                if writer.unavailable:
                    # Like a Lambda whose database is down, but without
                    # spending receives: wait, then look before taking more.
                    if self._stop.wait(self.outages.failed(DATABASE, "database unavailable", "status write")):
                        break
                    if not writer.reachable():
                        continue
                    self.outages.succeeded(DATABASE)
                arn = arn or queue.arn()
                messages = queue.receive(10, wait_s=self.wait_s, visibility_s=60)
                self.outages.succeeded(sqs_endpoint)
                if messages:
                    self.poll_once(queue, arn, messages, handler)
            except Exception as err:
                if is_outage(err):
                    self._stop.wait(self.outages.failed(sqs_endpoint, err, "status poll"))
                else:
                    log.exception("status poller on %s failed; retrying", queue.name)
                    self._stop.wait(1)

    def poll_once(
        self, queue: Queue, arn: str, messages: list[Message], handler: Callable[..., dict[str, Any]]
    ) -> list[str]:
        response = handler(sqs_event(arn, self.settings.region, messages))
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in messages if m.message_id not in failed]
        queue.delete(done)  # the failed ones wait out the backoff the handler gave them
        with self._lock:
            self.batches += 1
        return sorted(failed)
