"""The one small API through which workers report status."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from ..queues import OutgoingMessage, Queue
from ..retries import CONTROL, CallClass
from ..settings import Settings
from ..status import ATTR_DEDUPE, ATTR_REASON, MAX_REASON, StatusRecord, sqs_clean

log = logging.getLogger("specfleet.runtime")


class StatusTarget(Protocol):
    """What a sender needs of a pipeline: its name and its status queue. A
    ``PipelineSpec`` is one; so is a bare status stream another pipeline
    also writes (fused downloads write ``status_specto`` rows) without
    importing that pipeline."""

    @property
    def name(self) -> str: ...

    def statuses(self, settings: Settings) -> Queue: ...


@dataclass
class StatusSender:
    """Sends one pipeline's status messages to its status queue."""

    settings: Settings
    spec: StatusTarget

    def __post_init__(self) -> None:
        self.pipeline = self.spec.name
        self.queue: Queue = self.spec.statuses(self.settings)

    def message(
        self, record: StatusRecord, *, dedupe_key: str = "", reason: str = "", attributes: dict[str, str] | None = None
    ) -> OutgoingMessage:
        """The status message for ``record``. Never fails on a field value:
        one that would break the ``::`` framing goes out as a placeholder and
        the reason says which field was replaced and why; characters SQS
        refuses are replaced by U+FFFD in every field and attribute. ``attributes``: extra
        pipeline-specific message attributes (e.g. the search query), cut to
        ``MAX_REASON`` characters; empty ones are left out."""
        if record.pipeline != self.pipeline:
            raise ValueError(f"{record.pipeline} status sent through the {self.pipeline} sender")
        body, problems = record.encode_safe()
        if problems:
            log.warning("%s status: replaced unsendable values (%s)", self.pipeline, "; ".join(problems))
            reason = "; ".join([f"status field {p} (replaced)" for p in problems] + ([reason] if reason else []))
        attrs = {k: v[:MAX_REASON] for k, v in (attributes or {}).items() if v}
        if dedupe_key:
            attrs[ATTR_DEDUPE] = dedupe_key[:256]
        if reason:
            attrs[ATTR_REASON] = reason[:MAX_REASON]
        # The one place every pipeline's status passes: nothing SQS refuses
        # (InvalidMessageContents would fail the whole send batch) goes out.
        return OutgoingMessage(sqs_clean(body), {sqs_clean(k): sqs_clean(v) for k, v in attrs.items()})

    def send(self, record: StatusRecord, *, dedupe_key: str = "", reason: str = "") -> None:
        self.queue.send([self.message(record, dedupe_key=dedupe_key, reason=reason)])

    def send_many(self, messages: list[OutgoingMessage], *, call: CallClass = CONTROL) -> None:
        """Send ``messages``; ``call`` is their call class (``retries.py``):
        ``SETTLE`` when the caller retries them, else botocore does."""
        if messages:
            self.queue.send(messages, call=call)
