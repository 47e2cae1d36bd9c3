"""Search worker: ``{track_id, query}`` -> first video URL -> ``track_url`` row.

The backend (yt-dlp or headless Chromium, ``settings.music_search_backend``)
is made once per worker process and shared by its jobs. A result is outside
input: its URL must pass the host policy before it is stored. The row is
upserted, so a redelivered job leaves one row per track.
"""

from __future__ import annotations

import psycopg2

from ...db import connect, is_transient_db_error
from ...jobs import Job, SearchJob, salvage_track_id
from ...runtime import JobContext, Pipeline, Rejected, Transient
from ...settings import Settings
from ...status import SearchStatus, Stat, StatusRecord
from .search_backends import SearchBackend, make_backend
from .urls import UrlPolicyError, check_video_url

UPSERT_TRACK_URL = (
    "INSERT INTO track_url (track_id, href, views) VALUES (%s, %s, %s) "
    "ON CONFLICT (track_id) DO UPDATE SET href = EXCLUDED.href, views = EXCLUDED.views, updated_at = now()"
)


def upsert_track_url(settings: Settings, track_id: str, href: str, views: int) -> None:
    try:
        conn = connect(settings)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(UPSERT_TRACK_URL, (track_id, href, views))
        finally:
            conn.close()
    except psycopg2.Error as err:
        if is_transient_db_error(err):
            raise Transient(f"database unavailable while storing the search result: {err}") from None
        raise Transient(f"database error while storing the search result: {type(err).__name__}") from None


def handle(job: Job, ctx: JobContext) -> None:
    assert isinstance(job, SearchJob)
    backend: SearchBackend = ctx.resources if ctx.resources is not None else make_backend(ctx.settings)
    try:
        result = backend.search(job.query)
    finally:
        if ctx.resources is None:
            backend.close()
    if result is None:
        raise Rejected(f"no search result for query {job.query[:100]!r}")
    try:
        href = check_video_url(result.href, ctx.settings)
    except UrlPolicyError as err:
        raise Rejected(f"search result refused: {err}") from None
    upsert_track_url(ctx.settings, job.track_id, href, result.views)
    ctx.report(
        SearchStatus(instance_id=ctx.instance_id, stat=Stat.DONE, track_id=job.track_id, yt_url=href, views=result.views),
        key="done",
    )


def failure_status(job: Job | None, ctx: JobContext, stat: Stat) -> StatusRecord:
    track_id = job.track_id if isinstance(job, SearchJob) else salvage_track_id(ctx.message.body)
    return SearchStatus(instance_id=ctx.instance_id, stat=stat, track_id=track_id, yt_url="", views=-1)


PIPELINE = Pipeline(
    name="search",
    job_model=SearchJob,
    handler=handle,
    failure_status=failure_status,
    make_resources=make_backend,
    default_concurrency=2,
)
