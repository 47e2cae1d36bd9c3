"""``specfleet catalog queries``: the catalog's tracks as search queries
(``track_id,query,track_name,artist_name`` with query = track name + " " +
main artist, as the original built it), the input of ``specfleet produce
search``. The split columns let the title matcher apply the original's
artist rule (the channel carries the artist); without them the whole query
counts as the track name.

One row per track; rows whose query text repeats (same title and artist
under two track ids, e.g. a single and its album version) are dropped,
keeping the track with the most streams.
"""

from __future__ import annotations

import csv
from pathlib import Path

import psycopg2.extensions

QUERY_COLUMNS = ("track_id", "query", "track_name", "artist_name")

#: For each track its main artist: a 'main' link first, a chart artist
#: first, then by name and id so the choice is stable. Then one row per
#: query text (case- and space-insensitive), the most-streamed track kept.
QUERIES_SQL = """
WITH main_artist AS (
    SELECT DISTINCT ON (r.track_id)
           r.track_id, a.artist_name
    FROM rel_artist_track r JOIN master_artist a USING (artist_id)
    ORDER BY r.track_id, (r.role = 'main') DESC, a.is_main DESC, a.artist_name, a.artist_id
), q AS (
    SELECT t.track_id, t.streams, t.track_name || ' ' || m.artist_name AS query, t.track_name, m.artist_name
    FROM master_track t JOIN main_artist m USING (track_id)
)
SELECT track_id, query, track_name, artist_name FROM (
    SELECT DISTINCT ON (lower(regexp_replace(query, '\\s+', ' ', 'g'))) track_id, query, track_name, artist_name
    FROM q
    ORDER BY lower(regexp_replace(query, '\\s+', ' ', 'g')), streams DESC, track_id
) d
ORDER BY track_id
"""


def catalog_queries(conn: psycopg2.extensions.connection) -> list[tuple[str, str, str, str]]:
    """``(track_id, query, track_name, artist_name)`` per distinct query."""
    with conn.cursor() as cur:
        cur.execute(QUERIES_SQL)
        return [(r[0], r[1], r[2], r[3]) for r in cur.fetchall()]


def write_queries_csv(conn: psycopg2.extensions.connection, out: Path) -> int:
    """Write ``queries.csv``; returns the number of rows."""
    rows = catalog_queries(conn)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(QUERY_COLUMNS)
        writer.writerows(rows)
    return len(rows)
