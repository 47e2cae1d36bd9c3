"""Search job and status: ``{track_id, query[, track_name, artist_name]}`` ->
``instance_id::stat::track_id::yt_url::views::date``."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from ...jobs import Job, TrackId, salvage_track_id
from ...status import Stat, StatusRecord


class SearchJob(Job):
    pipeline: ClassVar[str] = "search"
    track_id: TrackId
    query: str = Field(min_length=1, max_length=500)
    #: Optional split of the query (both or neither): the title matcher's
    #: artist rule needs to know which words name the artist. Without it the
    #: whole query counts as the track name.
    track_name: str | None = Field(default=None, min_length=1, max_length=300)
    artist_name: str | None = Field(default=None, min_length=1, max_length=300)

    @model_validator(mode="after")
    def _split_both_or_neither(self) -> SearchJob:
        if (self.track_name is None) != (self.artist_name is None):
            raise ValueError("track_name and artist_name go together: give both or neither")
        return self

    def body(self) -> str:
        # Without a split the body stays ``{track_id, query}``: what workers
        # that predate the split accept.
        return self.model_dump_json(exclude_none=True)

    def key(self) -> str:
        return self.track_id


class SearchStatus(StatusRecord):
    pipeline: ClassVar[str] = "search"
    table: ClassVar[str] = "status_search"
    track_id: str = Field(min_length=1, max_length=128)
    yt_url: str = Field(max_length=2048)
    views: int = Field(ge=-1)




def failure_status(job: SearchJob | None, ctx: Any, stat: Stat) -> SearchStatus:
    track_id = job.track_id if job is not None else salvage_track_id(ctx.message.body)
    return SearchStatus(instance_id=ctx.instance_id, stat=stat, track_id=track_id, yt_url="", views=-1)
