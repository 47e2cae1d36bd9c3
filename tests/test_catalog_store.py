"""COPY-based bulk upserts on real Postgres: awkward text survives byte for
byte, the conflict rules hold, and bad input fails with a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import psycopg2.extensions
import pytest

from specfleet.catalog.store import upsert_rows
from specfleet.db import connect
from specfleet.settings import Settings

# Each name stresses one part of COPY text format or of the encoding.
AWKWARD_NAMES = [
    "tab\there",
    "new\nline",
    "carriage\rreturn\r\n",
    "back\\slash \\N \\t \\\\",
    "\\N",  # the NULL marker as literal text
    "\\.",  # the end-of-data marker as literal text
    'double "quotes", single \'quotes\'; commas',
    "Beyoncé · Sigur Rós · 坂本龍一 · Мумий Тролль · 🎵🔥",
    "",  # empty string must stay empty, not NULL
    "  leading and trailing spaces  ",
    "\\\t\n\\",
]


@pytest.fixture
def conn(settings: Settings) -> Iterator[psycopg2.extensions.connection]:
    c = connect(settings)
    with c, c.cursor() as cur:
        cur.execute("TRUNCATE master_artist, master_track, rel_artist_track, rel_artist_artist, master_genre")
    yield c
    c.close()


def _fetch(conn: psycopg2.extensions.connection, sql: str) -> list[tuple[object, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_awkward_text_nulls_and_dates_round_trip(conn: psycopg2.extensions.connection) -> None:
    artists = [(f"a{i:02d}", name, i % 2 == 0) for i, name in enumerate(AWKWARD_NAMES)]
    tracks = [(f"t{i:02d}", name, None if i % 3 == 0 else date(2019, 1 + i % 12, 1 + i), i * 10**8 - 1)
              for i, name in enumerate(AWKWARD_NAMES)]
    with conn, conn.cursor() as cur:
        assert upsert_rows(cur, "master_artist", artists) == len(artists)
        assert upsert_rows(cur, "master_track", tracks) == len(tracks)
    assert _fetch(conn, "SELECT artist_id, artist_name, is_main FROM master_artist ORDER BY artist_id") == artists
    assert _fetch(conn, "SELECT track_id, track_name, peak_date, streams FROM master_track ORDER BY track_id") == tracks
    assert _fetch(conn, "SELECT count(*) FROM master_track WHERE peak_date IS NULL") == [(4,)]


def test_conflict_rules_hold_across_calls_and_transactions(conn: psycopg2.extensions.connection) -> None:
    with conn, conn.cursor() as cur:
        upsert_rows(cur, "master_artist", [("a", "Old\tName", True), ("b", "B", False)])
        upsert_rows(cur, "master_track", [("t", "Chart\nname", date(2020, 5, 1), 500), ("u", "API", date(2018, 1, 1), -1)])
        upsert_rows(cur, "rel_artist_track", [("a", "t", "main"), ("b", "t", "featured")])
        # same tables again in the same transaction: the stage must not replay the first rows
        upsert_rows(cur, "master_artist", [("a", "New\\Name", False)])
        upsert_rows(cur, "rel_artist_track", [("a", "t", "featured"), ("b", "t", "main")])
    with conn, conn.cursor() as cur:
        upsert_rows(cur, "master_track", [("t", "API name", date(2017, 1, 1), -1), ("u", "Chart", date(2021, 2, 3), 7)])
        upsert_rows(cur, "master_artist", [("b", "B2", True)])
    # main once -> main forever; the name follows the latest write
    assert _fetch(conn, "SELECT * FROM master_artist ORDER BY artist_id") == [("a", "New\\Name", True), ("b", "B2", True)]
    # a chart row (streams >= 0) beats an API row (-1), whichever comes first
    assert _fetch(conn, "SELECT * FROM master_track ORDER BY track_id") == [
        ("t", "Chart\nname", date(2020, 5, 1), 500),
        ("u", "Chart", date(2021, 2, 3), 7),
    ]
    # 'main' beats 'featured' in either order
    assert _fetch(conn, "SELECT * FROM rel_artist_track ORDER BY artist_id") == [("a", "t", "main"), ("b", "t", "main")]


def test_failed_transaction_leaves_nothing_behind(conn: psycopg2.extensions.connection) -> None:
    with pytest.raises(psycopg2.errors.CheckViolation):
        with conn, conn.cursor() as cur:
            upsert_rows(cur, "master_artist", [("a", "A", True)])
            upsert_rows(cur, "rel_artist_track", [("a", "t", "guest")])  # role not allowed by the schema
    with conn, conn.cursor() as cur:
        upsert_rows(cur, "master_genre", [("a", "pop", "spotify")])
    assert _fetch(conn, "SELECT count(*) FROM master_artist") == [(0,)]
    assert _fetch(conn, "SELECT * FROM master_genre") == [("a", "pop", "spotify")]


def test_nul_character_and_autocommit_are_refused_clearly(conn: psycopg2.extensions.connection) -> None:
    with pytest.raises(ValueError, match=r"master_artist: NUL character in value 'bad\\x00name'"):
        with conn, conn.cursor() as cur:
            upsert_rows(cur, "master_artist", [("a", "bad\x00name", False)])
    conn.autocommit = True
    with pytest.raises(RuntimeError, match="needs a transaction"):
        with conn.cursor() as cur:
            upsert_rows(cur, "master_artist", [("a", "A", False)])
    assert _fetch(conn, "SELECT count(*) FROM master_artist") == [(0,)]
