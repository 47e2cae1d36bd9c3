"""``specfleet catalog graph``: the catalog as a Neo4j graph.

Nodes ``Track``, ``Artist``, ``Genre``; relationships ``(Artist)-[:ART_TR]->(Track)``,
``(Artist)-[:REL_ART]->(Artist)`` and ``(Genre)-[:GEN_ART]->(Artist)``.
``export_graph`` writes one CSV per node and relationship type plus
``load.cypher`` (``LOAD CSV`` from Neo4j's import folder); ``load_neo4j``
sends the same data straight to a server with the official driver
(imported only then).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import psycopg2.extensions

from .errors import CatalogError

#: file stem -> (header, SQL). Relationship files name both ends' keys.
GRAPH_FILES: dict[str, tuple[tuple[str, ...], str]] = {
    "artists": (
        ("artist_id", "name", "is_main"),
        "SELECT artist_id, artist_name, is_main FROM master_artist ORDER BY artist_id",
    ),
    "tracks": (
        ("track_id", "name", "peak_date", "streams"),
        "SELECT track_id, track_name, peak_date, streams FROM master_track ORDER BY track_id",
    ),
    "genres": (("genre",), "SELECT DISTINCT genre FROM master_genre ORDER BY genre"),
    "art_tr": (
        ("artist_id", "track_id", "role"),
        "SELECT artist_id, track_id, role FROM rel_artist_track ORDER BY artist_id, track_id",
    ),
    "rel_art": (
        ("artist_id", "related_id", "popularity"),
        "SELECT query, rel_art, max(popularity) FROM rel_artist_artist GROUP BY query, rel_art ORDER BY 1, 2",
    ),
    "gen_art": (
        ("genre", "artist_id", "source"),
        "SELECT genre, artist_id, source FROM master_genre ORDER BY genre, artist_id",
    ),
}

#: One statement per file, parameterised by the rows (driver) or by LOAD CSV.
CYPHER: dict[str, str] = {
    "artists": "MERGE (a:Artist {artist_id: row.artist_id}) SET a.name = row.name, a.is_main = toBoolean(row.is_main)",
    "tracks": "MERGE (t:Track {track_id: row.track_id}) SET t.name = row.name, t.peak_date = row.peak_date,"
    " t.streams = toInteger(row.streams)",
    "genres": "MERGE (:Genre {name: row.genre})",
    "art_tr": "MATCH (a:Artist {artist_id: row.artist_id}), (t:Track {track_id: row.track_id})"
    " MERGE (a)-[r:ART_TR]->(t) SET r.role = row.role",
    "rel_art": "MATCH (a:Artist {artist_id: row.artist_id}), (b:Artist {artist_id: row.related_id})"
    " MERGE (a)-[r:REL_ART]->(b) SET r.popularity = toInteger(row.popularity)",
    "gen_art": "MATCH (g:Genre {name: row.genre}), (a:Artist {artist_id: row.artist_id})"
    " MERGE (g)-[r:GEN_ART]->(a) SET r.source = row.source",
}
CONSTRAINTS = [
    "CREATE CONSTRAINT artist_id IF NOT EXISTS FOR (a:Artist) REQUIRE a.artist_id IS UNIQUE",
    "CREATE CONSTRAINT track_id IF NOT EXISTS FOR (t:Track) REQUIRE t.track_id IS UNIQUE",
    "CREATE CONSTRAINT genre_name IF NOT EXISTS FOR (g:Genre) REQUIRE g.name IS UNIQUE",
]
ORDER = ("artists", "tracks", "genres", "art_tr", "rel_art", "gen_art")


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def graph_rows(conn: psycopg2.extensions.connection) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    with conn.cursor() as cur:
        for stem in ORDER:
            header, sql = GRAPH_FILES[stem]
            cur.execute(sql)
            out[stem] = [dict(zip(header, map(_cell, row), strict=True)) for row in cur.fetchall()]
    return out


def cypher_script() -> str:
    lines = ["// Load the specfleet music catalog. Copy the CSVs into Neo4j's import folder, then:", *[c + ";" for c in CONSTRAINTS]]
    for stem in ORDER:
        lines.append(f"LOAD CSV WITH HEADERS FROM 'file:///{stem}.csv' AS row\nCALL {{ WITH row {CYPHER[stem]} }} IN TRANSACTIONS OF 1000 ROWS;")
    return "\n".join(lines) + "\n"


def export_graph(conn: psycopg2.extensions.connection, out_dir: Path) -> dict[str, int]:
    """Write the CSVs and ``load.cypher``; returns rows per file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for stem, rows in graph_rows(conn).items():
        header = GRAPH_FILES[stem][0]
        with (out_dir / f"{stem}.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        counts[stem] = len(rows)
    (out_dir / "load.cypher").write_text(cypher_script(), encoding="utf-8")
    return counts


def load_neo4j(conn: psycopg2.extensions.connection, uri: str, batch: int = 1000, database: str | None = None) -> dict[str, int]:
    """MERGE the catalog into a Neo4j server (credentials from NEO4J_USER /
    NEO4J_PASSWORD). Idempotent: loading twice changes nothing."""
    try:
        from neo4j import GraphDatabase
        from neo4j.exceptions import Neo4jError, ServiceUnavailable
    except ImportError as err:  # the driver is a dependency, but be clear if it is missing
        raise CatalogError("the neo4j driver is not installed: pip install neo4j") from err
    user, password = os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD")
    auth = (user, password) if password else None
    rows = graph_rows(conn)
    counts = {}
    try:
        with GraphDatabase.driver(uri, auth=auth, connection_timeout=10) as driver:
            driver.verify_connectivity()
            with driver.session(database=database) as session:
                for stmt in CONSTRAINTS:
                    session.run(stmt).consume()
                for stem in ORDER:
                    data = rows[stem]
                    for start in range(0, len(data), batch):
                        chunk = data[start:start + batch]
                        session.execute_write(lambda tx, c=chunk, s=stem: tx.run(f"UNWIND $rows AS row {CYPHER[s]}", rows=c).consume())
                    counts[stem] = len(data)
    except ServiceUnavailable as err:
        raise CatalogError(f"Neo4j at {uri} is not reachable: {err}") from err
    except Neo4jError as err:
        raise CatalogError(f"Neo4j at {uri} refused the load: {err}") from err
    return counts
