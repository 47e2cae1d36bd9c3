"""``specfleet produce search`` and ``specfleet produce download``.

Kept light: the music modules (yt-dlp, selenium) load inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from .context import settings

console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console)


def register_search(app: typer.Typer, produce_app: typer.Typer) -> None:
    @produce_app.command("search")
    def produce_search_cmd(
        queries: Path = typer.Option(..., "--queries", help="CSV with columns track_id,query."),
        include_done: bool = typer.Option(False, help="Also enqueue tracks that already have a track_url row (found or NOTFOUND)."),
        as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON on stdout."),
    ) -> None:
        """Enqueue one search job per CSV row (batches of 10).

    Example: specfleet produce search --queries queries.csv
    """
        from ..pipelines.music.producers import CsvError, produce_search, read_search_csv

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
        console.print(f"enqueued {report.enqueued} search jobs ({report.skipped} tracks already have a URL)")
        if as_json:
            print(json.dumps({"total": report.total, "enqueued": report.enqueued, "skipped": report.skipped}))


def register_download(app: typer.Typer, produce_app: typer.Typer) -> None:
    @produce_app.command("download")
    def produce_download_cmd(
        csv: Path | None = typer.Option(None, "--csv", help="CSV with columns track_id,yt_url (default: the found track_url rows)."),
        include_done: bool = typer.Option(False, help="Also enqueue tracks whose mp3 is already in S3."),
        as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON on stdout."),
    ) -> None:
        """Enqueue download jobs from the found track_url rows (or a CSV).

    Example: specfleet produce download --csv found.csv
    """
        from ..pipelines.music.producers import CsvError, produce_download

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
            console.print(f"[yellow]left out[/] {problem}")
        console.print(
            f"enqueued {report.enqueued} download jobs ({report.skipped} already in S3, {len(report.invalid)} invalid)"
        )
        if as_json:
            print(json.dumps({"total": report.total, "enqueued": report.enqueued, "skipped": report.skipped,
                              "invalid": len(report.invalid)}))
