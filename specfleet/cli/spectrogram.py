"""CLI of the spectrogram pipeline: ``produce spectrogram`` and
``spectrogram AUDIO --track-id ID --out DIR``. Heavy imports happen inside
the commands."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)


def produce_spectrogram(
    max_bytes: int | None = typer.Option(None, "--max-bytes", help="Skip mp3s larger than this (default: settings, 10 MB)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be enqueued."),
) -> None:
    """Enqueue one job per mp3 under audio/ that is small enough and has no windows yet."""
    from ..pipelines.spectrogram.producer import ProduceReport, plan_jobs, produce
    from ..pipelines.spectrogram.settings import SpectroSettings
    from .main import settings

    s, config = settings(), SpectroSettings()
    if max_bytes is not None:
        config = config.model_copy(update={"max_mp3_bytes": max_bytes})
    if dry_run:
        report = ProduceReport()
        report.enqueued = len(plan_jobs(s, config, report))
    else:
        report = produce(s, config)
    console.print(
        f"listed {report.listed} objects: {'would enqueue' if dry_run else 'enqueued'} {report.enqueued}, "
        f"{report.skipped_done} already done, {report.skipped_too_large} too large, "
        f"{report.skipped_empty} empty, {report.skipped_not_mp3} not <track_id>.mp3"
    )
    print(json.dumps(report.as_dict()))


def spectrogram(
    audio: Path = typer.Argument(..., help="An mp3 file."),
    track_id: str = typer.Option(..., "--track-id", help="Track id used in the window file names."),
    out: Path = typer.Option(..., "--out", help="Folder for the window JPEGs."),
) -> None:
    """Run one track's spectrogram windows locally (no queues); print a JSON summary."""
    from ..pipelines.spectrogram.settings import SpectroSettings
    from ..pipelines.spectrogram.worker import spectrogram_file
    from ..runtime import Rejected, Skipped

    try:
        summary = spectrogram_file(audio, track_id, out, SpectroSettings())
    except Skipped as err:
        console.print(f"[yellow]skipped[/]: {err}")
        raise typer.Exit(3) from None
    except Rejected as err:
        console.print(f"[red]rejected[/]: {err}")
        raise typer.Exit(2) from None
    console.print(f"wrote {len(summary['windows'])} windows to {out}")
    print(json.dumps(summary))


def register(app: typer.Typer, produce_app: typer.Typer) -> None:
    produce_app.command("spectrogram")(produce_spectrogram)
    app.command("spectrogram")(spectrogram)
