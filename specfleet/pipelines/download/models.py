"""Download job and status: ``{track_id, yt_url}`` (or the original producer's
``track_id::yt_url``) -> ``instance_id::stat::track_id::yt_url::date``."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from ...jobs import TRACK_ID_RE, HttpUrl, Job, TrackId, body_fields, salvage_track_id
from ...status import Stat, StatusRecord


class DownloadJob(Job):
    pipeline: ClassVar[str] = "download"
    track_id: TrackId
    yt_url: HttpUrl

    def key(self) -> str:
        return self.track_id


class DownloadStatus(StatusRecord):
    pipeline: ClassVar[str] = "download"
    table: ClassVar[str] = "status"
    track_id: str = Field(min_length=1, max_length=128)
    yt_url: str = Field(max_length=2048)




def failure_status(job: DownloadJob | None, ctx: Any, stat: Stat) -> DownloadStatus:
    if job is not None:
        track_id, url = job.track_id, job.yt_url
    else:  # unparseable body: keep what is safe to keep, for the status row
        track_id, url = _salvage(ctx.message.body)
    # A salvaged URL may not fit the '::' format: the status sender's guard replaces it then.
    return DownloadStatus(instance_id=ctx.instance_id, stat=stat, track_id=track_id, yt_url=url)


def _salvage(body: str) -> tuple[str, str]:
    """Track id and URL of a job body that failed validation, where they are
    safe to show in a status row (else ``"invalid"`` / ``""``)."""
    old = legacy_body(body)
    url = (old or body_fields(body)).get("yt_url")
    track_id = old["track_id"] if old else salvage_track_id(body)
    return track_id, url[:300] if isinstance(url, str) else ""


def legacy_body(body: str) -> dict[str, Any] | None:
    """The original producer's ``track_id::yt_url`` body as a job object
    (the URL may itself hold ``::``-free text only; validation follows)."""
    track_id, sep, url = body.strip().partition("::")
    if not sep or not TRACK_ID_RE.fullmatch(track_id) or not url.startswith(("http://", "https://")):
        return None
    return {"track_id": track_id, "yt_url": url}
