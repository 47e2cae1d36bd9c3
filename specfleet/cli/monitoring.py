"""Monitoring commands: ``specfleet report OUT.html``.

(``status`` and ``dlq`` have their own modules.) Heavy imports (matplotlib)
happen inside the command. The result (the file written, its size) is
rendered once: a line, or one JSON document with ``--output json``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

from .context import settings
from .output import JSON, OUTPUT, OutputFormat, render

console = Console(stderr=True)


def report(
    out: Path = typer.Argument(Path("report.html"), help="Where to write the HTML file."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Write one self-contained HTML report: throughput per instance, queue
    backlog, failures by reason, hydrophone spectrograms with playable WAVs,
    music spectrogram windows per track.

    Example: specfleet report run.html
    """
    from ..report import write_report

    with console.status("collecting status, plots and media"):
        path = write_report(settings(), out)
    render(ReportWritten(path=str(path), bytes=path.stat().st_size), _written_view, output, as_json)


class ReportWritten(BaseModel):
    """``report``: the HTML file written and its size."""

    path: str
    bytes: int


def _written_view(r: ReportWritten) -> list[str]:
    return [f"[green]report written[/]: {escape(r.path)} ({r.bytes / 1e6:.1f} MB)"]


def register(app: typer.Typer, produce_app: typer.Typer) -> None:
    app.command("report")(report)
