"""``specfleet results pull``: the fleet's results from the bucket to a folder.

The command parses its options into prefixes, calls the results service
(``specfleet.results``: listing, resumable pulls) and renders its
:class:`~specfleet.results.Pulled` once: a line, or one JSON document with
``--output json``. The progress bar goes to stderr.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from ..results import Pulled, pull_results, site_day_prefixes, track_prefixes
from ..storage import Storage
from .context import settings
from .errors import fail
from .output import JSON, OUTPUT, OutputFormat, render


def results_pull(
    out: Path = typer.Option(Path("results"), "--out", "-o", help="Folder to pull into (it mirrors the bucket's keys)."),
    site: str | None = typer.Option(None, help="A hydrophone site (ooipy's name or node id; `specfleet hydrophone sites`)."),
    hydrophone: str | None = typer.Option(None, help="A hydrophone path instead of a site, e.g. CE02SHBP/LJ01D/11-HYDBBA106."),
    start: str | None = typer.Option(None, help="First recording day (YYYY-MM-DD).", metavar="DAY"),
    end: str | None = typer.Option(None, help="Last recording day (default: --start).", metavar="DAY"),
    tracks: str | None = typer.Option(None, help="Track ids, comma-separated, or @FILE with one per line."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be fetched; fetch nothing."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Copy results from the bucket into a folder: a site's clips for a range
    of recording days, or tracks' spectrogram windows and mp3s. Resumable:
    what is already there (same size) is skipped.

    Example: specfleet results pull --site oregon_shelf_base_seafloor --start 2017-10-09 --out clips
    """
    prefixes = _site_prefixes(site, hydrophone, start, end) + _track_prefixes(tracks)
    if not prefixes:
        raise typer.BadParameter("say what to pull: --site/--hydrophone with --start, or --tracks",
                                 param_hint="--site/--tracks")
    storage = Storage(settings())
    if dry_run:
        result = pull_results(storage, prefixes, out, dry_run=True)
    else:
        result = _pull_with_progress(storage, prefixes, out)
    render(result, _pulled_view, output, as_json)


def _pulled_view(p: Pulled) -> list[str]:
    if p.dry_run:
        return [f"{p.objects} object(s), {p.bytes / 1e6:.1f} MB to fetch into {escape(p.out)} "
                f"({p.already_there} already there)"]
    if not p.objects and not p.already_there:
        return [f"nothing in {escape(p.source)}"]
    return [f"pulled {p.objects} object(s) ({p.bytes / 1e6:.1f} MB) into {escape(p.out)}; "
            f"{p.already_there} already there"]


def _site_prefixes(site: str | None, hydrophone: str | None, start: str | None, end: str | None) -> list[str]:
    """The clip prefixes of a site's (or hydrophone path's) days; none without either."""
    if not (site or hydrophone):
        return []
    if start is None:
        raise typer.BadParameter("a site's results need --start (and --end for more than one day)",
                                 param_hint="--start")
    try:
        first = dt.date.fromisoformat(start)
        last = dt.date.fromisoformat(end) if end else first
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--start/--end") from None
    if last < first:
        raise typer.BadParameter(f"--end {last} is before --start {first}", param_hint="--end")
    from ..pipelines.hydrophone.sites import UnknownSite

    try:
        return site_day_prefixes(first, last, site=site, hydrophone=hydrophone)
    except UnknownSite as err:  # its message names the choices
        raise typer.BadParameter(str(err), param_hint="--site") from None


def _track_prefixes(tracks: str | None) -> list[str]:
    if not tracks:
        return []
    ids = Path(tracks[1:]).read_text().split() if tracks.startswith("@") else [t.strip() for t in tracks.split(",")]
    return track_prefixes(t for t in ids if t)


def _pull_with_progress(storage: Storage, prefixes: list[str], out: Path) -> Pulled:
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("pulling"), BarColumn(), MofNCompleteColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("pull", total=None)
        try:
            return pull_results(storage, prefixes, out,
                                on_start=lambda total: progress.update(task, total=total),
                                on_object=lambda key, size, fetched: progress.update(task, advance=1, description=key))
        except KeyboardInterrupt:
            progress.stop()
            fail("interrupted: what was fetched stays; run the same command again to fetch the rest", code=130)


def register(app: typer.Typer, produce: typer.Typer) -> None:
    results_app = typer.Typer(help="Results in the bucket: pull them into a folder.")
    results_app.command("pull")(results_pull)
    app.add_typer(results_app, name="results")
