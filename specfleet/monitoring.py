"""Summaries of the status tables and queues (``specfleet status``, the
report, notebooks).

``summary(settings)`` is one snapshot: per pipeline the queue depth
(visible / in flight / DLQ), done / failed / skipped / banned rows, the rate
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
from typing import Any

import botocore.exceptions
import psycopg2.extensions
from pydantic_settings import BaseSettings, SettingsConfigDict

from .aws import error_code
from .db import connect
from .pipelines import job_queue, names
from .queues import Queue, dead_letter_queue
from .settings import Settings

STAT_COLUMNS = {"done": 1, "failed": 0, "skipped": 2, "banned": -1, "paused": 3}


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


def _pipeline_stats(
    conn: psycopg2.extensions.connection, now: dt.datetime, rate_window_min: float, alive_window_min: float
) -> dict[str, dict[str, Any]]:
    totals = {r["pipeline"]: r for r in _rows(conn, "SELECT * FROM v_pipeline_totals")}
    rate_since = now - dt.timedelta(minutes=rate_window_min)
    recent = {
        r["pipeline"]: r
        for r in _rows(
            conn,
            "SELECT pipeline, count(*) AS rows, count(DISTINCT job_key) AS jobs, min(date) AS first"
            " FROM status_jobs WHERE date > %s AND date <= %s GROUP BY pipeline",
            (rate_since, now),
        )
    }
    alive_since = now - dt.timedelta(minutes=alive_window_min)
    alive: dict[str, list[str]] = {}
    for r in _rows(
        conn,
        "SELECT pipeline, instance_id FROM v_instance_activity WHERE last_seen > %s AND last_seen <= %s"
        " ORDER BY pipeline, instance_id",
        (alive_since, now),
    ):
        alive.setdefault(r["pipeline"], []).append(r["instance_id"])
    banned: dict[str, list[str]] = {}
    for r in _rows(conn, "SELECT pipeline, instance_id FROM v_banned_instances ORDER BY pipeline, instance_id"):
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
            "rows": int(t.get("rows", 0)),
            "jobs": int(t.get("jobs", 0)),
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
    settings: Settings, *, record: bool = False, now: dt.datetime | None = None, config: MonitorSettings | None = None
) -> dict[str, Any]:
    """One snapshot of every pipeline (see the module docstring).

    ``record`` also appends the queue depths to ``queue_depth_history``;
    ``now`` (naive UTC) pins the clock for the rate and alive windows;
    ``config``: the windows (default: from the environment).
    """
    config = config or MonitorSettings()
    now = now or utcnow()
    depths = queue_depths(settings)
    conn = connect(settings)
    try:
        stats = _pipeline_stats(conn, now, config.rate_window_min, config.alive_window_min)
        rejects = _rows(conn, "SELECT count(*) AS n FROM status_rejects")[0]["n"]
        if record:
            record_queue_depths(conn, depths)
    finally:
        conn.close()

    pipelines: dict[str, Any] = {}
    for pipeline in names():
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

    table = Table(title=f"specfleet status at {data['generated_at']} UTC", caption=(
        f"rate over the last {data['rate_window_min']:g} min; alive = status in the last "
        f"{data['alive_window_min']:g} min; alive: {len(data['instances']['alive'])}, "
        f"banned: {len(data['instances']['banned'])}"
    ))
    cols = ("pipeline", "visible", "in flight", "dlq", "done", "failed", "skipped", "banned", "paused",
            "jobs/min", "ETA", "alive", "banned inst.")
    for col in cols:
        table.add_column(col, justify="left" if col == "pipeline" else "right", no_wrap=col == "pipeline")
    for name, p in data["pipelines"].items():
        q = p["queue"]
        dash = "-"
        table.add_row(
            name,
            str(q["visible"]) if q else dash,
            str(q["in_flight"]) if q else dash,
            str(p["dlq"]) if p["dlq"] is not None else dash,
            str(p["done"]), str(p["failed"]), str(p["skipped"]), str(p["banned"]),
            str(p["paused"]),
            f"{p['jobs_per_min']:.1f}",
            fmt_duration(p["eta_s"]),
            str(len(p["instances_alive"])),
            str(len(p["instances_banned"])),
            style="red" if p["instances_banned"] or (p["dlq"] or 0) > 0 else None,
        )
    return table
