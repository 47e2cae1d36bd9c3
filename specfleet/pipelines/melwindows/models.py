"""Spectrogram job and status: ``{track_id[, audio_key]}`` (or the original
producer's bare ``track_id``) -> one
``instance_id::stat::track_id::win::ini::fin::rows::cols::date`` per window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from ...jobs import TRACK_ID_RE, Job, TrackId
from ...queues import Queue
from ...settings import Settings
from ...status import Stat, StatusRecord

#: Logical queue names of the mel windows (real names: ``queue_prefix + name``).
JOB_QUEUE = "jobs_specto"
STATUS_QUEUE = "status_specto"


@dataclass(frozen=True)
class StatusStream:
    """The ``status_specto`` stream as a status sender's target: the
    spectrogram pipeline's spec names the same queue, and a fused download
    worker sends its window rows here without importing that pipeline."""

    name: str = "spectrogram"
    status_queue: str = STATUS_QUEUE

    def statuses(self, settings: Settings) -> Queue:
        return Queue(settings, settings.queue_prefix + self.status_queue)


SPECTO_STATUS = StatusStream()


class SpectoJob(Job):
    pipeline: ClassVar[str] = "spectrogram"
    track_id: TrackId
    #: S3 key of the mp3; defaults to ``audio/{track_id}.mp3``.
    audio_key: str = Field(default="", max_length=1024)

    def key(self) -> str:
        return self.track_id

    def source_key(self) -> str:
        return self.audio_key or f"audio/{self.track_id}.mp3"


class SpectoStatus(StatusRecord):
    pipeline: ClassVar[str] = "spectrogram"
    table: ClassVar[str] = "status_specto"
    track_id: str = Field(min_length=1, max_length=128)
    win: int = Field(ge=-1)
    ini: int = Field(ge=0)
    fin: int = Field(ge=0)
    rows: int = Field(ge=0)
    cols: int = Field(ge=0)




def failure_status(job: SpectoJob | None, ctx: Any, stat: Stat) -> SpectoStatus:
    track_id = job.track_id if job is not None else "invalid"
    # win -1: the job as a whole, not one of its windows.
    return SpectoStatus(instance_id=ctx.instance_id, stat=stat, track_id=track_id, win=-1, ini=0, fin=0, rows=0, cols=0)


def legacy_body(body: str) -> dict[str, Any] | None:
    """The original producer's body: a bare track id."""
    text = body.strip()
    return {"track_id": text} if TRACK_ID_RE.fullmatch(text) else None
