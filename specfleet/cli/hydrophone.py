"""CLI of the hydrophone pipeline: ``produce hydrophone`` and ``hydrophone clip``.

Heavy imports (obspy, numpy) happen inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)
hydrophone_app = typer.Typer(help="Hydrophone clips: run one file locally.")


def produce_hydrophone(
    day: str = typer.Option(..., "--day", help="Day to produce, YYYY-MM-DD."),
    base_url: str | None = typer.Option(None, "--base-url", help="Archive root (default: the OOI raw-data archive)."),
    hydrophone: str | None = typer.Option(None, "--hydrophone", help="Hydrophone path below the root, e.g. CE02SHBP/LJ01D/11-HYDBBA106."),
    force: bool = typer.Option(False, "--force", help="Enqueue files whose clips already exist."),
) -> None:
    """Enqueue one job per .mseed file in a day's listing."""
    from rich.progress import Progress

    from ..pipelines.hydrophone.listing import ListingError
    from ..pipelines.hydrophone.producer import parse_day, produce_day
    from .main import settings

    try:
        the_day = parse_day(day)
    except ValueError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(2) from None
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("enqueueing", total=None)

        def step(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            result = produce_day(settings(), the_day, base_url=base_url, hydrophone=hydrophone, force=force, progress=step)
        except (ListingError, ValueError) as err:
            console.print(f"[red]{err}[/]")
            raise typer.Exit(1) from None
    console.print(
        f"{result.day_url}: enqueued {len(result.enqueued)} files, "
        f"{len(result.already_done)} already done, {len(result.ignored)} links ignored"
    )
    for href, why in result.ignored[:20]:
        console.print(f"  ignored {href!r}: {why}", style="dim")
    print(json.dumps({"day_url": result.day_url, "enqueued": len(result.enqueued),
                      "already_done": len(result.already_done), "ignored": len(result.ignored)}))


@hydrophone_app.command("clip")
def clip(
    source: str = typer.Argument(..., help="A .mseed file path or an http(s) URL."),
    out: Path = typer.Option(..., "--out", help="Folder for {name}.wav and {name}.png."),
    processes: int = typer.Option(0, help="Render processes (0: one per CPU)."),
) -> None:
    """Cut one file into clips locally (no queues, no S3)."""
    import time

    from ..pipelines.hydrophone.settings import HydroSettings
    from ..pipelines.hydrophone.worker import fetch_and_cut, process_count, render_pool
    from ..runtime.errors import JobError

    config = HydroSettings()
    if processes:
        config = config.model_copy(update={"processes": processes})
    started = time.monotonic()
    with render_pool(process_count(config)) as pool:
        with console.status(f"cutting {source}"):
            try:
                result = fetch_and_cut(source, config, out, pool)
            except JobError as err:
                console.print(f"[red]{type(err).__name__}[/]: {err.reason}")
                raise typer.Exit(1) from None
    console.print(f"[green]{len(result.clips)} clips[/] in {out} ({time.monotonic() - started:.1f}s)")
    for note in result.notes:
        console.print(f"  {note}", style="yellow")
    print(json.dumps({"clips": len(result.clips), "out": str(out), "names": [c.name for c in result.clips],
                      "notes": result.notes}))


def register(app: typer.Typer, produce_app: typer.Typer) -> None:
    produce_app.command("hydrophone")(produce_hydrophone)
    app.add_typer(hydrophone_app, name="hydrophone")
