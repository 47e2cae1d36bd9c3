"""``specfleet catalog graph``: the catalog as the original's Neo4j graph.

Export (the TFM notebook 06, exactly): ``;``-separated CSVs with headers,

* ``master_artist.csv``  ``artist_id;artist_name;is_main;popularity``; is_main
  written ``True``/``False``; popularity = the artist's popularity as a related
  artist (Spotify reports it on the related side), else the mean over the
  artist's own related artists (distinct related artist and popularity pairs,
  rounded half to even like ``np.round``), else 0; ``;`` in names becomes
  `` & `` (the original's "two artists at the same time");
* ``master_track.csv``   ``track_id;track_name;peak_date;streams``, ``;``
  removed from names, dates ``YYYY-MM-DD``;
* ``master_genre.csv``   ``genre`` (distinct), ``rel_GEN_ART.csv``
  ``genre;artist_id``, ``rel_ART_TR.csv`` ``artist_id;track_id``,
  ``rel_REL_ART.csv`` ``artist_id1;artist_id2`` (distinct pairs);
* ``tr_url.csv``         ``track_id;href;visual`` from ``track_url``, NOTFOUND
  rows dropped, sorted by visual (views) descending;

plus ``load_catalog.cypher``, the seed's statements (notebook 07) that read
exactly these names (shipped beside this module).

Deliberate differences: rows are sorted (the original wrote them in table
order); an artist seen as a related artist with several popularities gets the
highest (the original's left join then wrote one row per popularity, which
its MERGE under a unique constraint could not load).

Loading runs the statements of that file against a real graph database:
``embedded_graph.load_embedded`` (FalkorDB, in-process default) or
``load_neo4j`` (a Neo4j server through the official driver).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg2.extensions

from .errors import CatalogError

CYPHER_FILE = "load_catalog.cypher"
SEP = ";"

#: file name -> header, in the order the seed loads them.
GRAPH_FILES: dict[str, tuple[str, ...]] = {
    "master_artist.csv": ("artist_id", "artist_name", "is_main", "popularity"),
    "master_track.csv": ("track_id", "track_name", "peak_date", "streams"),
    "master_genre.csv": ("genre",),
    "rel_GEN_ART.csv": ("genre", "artist_id"),
    "rel_ART_TR.csv": ("artist_id", "track_id"),
    "rel_REL_ART.csv": ("artist_id1", "artist_id2"),
    "tr_url.csv": ("track_id", "href", "visual"),
}

ARTISTS_SQL = """
SELECT a.artist_id, a.artist_name, a.is_main, p.popularity, m.mean_popularity
FROM master_artist a
LEFT JOIN (SELECT rel_art, max(popularity) AS popularity FROM rel_artist_artist GROUP BY rel_art) p
       ON p.rel_art = a.artist_id
LEFT JOIN (SELECT query, avg(popularity)::float8 AS mean_popularity
           FROM (SELECT DISTINCT query, rel_art, popularity FROM rel_artist_artist) d GROUP BY query) m
       ON m.query = a.artist_id
ORDER BY a.artist_id
"""
SQL: dict[str, str] = {
    "master_track.csv": "SELECT track_id, track_name, peak_date, streams FROM master_track ORDER BY track_id",
    "master_genre.csv": "SELECT DISTINCT replace(genre, ';', '') FROM master_genre ORDER BY 1",
    "rel_GEN_ART.csv": "SELECT DISTINCT replace(genre, ';', ''), artist_id FROM master_genre ORDER BY 1, 2",
    "rel_ART_TR.csv": "SELECT DISTINCT artist_id, track_id FROM rel_artist_track ORDER BY 1, 2",
    "rel_REL_ART.csv": "SELECT DISTINCT query, rel_art FROM rel_artist_artist ORDER BY 1, 2",
    "tr_url.csv": "SELECT track_id, href, views FROM track_url WHERE is_found AND href <> 'NOTFOUND' "
                  "ORDER BY views DESC, track_id",
}


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"  # Python's str(), as pandas wrote it
    return "" if value is None else str(value)


def artist_rows(cur: psycopg2.extensions.cursor) -> Iterator[tuple[Any, ...]]:
    cur.execute(ARTISTS_SQL)
    for artist_id, name, is_main, popularity, mean in cur.fetchall():
        if popularity is None:
            popularity = round(mean) if mean is not None else 0  # round(): half to even, as np.round
        yield artist_id, name.replace(";", " & "), is_main, popularity


def graph_rows(conn: psycopg2.extensions.connection) -> dict[str, list[tuple[Any, ...]]]:
    """Rows per CSV file, as written."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with conn.cursor() as cur:
        out["master_artist.csv"] = list(artist_rows(cur))
        for name, sql in SQL.items():
            cur.execute(sql)
            rows = cur.fetchall()
            if name == "master_track.csv":
                rows = [(t, n.replace(";", ""), d, s) for t, n, d, s in rows]
            out[name] = rows
    return {name: out[name] for name in GRAPH_FILES}


def cypher_text() -> str:
    """The seed's statements, as shipped with specfleet."""
    return resources.files("specfleet.catalog").joinpath(CYPHER_FILE).read_text(encoding="utf-8")


def export_graph(conn: psycopg2.extensions.connection, out_dir: Path) -> dict[str, int]:
    """Write the CSVs and ``load_catalog.cypher`` into ``out_dir``; returns
    rows per file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, rows in graph_rows(conn).items():
        with (out_dir / name).open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter=SEP, lineterminator="\n")
            writer.writerow(GRAPH_FILES[name])
            writer.writerows([_cell(v) for v in row] for row in rows)
        counts[name] = len(rows)
    (out_dir / CYPHER_FILE).write_text(cypher_text(), encoding="utf-8")
    return counts


# --- the .cypher file ---------------------------------------------------------------
_LOAD_CSV = re.compile(
    r"""^\s*LOAD\s+CSV\s+WITH\s+HEADERS\s+FROM\s+["']file:///(?P<file>[^"']+)["']\s+AS\s+(?P<alias>\w+)"""
    r"""\s+FIELDTERMINATOR\s+'(?P<sep>[^']+)'\s*""",
    re.IGNORECASE,
)


def statements(text: str) -> list[str]:
    """The statements of a .cypher file: ``//`` comment lines dropped, split
    at a ``;`` that ends a line."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("//")]
    return [s.strip() for s in re.split(r";[ \t]*$", "\n".join(lines), flags=re.MULTILINE) if s.strip()]


def load_csv_parts(statement: str) -> tuple[str, str, str] | None:
    """``(file, row alias, body after the LOAD CSV clause)`` of a LOAD CSV
    statement, else None."""
    m = _LOAD_CSV.match(statement)
    if m is None:
        return None
    if m.group("sep") != SEP:
        raise CatalogError(f"{m.group('file')}: the export writes {SEP!r}-separated files, the statement reads {m.group('sep')!r}")
    return m.group("file"), m.group("alias"), statement[m.end():]


def read_csv_rows(path: Path) -> list[dict[str, str | None]]:
    """A CSV as LOAD CSV WITH HEADERS sees it: strings, empty fields null."""
    with path.open(newline="", encoding="utf-8") as f:
        return [{k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(f, delimiter=SEP)]


# --- Neo4j server (official driver) ---------------------------------------------------
def _run_batch(tx: Any, query: str, rows: list[dict[str, str | None]]) -> None:
    tx.run(query, rows=rows).consume()


def load_neo4j(csv_dir: Path, uri: str, *, batch: int = 1000, database: str | None = None) -> dict[str, int]:
    """Run ``csv_dir/load_catalog.cypher`` on a Neo4j server (credentials from
    NEO4J_USER / NEO4J_PASSWORD). The server cannot read local files, so each
    ``LOAD CSV ... AS line FIELDTERMINATOR ';'`` runs as ``UNWIND $rows AS
    line`` with the same rows (strings, empty fields null: what LOAD CSV
    gives); every other statement runs as written. Returns rows sent per file."""
    try:
        from neo4j import GraphDatabase
        from neo4j.exceptions import Neo4jError, ServiceUnavailable
    except ImportError as err:  # the driver is a dependency, but be clear if it is missing
        raise CatalogError("the neo4j driver is not installed: pip install neo4j") from err
    user, password = os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD")
    auth = (user, password) if password else None
    counts: dict[str, int] = {}
    try:
        with GraphDatabase.driver(uri, auth=auth, connection_timeout=10) as driver:
            driver.verify_connectivity()
            with driver.session(database=database) as session:
                for stmt in statements((csv_dir / CYPHER_FILE).read_text(encoding="utf-8")):
                    parts = load_csv_parts(stmt)
                    if parts is None:
                        session.run(stmt).consume()
                        continue
                    name, alias, body = parts
                    rows = read_csv_rows(csv_dir / name)
                    query = f"UNWIND $rows AS {alias} {body}"
                    for start in range(0, len(rows), batch):
                        session.execute_write(_run_batch, query, rows[start:start + batch])
                    counts[name] = len(rows)
    except ServiceUnavailable as err:
        raise CatalogError(f"Neo4j at {uri} is not reachable: {err}") from err
    except Neo4jError as err:
        raise CatalogError(f"Neo4j at {uri} refused the load: {err}") from err
    return counts
