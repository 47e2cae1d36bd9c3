"""Hydrophone days: complete / partial (n of the files listed) / failed.

The producer records each day listing it reads (``record_listings``, tables
``hydro_day`` and ``hydro_day_file``, migration 050); the view
``v_hydro_days`` joins them with ``status_hydro``. ``hydro_days`` reads it,
``days_table`` draws it, ``status_section`` is the hydrophone part of
``specfleet status``, with the level products' cost per audio-hour beside
the fleet plan's estimate (``levels_costs``, view ``v_hydro_levels_cost``).

Recording is best effort: a producer on a laptop often cannot reach the
database (RDS is private), and that must not stop it from enqueuing. It
tries once and says why it could not; the view then places the files by
their status rows alone (``n of 288``).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ...runtime.spec import StatusSection
from ...settings import Settings

if TYPE_CHECKING:
    from .archive import DayCoverage

STATES = ("complete", "partial", "failed", "pending", "no data")
STATE_STYLE = {"complete": "green", "partial": "yellow", "failed": "red", "pending": "dim", "no data": "dim"}


class HydroDay(BaseModel):
    """One row of ``v_hydro_days``."""

    hydrophone: str
    day: dt.date | None
    day_url: str | None = None
    #: Files the archive listed for the day when it was produced (None: no listing on record).
    files_listed: int | None = None
    files_expected: int = 288
    done: int = 0
    skipped: int = 0
    failed: int = 0
    pending: int = 0
    clips: int = 0
    bytes_listed: int | None = None
    listed_at: dt.datetime | None = None
    last_date: dt.datetime | None = None
    state: str

    @property
    def of(self) -> int:
        """What ``done`` counts against: the files listed, else a whole day."""
        return self.files_listed if self.files_listed is not None else self.files_expected

    def progress(self) -> str:
        """``"140 of 288"``, with the archive's own count when it lists fewer."""
        text = f"{self.done + self.skipped} of {self.of}"
        if self.files_listed is None:
            return text + " (no listing on record)"
        if self.files_listed < self.files_expected and self.files_listed:
            return text + f" (archive has {self.files_listed} of {self.files_expected})"
        return text


def _connect_once(settings: Settings) -> Any:
    """One connection attempt (no retries): recording must not hold up a producer."""
    import psycopg2

    from ...db import resolve_dsn

    return psycopg2.connect(resolve_dsn(settings), connect_timeout=settings.db_connect_timeout_s)


def record_listings(
    settings: Settings, hydrophone: str, days: Sequence[tuple[dt.date, str, dict[str, int | None]]]
) -> str | None:
    """Store ``(day, day_url, {file_url: bytes or None})`` per listed day
    (an empty dict: the archive has no such day). Returns ``None``, or why
    nothing was stored (the producer prints it and carries on)."""
    import psycopg2

    from ...db import DatabaseNotConfigured

    try:
        conn = _connect_once(settings)
    except DatabaseNotConfigured:
        return "no database configured: `hydrophone days` will count files from status rows only"
    except psycopg2.Error as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"could not reach the database to record the day listings ({first}); `hydrophone days` will count files from status rows only"
    try:
        with conn, conn.cursor() as cur:
            for day, url, files in days:
                sizes = list(files.values())
                total = None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)
                cur.execute(
                    "INSERT INTO hydro_day (hydrophone, day, day_url, files_listed, bytes_listed) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (hydrophone, day) DO UPDATE SET "
                    "day_url = EXCLUDED.day_url, files_listed = EXCLUDED.files_listed, "
                    "bytes_listed = EXCLUDED.bytes_listed, listed_at = now()",
                    (hydrophone, day, url, len(files), total),
                )
                cur.execute("DELETE FROM hydro_day_file WHERE hydrophone = %s AND day = %s", (hydrophone, day))
                # A file listed under another day or hydrophone before moves here: the latest listing wins.
                cur.executemany(
                    "INSERT INTO hydro_day_file (file_url, hydrophone, day, bytes) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (file_url) DO UPDATE SET hydrophone = EXCLUDED.hydrophone, "
                    "day = EXCLUDED.day, bytes = EXCLUDED.bytes",
                    [(f, hydrophone, day, b) for f, b in files.items()],
                )
    except psycopg2.Error as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"could not record the day listings ({first}); is the schema up to date (`specfleet local init`)?"
    finally:
        conn.close()
    return None


def hydro_days(
    settings: Settings, *, hydrophone: str | None = None, since: dt.date | None = None,
    until: dt.date | None = None, limit: int = 1000,
) -> list[HydroDay]:
    """Rows of ``v_hydro_days``, newest day first, at most ``limit``."""
    from ...db import connect, fetch_all

    where: list[str] = ["TRUE"]
    params: list[Any] = []
    if hydrophone is not None:
        where.append("hydrophone = %s")
        params.append(hydrophone)
    if since is not None:
        where.append("day >= %s")
        params.append(since)
    if until is not None:
        where.append("day <= %s")
        params.append(until)
    fields = list(HydroDay.model_fields)
    conn = connect(settings)
    try:
        rows = fetch_all(
            conn,
            f"SELECT {', '.join(fields)} FROM v_hydro_days WHERE {' AND '.join(where)} "
            "ORDER BY day DESC NULLS LAST, hydrophone LIMIT %s",
            (*params, limit),
        )
    finally:
        conn.close()
    return [HydroDay(**dict(zip(fields, row, strict=True))) for row in rows]


def archive_coverage(
    settings: Settings, days: Sequence[HydroDay], prefix: str
) -> dict[tuple[str, dt.date], DayCoverage]:
    """What each finished day's archive manifest says (``archive.read_coverage``);
    days without one (not finished, or no archive copy made) are left out."""
    from ...storage import Storage
    from .archive import read_coverage

    storage = Storage(settings)
    found: dict[tuple[str, dt.date], DayCoverage] = {}
    for d in days:
        if d.day is None:
            continue
        got = read_coverage(storage, prefix, d.hydrophone, d.day)
        if got is not None:
            found[(d.hydrophone, d.day)] = got
    return found


def coverage_text(c: DayCoverage) -> str:
    """``87.5 % (21.0 h), 3 breaks, 12.0 s missing``"""
    text = f"{c.coverage_pct:.1f} % ({c.seconds_written / 3600:.1f} h)"
    if c.breaks:
        text += f", {c.breaks} break{'s' if c.breaks != 1 else ''}"
    if c.missing_s:
        text += f", {c.missing_s:,.1f} s missing"
    return text


def days_table(
    days: Sequence[HydroDay], title: str = "hydrophone days",
    coverage: Mapping[tuple[str, dt.date], DayCoverage] | None = None,
) -> Any:
    """A rich ``Table``: one row per day, state coloured; hydrophones by
    their site name where ``sites`` knows the path. ``coverage``: the
    archive manifests' figures per ``(hydrophone, day)``, shown in a column."""
    from rich.table import Table

    from .sites import site_of_path

    table = Table(title=title)
    cols = [("day", "left"), ("hydrophone", "left"), ("state", "left"), ("done", "right"),
            ("listed", "right"), ("clips", "right")]
    if coverage is not None:
        cols.append(("coverage (archive)", "left"))
    cols.append(("last report", "left"))
    for col, justify in cols:
        table.add_column(col, justify=justify, no_wrap=col in ("day", "hydrophone", "last report"))  # type: ignore[arg-type]
    for d in days:
        style = STATE_STYLE.get(d.state, "")
        site = site_of_path(d.hydrophone)
        listed = "no listing" if d.files_listed is None else f"{d.files_listed} of {d.files_expected}"
        state = f"{d.state}: {d.failed} file{'s' if d.failed != 1 else ''}" if d.state == "failed" else d.state
        cells = [
            str(d.day or "?"), site.name if site else d.hydrophone, f"[{style}]{state}[/]" if style else state,
            f"{d.done + d.skipped} of {d.of}", listed, f"{d.clips:,}",
        ]
        if coverage is not None:
            got = coverage.get((d.hydrophone, d.day)) if d.day else None
            cells.append(coverage_text(got) if got else "[dim]no manifest[/]")
        cells.append(f"{d.last_date:%m-%d %H:%M} UTC" if d.last_date else "")
        table.add_row(*cells)
    return table


def day_states(settings: Settings) -> dict[str, int]:
    """How many hydrophone days are in each state (every state named, 0 included)."""
    from ...db import connect, fetch_all

    conn = connect(settings)
    try:
        rows = fetch_all(conn, "SELECT state, count(*) FROM v_hydro_days GROUP BY state")
    finally:
        conn.close()
    found = Counter({str(state): int(n) for state, n in rows})
    return {state: found.get(state, 0) for state in STATES}


class LevelsCost(BaseModel):
    """One day's level product, what it cost and what the plan said it would
    (a row of ``v_hydro_levels_cost``); the total line has ``day`` None."""

    hydrophone: str
    day: dt.date | None
    files: int
    audio_hours: float
    cpu_s: float
    cost_usd: float | None
    cost_per_audio_hour_usd: float | None
    estimate_usd: float | None
    estimate_per_audio_hour_usd: float | None
    cost_basis: str = ""
    estimate_basis: str = ""


def _per_hour(usd: float | None, hours: float) -> float | None:
    return usd / hours if usd is not None and hours > 0 else None


def levels_costs(settings: Settings, *, limit: int = 14) -> dict[str, Any]:
    """The ``limit`` newest days of ``v_hydro_levels_cost`` and a total over
    every recorded day, JSON-ready. The total's per-audio-hour figures divide
    the summed dollars by the summed hours of the days that have them, so a
    day without a price does not dilute them."""
    from ...db import connect, fetch_all

    fields = list(LevelsCost.model_fields)
    conn = connect(settings)
    try:
        rows = fetch_all(conn, f"SELECT {', '.join(fields)} FROM v_hydro_levels_cost "
                               "ORDER BY day DESC, hydrophone LIMIT %s", (max(limit, 1),))
        [(days, files, hours, cpu, cost, cost_hours, est, est_hours)] = fetch_all(conn, """
            SELECT count(*), coalesce(sum(files), 0), coalesce(sum(audio_hours), 0), coalesce(sum(cpu_s), 0),
                   sum(cost_usd), coalesce(sum(audio_hours) FILTER (WHERE cost_usd IS NOT NULL), 0),
                   sum(estimate_usd), coalesce(sum(audio_hours) FILTER (WHERE estimate_usd IS NOT NULL), 0)
            FROM v_hydro_levels_cost""")
    finally:
        conn.close()
    total = LevelsCost(hydrophone=f"{days} day{'s' if days != 1 else ''}", day=None, files=files, audio_hours=hours,
                       cpu_s=cpu, cost_usd=cost, cost_per_audio_hour_usd=_per_hour(cost, cost_hours),
                       estimate_usd=est, estimate_per_audio_hour_usd=_per_hour(est, est_hours))
    return {"days": [LevelsCost(**dict(zip(fields, r, strict=True))).model_dump(mode="json") for r in rows],
            "total": total.model_dump(mode="json")}


def usd(value: float | None) -> str:
    """``$1.2345``; a small day's cents are fractions, so below a cent six places."""
    if value is None:
        return "-"
    return f"${value:,.4f}" if abs(value) >= 0.01 else f"${value:.6f}"


def levels_cost_table(costs: Sequence[LevelsCost], total: LevelsCost | None = None,
                      title: str = "hydrophone levels: cost per audio-hour") -> Any:
    """A rich ``Table``: per day audio-hours, CPU seconds, cost and cost per
    audio-hour, the plan's estimate beside each; the total line last."""
    from rich.table import Table

    from .sites import site_of_path

    table = Table(title=title)
    for col in ("day", "hydrophone", "files", "audio h", "CPU s", "cost", "estimate", "cost/audio h",
                "estimate/audio h"):
        table.add_column(col, justify="left" if col in ("day", "hydrophone") else "right",
                         no_wrap=col in ("day", "hydrophone"))

    def cells(c: LevelsCost) -> list[str]:
        site = site_of_path(c.hydrophone)
        return [str(c.day) if c.day else "total", site.name if site else c.hydrophone, f"{c.files:,}",
                f"{c.audio_hours:,.2f}", f"{c.cpu_s:,.1f}", usd(c.cost_usd), usd(c.estimate_usd),
                usd(c.cost_per_audio_hour_usd), usd(c.estimate_per_audio_hour_usd)]

    for c in costs:
        table.add_row(*cells(c))
    if total is not None:
        table.add_section()
        table.add_row(*cells(total), style="bold")
    return table


def status_section(settings: Settings, *, limit: int = 14) -> dict[str, Any]:
    """The hydrophone section of ``specfleet status``: days per state over all
    days, the ``limit`` newest days, and the ``limit`` newest level products'
    cost per audio-hour beside the plan's estimate, JSON-ready."""
    return {
        "days": day_states(settings),
        "recent": [d.model_dump(mode="json") for d in hydro_days(settings, limit=max(limit, 1))],
        "levels_cost": levels_costs(settings, limit=limit),
    }


def status_part(settings: Settings, *, limit: int = 14) -> StatusSection:
    """``status_section`` as the registry's hook: JSON plus the days table
    (and the level products' costs, when there are any)."""
    from rich.console import Group

    data = status_section(settings, limit=limit)
    days = [HydroDay.model_validate(d) for d in data["recent"]]
    table: Any = days_table(days, title=f"hydrophone days (newest {limit})")
    costs = [LevelsCost.model_validate(c) for c in data["levels_cost"]["days"]]
    if costs:
        table = Group(table, levels_cost_table(costs, LevelsCost.model_validate(data["levels_cost"]["total"]),
                                               title=f"hydrophone levels: cost per audio-hour (newest {limit})"))
    return StatusSection("hydrophone_days", data, table)
