"""CLI of the hydrophone pipeline: ``produce hydrophone``, ``hydrophone clip``,
``hydrophone preview``, ``hydrophone days``, ``hydrophone sites``,
``hydrophone levels-day`` (the daily sound-levels reduce), ``hydrophone ltsa`` and
``local ooi-archive``.

Progress and notes go to stderr; each command's result to stdout once, as a
table or (``--output json``) JSON (``output.render``).
Heavy imports (obspy, numpy, matplotlib) happen inside the commands.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from pydantic import BaseModel, RootModel
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table

from ..pipelines.hydrophone.days import HydroDay
from ..pipelines.hydrophone.params import Align, Render, SpanMethod, describe
from .context import settings
from .errors import explain, fail
from .output import JSON, OUTPUT, OutputFormat, render

if TYPE_CHECKING:
    import datetime as dt

    from ..pipelines.hydrophone.producer import DayListing, DryRun, RangeSummary
    from ..pipelines.hydrophone.settings import HydroSettings
    from ..pipelines.hydrophone.timerange import TimeRange
    from ..settings import Settings

console = Console(stderr=True)
M = TypeVar("M", bound=BaseModel)
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


def _missing_line(days: list[str]) -> list[str]:
    if not days:
        return []
    shown = ", ".join(days[:10]) + (f" and {len(days) - 10} more" if len(days) > 10 else "")
    return [f"[yellow]{len(days)} day(s) not in the archive[/]: {shown}"]


def _say_missing(days: list[str]) -> None:
    for line in _missing_line(days):
        console.print(line)


def _notes(notes: list[str]) -> list[str]:
    return [f"[yellow]note[/]: {escape(note)}" for note in notes]


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
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Enqueue one job per .mseed file of the days (or hours) asked for.

    Example: specfleet produce hydrophone --site oregon_shelf_base_seafloor --start 2017-10-09 --end 2017-10-11 --dry-run
    """
    from ..pipelines.hydrophone.settings import HydroSettings
    from ..pipelines.hydrophone.timerange import RangeError, TimeRange

    try:
        window = TimeRange.parse(start=start, end=end, day=day)
    except RangeError as err:
        fail(str(err), code=2)
    path = _hydrophone_path(site, hydrophone)
    config = HydroSettings()
    # A real run needs the queues: say so before reading any listing. A dry run
    # needs no stack (the S3 check for done files says so itself if it cannot run).
    s = settings(check_endpoint=dry_run is False)
    listings = _read_listings(window, base_url, path, config)
    if dry_run:
        render(_dry_run(s, listings, window, path or config.hydrophone, config, force), _dry_run_view, output, as_json)
        return
    from rich.progress import Progress

    from ..pipelines.hydrophone.listing import ListingError
    from ..pipelines.hydrophone.producer import produce_range

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("enqueueing", total=None)
        try:
            result = produce_range(
                s, window, base_url=base_url, hydrophone=path, force=force, config=config, listings=listings,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        except (ListingError, ValueError) as err:
            fail(str(err))
    render(result.summary(), _range_view, output, as_json)


def _read_listings(window: TimeRange, base_url: str | None, path: str | None, config: HydroSettings) -> list[DayListing]:
    """Every day's listing, the spinner naming each as it is read."""
    from ..pipelines.hydrophone.listing import ListingError
    from ..pipelines.hydrophone.producer import list_range

    try:
        with console.status(f"reading {len(window.days())} day listing(s)") as spinner:
            def on_day(d: DayListing) -> None:
                spinner.update(f"read {d.day}: {len(d.files)} file(s)" + (" (not in the archive)" if d.missing else ""))

            return list_range(window, base_url=base_url, hydrophone=path, config=config, on_day=on_day)
    except (ListingError, ValueError) as err:
        fail(str(err))


def _range_view(r: RangeSummary) -> Iterator[RenderableType | str]:
    yield from _notes(r.notes)
    if len(r.days) > 1:
        table = Table(title=f"{r.hydrophone}: {r.range}")
        for col in ("day", "listed", "enqueued", "already done", "outside the times"):
            table.add_column(col, justify="left" if col == "day" else "right")
        for d in r.days:
            if d.missing:
                table.add_row(d.day, "[dim]missing[/]", "", "", "")
            else:
                table.add_row(d.day, str(d.listed), str(d.enqueued), str(d.already_done), str(d.outside_range or ""))
        yield table
    else:
        yield escape(r.day_url)
    yield from _missing_line(r.missing_days)
    odd = f", {len(r.odd_links)} odd links ignored" if r.odd_links else ""
    yield f"enqueued {r.enqueued} files, {r.already_done} already done{odd}"
    for href, why in r.odd_links[:20]:
        yield f"[dim]  ignored {escape(repr(href))}: {escape(why)}[/]"


def _dry_run(s: Settings, listings: list[DayListing], window: TimeRange, hydrophone: str, config: HydroSettings,
             force: bool) -> DryRun:
    """The producer's dry run, with the fleet plan for the files to do."""
    from ..pipelines.hydrophone.producer import dry_run

    report = dry_run(s, listings, window, hydrophone=hydrophone, config=config, force=force)
    return _with_plan(report, s, report.files) if report.files else report


def _dry_run_view(r: DryRun) -> Iterator[RenderableType | str]:
    table = Table(title=f"dry run: {r.hydrophone}, {r.range}")
    for col in ("day", "files listed", "in range", "already done", "to do", "bytes (listing)"):
        table.add_column(col, justify="left" if col == "day" else "right")
    for d in r.days:
        if d.missing:
            table.add_row(d.day, "[dim]missing[/]", "", "", "", "")
        else:
            table.add_row(d.day, str(d.listed), str(d.in_range), str(d.already_done), str(d.to_do),
                          _size(d.bytes, d.bytes_approximate))
    table.add_section()
    table.add_row("total", *(str(r.total(k)) for k in ("listed", "in_range", "already_done", "to_do")),
                  _size(r.bytes, r.bytes_approximate))
    yield table
    yield from _missing_line([d.day for d in r.days if d.missing])
    yield from _notes(r.notes)
    yield from _plan_lines(r.plan, r.plan_error, r.files)
    if not r.files:
        yield "nothing to do: every file in range is done"


# --- hydrophone clip ---------------------------------------------------------------------
def _declared(name: str) -> Any:
    """An option for a clip parameter: its choices are the ``Literal`` its
    annotation names and its help the declaration's
    (``pipelines/hydrophone/params.py``); unset, the settings decide
    (``SPECFLEET_HYDRO_{NAME}``, else the declared default)."""
    return typer.Option(None, f"--{name}", help=describe(name), show_default=False)


@hydrophone_app.command("clip")
def clip(
    source: str = typer.Argument(..., help="A .mseed file path or an http(s) URL.", metavar="SOURCE"),
    out: Path = typer.Option(..., "--out", help="Folder for {name}.wav and {name}.png.", metavar="DIR"),
    processes: int = typer.Option(0, help="Render processes (0: one per CPU).", metavar="N"),
    render_mode: Render | None = _declared("render"),
    span: SpanMethod | None = _declared("span"),
    align: Align | None = _declared("align"),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Cut one file into clips locally (no queues, no S3).

    Example: specfleet hydrophone clip OO-HYVM1--YDH-2017-10-09T00:00:00.000000.mseed --out clips/
    """
    import time

    from ..pipelines.hydrophone.settings import HydroSettings
    from ..pipelines.hydrophone.worker import fetch_and_cut, process_count, render_pool
    from ..runtime.errors import JobError

    chosen: dict[str, Any] = {"processes": processes, "render": render_mode, "span": span, "align": align}
    # given ones only: the others stay the environment's or the declared default
    config = HydroSettings(**{k: v for k, v in chosen.items() if v})
    started = time.monotonic()
    with render_pool(process_count(config)) as pool:
        with console.status(f"cutting {source}"):
            try:
                result = fetch_and_cut(source, config, out, pool)
            except JobError as err:
                fail(f"{type(err).__name__}: {err.reason}")
            except OSError as err:  # a full disk, a read-only folder: files are written whole or not at all
                fail(f"could not write the clips into {out}: {err.strerror or err}")
    console.print(f"cut in {time.monotonic() - started:.1f}s", style="dim")
    render(Clipped(clips=len(result.clips), out=str(out), names=[c.name for c in result.clips], notes=result.notes),
           _clipped_view, output, as_json)


class Clipped(BaseModel):
    """``hydrophone clip``: the clips written (``{name}.wav`` and ``.png`` in ``out``)."""

    clips: int
    out: str
    names: list[str]
    notes: list[str]


def _clipped_view(c: Clipped) -> Iterator[str]:
    yield f"[green]{c.clips} clips[/] in {escape(c.out)}"
    yield from (f"  [yellow]{escape(note)}[/]" for note in c.notes)


@hydrophone_app.command("preview")
def preview(
    source: str = typer.Argument(..., help="A .mseed file path or an http(s) URL.", metavar="SOURCE"),
    out: Path = typer.Option(..., "--out", help="PNG file to write.", metavar="PNG"),
    clip_number: int = typer.Option(0, "--clip", min=0, help="Which clip of the file (0: the first).", metavar="N"),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
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
    shown = Previewed(out=str(out), clip=result.clip, clips=result.clips, name=result.clip_name,
                      size=list(result.size), vmin_db=result.vmin, vmax_db=result.vmax)
    render(shown, lambda p: [f"[green]{escape(p.out)}[/]: clip {p.clip} of {p.clips} ({p.name}), "
                             f"colour {p.vmin_db:.1f}–{p.vmax_db:.1f} dB"], output, as_json)


class Previewed(BaseModel):
    """``hydrophone preview``: the PNG drawn and its colour range."""

    out: str
    clip: int
    clips: int
    name: str
    size: list[int]
    vmin_db: float
    vmax_db: float


# --- hydrophone levels-day / ltsa --------------------------------------------------------------
@hydrophone_app.command("levels-day")
def levels_day(
    day: str = typer.Option(..., "--day", help="The day, YYYY-MM-DD (UTC).", metavar="DATE"),
    site: str | None = typer.Option(None, "--site", help="Hydrophone by ooipy's site name.", metavar="NAME"),
    hydrophone: str | None = typer.Option(None, "--hydrophone", help="Archive path below the root, or a site name.",
                                          metavar="PATH"),
    calibration: str | None = typer.Option(
        None, "--calibration", help="Sensitivity curve: OOI's netCDF (metadata/cals/REFDES_DEPLOYMENT.nc) or a CSV "
        "(frequency,sensitivity). Default: SPECFLEET_HYDRO_CALIBRATION; none: uncalibrated.", metavar="FILE"),
    reference: str | None = typer.Option(None, "--reference", help="volt: dB re 1 V/uPa (OOI's cals/); count: dB re 1 "
                                         "count/uPa (rca_correction_cals/).", metavar="volt|count"),
    out: Path | None = typer.Option(None, "--out", help="Also keep a local copy of the NetCDF.", metavar="NC"),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Assemble a day's sound levels from the per-file minutes in S3 into one NetCDF (the daily reduce step).

    Example: specfleet hydrophone levels-day --site oregon_shelf_base_seafloor --day 2017-10-09 --calibration CE02SHBP-LJ01D-11-HYDBBA106_12.nc
    """
    import time

    import psycopg2

    from ..db import DatabaseNotConfigured
    from ..pipelines.hydrophone.levels import load_calibration
    from ..pipelines.hydrophone.levels_day import reduce_day
    from ..pipelines.hydrophone.provenance import file_sha256, record_day
    from ..pipelines.hydrophone.settings import HydroSettings
    from ..pipelines.hydrophone.timerange import RangeError, parse_when
    from ..storage import Storage

    try:
        when = parse_when(day).date()
    except RangeError as err:
        fail(str(err), code=2)
    config = HydroSettings()
    path = _hydrophone_path(site, hydrophone) or config.hydrophone
    cal_file = calibration if calibration is not None else config.calibration
    cal = None
    if cal_file:
        try:
            cal = load_calibration(cal_file, reference=reference or config.calibration_reference)
        except ValueError as err:
            fail(str(err), code=2)
    s = settings()
    storage = Storage(s)
    with console.status(f"assembling {path} {when}"):
        cpu0 = time.process_time()
        try:
            result = reduce_day(storage, prefix=config.levels_prefix, hydrophone=path, day=when, calibration=cal)
        except ValueError as err:
            fail(str(err))
        cpu = time.process_time() - cpu0
        if out is not None:
            storage.download(result.key, out)
    cost = _day_cost(s, result, cpu)
    estimate_usd, estimate_basis = _day_estimate(s, result.files)
    recorded = ""
    try:
        record_day(s, path, result, calibration_sha256=file_sha256(cal_file) if cal else "", reduce_cpu_s=cpu,
                   cost=cost, estimate_usd=estimate_usd, estimate_basis=estimate_basis)
    except (DatabaseNotConfigured, psycopg2.Error) as err:
        recorded = explain(err).line()
        console.print(f"[yellow]provenance not recorded[/] (reprocess will not find this day): {recorded}",
                      soft_wrap=True)
    lv = result.day
    reduced = LevelsDayResult(
        key=result.key, files=result.files, minutes_with_audio=int((~lv.missing).sum()),
        minutes_missing=int(lv.missing.sum()), coverage=round(lv.coverage, 6), units=lv.units,
        calibration=cal.source if cal else None, skipped=result.skipped, out=str(out) if out else None,
        reduce_cpu_s=round(cpu, 3), compute_cpu_s=round(lv.compute_cpu_s, 3), audio_hours=round(lv.audio_hours, 4),
        s3_put_requests=result.s3_put_requests, s3_get_requests=result.s3_get_requests,
        cost_usd=cost.usd if cost else None, cost_basis=cost.basis if cost else None,
        cost_per_audio_hour_usd=(cost.usd / lv.audio_hours) if cost and lv.audio_hours else None,
        estimate_usd=estimate_usd, estimate_basis=estimate_basis, provenance_recorded=not recorded,
        provenance_error=recorded or None,
    )
    render(reduced, _day_levels_view, output, as_json)


class LevelsDayResult(BaseModel):
    """``hydrophone levels-day``: the day's NetCDF, its coverage, what it cost and what was recorded."""

    key: str
    files: int
    minutes_with_audio: int
    minutes_missing: int
    coverage: float
    units: str
    calibration: str | None
    skipped: list[str]
    out: str | None
    reduce_cpu_s: float
    compute_cpu_s: float
    audio_hours: float
    s3_put_requests: int
    s3_get_requests: int
    cost_usd: float | None
    cost_basis: str | None
    cost_per_audio_hour_usd: float | None
    estimate_usd: float | None
    estimate_basis: str
    provenance_recorded: bool
    provenance_error: str | None


def _day_levels_view(d: LevelsDayResult) -> Iterator[str]:
    yield (f"[green]{escape(d.key)}[/]: {d.files} file(s), {d.minutes_with_audio} of "
           f"{d.minutes_with_audio + d.minutes_missing} minutes with audio ({d.coverage:.1%}), {d.units}")
    yield from (f"  [yellow]skipped {escape(why)}[/]" for why in d.skipped)


def _day_cost(s: Settings, result: Any, reduce_cpu_s: float) -> Any:
    """The day's cost on the fleet's price table (spot, per vCPU of the fleet's
    instance type); None, with a note, when the table has no such type."""
    from ..fleet.plan import SQS_REQUESTS_PER_JOB
    from ..fleet.settings import FleetSettings
    from ..fleet.throughput import load_prices
    from ..pipelines.hydrophone.provenance import DayCost

    fleet = FleetSettings.over(s)
    prices = load_prices(fleet)
    itype = fleet.fleet_instance_type
    row = prices["instances"].get(itype)
    if row is None:
        console.print(f"[yellow]no price for {itype}[/]: the day's cost is not recorded")
        return None
    return DayCost.of(result, reduce_cpu_s=reduce_cpu_s, vcpu_hour_usd=row["spot_hour"] / row["vcpus"],
                      s3_put_per_1000=prices["s3"]["put_per_1000"],
                      s3_get_per_1000=float(prices["s3"].get("get_per_1000", 0.0)),
                      sqs_per_million=prices["sqs"]["per_million_requests"], sqs_per_job=SQS_REQUESTS_PER_JOB,
                      basis=f"{itype} spot ${row['spot_hour']}/h over {row['vcpus']} vCPUs, the fleet price table")


def _day_estimate(s: Settings, files: int) -> tuple[float | None, str]:
    """What ``fleet plan`` prices ``files`` hydrophone jobs at on the fleet's
    instance type (the estimate a dry run shows before the run), and how;
    ``(None, why)`` when the plan has no figure for it."""
    from ..fleet.plan import PlanError, estimate
    from ..fleet.settings import FleetSettings

    fleet = FleetSettings.over(s)
    try:
        est = estimate(fleet, "hydrophone", files, instance_type=fleet.fleet_instance_type)
    except PlanError as err:
        console.print(f"[yellow]no estimate for the day[/]: {err}", soft_wrap=True)
        return None, f"no estimate: {err}"
    return est.usd, est.basis


def reprocess(
    pipeline: str = typer.Option(..., "--pipeline", help="Only hydrophone records product provenance so far."),
    where: str = typer.Option(..., "--where", help="FIELD OP 'VALUE' [and ...]; fields: calibration, "
                              "calibration_deployment, code_version, params_hash, hydrophone, day.", metavar="EXPR"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the days, the file jobs and their cost; enqueue nothing."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Enqueue again the file jobs behind the level products a calibration, code version or dates pick.

    Run the workers with SPECFLEET_HYDRO_OUTPUT=levels, then `hydrophone levels-day` for each day listed.
    A corrected calibration alone needs only `hydrophone levels-day` again (it is applied there).

    Example: specfleet reprocess --pipeline hydrophone --where "calibration = 'CE02SHBP-LJ01D-11-HYDBBA106_12.nc'" --dry-run
    """
    from ..pipelines.hydrophone import SPEC
    from ..pipelines.hydrophone.provenance import valid_reprocess_jobs

    if pipeline != "hydrophone":
        fail(f"no product provenance is recorded for pipeline {pipeline!r}: only hydrophone (sound levels)", code=2)
    s = settings(check_endpoint=not dry_run)
    rows = _product_rows(s, where)
    jobs, ignored = valid_reprocess_jobs(rows)
    result = Reprocess(
        dry_run=dry_run, where=where, ignored=ignored, jobs=len(jobs),
        days=[ReprocessDay(hydrophone=r["hydrophone"], day=str(r["day"]), files=len(r["source_files"]),
                           calibration=r["calibration"], code_version=r["code_version"], params_hash=r["params_hash"],
                           coverage=r["coverage"]) for r in rows],
    )
    if jobs:
        result = _with_plan(result, s, len(jobs))
    if not dry_run and jobs:
        result.enqueued = SPEC.jobs(s).send(j.body() for j in jobs)
    render(result, _reprocess_view, output, as_json)


def _product_rows(s: Settings, where: str) -> list[dict[str, Any]]:
    """The level products ``where`` picks; a bad expression or an unreachable database is one line."""
    import psycopg2

    from ..db import DatabaseNotConfigured
    from ..pipelines.hydrophone.provenance import WhereError, select_days

    try:
        return select_days(s, where)
    except WhereError as err:
        fail(str(err), code=2)
    except (DatabaseNotConfigured, psycopg2.Error) as err:
        explained = explain(err)
        fail(explained.message, explained.hint)


def _with_plan(result: M, s: Settings, files: int) -> M:
    """``result`` with the fleet plan for ``files`` hydrophone files (or why there is none)."""
    from ..fleet.plan import PlanError, plan
    from ..fleet.settings import FleetSettings

    try:
        planned = plan(FleetSettings.over(s), "hydrophone", files)
    except PlanError as err:
        return result.model_copy(update={"plan_error": str(err)})
    return result.model_copy(update={"plan": planned.model_dump(mode="json")})


def _plan_lines(planned: dict[str, Any] | None, plan_error: str, files: int) -> Iterator[RenderableType | str]:
    from ..fleet.plan import Plan
    from .fleet import plan_view

    if planned is not None:
        p = Plan.model_validate(planned)
        yield from plan_view(p, title=f"fleet plan: {files} hydrophone files on {p.instance_type}")
    elif plan_error:
        yield f"[yellow]no fleet plan[/]: {escape(plan_error)}"


class ReprocessDay(BaseModel):
    hydrophone: str
    day: str
    files: int
    calibration: str | None
    code_version: str
    params_hash: str
    coverage: float


class Reprocess(BaseModel):
    """``reprocess``: the level products picked, the file jobs behind them, their plan, what was enqueued."""

    dry_run: bool
    where: str
    days: list[ReprocessDay]
    jobs: int
    enqueued: int = 0
    #: ``"url: why"`` of the bodies that are not valid jobs.
    ignored: list[str]
    plan: dict[str, Any] | None = None
    plan_error: str = ""


def _reprocess_view(r: Reprocess) -> Iterator[RenderableType | str]:
    table = Table(title=f"{'dry run: ' if r.dry_run else ''}hydrophone level products where {escape(r.where)}")
    for col in ("hydrophone", "day", "calibration", "code version", "params", "files", "coverage"):
        table.add_column(col, justify="right" if col in ("files", "coverage") else "left")
    for d in r.days:
        table.add_row(d.hydrophone, d.day, escape(d.calibration) if d.calibration else "[dim]none[/]", d.code_version,
                      d.params_hash, str(d.files), f"{d.coverage:.1%}")
    yield table
    yield from (f"[yellow]not a job[/]: {escape(why)}" for why in r.ignored)
    yield from _plan_lines(r.plan, r.plan_error, r.jobs)
    if r.enqueued:
        yield f"[green]enqueued {r.enqueued} file job(s)[/] for {len(r.days)} day(s)"
    elif not r.jobs:
        yield "nothing to reprocess"


@hydrophone_app.command("ltsa")
def ltsa(
    out: Path = typer.Option(..., "--out", help="PNG file to write.", metavar="PNG"),
    site: str | None = typer.Option(None, "--site", help="Hydrophone by ooipy's site name.", metavar="NAME"),
    hydrophone: str | None = typer.Option(None, "--hydrophone", help="Archive path below the root, or a site name.",
                                          metavar="PATH"),
    day: str | None = typer.Option(None, "--day", help="One whole day, YYYY-MM-DD (UTC).", metavar="DATE"),
    start: str | None = typer.Option(None, "--start", help="Start, YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC).", metavar="WHEN"),
    end: str | None = typer.Option(None, "--end", help="End; a bare date includes that day.", metavar="WHEN"),
    db_min: float | None = typer.Option(None, "--db-min", help="Colour scale bottom (default: 1st percentile)."),
    db_max: float | None = typer.Option(None, "--db-max", help="Colour scale top (default: 99.9th percentile)."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Long-term spectrogram and percentile spectra of the daily levels over a range, as one PNG.

    Days without a NetCDF (see `hydrophone levels-day`) and minutes without audio stay blank.

    Example: specfleet hydrophone ltsa --site oregon_shelf_base_seafloor --start 2017-10-09 --end 2017-10-11 --out ltsa.png
    """
    import datetime as dt
    import tempfile

    from ..pipelines.hydrophone.levels_day import DayLevels, concat_days, day_key, empty_day, read_day_netcdf, window
    from ..pipelines.hydrophone.levels_plot import render_summary
    from ..pipelines.hydrophone.settings import HydroSettings
    from ..pipelines.hydrophone.timerange import RangeError, TimeRange
    from ..storage import Storage

    if out.suffix.lower() != ".png":
        fail(f"--out must name a .png file, got {str(out)!r}", code=2)
    if (db_min is None) != (db_max is None) or (db_min is not None and db_max is not None and db_min >= db_max):
        fail("give both --db-min and --db-max, the first below the second", code=2)
    try:
        span = TimeRange.parse(start=start, end=end, day=day)
    except RangeError as err:
        fail(str(err), code=2)
    config = HydroSettings()
    path = _hydrophone_path(site, hydrophone) or config.hydrophone
    storage = Storage(settings())
    found: dict[dt.date, DayLevels] = {}
    with console.status(f"reading {len(span.days())} day(s) of levels"), tempfile.TemporaryDirectory() as tmp:
        for d in span.days():
            key = day_key(config.levels_prefix, path, d)
            try:
                if not storage.exists(key):
                    continue
                local = Path(tmp) / f"{d}.nc"
                storage.download(key, local)
                found[d] = read_day_netcdf(local)
            except (OSError, ValueError, KeyError) as err:  # S3 errors escape: main explains them in one line
                console.print(f"[yellow]{key} unreadable[/]: {err}", soft_wrap=True)
    if not found:
        fail(f"no daily levels for {path} in {span.describe()}: run `specfleet hydrophone levels-day` first", code=1)
    like = next(iter(found.values()))
    days = [found[d] if d in found else empty_day(d, like) for d in span.days()]
    missing_days = [str(d) for d in span.days() if d not in found]
    t0 = span.start.replace(tzinfo=dt.UTC).timestamp()
    t1 = span.end.replace(tzinfo=dt.UTC).timestamp()
    try:
        levels = window(concat_days(days), t0, t1)
    except ValueError as err:
        fail(str(err))
    db_range = (db_min, db_max) if db_min is not None and db_max is not None else None
    shot = render_summary(levels, out, title=f"{path}, {span.describe()}", db_range=db_range)
    drawn = Ltsa(out=str(out), days=len(span.days()), days_with_levels=len(found), days_without=missing_days,
                 minutes_with_audio=shot.minutes_with_audio, minutes_missing=shot.minutes_missing,
                 db_range=list(shot.db_range), units=levels.units)
    render(drawn, _ltsa_view, output, as_json)


class Ltsa(BaseModel):
    """``hydrophone ltsa``: the PNG drawn, the days it covers and its colour range."""

    out: str
    days: int
    days_with_levels: int
    days_without: list[str]
    minutes_with_audio: int
    minutes_missing: int
    db_range: list[float]
    units: str


def _ltsa_view(r: Ltsa) -> Iterator[str]:
    yield (f"[green]{escape(r.out)}[/]: {r.days_with_levels} day(s), {r.minutes_with_audio} minutes with audio, "
           f"{r.minutes_missing} without; colour {r.db_range[0]:.1f}-{r.db_range[1]:.1f} dB")
    if r.days_without:
        yield f"[yellow]no levels for[/] {', '.join(r.days_without)}"


# --- hydrophone publish-manifest ---------------------------------------------------------
@hydrophone_app.command("publish-manifest")
def publish_manifest_command(
    day: list[str] = typer.Option([], "--day", help="Rebuild this day's part first (repeatable), YYYY-MM-DD.",
                                  metavar="DATE"),
    all_days: bool = typer.Option(False, "--all-days", help="Rebuild the part of every day that has done files."),
    site: str | None = typer.Option(None, "--site", help="Hydrophone by site name (see `hydrophone sites`).",
                                    metavar="NAME"),
    hydrophone: str | None = typer.Option(None, "--hydrophone", help="Archive path (or site name) of the days.",
                                          metavar="PATH"),
    force: bool = typer.Option(False, "--force", help="Rebuild the list even if it holds the current day parts."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Publish the whaledr manifest (megaptera/whalemanifest.json) from its per-day parts.

    A day's part is rebuilt from its files' done-markers when the day's last
    job finishes; a day with a failed file never finishes by itself: name it
    with --day. Without --day, only the list is rebuilt from the parts.

    Example: specfleet hydrophone publish-manifest --day 2017-10-09
    """
    from ..pipelines.hydrophone.naming import normalize_hydrophone, whale_manifest_key
    from ..pipelines.hydrophone.producer import parse_day
    from ..pipelines.hydrophone.settings import HydroSettings
    from ..pipelines.hydrophone.whalemanifest import days_with_markers, publish_day, publish_manifest
    from ..runtime.errors import JobError
    from ..storage import Storage

    config = HydroSettings()
    try:
        path = normalize_hydrophone(_hydrophone_path(site, hydrophone) or config.hydrophone)
        wanted = [parse_day(d) for d in day]
    except ValueError as err:
        fail(str(err), code=2)
    storage = Storage(settings(check_endpoint=True))
    if all_days:
        wanted = sorted(set(wanted) | set(days_with_markers(storage, config, path)))
    parts: dict[str, int] = {}
    try:
        with console.status("publishing the whaledr manifest") as spinner:
            for d in wanted:
                spinner.update(f"rebuilding the part of {d}")
                parts[str(d)] = publish_day(storage, config, path, d)
            spinner.update("rebuilding the list from every day part")
            published = publish_manifest(storage, config, force=force)
    except JobError as err:
        fail(err.reason, "run it again when fewer publishers are at work")
    result = Published(key=whale_manifest_key(config.whaledr_prefix), up_to_date=published.up_to_date,
                       entries=published.entries, day_parts=published.day_parts, bytes=published.bytes, days=parts,
                       hydrophone=path)
    render(result, _published_view, output, as_json)


class Published(BaseModel):
    """``hydrophone publish-manifest``: the manifest, and the entries of each day part rebuilt."""

    key: str
    up_to_date: bool
    entries: int
    day_parts: int
    bytes: int
    days: dict[str, int]
    hydrophone: str


def _published_view(p: Published) -> Iterator[str]:
    yield from (f"{p.hydrophone} {when}: {n} entries" for when, n in p.days.items())
    if p.up_to_date:
        yield f"[green]{p.key}[/] already holds the {p.day_parts} day part(s) (--force rebuilds it)"
    else:
        yield f"[green]{p.key}[/]: {p.entries} entries from {p.day_parts} day part(s), {_size(p.bytes, False)}"


# --- hydrophone days / sites -----------------------------------------------------------------
class HydroDayRow(HydroDay):
    """A ``hydrophone days`` row with its archive copy's coverage, if read."""

    archive: dict[str, Any] | None = None


class Days(BaseModel):
    """``hydrophone days``: each day, newest first."""

    days: list[HydroDayRow]


@hydrophone_app.command("days")
def days(
    site: str | None = typer.Option(None, "--site", help="Only this site (see `hydrophone sites`).", metavar="NAME"),
    hydrophone: str | None = typer.Option(None, "--hydrophone", help="Only this archive path (or site name).", metavar="PATH"),
    since: str | None = typer.Option(None, "--since", help="Only days from this date on, YYYY-MM-DD.", metavar="DATE"),
    limit: int = typer.Option(60, min=1, max=100_000, help="At most this many days, newest first.", metavar="N"),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
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
    cov = coverage or {}
    shown = Days(days=[HydroDayRow(**d.model_dump(), archive=dataclasses.asdict(cov[(d.hydrophone, d.day)])
                                   if d.day and (d.hydrophone, d.day) in cov else None) for d in rows])
    render(shown, lambda _: [days_table(rows, coverage=coverage if coverage else None)] if rows else [
        "no hydrophone days yet: produce some with `specfleet produce hydrophone --day DATE`"], output, as_json)


@hydrophone_app.command("sites")
def sites(output: OutputFormat = OUTPUT, as_json: bool = JSON) -> None:
    """The broadband hydrophone sites by ooipy's names, with their archive paths.

    Example: specfleet hydrophone sites
    """
    import datetime as dt

    from ..pipelines.hydrophone.sites import ARCHIVE_LAYOUT, SITES

    def since(first: dt.date) -> str | None:
        return None if first == dt.date.min else first.isoformat()

    listed = Sites([
        SiteRow(name=s.name, node=s.node, path=s.path,
                archive_paths=[{"from": since(first), "path": s.folder(spelling)} for first, spelling in ARCHIVE_LAYOUT])
        for s in SITES
    ])
    render(listed, lambda _: [_sites_table(since)], output, as_json)


class SiteRow(BaseModel):
    name: str
    node: str
    path: str
    #: ``{"from": first day or None, "path": the folder}`` for each period of the archive's layout.
    archive_paths: list[dict[str, str | None]]


class Sites(RootModel[list[SiteRow]]):
    """``hydrophone sites``: the broadband hydrophones by ooipy's names."""


def _sites_table(since: Any) -> Table:
    import datetime as dt

    from ..pipelines.hydrophone.sites import ARCHIVE_LAYOUT, SITES

    table = Table(
        title="OOI broadband hydrophones (names and paths from ooipy)",
        caption="Each day is asked in its date's folder first, then in the other (OOI moves old days on its own timeline).",
    )
    table.add_column("site", overflow="fold")
    table.add_column("node")
    for i, (first, _) in enumerate(ARCHIVE_LAYOUT):
        last = ARCHIVE_LAYOUT[i + 1][0] - dt.timedelta(days=1) if i + 1 < len(ARCHIVE_LAYOUT) else None
        label = f"{first} to {last}" if since(first) and last else f"from {first}" if since(first) else f"until {last}"
        table.add_column(label if last or since(first) else "archive path", overflow="fold")
    for s in SITES:
        table.add_row(s.name, s.node, *(s.folder(spelling) for _, spelling in ARCHIVE_LAYOUT))
    return table


# --- local ooi-archive ----------------------------------------------------------------------
def fill_local_archive(root: Path, path: str, days: list[dt.date], *, files: int, seconds: float) -> list[Path]:
    """Write the days not there yet; each in the folder the archive uses at
    its date (``sites.archive_paths``' first choice for a site's path).
    Returns every day's folder."""
    from ..pipelines.hydrophone.sites import archive_paths
    from ..standins.ooi_archive import write_day

    folders = []
    for k, day in enumerate(days):
        where = archive_paths(path, day)[0]
        folder = root / where / f"{day:%Y/%m/%d}"
        folders.append(folder)
        if folder.is_dir() and any(folder.iterdir()):
            continue
        with console.status(f"writing {files} synthetic file(s) and the awkward ones for {day} (first run only)"):
            # As the real archive: every file in pieces with the day's label noise; some
            # days with slots left empty; from the third day on, listings reached
            # through a redirect to index.html or to a sort query.
            write_day(root, where, day, clean_files=files, clean_seconds=seconds, short_file=True, long_file=True,
                      addendum=True, empty_slots=(1,) if k % 2 else (),
                      listing_redirect=("", "", "index.html", "?C=M;O=A")[k % 4])
    return folders


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
    from ..standins.ooi_archive import OOIServer

    try:
        wanted = parse_days(days)
        path = normalize_hydrophone(_hydrophone_path(site, hydrophone) or HydroSettings().hydrophone)
    except (RangeError, ValueError) as err:
        fail(str(err), code=2)
    root = dir.resolve()
    fill_local_archive(root, path, wanted, files=files, seconds=seconds)
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
    app.command("reprocess")(reprocess)
    produce_app.command("hydrophone")(produce_hydrophone)
    app.add_typer(hydrophone_app, name="hydrophone")
    local = next((g.typer_instance for g in app.registered_groups if g.name == "local"), None)
    if local is not None:
        local.command("ooi-archive")(local_ooi_archive)
