"""Catalog build on real Postgres against the local chart + Spotify stand-ins:
row counts, reruns without duplicates, crash + resume = clean run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from catalog_helpers import catalog_config, dump_tables, expected_counts, second_database, serve_fakes
from helpers import query
from specfleet.catalog import SpotifyError
from specfleet.catalog.build import build_catalog
from specfleet.catalog.store import dangling_references
from specfleet.db import connect
from specfleet.settings import Settings
from specfleet.standins.catalog_fakes import FakeSources, FakeWorld, make_world

WORLD = make_world(n_main=50, seed=7)


@pytest.fixture
def sources(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSources]:
    with serve_fakes(WORLD, monkeypatch) as src:
        yield src


def _counts(settings: Settings) -> dict[str, int]:
    tables = ("master_artist", "master_track", "rel_artist_track", "rel_artist_artist", "master_genre", "catalog_progress")
    return {t: int(query(settings, f"SELECT count(*) FROM {t}")[0][0]) for t in tables}


def test_fifty_artist_chart_gives_expected_tables_and_reruns_add_nothing(settings: Settings, sources: FakeSources) -> None:
    s, config = settings, catalog_config(sources)
    world: FakeWorld = sources.world
    expected = expected_counts(world)

    report = build_catalog(s, config=config)
    assert report.chart_artists == 50 and report.processed == 50 and report.already_done == 0
    assert _counts(s) == expected
    assert report.tables == expected
    conn = connect(s)
    try:
        assert dangling_references(conn) == {}
    finally:
        conn.close()

    # chart artists are main, a guest's solo top track has streams -1 and its album's release date
    assert query(s, "SELECT count(*) FROM master_artist WHERE is_main")[0][0] == 50
    guest = world.tracks[world.chart_tracks[world.chart[0]][1]].artists[1]  # "Guest 00": no genres, no related
    assert world.artists[guest].name == "Guest 00"
    solo = world.tracks[world.top_tracks[guest][-1]]  # year precision -> 1 January
    assert query(s, "SELECT streams, peak_date FROM master_track WHERE track_id = %s", (solo.id,)) == [
        (-1, date(int(solo.release_date), 1, 1))
    ]
    # a chart track a guest also has in their top tracks keeps its chart streams and peak date
    hit = world.tracks[world.top_tracks[guest][0]]
    assert query(s, "SELECT streams, peak_date FROM master_track WHERE track_id = %s", (hit.id,)) == [
        (hit.streams, hit.peak_date)
    ]
    # a collaboration of two chart artists is 'main' for both
    collab = next(t for t in world.chart_tracks[world.chart[0]] if set(world.tracks[t].artists) <= set(world.chart)
                  and len(world.tracks[t].artists) == 2)
    assert query(s, "SELECT DISTINCT role FROM rel_artist_track WHERE track_id = %s", (collab,)) == [("main",)]
    # genre inference: 1:1 tie -> one of the two, 2:1:1 -> majority, no related artists -> undefined
    tie = query(s, "SELECT genre, source FROM master_genre WHERE artist_id = %s", (world.chart[0],))
    assert len(tie) == 1 and tie[0][0] in {"pop", "rock"} and tie[0][1] == "inferred"
    assert query(s, "SELECT genre, source FROM master_genre WHERE artist_id = %s", (world.chart[5],)) == [("latin", "inferred")]
    assert query(s, "SELECT genre, source FROM master_genre WHERE artist_id = %s", (guest,)) == [("undefined", "undefined")]
    assert report.undefined >= 1 and report.inferred >= 2
    first = dump_tables(s)

    # plain rerun: everything is marked done, nothing is fetched again
    calls_before = sources.count(r"/v1/artists/")
    again = build_catalog(s, config=config)
    assert again.already_done == 50 and again.processed == 0
    assert sources.count(r"/v1/artists/") == calls_before
    assert dump_tables(s) == first

    # forced full rebuild over the same tables: upserts, no duplicate rows
    fresh = build_catalog(s, fresh=True, config=config)
    assert fresh.processed == 50
    assert _counts(s) == expected
    assert dump_tables(s) == first

    # the end-of-build consistency check does see a dangling reference
    conn = connect(s)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("INSERT INTO rel_artist_track VALUES (%s, 'NoSuchTrack', 'main')", (world.chart[0],))
        assert dangling_references(conn) == {"rel_artist_track.track_id": 1}
    finally:
        conn.close()


def test_crash_mid_run_then_rerun_gives_the_clean_tables(settings: Settings, sources: FakeSources) -> None:
    config = catalog_config(sources)
    clean = second_database(settings)
    build_catalog(clean, config=config)
    reference = dump_tables(clean)

    s, config = settings, catalog_config(sources, artists_per_commit=7)
    sources.related_served = 0
    sources.fail_after_artists = 23  # the API dies for good in the middle of a batch
    with pytest.raises(SpotifyError, match=r"(top tracks|related artists) of artist [0-9A-Za-z]{22} \(.+\): HTTP 500 after 3 attempts"):
        build_catalog(s, config=config)
    done = int(query(s, "SELECT count(*) FROM catalog_progress")[0][0])
    assert 0 < done < 50 and done % 7 == 0  # only whole batches were committed

    sources.fail_after_artists = None
    report = build_catalog(s, config=config)
    assert report.already_done == done and report.processed == 50 - done
    assert dump_tables(s) == reference
