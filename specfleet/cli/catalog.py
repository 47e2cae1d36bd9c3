"""``specfleet catalog``: build the music catalog, export queries.csv and the
Neo4j graph, or serve the local stand-ins to try it without the internet.

Each data command renders its result model once (a line or table, or one
JSON document with ``--output json``); ``fake-sources`` is a server: it
prints shell ``export`` lines and runs until Ctrl-C."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import BaseModel, RootModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .context import settings
from .output import JSON, OUTPUT, OutputFormat, render

if TYPE_CHECKING:
    from ..catalog.build import BuildReport

console = Console(stderr=True)
catalog_app = typer.Typer(help="Music catalog: chart pages + Spotify API -> Postgres -> queries.csv / graph.")


def _settings():

    return settings()


def _conn():
    from ..db import connect
    from ..pipelines.schema import migrate

    conn = connect(_settings())
    migrate(conn)
    return conn


@catalog_app.command("build")
def build(
    limit: int | None = typer.Option(None, min=1, help="Only the top N chart artists."),
    fresh: bool = typer.Option(False, "--fresh", help="Forget progress and process every artist again (upserts)."),
    keep_going: bool = typer.Option(False, "--keep-going", help="Skip artists whose chart page is unreadable."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Scrape the chart, call the Spotify API, fill the catalog tables, infer genres.
    Resumable: a rerun skips the artists already committed.

    Example: specfleet catalog build --limit 50
    """
    from ..catalog import CatalogError
    from ..catalog.build import BuildReport, build_catalog
    from ..db import connect
    from ..pipelines.schema import migrate

    s = _settings()
    conn = connect(s)
    migrate(conn)
    conn.close()

    def progress(r: BuildReport) -> None:
        console.print(f"  {r.already_done + r.processed}/{r.chart_artists} chart artists done ({r.api_calls} API calls)")

    try:
        report = build_catalog(s, limit=limit, fresh=fresh, keep_going=keep_going, on_progress=progress)
    except CatalogError as err:
        console.print(f"[red]catalog build failed:[/] {err}")
        console.print("rerun the same command to resume after the last committed batch")
        raise typer.Exit(1) from None
    Built.model_rebuild(_types_namespace={"BuildReport": BuildReport})  # resolved here: the catalog loads lxml, httpx
    render(Built(report), _built_view, output, as_json)


class Built(RootModel["BuildReport"]):
    """``catalog build``: the build report."""


def _built_view(built: Built) -> Iterator[str]:
    r = built.root
    yield from (f"[yellow]skipped:[/] {escape(bad)}" for bad in r.bad_pages)
    yield (f"[green]catalog built[/]: {r.processed} artists processed, {r.already_done} already done; "
           f"genres inferred {r.inferred}, undefined {r.undefined}; tables {r.tables}")


@catalog_app.command("queries")
def queries(
    out: Path = typer.Option(Path("queries.csv"), "--out", help="CSV to write (track_id,query)."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Write one search query per track (track name + main artist), de-duplicated.

    Example: specfleet catalog queries --out queries.csv
    """
    from ..catalog.queries import write_queries_csv

    conn = _conn()
    try:
        n = write_queries_csv(conn, out)
    finally:
        conn.close()
    render(QueriesWritten(out=str(out), queries=n), _queries_view, output, as_json)


class QueriesWritten(BaseModel):
    """``catalog queries``: the CSV written and how many queries (rows) it holds."""

    out: str
    queries: int


def _queries_view(q: QueriesWritten) -> list[str]:
    return [f"wrote {q.queries} queries to {escape(q.out)} (feed it to `specfleet produce search`)"]


@catalog_app.command("graph")
def graph(
    out: Path = typer.Option(Path("catalog-graph"), "--out", help="Folder for the CSVs and load_catalog.cypher."),
    embedded: bool = typer.Option(
        True, "--embedded/--no-embedded",
        help="Load into an embedded graph engine (FalkorDB, saved in OUT/falkordb; pip install 'specfleet[graph]').",
    ),
    neo4j_uri: str | None = typer.Option(
        None, "--neo4j-uri", help="Also load into this Neo4j server (bolt:// or neo4j://; NEO4J_USER/NEO4J_PASSWORD)."
    ),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Export the catalog as the original's Neo4j CSVs and load them into a graph.

    The CSVs use ';' and notebook 06's names and headers; the seed's
    load_catalog.cypher loads them.

    Example: specfleet catalog graph --out graph/
    """
    from ..catalog import CatalogError
    from ..catalog.graph import export_graph, load_neo4j

    conn = _conn()
    try:
        files = export_graph(conn, out)
    finally:
        conn.close()
    report = Graphed(out=str(out), files=files)
    try:
        if embedded:
            from ..catalog.embedded_graph import load_embedded

            report.embedded = load_embedded(out, data_dir=out / "falkordb")
        if neo4j_uri:
            report.neo4j = load_neo4j(out, neo4j_uri)
    except CatalogError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(1) from None
    render(report, _graphed_view, output, as_json)


class Graphed(BaseModel):
    """``catalog graph``: rows per CSV written, and node/edge counts in each graph loaded."""

    out: str
    files: dict[str, int]
    embedded: dict[str, int] | None = None
    neo4j: dict[str, int] | None = None


def _graphed_view(g: Graphed) -> Iterator[str]:
    yield f"wrote {escape(g.out)}/load_catalog.cypher and CSVs: {g.files}"
    if g.embedded is not None:
        yield f"[green]loaded into the embedded graph[/] ({escape(g.out)}/falkordb): {g.embedded}"
    if g.neo4j is not None:
        yield f"[green]loaded into Neo4j[/]: {g.neo4j}"


@catalog_app.command("graph-query")
def graph_query(
    cypher: str = typer.Argument(..., help="A Cypher query, e.g. the seed's graph analysis."),
    graph_dir: Path = typer.Option(Path("catalog-graph"), "--dir", help="The --out folder of `catalog graph`."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Run a Cypher query on the embedded graph saved by `catalog graph`: a table, or a JSON list of rows.

    Example: specfleet catalog graph-query "MATCH (a:Artist) RETURN a.name LIMIT 5"
    """
    from ..catalog import CatalogError
    from ..catalog.embedded_graph import RDB_NAME, EmbeddedGraph

    data_dir = graph_dir / "falkordb"
    if not (data_dir / RDB_NAME).is_file():
        console.print(f"[red]no embedded graph in {data_dir}[/]: run `specfleet catalog graph --out {graph_dir}` first")
        raise typer.Exit(1)
    try:
        with EmbeddedGraph(data_dir=data_dir) as g:
            rows = g.query(cypher)
    except CatalogError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(1) from None
    render(Rows([[_plain(v) for v in row] for row in rows]), _rows_view, output, as_json)


class Rows(RootModel[list[list[Any]]]):
    """``catalog graph-query``: the result rows; nodes and edges as their properties."""


def _rows_view(rows: Rows) -> Iterator[Table | str]:
    if not rows.root:
        yield "no rows"
        return
    table = Table(show_header=False)
    for _ in rows.root[0]:
        table.add_column(overflow="fold")
    for row in rows.root:
        table.add_row(*(escape(json.dumps(v, default=str)) for v in row))
    yield table


def _plain(value: object) -> object:
    """Nodes and edges as their properties (with labels / type), for JSON."""
    props = getattr(value, "properties", None)
    if props is None:
        return value
    kind = getattr(value, "labels", None) or getattr(value, "relation", None)
    return {"_": kind, **props}


@catalog_app.command("fake-sources")
def fake_sources(
    artists: int = typer.Option(50, min=1, help="Chart artists in the fake world."),
    seed: int = typer.Option(7),
    port: int = typer.Option(0, help="Port on 127.0.0.1 (0: any free one)."),
) -> None:
    """Serve local stand-ins for the chart pages and the Spotify API until Ctrl-C;
    prints the environment that points `catalog build` at them.

    Example: specfleet catalog fake-sources --port 8765
    """
    import threading

    from ..standins.catalog_fakes import FakeSources, make_world

    src = FakeSources(make_world(n_main=artists, seed=seed)).start(port)
    for k, v in src.env().items():
        print(f"export {k}={v}")
    console.print(f"fake chart + Spotify API on {src.base_url}; Ctrl-C to stop")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        src.close()


def register(app: typer.Typer, produce_app: typer.Typer) -> None:
    app.add_typer(catalog_app, name="catalog")
