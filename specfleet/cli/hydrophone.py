"""CLI of the hydrophone pipeline: ``produce hydrophone``, ``hydrophone clip``,
``hydrophone preview``, ``hydrophone days``, ``hydrophone sites`` and
``local ooi-archive``.

Human output goes to stderr, the machine-readable JSON line to stdout (last).
Heavy imports (obspy, numpy, matplotlib) happen inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from .errors import explain, fail

if TYPE_CHECKING:
    from ..pipelines.hydrophone.producer import DayListing
    from ..settings import Settings

console = Console(stderr=True)
hydrophone_app = typer.Typer(help="Hydrophone clips: run one file locally, preview a clip, see days and sites.")


def _hydrophone_path(site: str | None, hydrophone: str | None) -> str | None:
    """The archive path from ``--site NAME`` or ``--hydrophone PATH|NAME``."""
    from ..pipelines.hydrophone.sites import UnknownSite, find_site, resolve_hydrophone

    if site is not None and hydrophone is not None:
        fail("give --site or --hydrophone, not both", code=2)
    try:
        if site is not None:
            return find_site(site).path
        return resolve_hydrophone(hydrophone) if hydrophone is not None else None
    except UnknownSite as err:
        fail(str(err), code=2)


def _size(n: int | None, approximate: bool) -> str:
    if n is None:
        return "unknown"
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    text = f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
    return ("≈" if approximate else "") + text


def _say_missing(days: list[str]) -> None:
    if days:
        shown = ", ".join(days[:10]) + (f" and {len(days) - 10} more" if len(days) > 10 else "")
        console.print(f"[yellow]{len(days)} day(s) not in the archive[/]: {shown}")


# --- produce hydrophone --------------------------------------------------------------
def produce_hydrophone(
    day: str | None = typer.Option(None, "--day", help="One whole day, YYYY-MM-DD (UTC).", metavar="DATE"),
    start: str | None = typer.Option(
        None, "--start", help="Start of a range, YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC).", metavar="WHEN"
    ),
    end: str | None = typer.Option(
        None, "--end", help="End of the range; a bare date includes that day. Default: the end of the start day.",
        metavar="WHEN",
    ),
    site: str | None = typer.Option(
        None, "--site", help="Hydrophone by ooipy's site name, e.g. oregon_shelf_base_seafloor (see `hydrophone sites`).",
        metavar="NAME",
    ),
    hydrophone: str | None = typer.Option(
        None, "--hydrophone", help="Archive path below the root (CE02SHBP/LJ01D/11-HYDBBA106) or a site name.",
        metavar="PATH",
    ),
    base_url: str | None = typer.Option(None, "--base-url", help="Archive root (default: the OOI raw-data archive).", metavar="URL"),
    force: bool = typer.Option(False, "--force", help="Enqueue files whose clips already exist."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List files and bytes per day and the fleet plan; enqueue nothing."),
) -> None:
    """Enqueue one job per .mseed file of the days (or hours) asked for.

    Example: specfleet produce hydrophone --site oregon_shelf_base_seafloor --start 2017-10-09 --end 2017-10-11 --dry-run
    """
    from ..pipelines.hydrophone.listing import ListingError
    from ..pipelines.hydrophone.producer import list_range, produce_range
    from ..pipelines.hydrophone.settings import HydroSettings
    from ..pipelines.hydrophone.timerange import RangeError, TimeRange
    from .main import settings

    try:
        window = TimeRange.parse(start=start, end=end, day=day)
    except RangeError as err:
        fail(str(err), code=2)
    path = _hydrophone_path(site, hydrophone)
    config = HydroSettings()
    # A real run needs the queues: say so before reading any listing. A dry run
    # needs no stack (the S3 check for done files says so itself if it cannot run).
    s = settings(check_endpoint=dry_run is False)
    try:
        with console.status(f"reading {len(window.days())} day listing(s)") as spinner:
            def on_day(d: DayListing) -> None:
                spinner.update(f"read {d.day}: {len(d.files)} file(s)" + (" (not in the archive)" if d.missing else ""))

            listings = list_range(window, base_url=base_url, hydrophone=path, config=config, on_day=on_day)
    except (ListingError, ValueError) as err:
        fail(str(err))
    if dry_run:
        _dry_run(s, listings, window, path or config.hydrophone, config, force)
        return
    from rich.progress import Progress

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("enqueueing", total=None)

        def step(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            result = produce_range(
                s, window, base_url=base_url, hydrophone=path, force=force, progress=step, config=config,
                listings=listings,
            )
        except (ListingError, ValueError) as err:
            fail(str(err))
    for note in result.notes:
        console.print(f"[yellow]note[/]: {note}")
    missing = [d for d in result.days if d.missing]
    if len(result.days) > 1:
        table = Table(title=f"{result.hydrophone}: {window.describe()}")
        for col in ("day", "listed", "enqueued", "already done", "outside the times"):
            table.add_column(col, justify="left" if col == "day" else "right")
        for d in result.days:
            if d.missing:
                table.add_row(str(d.day), "[dim]missing[/]", "", "", "")
            else:
                table.add_row(str(d.day), str(d.listed), str(len(d.enqueued)), str(len(d.already_done)),
                              str(d.outside_range or ""))
        console.print(table)
    else:
        console.print(f"{result.days[0].day_url}")
    _say_missing([str(d.day) for d in missing])
    ignored = [i for d in result.days for i in d.ignored]
    # Every Apache index has column-sorting links and a parent link: not worth a line each.
    odd = [(href, why) for href, why in ignored if not (href.startswith("?") or why == "a folder, not a file")]
    console.print(
        f"enqueued {result.total('enqueued')} files, {result.total('already_done')} already done"
        + (f", {len(odd)} odd links ignored" if odd else ""), highlight=False,
    )
    for href, why in odd[:20]:
        console.print(f"  ignored {href!r}: {why}", style="dim", highlight=False)
    print(json.dumps({
        "hydrophone": result.hydrophone,
        "start": f"{window.start:%Y-%m-%dT%H:%M}", "end": f"{window.end:%Y-%m-%dT%H:%M}",
        "day_url": result.days[0].day_url,
        "enqueued": result.total("enqueued"), "already_done": result.total("already_done"), "ignored": len(ignored),
        "missing_days": [str(d.day) for d in missing],
        "days": [{"day": str(d.day), "day_url": d.day_url, "listed": d.listed, "enqueued": len(d.enqueued),
                  "already_done": len(d.already_done), "outside_range": d.outside_range, "missing": bool(d.missing)}
                 for d in result.days],
        "notes": result.notes,
    }))


def _dry_run(s: Settings, listings: list[DayListing], window: Any, hydrophone: str, config: Any, force: bool) -> None:
    """Files and bytes per day (sizes from the listing's size column: Apache
    rounds them, so they are approximate; no file is fetched), the files
    already done (S3 manifests), and the fleet plan for the rest."""
    from ..fleet.plan import PlanError, plan
    from ..fleet.settings import FleetSettings
    from ..pipelines.hydrophone.naming import file_name, normalize_hydrophone
    from ..pipelines.hydrophone.producer import done_files
    from .fleet import show_plan

    hydro = normalize_hydrophone(hydrophone)
    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    for d in listings:
        done: set[str] = set()
        if not force and not d.missing:
            try:
                done = done_files(s, config, hydro, d.day)
            except Exception as err:  # a dry run must not need the stack; say what was not checked
                notes.append(f"could not check S3 for files already done ({type(err).__name__}): counted as to do")
                force = True
        todo = [f for f in d.files if file_name(f) not in done]
        rows.append({
            "day": str(d.day), "day_url": d.url, "missing": bool(d.missing), "listed": d.listed,
            "in_range": len(d.files), "already_done": len(d.files) - len(todo), "to_do": len(todo),
            "bytes": d.bytes(), "bytes_approximate": bool(d.listing and d.listing.sizes_approximate),
        })
    table = Table(title=f"dry run: {hydro}, {window.describe()}")
    for col in ("day", "files listed", "in range", "already done", "to do", "bytes (listing)"):
        table.add_column(col, justify="left" if col == "day" else "right")
    for r in rows:
        if r["missing"]:
            table.add_row(r["day"], "[dim]missing[/]", "", "", "", "")
        else:
            table.add_row(r["day"], str(r["listed"]), str(r["in_range"]), str(r["already_done"]), str(r["to_do"]),
                          _size(r["bytes"], r["bytes_approximate"]))
    to_do = sum(r["to_do"] for r in rows)
    known = [r["bytes"] for r in rows if not r["missing"]]
    total_bytes = None if any(b is None for b in known) else sum(b for b in known if b is not None)
    approximate = any(r["bytes_approximate"] for r in rows)
    table.add_section()
    table.add_row("total", str(sum(r["listed"] for r in rows)), str(sum(r["in_range"] for r in rows)),
                  str(sum(r["already_done"] for r in rows)), str(to_do), _size(total_bytes, approximate))
    console.print(table)
    _say_missing([r["day"] for r in rows if r["missing"]])
    for note in dict.fromkeys(notes):
        console.print(f"[yellow]note[/]: {note}")
    planned: dict[str, Any] | None = None
    plan_error = ""
    if to_do:
        try:
            p = plan(FleetSettings.over(s), "hydrophone", to_do)
        except PlanError as err:
            plan_error = str(err)
            console.print(f"[yellow]no fleet plan[/]: {err}")
        else:
            planned = p.model_dump()
            show_plan(p, title=f"fleet plan: {to_do} hydrophone files on {p.instance_type}")
    else:
        console.print("nothing to do: every file in range is done")
    print(json.dumps({
        "dry_run": True, "hydrophone": hydro,
        "start": f"{window.start:%Y-%m-%dT%H:%M}", "end": f"{window.end:%Y-%m-%dT%H:%M}",
        "days": rows, "files": to_do, "bytes": total_bytes, "bytes_approximate": approximate,
        "sizes_from": "listing", "plan": planned, "plan_error": plan_error, "notes": list(dict.fromkeys(notes)),
    }))


# --- hydrophone clip ---------------------------------------------------------------------
@hydrophone_app.command("clip")
def clip(
    source: str = typer.Argument(..., help="A .mseed file path or an http(s) URL.", metavar="SOURCE"),
    out: Path = typer.Option(..., "--out", help="Folder for {name}.wav and {name}.png.", metavar="DIR"),
    processes: int = typer.Option(0, help="Render processes (0: one per CPU).", metavar="N"),
) -> None:
    """Cut one file into clips locally (no queues, no S3).

    Example: specfleet hydrophone clip OO-HYVM1--YDH-2017-10-09T00:00:00.000000.mseed --out clips/
    """
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
                fail(f"{type(err).__name__}: {err.reason}")
    console.print(f"[green]{len(result.clips)} clips[/] in {out} ({time.monotonic() - started:.1f}s)")
    for note in result.notes:
        console.print(f"  {note}", style="yellow")
    print(json.dumps({"clips": len(result.clips), "out": str(out), "names": [c.name for c in result.clips],
                      "notes": result.notes}))


@hydrophone_app.command("preview")
def preview(
    source: str = typer.Argument(..., help="A .mseed file path or an http(s) URL.", metavar="SOURCE"),
    out: Path = typer.Option(..., "--out", help="PNG file to write.", metavar="PNG"),
    clip_number: int = typer.Option(0, "--clip", min=0, help="Which clip of the file (0: the first).", metavar="N"),
) -> None:
    """Draw one clip as a labelled spectrogram: time (s), frequency (kHz), dB colourbar.

    Example: specfleet hydrophone preview OO-HYVM1--YDH-2017-10-09T00:00:00.000000.mseed --clip 3 --out clip3.png
    """
    from ..pipelines.hydrophone.preview import preview_file
    from ..runtime.errors import JobError

    if out.suffix.lower() != ".png":
        fail(f"--out must name a .png file, got {str(out)!r}", code=2)
    with console.status(f"drawing clip {clip_number} of {source}"):
        try:
            result = preview_file(source, out, clip=clip_number)
        except JobError as err:
            fail(f"{type(err).__name__}: {err.reason}")
        except ValueError as err:
            fail(str(err), code=2)
    console.print(
        f"[green]{out}[/]: clip {result.clip} of {result.clips} ({result.clip_name}), "
        f"colour {result.vmin:.1f}–{result.vmax:.1f} dB"
    )
    print(json.dumps({"out": str(out), "clip": result.clip, "clips": result.clips, "name": result.clip_name,
                      "size": list(result.size), "vmin_db": result.vmin, "vmax_db": result.vmax}))


# --- hydrophone days / sites -----------------------------------------------------------------
@hydrophone_app.command("days")
def days(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    site: str | None = typer.Option(None, "--site", help="Only this site (see `hydrophone sites`).", metavar="NAME"),
    hydrophone: str | None = typer.Option(None, "--hydrophone", help="Only this archive path (or site name).", metavar="PATH"),
    since: str | None = typer.Option(None, "--since", help="Only days from this date on, YYYY-MM-DD.", metavar="DATE"),
    limit: int = typer.Option(60, min=1, max=100_000, help="At most this many days, newest first.", metavar="N"),
) -> None:
    """Each hydrophone day as complete / partial (n of the files listed) / failed.

    Example: specfleet hydrophone days --site oregon_shelf_base_seafloor --since 2017-10-01
    """
    import dataclasses

    import psycopg2

    from ..db import DatabaseNotConfigured
    from ..pipelines.hydrophone.days import archive_coverage, days_table, hydro_days
    from ..pipelines.hydrophone.naming import normalize_hydrophone
    from ..pipelines.hydrophone.settings import HydroSettings
    from ..pipelines.hydrophone.timerange import RangeError, parse_when
    from .main import settings

    path = _hydrophone_path(site, hydrophone)
    try:
        first = parse_when(since).date() if since else None
        path = normalize_hydrophone(path) if path else None
    except (RangeError, ValueError) as err:
        fail(str(err), code=2)
    try:
        rows = hydro_days(settings(), hydrophone=path, since=first, limit=limit)
    except (DatabaseNotConfigured, psycopg2.Error) as err:
        explained = explain(err)  # the same line as every other command's
        fail(explained.message, explained.hint)
    coverage = None
    try:  # the archive copy's day manifests, where days finished (best effort: S3 may be out of reach)
        coverage = archive_coverage(settings(), rows, HydroSettings().archive_prefix)
    except Exception as err:  # noqa: BLE001 (any storage trouble: the table still shows)
        console.print(f"[yellow]archive coverage not read: {explain(err).message}[/]")
    if as_json:
        cov = coverage or {}
        print(json.dumps({"days": [
            {**d.model_dump(mode="json"),
             "archive": dataclasses.asdict(cov[(d.hydrophone, d.day)]) if d.day and (d.hydrophone, d.day) in cov else None}
            for d in rows
        ]}))
        return
    if not rows:
        console.print("no hydrophone days yet: produce some with `specfleet produce hydrophone --day DATE`")
        return
    Console().print(days_table(rows, coverage=coverage if coverage else None))


@hydrophone_app.command("sites")
def sites(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """The broadband hydrophone sites by ooipy's names, with their archive paths.

    Example: specfleet hydrophone sites
    """
    from ..pipelines.hydrophone.sites import SITES

    if as_json:
        print(json.dumps([{"name": s.name, "node": s.node, "path": s.path, "path_2025": s.path_2025} for s in SITES]))
        return
    table = Table(title="OOI broadband hydrophones (names and paths from ooipy)")
    for col in ("site", "node", "archive path", "since 2025"):
        table.add_column(col, overflow="fold")
    for s in SITES:
        table.add_row(s.name, s.node, s.path, s.path_2025)
    Console().print(table)


# --- local ooi-archive ----------------------------------------------------------------------
def local_ooi_archive(
    dir: Path = typer.Option(
        Path(".specfleet/ooi-archive"), "--dir", help="Folder of the archive's files; days not there yet are written.",
        metavar="DIR",
    ),
    port: int = typer.Option(8123, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).", metavar="PORT"),
    days: str = typer.Option(
        "2017-10-09", "--days", help="Days to serve: DATE, FROM..TO, or a comma-separated list.", metavar="DAYS"
    ),
    site: str | None = typer.Option(None, "--site", help="Site whose folder to fill (default: SPECFLEET_HYDRO_HYDROPHONE).", metavar="NAME"),
    hydrophone: str | None = typer.Option(None, "--hydrophone", help="Archive path to fill instead of a site.", metavar="PATH"),
    files: int = typer.Option(
        3, "--files", min=0, max=280,
        help="Clean 5-minute files per day, plus the archive's awkward ones: a real break, a truncated file, "
        "a short file, one holding more than 5 minutes, an addendum/ folder.", metavar="N"),
    seconds: float = typer.Option(300.0, "--seconds", min=1.0, max=300.0, help="Length of each clean file.", metavar="S"),
) -> None:
    """Serve the local OOI archive stand-in in the foreground until Ctrl-C.

    Prints the environment lines that point the producer and workers at it.
    Example: specfleet local ooi-archive --days 2017-10-09..2017-10-10 --port 8123
    """
    from ..local.stack import stop_on_signals, wait_until
    from ..pipelines.hydrophone.naming import normalize_hydrophone
    from ..pipelines.hydrophone.settings import HydroSettings
    from ..pipelines.hydrophone.timerange import RangeError, parse_days
    from ..standins.ooi_archive import OOIServer, write_day

    try:
        wanted = parse_days(days)
        path = normalize_hydrophone(_hydrophone_path(site, hydrophone) or HydroSettings().hydrophone)
    except (RangeError, ValueError) as err:
        fail(str(err), code=2)
    root = dir.resolve()
    for k, day in enumerate(wanted):
        folder = root / path / f"{day:%Y/%m/%d}"
        if folder.is_dir() and any(folder.iterdir()):
            continue
        with console.status(f"writing {files} synthetic file(s) and the awkward ones for {day} (first run only)"):
            # As the real archive: every file in pieces with the day's label noise; some
            # days with slots left empty; from the third day on, listings reached
            # through a redirect to index.html or to a sort query.
            write_day(root, path, day, clean_files=files, clean_seconds=seconds, short_file=True, long_file=True,
                      addendum=True, empty_slots=(1,) if k % 2 else (),
                      listing_redirect=("", "", "index.html", "?C=M;O=A")[k % 4])
    try:
        server = OOIServer(root, port=port).start()
    except OSError as err:
        fail(f"cannot listen on 127.0.0.1:{port} ({err.strerror or err}); pick another with --port")
    stop = stop_on_signals()
    print(f"export SPECFLEET_HYDRO_BASE_URL={server.base_url}", flush=True)
    print(f"export SPECFLEET_HYDRO_ALLOWED_HOSTS='{json.dumps([server.netloc])}'", flush=True)
    console.print(
        f"OOI archive stand-in on [bold]{server.base_url}[/] serving {root} ({len(wanted)} day(s) of {path}); Ctrl-C stops\n"
        f"  try: specfleet produce hydrophone --day {wanted[0]} --hydrophone {path} --dry-run"
    )
    try:
        wait_until(stop)
    finally:
        server.close()
    console.print("OOI archive stand-in stopped")


def register(app: typer.Typer, produce_app: typer.Typer) -> None:
    produce_app.command("hydrophone")(produce_hydrophone)
    app.add_typer(hydrophone_app, name="hydrophone")
    local = next((g.typer_instance for g in app.registered_groups if g.name == "local"), None)
    if local is not None:
        local.command("ooi-archive")(local_ooi_archive)
