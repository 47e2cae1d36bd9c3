"""What a handler gets besides its job: ``JobContext``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ..queues import Message, OutgoingMessage
from ..settings import Settings
from ..status import StatusRecord
from .status_sender import StatusSender


@dataclass
class JobContext:
    """What a handler gets besides its job."""

    settings: Settings
    message: Message
    instance_id: str
    sender: StatusSender
    #: Set when the worker is shutting down: long handlers should check it
    #: between steps and raise ``Transient`` to hand the job back early.
    cancelled: threading.Event
    resources: Any = None
    #: The pipeline's own settings (``spec.settings``), resolved once per worker.
    config: Any = None
    _out: list[OutgoingMessage] = field(default_factory=list)

    def report(
        self, record: StatusRecord, *, reason: str = "", key: str | None = None,
        attributes: dict[str, str] | None = None,
    ) -> None:
        """Queue a status message; sent in batches when the handler returns.

        The dedupe key is the job's SQS message id plus ``key`` (or the
        record's position), so a redelivered job writes no duplicate rows.
        ``attributes`` ride along as message attributes (see StatusSender).
        """
        suffix = key if key is not None else str(len(self._out))
        self._out.append(self.sender.message(
            record, dedupe_key=f"{self.message.message_id}/{suffix}", reason=reason, attributes=attributes,
        ))

    def take_reports(self) -> list[OutgoingMessage]:
        out, self._out = self._out, []
        return out
