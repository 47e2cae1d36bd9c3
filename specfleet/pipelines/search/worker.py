"""Search worker: ``{track_id, query[, track_name, artist_name]}`` -> the
first result whose title matches the track -> one ``status_search`` message.

The backend (yt-dlp or headless Chromium, ``MusicSettings.search_backend``)
is made once per worker process and shared by its jobs. It returns the
results in page order; ``title_match`` picks the first whose title matches
(``MusicSettings.title_match``: the original's rules by default).

Outcomes (all as ``instance_id::stat::track_id::yt_url::views::date``):

* a match: stat 1, its URL (checked against the host policy: a result is
  outside input) and views; the reason says which result and rule;
* no match (or no results at all): stat 2 ("skipped: filtered"), yt_url
  ``NOTFOUND`` (the original's href), views -1, reason naming the query.
  The job succeeded (no retry, no alert) and its answer is "not found": the
  catalog records it with ``is_found`` false. Stat 2 rather than 1 keeps
  "stat 1 = a URL to download" true, and lists NOTFOUND tracks among the
  rows with stat != 1 that people review;
* blocked / broken site: the runtime's error classes (retry, ban, reject).

Workers never touch the database (issue 17): the status writer derives the
``track_url`` row from this message (``track_url.py``). The searched query
text rides along as the ``query`` message attribute for ``track_url.queried``.
"""

from __future__ import annotations

from ...runtime import JobContext, Rejected
from ...status import Stat
from ..music.urls import UrlPolicyError, check_video_url
from .backends import SearchBackend, make_backend
from .models import SearchJob, SearchStatus
from .overrides import overrides_for
from .title_match import RULES, TrackQuery, first_match, title_score
from .track_url import NOTFOUND, match_attributes, query_attribute


def track_query(job: SearchJob) -> TrackQuery:
    """The track/artist split the matcher needs; without one the whole query
    is the track name."""
    if job.track_name is not None and job.artist_name is not None:
        return TrackQuery(job.track_name, job.artist_name)
    return TrackQuery(job.query)


def handle(job: SearchJob, ctx: JobContext) -> None:
    if _overridden(job, ctx):
        return
    backend: SearchBackend = ctx.resources if ctx.resources is not None else make_backend(ctx.settings, ctx.config)
    try:
        results = backend.search(job.query)
    finally:
        if ctx.resources is None:
            backend.close()
    strictness = ctx.config.title_match
    hit = first_match(track_query(job), results, strictness=strictness, fold=ctx.config.title_fold)
    attributes = query_attribute(job.query)
    if hit is None:
        ctx.report(
            SearchStatus(instance_id=ctx.instance_id, stat=Stat.SKIPPED, track_id=job.track_id, yt_url=NOTFOUND, views=-1),
            reason=f"NOTFOUND: no result title matched the query {job.query[:200]!r} "
            f"({len(results)} results scanned, title match {strictness!r})",
            key="done", attributes=attributes,
        )
        ctx.wrote = "not found"
        return
    index, rule = hit
    result = results[index]
    try:
        href = check_video_url(result.href, ctx.config)
    except UrlPolicyError as err:
        raise Rejected(f"search result refused: {err}") from None
    ctx.wrote = f"found {href}"
    ctx.report(
        SearchStatus(instance_id=ctx.instance_id, stat=Stat.DONE, track_id=job.track_id, yt_url=href, views=result.views),
        reason=f"result {index + 1} of {len(results)} matched: {RULES[rule]}",
        key="done",
        attributes={**attributes, **match_attributes(
            rule, title_score(track_query(job), result.title, fold=ctx.config.title_fold))},
    )


def _overridden(job: SearchJob, ctx: JobContext) -> bool:
    """Answer ``job`` from the overrides CSV, if it lists the track."""
    override = overrides_for(ctx.config.overrides_csv, ctx.settings).get(job.track_id)
    if override is None:
        return False
    attributes = {**query_attribute(job.query), **match_attributes("override", 1.0)}
    if override == NOTFOUND:
        ctx.report(
            SearchStatus(instance_id=ctx.instance_id, stat=Stat.SKIPPED, track_id=job.track_id, yt_url=NOTFOUND, views=-1),
            reason="NOTFOUND: set by the overrides file", key="done", attributes=attributes,
        )
        return True
    try:
        href = check_video_url(override, ctx.config)
    except UrlPolicyError as err:
        raise Rejected(f"override refused: {err}") from None
    ctx.report(
        SearchStatus(instance_id=ctx.instance_id, stat=Stat.DONE, track_id=job.track_id, yt_url=href, views=-1),
        reason="URL set by the overrides file", key="done", attributes=attributes,
    )
    return True


