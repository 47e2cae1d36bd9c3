"""``specfleet demo``: every pipeline end to end on this machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from .output import OUTPUT, OutputFormat, quiet_console, render, setup_logging, verbosity, wants_json


def demo(
    dir: Path = typer.Option(Path(".specfleet/demo"), help="Work folder: stack data, downloads, logs, report."),
    pipelines: str = typer.Option("", help="Comma-separated pipelines to run (default: all but echo)."),
    output: OutputFormat = OUTPUT,
    as_json: bool = typer.Option(False, "--json", help="Same as --output json: the summary as one JSON object, "
                                 "the last line on stdout."),
) -> None:
    """Run every pipeline end to end on this machine and show what happened.

    Starts the embedded stack (moto + PostgreSQL) and local stand-ins for the
    remote sources (an OOI-shaped archive, a video site), produces jobs, runs
    each pipeline's worker until its queue drains, and writes an HTML report.
    Logs go to DIR/logs/demo.log.

    Example: specfleet demo --json
    """
    from ..demo import run_demo

    out = Console(stderr=True)
    log_level = verbosity()

    def log_into(workdir: Path) -> None:
        setup_logging(log_level, workdir / "logs" / "demo.log")
        quiet_console()  # the steps' own lines are the progress; details are in the log file

    result = DemoResult.model_validate(
        run_demo(dir, only=[p for p in pipelines.split(",") if p] or None, console=out, on_workdir=log_into))
    report = Path(result.report)
    size = report.stat().st_size / 1e6 if report.exists() else 0.0
    # One path per line, never wrapped, so that each can be copied whole; the JSON stays the last line.
    paths = [f"report: {report} ({size:.1f} MB)", f"logs:   {report.parent / 'logs' / 'demo.log'}"]
    if not wants_json(output, as_json):
        render(result, _demo_view, output, as_json)
    for line in paths:
        out.print(line, highlight=False, soft_wrap=True)
    if wants_json(output, as_json):
        render(result, _demo_view, output, as_json)


class PipelineCounts(BaseModel):
    """What became of one pipeline's jobs; ``lost``: neither a result nor a status row (must be 0)."""

    jobs: int
    ok: int
    failed: int
    skipped: int
    objects: int
    status_rows: int
    lost: int


class DemoResult(BaseModel):
    """``demo``: each pipeline's counts and the HTML report's path."""

    pipelines: dict[str, PipelineCounts]
    report: str


def _demo_view(result: DemoResult) -> Iterator[Table]:
    table = Table(title="specfleet demo", title_justify="left")
    for column in ("pipeline", "jobs", "ok", "failed", "skipped", "objects", "status rows", "lost"):
        table.add_column(column, justify="left" if column == "pipeline" else "right")
    for name, row in result.pipelines.items():
        table.add_row(name, *(str(getattr(row, k)) for k in ("jobs", "ok", "failed", "skipped", "objects", "status_rows")),
                      f"[{'green' if row.lost == 0 else 'red'}]{row.lost}[/]")
    yield table


def register(app: typer.Typer, produce_app: typer.Typer) -> None:
    app.command()(demo)
