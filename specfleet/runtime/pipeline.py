"""What a pipeline plugs into the runtime: its job model, its handler and
how to phrase a failure as a status record."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..jobs import Job
from ..queues import Message, OutgoingMessage
from ..settings import Settings
from ..status import Stat, StatusRecord
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


class FailureStatus(Protocol):
    def __call__(self, job: Job | None, ctx: JobContext, stat: Stat) -> StatusRecord: ...


@dataclass(frozen=True)
class Pipeline:
    name: str
    job_model: type[Job]
    handler: Callable[[Job, JobContext], None]
    #: Build the status record for a job that failed, was skipped, or whose
    #: body could not even be parsed (``job is None``).
    failure_status: FailureStatus
    #: Optional per-process resources (a process pool, a browser); the
    #: returned object is passed as ``ctx.resources`` and closed on exit.
    make_resources: Callable[[Settings], Any] | None = None
    #: Default number of concurrent jobs (0 = settings / CPU count).
    default_concurrency: int = 0
