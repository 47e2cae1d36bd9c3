"""Shared pieces of the catalog tests: the fake world, its local server,
settings pointed at it, a second database, and the expected tables worked
out from the world itself (not from the code under test)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import pytest
from pydantic import SecretStr

from specfleet.catalog.settings import CatalogSettings
from specfleet.db import connect
from specfleet.pipelines.schema import migrate
from specfleet.settings import Settings
from specfleet.standins.catalog_fakes import FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FakeSources, FakeWorld

TABLE_KEYS = {
    "master_artist": "artist_id",
    "master_track": "track_id",
    "rel_artist_track": "artist_id, track_id",
    "rel_artist_artist": "query, rel_art, genre",
    "master_genre": "artist_id, genre",
}


def catalog_config(sources: FakeSources, **overrides: Any) -> CatalogSettings:
    """Catalog settings pointed at the fake sources, with quick retries."""
    return CatalogSettings(**{**sources.settings_overrides(), "retry_wait_s": 0.01, "max_attempts": 3, **overrides})


def second_database(settings: Settings) -> Settings:
    """A fresh, migrated database on the same server (for a clean reference run)."""
    dsn = settings.db_dsn.get_secret_value()  # type: ignore[union-attr]
    name = f"c{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    other = settings.model_copy(update={"db_dsn": SecretStr(dsn.rsplit("/", 1)[0] + "/" + name)})
    conn = connect(other)
    migrate(conn)
    conn.close()
    return other


def dump_tables(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    conn = connect(settings)
    try:
        out = {}
        with conn.cursor() as cur:
            for table, key in TABLE_KEYS.items():
                cur.execute(f"SELECT * FROM {table} ORDER BY {key}")
                out[table] = cur.fetchall()
        return out
    finally:
        conn.close()


def catalog_artists(world: FakeWorld) -> set[str]:
    """Artists with tracks: chart artists and everyone on their chart tracks."""
    out = set(world.chart)
    for main in world.chart:
        for t in world.chart_tracks[main]:
            out.update(world.tracks[t].artists)
    return out


def expected_counts(world: FakeWorld) -> dict[str, int]:
    cat = catalog_artists(world)
    non_chart = cat - set(world.chart)
    artists = set(cat)
    for a in cat:
        artists.update(world.artists[a].related)
    tracks = {t for m in world.chart for t in world.chart_tracks[m]}
    tracks |= {t for a in non_chart for t in world.top_tracks[a]}
    links = {(a, t) for m in world.chart for t in world.chart_tracks[m] for a in world.tracks[t].artists}
    links |= {(a, t) for a in non_chart for t in world.top_tracks[a]}
    related = sum(max(1, len(world.artists[r].genres)) for a in cat for r in world.artists[a].related)
    genres = sum(max(1, len(world.artists[a].genres)) for a in cat)
    return {
        "master_artist": len(artists),
        "master_track": len(tracks),
        "rel_artist_track": len(links),
        "rel_artist_artist": related,
        "master_genre": genres,
        "catalog_progress": len(world.chart),
    }


@contextmanager
def serve_fakes(world: FakeWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSources]:
    """Chart pages and the Spotify fake for ``world`` on 127.0.0.1, with the
    client credentials the fake expects in the environment."""
    monkeypatch.setenv("SPOTIFY_CLIENT_ID", FAKE_CLIENT_ID)
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", FAKE_CLIENT_SECRET)
    src = FakeSources(world).start()
    try:
        yield src
    finally:
        src.close()
