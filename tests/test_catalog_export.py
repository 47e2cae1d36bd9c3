"""queries.csv (de-duplicated, accepted by the search producer), the graph
export in the original's format loaded by the seed's Cypher into an embedded
graph (FalkorDB), and the ``specfleet catalog`` commands end to end."""

from __future__ import annotations

import csv
import json
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog_helpers import catalog_artists, expected_counts
from helpers import query
from specfleet.catalog import CatalogError
from specfleet.catalog.embedded_graph import EmbeddedGraph
from specfleet.catalog.graph import load_neo4j, statements
from specfleet.cli.main import app
from specfleet.local.stack import Namespace
from specfleet.pipelines import status_queue
from specfleet.pipelines.search.models import SearchStatus
from specfleet.producers.music import read_search_csv
from specfleet.standins.catalog_fakes import FakeSources, make_world
from specfleet.status import InboundRecord, Stat
from specfleet.status_writer import StatusWriter

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
    report = json.loads(result.stdout)
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

    # the search answers the catalog knows: three found (views differ), one NOTFOUND
    by_streams = [t for (t,) in query(settings, "SELECT track_id FROM master_track ORDER BY streams DESC, track_id")]
    found = {by_streams[0]: 500, by_streams[1]: 90_000, by_streams[2]: 7}
    record_search_answers(settings, found, notfound=[by_streams[3]])

    graph_dir = tmp_path / "graph"
    result = runner.invoke(app, ["catalog", "graph", "--out", str(graph_dir), "--json"])
    assert result.exit_code == 0, result.output
    graph_report = json.loads(result.stdout)
    check_export_files(settings, graph_dir, found)
    check_cypher_reads_the_headers(graph_dir)
    check_graph_counts(settings, graph_report["embedded"], urls=len(found))
    check_seed_semantics(settings, graph_dir, found)

    # the saved embedded graph answers the seed's graph-analysis query (notebook 08)
    result = runner.invoke(app, ["catalog", "graph-query", SEED_ANALYSIS, "--dir", str(graph_dir), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    top_streams = query(settings, "SELECT max(t.streams) FROM master_track t JOIN rel_artist_track r USING (track_id)")[0][0]
    assert rows and max(row[2]["streams"] for row in rows) == top_streams
    assert {row[0]["_"][0] for row in rows} == {"Artist"} and {row[1]["_"][0] for row in rows} == {"Genre"}

    # no Neo4j server here: the driver is used and the failure is clear
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(CatalogError, match=rf"Neo4j at bolt://127.0.0.1:{port} is not reachable"):
        load_neo4j(graph_dir, f"bolt://127.0.0.1:{port}")


#: The seed's graph analysis (notebook 08): most streamed songs with artist and genre.
SEED_ANALYSIS = """MATCH (a:Artist)-[:ART_TR]->(t:Track)
WITH a, t
ORDER BY t.streams DESC
LIMIT 20
MATCH (g:Genre)-[:GEN_ART]->(a:Artist)
RETURN a, g, t"""


def record_search_answers(settings, found: dict[str, int], notfound: list[str]) -> None:
    """track_url rows the way they arrive: search status messages through the status writer."""
    writer = StatusWriter(settings, publish_fn=lambda subject, body: None)
    records = [SearchStatus(instance_id="i-1", stat=Stat.DONE, track_id=t, yt_url=f"https://www.youtube.com/watch?v={t}",
                            views=v) for t, v in found.items()]
    records += [SearchStatus(instance_id="i-1", stat=Stat.SKIPPED, track_id=t, yt_url="NOTFOUND", views=-1)
                for t in notfound]
    inbound = [InboundRecord(uuid.uuid4().hex, status_queue(settings, "search").name, r.encode()) for r in records]
    assert writer.write(inbound).written == len(records)


def read(graph_dir: Path, name: str) -> tuple[list[str], list[dict[str, str]]]:
    text = (graph_dir / name).read_text(encoding="utf-8")
    header = text.splitlines()[0].split(";")
    with (graph_dir / name).open(newline="", encoding="utf-8") as f:
        return header, list(csv.DictReader(f, delimiter=";"))


def check_export_files(settings, graph_dir: Path, found: dict[str, int]) -> None:
    """The original's file names and headers (SPEC.md "Catalog -> Neo4j"), its cell formats and rows."""
    expected_headers = {
        "master_artist.csv": ["artist_id", "artist_name", "is_main", "popularity"],
        "master_track.csv": ["track_id", "track_name", "peak_date", "streams"],
        "master_genre.csv": ["genre"],
        "rel_GEN_ART.csv": ["genre", "artist_id"],
        "rel_ART_TR.csv": ["artist_id", "track_id"],
        "rel_REL_ART.csv": ["artist_id1", "artist_id2"],
        "tr_url.csv": ["track_id", "href", "visual"],
    }
    assert sorted(p.name for p in graph_dir.iterdir() if p.is_file()) == sorted([*expected_headers, "load_catalog.cypher"])
    data = {}
    for name, header in expected_headers.items():
        got_header, rows = read(graph_dir, name)
        assert got_header == header, name
        data[name] = rows
    artists = data["master_artist.csv"]
    assert len(artists) == query(settings, "SELECT count(*) FROM master_artist")[0][0]
    assert {a["is_main"] for a in artists} == {"True", "False"}
    # popularity: as a related artist, else the mean over its related artists (rounded), else 0
    rel = query(settings, "SELECT DISTINCT query, rel_art, popularity FROM rel_artist_artist")
    as_related: dict[str, set[int]] = {}
    own: dict[str, list[int]] = {}
    for q, r, pop in rel:
        as_related.setdefault(r, set()).add(pop)
        own.setdefault(q, []).append(pop)
    kinds = set()
    for a in artists:
        if a["artist_id"] in as_related:
            expected, kind = max(as_related[a["artist_id"]]), "related"
        elif a["artist_id"] in own:
            expected, kind = round(sum(own[a["artist_id"]]) / len(own[a["artist_id"]])), "mean"
        else:
            expected, kind = 0, "none"
        assert int(a["popularity"]) == expected, a
        kinds.add(kind)
    assert {"related", "mean"} <= kinds  # both rules exercised by the fake world
    assert len(data["master_track.csv"]) == query(settings, "SELECT count(*) FROM master_track")[0][0]
    assert all(";" not in t["track_name"] for t in data["master_track.csv"])
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", t["peak_date"]) for t in data["master_track.csv"])
    assert len(data["rel_ART_TR.csv"]) == query(settings, "SELECT count(*) FROM rel_artist_track")[0][0]
    # tr_url: NOTFOUND dropped, sorted by views (visual) descending
    assert [(r["track_id"], int(r["visual"])) for r in data["tr_url.csv"]] == sorted(found.items(), key=lambda kv: -kv[1])
    assert all(r["href"].startswith("https://www.youtube.com/watch?v=") for r in data["tr_url.csv"])


def check_cypher_reads_the_headers(graph_dir: Path) -> None:
    """Every ``alias.field`` a LOAD CSV statement of the shipped .cypher reads is a header of its file."""
    text = "\n".join(ln for ln in (graph_dir / "load_catalog.cypher").read_text().splitlines()
                     if not ln.lstrip().startswith("//"))
    loads = re.findall(
        r"LOAD CSV WITH HEADERS FROM \"file:///([\w.]+)\" AS (\w+) FIELDTERMINATOR ';'(.*?);\s*$", text, re.S | re.M)
    assert len(loads) == 7
    read_files = set()
    for name, alias, body in loads:
        fields = set(re.findall(rf"\b{alias}\.(\w+)", body))
        header, _ = read(graph_dir, name)
        assert fields and fields <= set(header), (name, fields - set(header))
        read_files.add(name)
    assert read_files == {p.name for p in graph_dir.glob("*.csv")}  # every file is loaded


def check_graph_counts(settings, counts: dict[str, int], *, urls: int) -> None:
    def one(sql: str) -> int:
        return query(settings, sql)[0][0]

    assert counts == {
        "Artist": one("SELECT count(*) FROM master_artist"),
        "Track": one("SELECT count(*) FROM master_track"),
        "Genre": one("SELECT count(DISTINCT genre) FROM master_genre"),
        "GEN_ART": one("SELECT count(*) FROM master_genre"),
        "ART_TR": one("SELECT count(*) FROM rel_artist_track"),
        "REL_ART": one("SELECT count(*) FROM (SELECT DISTINCT query, rel_art FROM rel_artist_artist) x"),
        "Track.url": urls,
    }


def check_seed_semantics(settings, graph_dir: Path, found: dict[str, int]) -> None:
    """Types as the seed converts them, and url/yt_views set only where not yet set."""
    with EmbeddedGraph(import_dir=graph_dir) as g:
        g.run_file((graph_dir / "load_catalog.cypher").read_text())
        main = g.query("MATCH (a:Artist) WHERE a.is_main = true RETURN count(a)")[0][0]
        assert main == query(settings, "SELECT count(*) FROM master_artist WHERE is_main")[0][0]
        (peak, streams), = g.query("MATCH (t:Track {track_id: $t}) RETURN t.peak_date, t.streams",
                                   {"t": next(iter(found))})
        db_peak, db_streams = query(settings, "SELECT peak_date, streams FROM master_track WHERE track_id = %s",
                                    (next(iter(found)),))[0]
        assert (peak, streams) == (db_peak, db_streams)
        first = {t: u for t, u, _ in g.query("MATCH (t:Track) WHERE t.url IS NOT NULL RETURN t.track_id, t.url, t.yt_views")}
        assert first == {t: f"https://www.youtube.com/watch?v={t}" for t in found}
        # a later tr_url.csv with other URLs: the first URL and views stay
        header, rows = read(graph_dir, "tr_url.csv")
        with (graph_dir / "tr_url.csv").open("w", newline="") as f:
            w = csv.writer(f, delimiter=";", lineterminator="\n")
            w.writerow(header)
            w.writerows([r["track_id"], r["href"] + "_new", "1"] for r in rows)
        tr_url_stmt = [s for s in statements((graph_dir / "load_catalog.cypher").read_text()) if "tr_url.csv" in s]
        g.query(tr_url_stmt[0])
        after = {t: (u, v) for t, u, v in
                 g.query("MATCH (t:Track) WHERE t.url IS NOT NULL RETURN t.track_id, t.url, t.yt_views")}
        assert after == {t: (f"https://www.youtube.com/watch?v={t}", v) for t, v in found.items()}


def test_cli_build_failure_is_one_clear_line(cli_env: FakeSources) -> None:
    bad = WORLD.chart[0]
    cli_env.overrides[f"/charts/artist/{bad}_songs.html"] = (500, "oops")
    result = CliRunner().invoke(app, ["catalog", "build"])
    assert result.exit_code == 1
    assert f"chart page of artist {bad}" in result.output and "HTTP 500" in result.output
