"""Monitoring commands: ``specfleet report OUT.html``.

(``status`` and ``dlq`` have their own modules.) Heavy imports (matplotlib)
happen inside the command.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from .context import settings

console = Console(stderr=True)


def report(
    out: Path = typer.Argument(Path("report.html"), help="Where to write the HTML file."),
) -> None:
    """Write one self-contained HTML report: throughput per instance, queue
    backlog, failures by reason, hydrophone spectrograms with playable WAVs,
    music spectrogram windows per track.

    Example: specfleet report run.html
    """
    from ..report import write_report

    with console.status("collecting status, plots and media"):
        path = write_report(settings(), out)
    console.print(f"[green]report written[/]: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(str(path))


def register(app: typer.Typer, produce_app: typer.Typer) -> None:
    app.command("report")(report)
