"""``track_url`` derived by the status writer from ``status_search`` records
(issue 17: workers hold no database credentials), against the real Postgres:
newest search wins by the status date, redelivery changes nothing, an older
NOTFOUND never replaces a found URL, and the derived row commits with the
status row or not at all."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from helpers import count, query
from specfleet.pipelines import status_queue
from specfleet.pipelines.search.models import SearchStatus
from specfleet.pipelines.search.track_url import upsert_track_urls
from specfleet.status import InboundRecord, Stat
from specfleet.status_writer import StatusWriter

T0 = dt.datetime(2024, 5, 1, 12, 0, 0)
URL1, URL2 = "https://www.youtube.com/watch?v=one", "https://www.youtube.com/watch?v=two"


def record(settings, *, stat=Stat.DONE, url=URL1, views=10, at=T0, track="t1", query_text="Around The World Daft Punk",
           message_id=None):
    status = SearchStatus(instance_id="i-1", stat=stat, track_id=track, yt_url=url, views=views, date=at)
    return InboundRecord(message_id or uuid.uuid4().hex, status_queue(settings, "search").name, status.encode(),
                         {"query": query_text} if query_text else {})


def track_row(settings, track="t1"):
    rows = query(settings, "SELECT href, views, is_found, queried, searched_at FROM track_url WHERE track_id = %s",
                 (track,))
    return rows[0] if rows else None


def test_newest_search_wins_and_redelivery_changes_nothing(settings):
    writer = StatusWriter(settings, publish_fn=lambda subject, body: None)
    found = record(settings, at=T0)
    assert writer.write([found]).written == 1
    assert track_row(settings) == (URL1, 10, True, "around the world daft punk", T0)

    # late messages from older searches: neither NOTFOUND nor another URL replaces it
    older = T0 - dt.timedelta(hours=1)
    writer.write([record(settings, stat=Stat.SKIPPED, url="NOTFOUND", views=-1, at=older)])
    writer.write([record(settings, url=URL2, views=99, at=older)])
    assert track_row(settings) == (URL1, 10, True, "around the world daft punk", T0)

    # the same message again (SQS redelivery): a duplicate, nothing derived
    again = writer.write([found])
    assert (again.written, again.duplicates) == (0, 1)
    assert track_row(settings) == (URL1, 10, True, "around the world daft punk", T0)

    # a newer search that found nothing is the current answer
    newer = T0 + dt.timedelta(days=1)
    writer.write([record(settings, stat=Stat.SKIPPED, url="NOTFOUND", views=-1, at=newer, query_text="")])
    assert track_row(settings) == ("NOTFOUND", -1, False, None, newer)
    # on the same date a found URL beats NOTFOUND, and NOTFOUND never beats a found URL
    writer.write([record(settings, url=URL2, views=7, at=newer)])
    writer.write([record(settings, stat=Stat.SKIPPED, url="NOTFOUND", views=-1, at=newer)])
    assert track_row(settings) == (URL2, 7, True, "around the world daft punk", newer)
    assert count(settings, "status_search") == 6  # 7 messages, one of them redelivered


def test_one_batch_many_records_of_one_track_and_non_answers(settings):
    writer = StatusWriter(settings, publish_fn=lambda subject, body: None)
    batch = [
        record(settings, track="t2", url=URL1, at=T0),
        record(settings, track="t2", stat=Stat.SKIPPED, url="NOTFOUND", views=-1, at=T0 + dt.timedelta(seconds=5)),
        record(settings, track="t2", url=URL2, at=T0 + dt.timedelta(seconds=5)),  # same date: found wins
        record(settings, track="t3", stat=Stat.FAILED, url="", views=-1),  # a failure is no answer
        record(settings, track="t4", stat=Stat.BANNED, url="", views=-1),
        record(settings, track="t5", stat=Stat.DONE, url="NOTFOUND", views=-1),  # inconsistent: not derived
        record(settings, track="t6", stat=Stat.DONE, url="javascript:alert(1)"),  # not a URL: not derived
    ]
    result = writer.write(batch)
    assert (result.written, result.rejected, result.failed_ids) == (7, 0, [])
    assert query(settings, "SELECT track_id, href FROM track_url ORDER BY track_id") == [("t2", URL2)]


def test_derived_row_commits_with_the_status_row_or_not_at_all(settings, monkeypatch):
    def derive_then_fail(cur, records):
        upsert_track_urls(cur, records)
        raise RuntimeError("crash after deriving")

    monkeypatch.setattr("specfleet.pipelines.search.track_url.upsert_track_urls", derive_then_fail)
    writer = StatusWriter(settings, publish_fn=lambda subject, body: None)
    with pytest.raises(RuntimeError, match="crash after deriving"):
        writer.write([record(settings, track="t7")])
    assert count(settings, "status_search") == 0 and count(settings, "track_url") == 0
    monkeypatch.undo()
    assert writer.write([record(settings, track="t7")]).written == 1
    assert count(settings, "status_search") == 1 and track_row(settings, "t7")[0] == URL1


def test_notfound_rows_must_say_not_found(settings):
    import psycopg2

    from specfleet.db import connect

    conn = connect(settings)
    try:
        with pytest.raises(psycopg2.errors.CheckViolation), conn, conn.cursor() as cur:
            cur.execute("INSERT INTO track_url (track_id, href, views, is_found) VALUES ('x', 'NOTFOUND', -1, true)")
    finally:
        conn.close()
