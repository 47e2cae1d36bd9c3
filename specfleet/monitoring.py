"""Summaries of the status tables and queues (``specfleet status``, the
report, notebooks).

``summary(settings)`` is one snapshot: per pipeline the queue depth
(visible / in flight / DLQ), done / failed / skipped / banned *jobs* (a
file, a track: a spectrogram track reports one row per window, and a job
redone reports again), what the done jobs wrote (hydrophone clips,
spectrogram windows) beside them, the status rows behind them, the rate
over the last ``MonitorSettings.rate_window_min`` minutes and an ETA for the
backlog, and which instances are alive (sent a status in the last
``MonitorSettings.alive_window_min`` minutes) or banned (sent stat -1).

Queue history: SQS keeps none, so ``record_queue_depths`` appends one
sample per pipeline to ``queue_depth_history``. It is the table's only
writer; ``specfleet status`` calls it on every refresh (``summary(...,
record=True)``) and ``specfleet report`` once.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import botocore.exceptions
import psycopg2.extensions
from pydantic_settings import BaseSettings, SettingsConfigDict

from .aws import error_code
from .db import connect
from .pipelines import job_queue, names
from .queues import Queue, dead_letter_queue
from .settings import Settings
from .status import StatusRecord

STAT_COLUMNS = {"done": 1, "failed": 0, "skipped": 2, "banned": -1, "paused": 3}

#: What a done job wrote, counted from its status rows: ``(unit, SQL giving
#: pipeline, job_key, stat, date and n)`` -- a file's clips (its last done row;
#: a redone file reports the same clips again), a track's distinct windows.
ITEMS = {
    "hydrophone": ("clips", "SELECT 'hydrophone' AS pipeline, file_url AS job_key, stat, date, clips AS n,"
                            " file_url AS item, deployment FROM status_hydro"),
    "spectrogram": ("windows", "SELECT 'spectrogram' AS pipeline, track_id AS job_key, stat, date, 1 AS n,"
                               " track_id || '#' || win AS item, deployment FROM status_specto"),
}


@dataclass(frozen=True)
class StatusFilter:
    """Which status rows ``summary`` counts: ``pipelines`` (all when
    empty), rows dated from ``since`` (naive UTC; the worker's clock), and
    ``day``: for hydrophone the *recording* day of the file (its archive
    folder), for the others the day the work was done."""

    pipelines: tuple[str, ...] = ()
    since: dt.datetime | None = None
    day: dt.date | None = None
    #: The deployment (queue prefix) whose rows count, and rows stored before
    #: deployments were recorded (``''``); None: every deployment's.
    deployment: str | None = None

    def where(self, alias: str = "") -> tuple[str, list[Any]]:
        """A SQL condition over rows with ``pipeline``, ``job_key`` and ``date``."""
        a = f"{alias}." if alias else ""
        clauses: list[str] = ["TRUE"]
        params: list[Any] = []
        if self.pipelines:
            clauses.append(f"{a}pipeline = ANY(%s)")
            params.append(list(self.pipelines))
        if self.since is not None:
            clauses.append(f"{a}date >= %s")
            params.append(self.since)
        if self.deployment is not None:
            clauses.append(f"{a}deployment IN (%s, '')")
            params.append(self.deployment)
        if self.day is not None:
            clauses.append(f"(CASE WHEN {a}pipeline = 'hydrophone' THEN hydro_url_day({a}job_key)"
                           f" ELSE {a}date::date END) = %s")
            params.append(self.day)
        return " AND ".join(clauses), params


class MonitorSettings(BaseSettings):
    """``SPECFLEET_MONITOR_*``: what ``specfleet status`` and the report summarise."""

    model_config = SettingsConfigDict(env_prefix="SPECFLEET_MONITOR_", extra="ignore")

    #: Minutes of status history behind the "rate" and ETA in ``specfleet status``.
    rate_window_min: float = 10.0
    #: An instance counts as alive if it sent a status in this many minutes.
    alive_window_min: float = 5.0
    #: Seconds between refreshes of ``specfleet status --watch``.
    refresh_s: float = 5.0



def utcnow() -> dt.datetime:
    """Naive UTC, like the status tables' ``date`` column."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# --- queues --------------------------------------------------------------------------
def _depth(queue: Queue) -> dict[str, int] | None:
    """Depth of a queue, or ``None`` when it does not exist (not deployed)."""
    try:
        return queue.depth()
    except botocore.exceptions.ClientError as err:
        code = error_code(err)
        if "NonExistentQueue" in code or "QueueDoesNotExist" in code:
            return None
        raise


def queue_depths(settings: Settings) -> dict[str, dict[str, int] | None]:
    """``{pipeline: {"visible", "in_flight", "delayed", "dlq"}}`` (``None``
    for a pipeline whose queue does not exist)."""
    out: dict[str, dict[str, int] | None] = {}
    for pipeline in names():
        q = job_queue(settings, pipeline)
        depth = _depth(q)
        if depth is None:
            out[pipeline] = None
            continue
        dlq = _depth(dead_letter_queue(q))
        out[pipeline] = {**depth, "dlq": dlq["visible"] if dlq else 0}
    return out


def record_queue_depths(
    conn: psycopg2.extensions.connection, depths: dict[str, dict[str, int] | None]
) -> int:
    """Append one ``queue_depth_history`` sample per existing queue."""
    rows = [
        (pipeline, d["visible"], d["in_flight"], d["dlq"]) for pipeline, d in depths.items() if d is not None
    ]
    with conn, conn.cursor() as cur:
        for row in rows:
            cur.execute(
                "INSERT INTO queue_depth_history (pipeline, visible, in_flight, dlq) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (pipeline, sampled_at) DO NOTHING",
                row,
            )
    return len(rows)


# --- tables --------------------------------------------------------------------------
def _rows(conn: psycopg2.extensions.connection, sql: str, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        names = [c.name for c in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def job_totals(conn: psycopg2.extensions.connection, where: StatusFilter | None = None) -> dict[str, dict[str, Any]]:
    """Per pipeline: jobs by outcome (a job is done if any of its rows says
    so, else its latest row decides), the pauses (stat 3 rows, one per
    pause of a worker), the status rows behind them, the
    instances that sent them, the last one's time, and what the done jobs
    wrote (``items``, in ``ITEMS``' unit)."""
    cond, params = (where or StatusFilter()).where()
    totals = {r["pipeline"]: r for r in _rows(conn, f"""
        SELECT pipeline,
               count(*) FILTER (WHERE stat = 1)  AS done,
               count(*) FILTER (WHERE stat = 0)  AS failed,
               count(*) FILTER (WHERE stat = 2)  AS skipped,
               count(*) FILTER (WHERE stat = -1) AS banned,
               count(*)                          AS jobs,
               sum(rows)                         AS rows
        FROM (SELECT pipeline, job, count(*) AS rows,
                     CASE WHEN bool_or(stat = 1) THEN 1
                          ELSE (array_agg(stat ORDER BY date DESC, received_at DESC))[1] END AS stat
              FROM (SELECT *,
                           -- unreadable jobs share the placeholder key: each row is a job of its own
                           CASE WHEN job_key = %s THEN job_key || '#' || row_number() OVER ()
                                ELSE job_key END AS job
                    -- a pause row (stat 3) reports the worker's wait, not the job's outcome
                    FROM status_jobs WHERE {cond} AND stat <> 3) r
              GROUP BY pipeline, job) j
        GROUP BY pipeline""", [StatusRecord.PLACEHOLDER, *params])}
    for r in _rows(conn, f"SELECT pipeline, count(DISTINCT instance_id) AS instances, max(date) AS last_seen,"
                         f" count(*) FILTER (WHERE stat = 3) AS paused"
                         f" FROM status_jobs WHERE {cond} GROUP BY pipeline", params):
        totals.setdefault(r["pipeline"], {}).update(r)
    for pipeline, (_unit, rows_sql) in ITEMS.items():
        # the n of each item's latest done row (a redone item is not counted twice)
        [r] = _rows(conn, f"""
            SELECT coalesce(sum(n), 0) AS items FROM (
                SELECT DISTINCT ON (item) n FROM ({rows_sql}) x
                WHERE stat = 1 AND {cond} ORDER BY item, date DESC) i""", params)
        totals.setdefault(pipeline, {})["items"] = int(r["items"])
    return totals


def _pipeline_stats(
    conn: psycopg2.extensions.connection, now: dt.datetime, rate_window_min: float, alive_window_min: float,
    where: StatusFilter | None = None,
) -> dict[str, dict[str, Any]]:
    totals = job_totals(conn, where)
    # the rate, the alive and the banned instances: this deployment's rows, whatever the other filters
    mine, mine_params = StatusFilter(deployment=where.deployment if where else None).where()
    rate_since = now - dt.timedelta(minutes=rate_window_min)
    recent = {
        r["pipeline"]: r
        for r in _rows(
            conn,
            "SELECT pipeline, count(*) AS rows, count(DISTINCT job_key) AS jobs, min(date) AS first"
            f" FROM status_jobs WHERE date > %s AND date <= %s AND {mine} GROUP BY pipeline",
            (rate_since, now, *mine_params),
        )
    }
    alive_since = now - dt.timedelta(minutes=alive_window_min)
    alive: dict[str, list[str]] = {}
    for r in _rows(
        conn,
        f"SELECT pipeline, instance_id FROM status_jobs WHERE {mine} GROUP BY pipeline, instance_id"
        " HAVING max(date) > %s AND max(date) <= %s ORDER BY pipeline, instance_id",
        (*mine_params, alive_since, now),
    ):
        alive.setdefault(r["pipeline"], []).append(r["instance_id"])
    banned: dict[str, list[str]] = {}
    for r in _rows(conn, f"SELECT DISTINCT pipeline, instance_id FROM status_jobs WHERE stat = -1 AND {mine}"
                         " ORDER BY pipeline, instance_id", mine_params):
        banned.setdefault(r["pipeline"], []).append(r["instance_id"])

    out: dict[str, dict[str, Any]] = {}
    for pipeline in names():
        t = totals.get(pipeline, {})
        latest = recent.get(pipeline)
        # Divide by the time actually covered (at least one minute) so a run
        # that started two minutes ago is not reported at a fifth of its speed.
        if latest:
            covered_min = (now - latest["first"]).total_seconds() / 60.0
            span_min = min(rate_window_min, max(1.0, covered_min))
            rows_per_min = latest["rows"] / span_min
            jobs_per_min = latest["jobs"] / span_min
        else:
            rows_per_min = jobs_per_min = 0.0
        out[pipeline] = {
            **{k: int(t.get(k, 0)) for k in STAT_COLUMNS},
            "rows": int(t.get("rows") or 0),
            "jobs": int(t.get("jobs", 0)),
            "items": int(t["items"]) if pipeline in ITEMS else None,
            "items_unit": ITEMS[pipeline][0] if pipeline in ITEMS else None,
            "instances": int(t.get("instances", 0)),
            "last_seen": t.get("last_seen"),
            "rate_per_min": rows_per_min,
            "jobs_per_min": jobs_per_min,
            "instances_alive": alive.get(pipeline, []),
            "instances_banned": banned.get(pipeline, []),
        }
    return out


def eta_seconds(backlog: int, jobs_per_min: float) -> float | None:
    """Seconds to work off ``backlog`` jobs at the current rate; ``0`` with no
    backlog, ``None`` when there is a backlog but nothing is moving."""
    if backlog <= 0:
        return 0.0
    if jobs_per_min <= 0:
        return None
    return round(backlog / jobs_per_min * 60.0, 1)


def summary(
    settings: Settings, *, record: bool = False, now: dt.datetime | None = None, config: MonitorSettings | None = None,
    where: StatusFilter | None = None,
) -> dict[str, Any]:
    """One snapshot of every pipeline (see the module docstring).

    ``record`` also appends the queue depths to ``queue_depth_history``;
    ``now`` (naive UTC) pins the clock for the rate and alive windows;
    ``config``: the windows (default: from the environment); ``where``:
    which rows the done/failed counts take (the queues and the rate are
    always the whole pipeline's).
    """
    config = config or MonitorSettings()
    now = now or utcnow()
    # this deployment's rows only, unless asked otherwise (one database may serve several)
    where = where or StatusFilter()
    if where.deployment is None:
        where = replace(where, deployment=settings.queue_prefix)
    depths = queue_depths(settings)
    conn = connect(settings)
    try:
        stats = _pipeline_stats(conn, now, config.rate_window_min, config.alive_window_min, where)
        rejects = _rows(conn, "SELECT count(*) AS n FROM status_rejects")[0]["n"]
        if record:
            record_queue_depths(conn, depths)
    finally:
        conn.close()

    pipelines: dict[str, Any] = {}
    for pipeline in names():
        if where.pipelines and pipeline not in where.pipelines:
            continue
        depth = depths[pipeline]
        s = stats[pipeline]
        queue = {k: depth[k] for k in ("visible", "in_flight", "delayed")} if depth else None
        backlog = (depth["visible"] + depth["in_flight"] + depth["delayed"]) if depth else 0
        pipelines[pipeline] = {
            "queue": queue,
            "dlq": depth["dlq"] if depth else None,
            "backlog": backlog,
            **s,
            "rate_per_min": round(s["rate_per_min"], 3),
            "jobs_per_min": round(s["jobs_per_min"], 3),
            "eta_s": eta_seconds(backlog, s["jobs_per_min"]),
        }
    alive = sorted({i for p in pipelines.values() for i in p["instances_alive"]})
    banned = sorted({i for p in pipelines.values() for i in p["instances_banned"]})
    return {
        "generated_at": now.strftime("%Y-%m-%d %H:%M:%S"),
        "rate_window_min": config.rate_window_min,
        "alive_window_min": config.alive_window_min,
        "deployment": where.deployment,
        "filter": {"pipelines": list(where.pipelines), "since": where.since, "day": where.day},
        "pipelines": pipelines,
        "instances": {"alive": alive, "banned": banned},
        "rejects": int(rejects),
    }


def watch(
    settings: Settings,
    *,
    interval_s: float | None = None,
    until: Callable[[dict[str, Any]], bool] | None = None,
    timeout_s: float | None = None,
    record: bool = True,
    config: MonitorSettings | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield a ``summary`` every ``interval_s`` seconds (notebooks, ``--watch``)
    until ``until(snapshot)`` is true or ``timeout_s`` passes (then raise
    ``TimeoutError``)."""
    interval_s = (config or MonitorSettings()).refresh_s if interval_s is None else interval_s
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        snap = summary(settings, record=record, config=config)
        yield snap
        if until is not None and until(snap):
            return
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"monitoring condition not met after {timeout_s}s")
        time.sleep(interval_s)  # the refresh period of a display, not synchronisation


# --- queries for the report ---------------------------------------------------------------
def fetch(settings: Settings, sql: str, params: Any = None) -> list[dict[str, Any]]:
    """Rows of a monitoring query as dicts (one short-lived connection)."""
    conn = connect(settings)
    try:
        return _rows(conn, sql, params)
    finally:
        conn.close()


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "stalled"
    seconds = int(round(seconds))
    if seconds == 0:
        return "-"
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def status_table(data: dict[str, Any]) -> Any:
    """A rich ``Table`` of a ``summary`` snapshot."""
    from rich.table import Table

    filt = data.get("filter") or {}
    shown = ", ".join(f"{k} {v}" for k, v in (("since", filt.get("since")), ("day", filt.get("day"))) if v)
    table = Table(title=f"specfleet status at {data['generated_at']} UTC" + (f" ({shown})" if shown else ""), caption=(
        "done/failed/skipped/banned count jobs (a file, a track; "
        f"{sum(p['rows'] for p in data['pipelines'].values())} status rows behind them); waiting/running: the queue; "
        f"rate over the last {data['rate_window_min']:g} min; alive = status in the last "
        f"{data['alive_window_min']:g} min; alive: {len(data['instances']['alive'])}, "
        f"banned: {len(data['instances']['banned'])}"
    ))
    # fits 120 columns: rows and banned instances are in the caption and --json
    cols = ("pipeline", "waiting", "running", "dlq", "done", "wrote", "failed", "skipped", "banned", "paused",
            "jobs/min", "ETA", "alive")
    for col in cols:
        table.add_column(col, justify="left" if col == "pipeline" else "right",
                         no_wrap=col in ("pipeline", "wrote", "ETA"))
    for name, p in data["pipelines"].items():
        q = p["queue"]
        dash = "-"
        table.add_row(
            name,
            str(q["visible"]) if q else dash,
            str(q["in_flight"]) if q else dash,
            str(p["dlq"]) if p["dlq"] is not None else dash,
            str(p["done"]), f"{p['items']} {p['items_unit']}" if p.get("items_unit") else dash,
            str(p["failed"]), str(p["skipped"]), str(p["banned"]), str(p["paused"]),
            f"{p['jobs_per_min']:.1f}",
            fmt_duration(p["eta_s"]),
            str(len(p["instances_alive"])),
            style="red" if p["instances_banned"] or (p["dlq"] or 0) > 0 else None,
        )
    return table
