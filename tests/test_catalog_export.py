"""queries.csv (de-duplicated, accepted by the search producer), the graph
export, and the ``specfleet catalog`` commands end to end."""

from __future__ import annotations

import csv
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog_helpers import catalog_artists, expected_counts
from helpers import query
from specfleet.catalog import CatalogError
from specfleet.catalog.fake_sources import FakeSources, make_world
from specfleet.catalog.graph import load_neo4j
from specfleet.cli.main import app
from specfleet.db import connect
from specfleet.local.stack import Namespace
from specfleet.pipelines.music.producers import read_search_csv

WORLD = make_world(n_main=12, seed=3)


@pytest.fixture
def cli_env(namespace: Namespace, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSources]:
    src = FakeSources(WORLD).start()
    for k, v in {**namespace.env(), **src.env(), "SPECFLEET_CATALOG_RETRY_WAIT_S": "0.01"}.items():
        monkeypatch.setenv(k, v)
    yield src
    src.close()


def test_cli_build_queries_graph(cli_env: FakeSources, namespace: Namespace, tmp_path: Path) -> None:
    runner = CliRunner()
    settings = namespace.settings

    result = runner.invoke(app, ["catalog", "build", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["tables"] == expected_counts(WORLD)

    out = tmp_path / "queries.csv"
    result = runner.invoke(app, ["catalog", "queries", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["track_id", "query", "track_name", "artist_name"]
    # the query is track name + " " + artist name, as the original built it, and the split is kept
    assert all(r["query"] == f"{r['track_name']} {r['artist_name']}" for r in rows)
    ids = [r["track_id"] for r in rows]
    texts = [" ".join(r["query"].lower().split()) for r in rows]
    assert len(set(ids)) == len(ids) and len(set(texts)) == len(texts)
    # one row per distinct (title, main artist) of the catalog's tracks
    non_chart = catalog_artists(WORLD) - set(WORLD.chart)
    tracks = {t for m in WORLD.chart for t in WORLD.chart_tracks[m]} | {t for a in non_chart for t in WORLD.top_tracks[a]}
    distinct = {(WORLD.tracks[t].name.lower(), WORLD.tracks[t].artists[0]) for t in tracks}
    assert len(rows) == len(distinct) < len(tracks)  # the world has same-title tracks
    by_id = {r["track_id"]: r["query"] for r in rows}
    solo = next(t for t in tracks if len(WORLD.tracks[t].artists) == 1 and t in by_id)
    assert by_id[solo] == f"{WORLD.tracks[solo].name} {WORLD.artists[WORLD.tracks[solo].artists[0]].name}"
    # the search producer takes the file as it is
    jobs = read_search_csv(out)
    assert sorted(j.track_id for j in jobs) == sorted(ids)
    assert all(j.track_name and j.artist_name for j in jobs)

    graph_dir = tmp_path / "graph"
    result = runner.invoke(app, ["catalog", "graph", "--out", str(graph_dir)])
    assert result.exit_code == 0, result.output
    def lines(name: str) -> int:
        with (graph_dir / f"{name}.csv").open(newline="") as f:
            return sum(1 for _ in csv.reader(f)) - 1
    assert lines("artists") == report["tables"]["master_artist"]
    assert lines("tracks") == report["tables"]["master_track"]
    assert lines("art_tr") == report["tables"]["rel_artist_track"]
    assert lines("gen_art") == report["tables"]["master_genre"]
    assert lines("genres") == query(settings, "SELECT count(DISTINCT genre) FROM master_genre")[0][0]
    assert lines("rel_art") == query(settings, "SELECT count(*) FROM (SELECT DISTINCT query, rel_art FROM rel_artist_artist) x")[0][0]
    script = (graph_dir / "load.cypher").read_text()
    for needle in ("(a:Artist", "(t:Track", ":Genre", ":ART_TR", ":REL_ART", ":GEN_ART"):
        assert needle in script
    for stem in ("artists", "tracks", "genres", "art_tr", "rel_art", "gen_art"):
        assert f"file:///{stem}.csv" in script

    # no Neo4j server here: the driver is used and the failure is clear
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conn = connect(settings)
    try:
        with pytest.raises(CatalogError, match=rf"Neo4j at bolt://127.0.0.1:{port} is not reachable"):
            load_neo4j(conn, f"bolt://127.0.0.1:{port}")
    finally:
        conn.close()


def test_cli_build_failure_is_one_clear_line(cli_env: FakeSources) -> None:
    bad = WORLD.chart[0]
    cli_env.overrides[f"/charts/artist/{bad}_songs.html"] = (500, "oops")
    result = CliRunner().invoke(app, ["catalog", "build"])
    assert result.exit_code == 1
    assert f"chart page of artist {bad}" in result.output and "HTTP 500" in result.output
