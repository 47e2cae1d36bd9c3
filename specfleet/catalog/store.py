"""Catalog tables: bulk upserts (``COPY`` into a staging table, then one
``INSERT ... SELECT ... ON CONFLICT``) and the progress table that makes a
build resumable.

A ``CatalogBatch`` collects the rows of a few main artists; merging inside
the batch follows the same rules as the SQL upserts, so writing a batch
once or twice, or two batches in either order, ends in the same tables:

* an artist is main if any source says so;
* a chart row of a track (streams >= 0) wins over an API row (streams -1);
* a ``main`` link between artist and track wins over ``featured``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg2.extensions

#: table -> (columns, ON CONFLICT clause). Order = foreign-key order.
UPSERTS: dict[str, tuple[tuple[str, ...], str]] = {
    "master_artist": (
        ("artist_id", "artist_name", "is_main"),
        "ON CONFLICT (artist_id) DO UPDATE SET artist_name = EXCLUDED.artist_name,"
        " is_main = master_artist.is_main OR EXCLUDED.is_main",
    ),
    "master_track": (
        ("track_id", "track_name", "peak_date", "streams"),
        "ON CONFLICT (track_id) DO UPDATE SET"
        " track_name = CASE WHEN EXCLUDED.streams >= master_track.streams"
        "   THEN EXCLUDED.track_name ELSE master_track.track_name END,"
        " peak_date = CASE WHEN EXCLUDED.streams >= master_track.streams"
        "   THEN EXCLUDED.peak_date ELSE master_track.peak_date END,"
        " streams = GREATEST(master_track.streams, EXCLUDED.streams)",
    ),
    "rel_artist_track": (
        ("artist_id", "track_id", "role"),
        "ON CONFLICT (artist_id, track_id) DO UPDATE SET role = CASE"
        " WHEN 'main' IN (rel_artist_track.role, EXCLUDED.role) THEN 'main' ELSE 'featured' END",
    ),
    "rel_artist_artist": (
        ("query", "rel_art", "genre", "popularity"),
        "ON CONFLICT (query, rel_art, genre) DO UPDATE SET popularity = EXCLUDED.popularity",
    ),
    "master_genre": (
        ("artist_id", "genre", "source"),
        "ON CONFLICT (artist_id, genre) DO UPDATE SET source = EXCLUDED.source",
    ),
    "catalog_progress": (
        ("artist_id", "tracks"),
        "ON CONFLICT (artist_id) DO UPDATE SET tracks = EXCLUDED.tracks, done_at = now()",
    ),
}

CATALOG_TABLES = ("master_artist", "master_track", "rel_artist_track", "rel_artist_artist", "master_genre")


def upsert_from_sql(table: str, source: str) -> str:
    """``INSERT INTO table (columns) <source> ON CONFLICT ...``; ``source`` is a
    ``SELECT`` or a ``VALUES`` list yielding the upsert columns in order."""
    columns, conflict = UPSERTS[table]
    return f"INSERT INTO {table} ({', '.join(columns)}) {source} {conflict}"


def row_upsert_sql(table: str) -> str:
    """The one-row form (``VALUES (%s, ...)``), e.g. for a per-row baseline."""
    return upsert_from_sql(table, "VALUES (" + ", ".join(["%s"] * len(UPSERTS[table][0])) + ")")


def stage_table(table: str) -> str:
    return f"pg_temp.catalog_stage_{table}"


def copy_field(value: Any) -> str:
    """One value in COPY text format: ``\\N`` for NULL, ``t``/``f`` for booleans,
    ``str()`` otherwise (ISO dates), with backslash, tab, newline and carriage
    return escaped so they cannot end a field or a row."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    text = value if isinstance(value, str) else str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    if "\x00" in text:  # Postgres text cannot hold NUL; say which value instead of a bare encoding error
        raise ValueError(f"NUL character in value {text!r}")
    return text


def copy_text(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as one COPY text-format buffer (tab-separated, newline-terminated)."""
    return "".join("\t".join(map(copy_field, row)) + "\n" for row in rows)


def upsert_rows(cur: psycopg2.extensions.cursor, table: str, rows: Sequence[tuple[Any, ...]]) -> int:
    """Bulk upsert; rows must have distinct keys (a batch merges them first).

    The rows are streamed with ``COPY`` into a per-session temporary staging
    table (no index, no WAL) and merged with one ``INSERT ... SELECT ... ON
    CONFLICT``, so the conflict rules are exactly those of ``UPSERTS``. COPY
    skips building and parsing SQL text per row, which was half the cost of
    ``execute_values``. The stage empties itself at commit; it is also
    truncated first in case the same table is upserted twice in one
    transaction. Must run inside a transaction (not autocommit): the stage
    would be emptied between the COPY and the INSERT."""
    if not rows:
        return 0
    if cur.connection.autocommit:
        raise RuntimeError("upsert_rows needs a transaction: the staging table empties at every commit")
    columns = ", ".join(UPSERTS[table][0])
    stage = stage_table(table)
    cur.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS"
        f" AS SELECT {columns} FROM {table} WITH NO DATA; TRUNCATE {stage}"
    )
    try:
        cur.copy_expert(f"COPY {stage} ({columns}) FROM STDIN", io.StringIO(copy_text(rows)))
    except ValueError as exc:
        raise ValueError(f"{table}: {exc}") from None
    cur.execute(upsert_from_sql(table, f"SELECT {columns} FROM {stage}"))
    return len(rows)


@dataclass
class CatalogBatch:
    artists: dict[str, tuple[str, bool]] = field(default_factory=dict)
    tracks: dict[str, tuple[str, date | None, int]] = field(default_factory=dict)
    artist_tracks: dict[tuple[str, str], str] = field(default_factory=dict)
    related: dict[tuple[str, str, str], int] = field(default_factory=dict)
    genres: dict[tuple[str, str], str] = field(default_factory=dict)
    progress: dict[str, int] = field(default_factory=dict)

    def add_artist(self, artist_id: str, name: str, is_main: bool = False) -> None:
        old = self.artists.get(artist_id)
        self.artists[artist_id] = (name, is_main or (old is not None and old[1]))

    def add_track(self, track_id: str, name: str, peak_date: date | None, streams: int) -> None:
        old = self.tracks.get(track_id)
        if old is None or streams >= old[2]:
            self.tracks[track_id] = (name, peak_date, streams)

    def link(self, artist_id: str, track_id: str, role: str) -> None:
        if self.artist_tracks.get((artist_id, track_id)) != "main":
            self.artist_tracks[(artist_id, track_id)] = role

    def relate(self, query: str, rel_art: str, genres: Iterable[str], popularity: int) -> None:
        for genre in list(genres) or [""]:
            self.related[(query, rel_art, genre)] = popularity

    def rows(self) -> dict[str, list[tuple[Any, ...]]]:
        return {
            "master_artist": [(k, *v) for k, v in sorted(self.artists.items())],
            "master_track": [(k, *v) for k, v in sorted(self.tracks.items())],
            "rel_artist_track": [(*k, v) for k, v in sorted(self.artist_tracks.items())],
            "rel_artist_artist": [(*k, v) for k, v in sorted(self.related.items())],
            "master_genre": [(*k, v) for k, v in sorted(self.genres.items())],
            "catalog_progress": sorted(self.progress.items()),
        }


def write_batch(conn: psycopg2.extensions.connection, batch: CatalogBatch) -> dict[str, int]:
    """All rows of a batch and its progress marks in one transaction."""
    written: dict[str, int] = {}
    with conn:
        with conn.cursor() as cur:
            for table, rows in batch.rows().items():
                written[table] = upsert_rows(cur, table, rows)
    return written


def done_artists(conn: psycopg2.extensions.connection) -> set[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT artist_id FROM catalog_progress")
        return {r[0] for r in cur.fetchall()}


def reset_progress(conn: psycopg2.extensions.connection) -> None:
    with conn:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM catalog_progress")


def artists_without_genre(conn: psycopg2.extensions.connection) -> dict[str, list[list[str]]]:
    """Catalog artists (with tracks) that have no Spotify genre, each with the
    genre lists of their related artists (empty lists for genre-less ones)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT a.artist_id, r.rel_art, r.genre
            FROM (SELECT DISTINCT artist_id FROM rel_artist_track) a
            LEFT JOIN rel_artist_artist r ON r.query = a.artist_id
            WHERE NOT EXISTS (SELECT 1 FROM master_genre g
                              WHERE g.artist_id = a.artist_id AND g.source = 'spotify')
            ORDER BY a.artist_id, r.rel_art, r.genre
            """
        )
        out: dict[str, dict[str, list[str]]] = {}
        for artist_id, rel_art, genre in cur.fetchall():
            related = out.setdefault(artist_id, {})
            if rel_art is not None:
                genres = related.setdefault(rel_art, [])
                if genre:
                    genres.append(genre)
    return {a: list(rel.values()) for a, rel in out.items()}


def replace_inferred_genres(conn: psycopg2.extensions.connection, genres: dict[str, str]) -> int:
    """Swap all non-Spotify genre rows for ``genres`` in one transaction."""
    rows = [(a, g, "undefined" if g == "undefined" else "inferred") for a, g in sorted(genres.items())]
    with conn:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM master_genre WHERE source <> 'spotify'")
            upsert_rows(cur, "master_genre", rows)
    return len(rows)


def table_counts(conn: psycopg2.extensions.connection) -> dict[str, int]:
    counts = {}
    with conn.cursor() as cur:
        for table in (*CATALOG_TABLES, "catalog_progress"):
            cur.execute(f"SELECT count(*) FROM {table}")
            counts[table] = int(cur.fetchone()[0])
    return counts


#: relation table.column -> the master table.column it must point into.
REFERENCES = {
    ("rel_artist_track", "artist_id"): ("master_artist", "artist_id"),
    ("rel_artist_track", "track_id"): ("master_track", "track_id"),
    ("rel_artist_artist", "query"): ("master_artist", "artist_id"),
    ("rel_artist_artist", "rel_art"): ("master_artist", "artist_id"),
    ("master_genre", "artist_id"): ("master_artist", "artist_id"),
}


def dangling_references(conn: psycopg2.extensions.connection) -> dict[str, int]:
    """Rows whose reference has no master row (the schema has no FK triggers,
    see 020_catalog.sql); an empty dict means the catalog is consistent."""
    out = {}
    with conn.cursor() as cur:
        for (table, col), (master, key) in REFERENCES.items():
            cur.execute(
                f"SELECT count(*) FROM {table} r WHERE NOT EXISTS (SELECT 1 FROM {master} m WHERE m.{key} = r.{col})"
            )
            n = int(cur.fetchone()[0])
            if n:
                out[f"{table}.{col}"] = n
    return out
