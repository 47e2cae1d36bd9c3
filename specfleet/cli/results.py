"""``specfleet results pull``: the fleet's results from the bucket to a
folder, without knowing the key layout.

By site and day range (hydrophone clips: ``{prefix}/{hydrophone path}/YYYY_MM_DD/``,
under the site's classic and 2025 archive spellings both) or by track ids
(``spec/{track}__*.jpg`` windows and ``audio/{track}.mp3``). The folder mirrors
the keys. Each object is written to ``NAME.part`` and renamed when whole, so
an interrupted pull leaves no half file under a real name; the next pull
skips every object already there at its listed size and fetches the rest
(a file of another size, e.g. cut short by some other tool, is fetched
again). ``aws s3 sync`` does the same for one prefix; this knows which
prefixes a site's days or a list of tracks mean.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

from ..storage import Storage
from .context import settings
from .errors import fail
from .output import JSON, OUTPUT, OutputFormat, render

#: S3 prefixes of a track's results (the music pipelines' default layout).
TRACK_PREFIXES = ("spec/{track}__", "audio/{track}.mp3")


@dataclass
class PullResult:
    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bytes_fetched: int = 0


def day_prefixes(prefix: str, hydrophone_paths: Iterable[str], start: dt.date, end: dt.date) -> list[str]:
    """Clip prefixes of every day from ``start`` to ``end`` (inclusive)."""
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return [f"{prefix.strip('/')}/{path.strip('/')}/{day:%Y_%m_%d}/" for path in hydrophone_paths for day in days]


def track_prefixes(tracks: Iterable[str]) -> list[str]:
    return [p.format(track=t) for t in tracks for p in TRACK_PREFIXES]


def plan(listing: Iterable[tuple[str, int]], out: Path) -> Iterator[tuple[str, int, Path, bool]]:
    """``(key, size, local path, already there)`` per listed object, each key once."""
    seen: set[str] = set()
    for key, size in listing:
        if key in seen or key.endswith("/"):
            continue
        seen.add(key)
        local = out / key
        yield key, size, local, local.is_file() and local.stat().st_size == size


def listing(storage: Storage, prefixes: Iterable[str]) -> list[tuple[str, int]]:
    """``(key, size)`` of every object under ``prefixes``."""
    return [obj for prefix in prefixes for obj in storage.list(prefix)]


def pull(
    storage: Storage,
    listed: Iterable[tuple[str, int]],
    out: Path,
    *,
    on_object: Callable[[str, int, bool], None] | None = None,
) -> PullResult:
    """Fetch every listed object not already in ``out`` (``on_object(key,
    size, fetched)`` after each one)."""
    result = PullResult()
    for key, size, local, present in plan(listed, out):
        if present:
            result.skipped.append(key)
        else:
            local.parent.mkdir(parents=True, exist_ok=True)
            part = local.with_name(local.name + ".part")
            storage.download(key, part)
            part.replace(local)  # whole or not there: never a half file under the real name
            result.fetched.append(key)
            result.bytes_fetched += size
        if on_object is not None:
            on_object(key, size, not present)
    return result


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
    s = settings()
    storage = Storage(s)
    listed = listing(storage, prefixes)
    where = f"s3://{s.bucket} under {', '.join(prefixes[:3])}{' ...' if len(prefixes) > 3 else ''}"
    if dry_run:
        todo = [(k, n) for k, n, _, present in plan(listed, out) if not present]
        result = Pulled(out=str(out), source=where, dry_run=True, objects=len(todo), bytes=sum(n for _, n in todo),
                        already_there=len(listed) - len(todo))
    else:
        done = _pull_with_progress(storage, listed, out)
        result = Pulled(out=str(out), source=where, dry_run=False, objects=len(done.fetched), bytes=done.bytes_fetched,
                        already_there=len(done.skipped))
    render(result, _pulled_view, output, as_json)


class Pulled(BaseModel):
    """``results pull``: the objects fetched (or, in a dry run, to fetch) and those already there."""

    out: str
    source: str
    dry_run: bool
    objects: int
    bytes: int
    already_there: int


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
    from ..pipelines.hydrophone.settings import HydroSettings
    from ..pipelines.hydrophone.sites import UnknownSite, find_site

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
    if hydrophone:
        return day_prefixes(HydroSettings().prefix, [hydrophone.strip("/")], first, last)
    try:
        found = find_site(site or "")
    except UnknownSite as err:
        raise typer.BadParameter(str(err), param_hint="--site") from None
    return day_prefixes(HydroSettings().prefix, list(found.paths), first, last)  # outputs may sit under either spelling


def _track_prefixes(tracks: str | None) -> list[str]:
    if not tracks:
        return []
    ids = Path(tracks[1:]).read_text().split() if tracks.startswith("@") else [t.strip() for t in tracks.split(",")]
    return track_prefixes(t for t in ids if t)


def _pull_with_progress(storage: Storage, listed: list[tuple[str, int]], out: Path) -> PullResult:
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("pulling"), BarColumn(), MofNCompleteColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("pull", total=len({k for k, _ in listed}))
        try:
            return pull(storage, listed, out, on_object=lambda key, size, fetched: progress.update(
                task, advance=1, description=key))
        except KeyboardInterrupt:
            progress.stop()
            fail("interrupted: what was fetched stays; run the same command again to fetch the rest", code=130)


def register(app: typer.Typer, produce: typer.Typer) -> None:
    results_app = typer.Typer(help="Results in the bucket: pull them into a folder.")
    results_app.command("pull")(results_pull)
    app.add_typer(results_app, name="results")
