"""``specfleet produce search`` and ``specfleet produce download``.

Kept light: the music modules (yt-dlp, selenium) load inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel, model_serializer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from .context import settings
from .output import JSON, OUTPUT, OutputFormat, render

console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console)


def register_search(app: typer.Typer, produce_app: typer.Typer) -> None:
    @produce_app.command("search")
    def produce_search_cmd(
        queries: Path = typer.Option(..., "--queries", help="CSV with columns track_id,query."),
        include_done: bool = typer.Option(False, help="Also enqueue tracks that already have a track_url row (found or NOTFOUND)."),
        output: OutputFormat = OUTPUT,
        as_json: bool = JSON,
    ) -> None:
        """Enqueue one search job per CSV row (batches of 10).

    Example: specfleet produce search --queries queries.csv
    """
        from ..producers.music import CsvError, produce_search, read_search_csv

        try:
            total = len(read_search_csv(queries))
        except CsvError as err:
            console.print(f"[red]invalid queries file[/]: {err}")
            raise typer.Exit(2) from None
        with _progress() as progress:
            task = progress.add_task("enqueuing search jobs", total=total)
            report = produce_search(
                settings(), queries, skip_existing=not include_done, on_progress=lambda n: progress.advance(task, n)
            )
        render(Enqueued(total=report.total, enqueued=report.enqueued, skipped=report.skipped),
               lambda r: [f"enqueued {r.enqueued} search jobs ({r.skipped} tracks already have a URL)"], output, as_json)


def register_download(app: typer.Typer, produce_app: typer.Typer) -> None:
    @produce_app.command("download")
    def produce_download_cmd(
        csv: Path | None = typer.Option(None, "--csv", help="CSV with columns track_id,yt_url (default: the found track_url rows)."),
        include_done: bool = typer.Option(False, help="Also enqueue tracks whose mp3 is already in S3."),
        output: OutputFormat = OUTPUT,
        as_json: bool = JSON,
    ) -> None:
        """Enqueue download jobs from the found track_url rows (or a CSV).

    Example: specfleet produce download --csv found.csv
    """
        from ..producers.music import CsvError, produce_download

        with _progress() as progress:
            task = progress.add_task("enqueuing download jobs", total=None)
            try:
                report = produce_download(
                    settings(), csv, skip_existing=not include_done, on_progress=lambda n: progress.advance(task, n)
                )
            except CsvError as err:
                console.print(f"[red]invalid CSV[/]: {err}")
                raise typer.Exit(2) from None
        for problem in report.invalid[:20]:
            console.print(f"[yellow]left out[/] {escape(str(problem))}")
        render(Enqueued(total=report.total, enqueued=report.enqueued, skipped=report.skipped,
                        invalid=len(report.invalid)),
               lambda r: [f"enqueued {r.enqueued} download jobs ({r.skipped} already in S3, {r.invalid} invalid)"],
               output, as_json)


class Enqueued(BaseModel):
    """``produce search`` / ``produce download``: rows read, jobs sent, tracks skipped (and rows invalid)."""

    total: int
    enqueued: int
    skipped: int
    invalid: int | None = None

    @model_serializer(mode="wrap")
    def _without_unset(self, dump: Any) -> dict[str, Any]:
        # search has no "invalid" count: its JSON never had the key.
        return {k: v for k, v in dump(self).items() if v is not None}
