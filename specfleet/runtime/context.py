"""What a handler gets besides its job: ``JobContext``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ..queues import Message, OutgoingMessage
from ..settings import Settings
from ..status import StatusRecord
from .stages import JobStages, Stages
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
    #: The worker's compute gate and stage record (None: stages are not tracked).
    stages: Stages | None = None
    #: What the job wrote, in a few words ("60 clips, 4.2 MB"): set by the
    #: handler, shown on the worker's line for the job.
    wrote: str = ""
    _out: list[OutgoingMessage] = field(default_factory=list)
    _stage: JobStages | None = None

    def stage(self, name: str) -> None:
        """Mark the start of a stage of this job ("fetch", "compute",
        "upload"); it lasts until the next mark or the end of the job.
        ``"compute"`` first waits for one of the worker's compute slots and
        holds it until then, so other jobs fetch and upload meanwhile (see
        ``stages.py``). Raises ``Transient`` if the worker stops while waiting."""
        if self._stage is None:
            self._stage = JobStages(self.stages, self.message.message_id, self.cancelled)
        self._stage.enter(name)

    def end_stages(self) -> None:
        """Close the open stage and free its compute slot (the runtime calls
        this when the handler returns or raises)."""
        if self._stage is not None:
            self._stage.close()

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
