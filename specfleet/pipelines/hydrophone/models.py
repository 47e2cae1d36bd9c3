"""Hydrophone job and status: one job per 5-minute miniSEED file, one
status row per file (``instance_id::stat::file_url::clips::date``)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from ...jobs import HttpUrl, Job
from ...status import Stat, StatusRecord


class HydroJob(Job):
    pipeline: ClassVar[str] = "hydrophone"
    file_url: HttpUrl
    #: Hydrophone path below the archive root, e.g. ``CE02SHBP/LJ01D/11-HYDBBA106``.
    hydrophone: str = Field(default="", max_length=256, pattern=r"^[A-Za-z0-9_./\-]*$")
    #: Files the day's listing held when produced (0: unknown). Once that many
    #: are done, the whaledr profile publishes the day's part of its manifest
    #: and the archive copy writes the day's manifest.
    day_files: int = Field(default=0, ge=0, le=100_000)

    def key(self) -> str:
        return self.file_url


class HydroStatus(StatusRecord):
    pipeline: ClassVar[str] = "hydrophone"
    table: ClassVar[str] = "status_hydro"
    file_url: str = Field(max_length=2048)
    clips: int = Field(ge=0, le=100_000)




def failure_status(job: HydroJob | None, ctx: Any, stat: Stat) -> HydroStatus:
    url = job.file_url if job is not None else "invalid"
    return HydroStatus(instance_id=ctx.instance_id, stat=stat, file_url=url, clips=0)
