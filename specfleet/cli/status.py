"""``specfleet status``: jobs done and failed, queues, rate, ETA, instances."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from pydantic import BaseModel, model_serializer
from rich.console import Console, RenderableType
from rich.table import Table

from ..pipelines import specs
from ..runtime.spec import StatusSection
from ..settings import Settings
from .app import pipeline_names
from .context import settings
from .errors import explain
from .output import JSON, OUTPUT, OutputFormat, render, wants_json

console = Console(stderr=True)


def _status_sections(s: Settings) -> list[StatusSection]:
    """Each pipeline's own part of ``status`` (its ``status_section``); one
    that fails says so in a line and the others still show."""
    parts = []
    for spec in specs():
        if spec.status_section is None:
            continue
        try:
            parts.append(spec.status_section.load()(s))
        except Exception as err:  # noqa: BLE001 - a pipeline's extra view must not break status
            console.print(f"[yellow]{spec.name}[/]: its status section failed: {explain(err).line()}", soft_wrap=True)
    return parts



def status(
    watch: bool = typer.Option(False, "--watch", "-w", help="Keep refreshing a live table (Ctrl-C stops)."),
    interval: float | None = typer.Option(
        None, min=0.1, help="Seconds between refreshes (default: SPECFLEET_MONITOR_REFRESH_S, 5)."
    ),
    record: bool = typer.Option(True, help="Append the queue depths to queue_depth_history."),
    pipeline: list[str] = typer.Option([], "--pipeline", "-p", help="Only this pipeline (repeatable).",
                                       callback=pipeline_names),
    since: str | None = typer.Option(None, help="Count only work done since this UTC time (2017-10-09, "
                                     "'2017-10-09T06:00') or this long ago (30m, 2h, 1d).", metavar="WHEN"),
    day: str | None = typer.Option(None, help="Count only this day: a hydrophone file's recording day, the "
                                   "day the work was done for the others.", metavar="YYYY-MM-DD"),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Jobs done/failed (files, tracks) with their clips or windows, queues, rate, ETA, instances.

    Counts are jobs, not status rows: a file redone, or a track's windows, count once.

    Example: specfleet status --pipeline hydrophone --day 2017-10-09
    """
    from ..monitoring import StatusFilter, queue_depths

    where = StatusFilter(tuple(pipeline), _since(since), _day(day))
    s = settings()
    unreachable = _database_unreachable(s)
    if unreachable is not None:
        # One line, then what SQS alone can tell.
        console.print(f"[yellow]database unreachable[/] ({unreachable}): queue depths only", soft_wrap=True)
        render(QueuesOnly(database=f"unreachable: {unreachable}", queues=queue_depths(s)), _queues_view,
               output, as_json)
        return
    if watch and not wants_json(output, as_json):
        _watch(s, where, record, interval)
        return
    sections = _status_sections(s) if not pipeline or "hydrophone" in pipeline else []
    render(Status.of(s, where, record, sections), _status_view, output, as_json)


class QueuesOnly(BaseModel):
    """``status`` without a database: what SQS alone can tell."""

    database: str
    queues: dict[str, dict[str, int] | None]


def _queues_view(q: QueuesOnly) -> Iterator[Table]:
    table = Table(title="queue depths (no database)")
    for col in ("pipeline", "visible", "in flight", "delayed", "dlq"):
        table.add_column(col, justify="left" if col == "pipeline" else "right")
    for name, d in q.queues.items():
        cells = [str(d[k]) for k in ("visible", "in_flight", "delayed", "dlq")] if d else ["-"] * 4
        table.add_row(name, *cells)
    yield table


class Status(BaseModel):
    """``status``: the monitoring summary (``monitoring.summary``) and each
    pipeline's own section under its key; the JSON is one flat object."""

    summary: dict[str, Any]
    sections: list[StatusSection] = []

    @classmethod
    def of(cls, s: Settings, where: Any, record: bool, sections: list[StatusSection]) -> Status:
        from ..monitoring import summary

        return cls(summary=summary(s, record=record, where=where), sections=sections)

    @model_serializer(mode="plain")
    def _flat(self) -> dict[str, Any]:
        return {**self.summary, **{part.key: part.data for part in self.sections}}


def _status_view(st: Status) -> Iterator[RenderableType | str]:
    from ..monitoring import status_table

    yield status_table(st.summary)
    if st.summary.get("rejects"):
        yield f"[yellow]{st.summary['rejects']} malformed status messages in status_rejects[/]"
    for part in st.sections:
        yield part.table


def _watch(s: Settings, where: Any, record: bool, interval: float | None) -> None:
    """A live table, refreshed every ``interval`` seconds until Ctrl-C."""
    import time

    from rich.live import Live

    from ..monitoring import MonitorSettings, status_table, summary

    period = MonitorSettings().refresh_s if interval is None else interval
    try:
        with Live(status_table(summary(s, record=record, where=where)), console=Console(), auto_refresh=False) as live:
            while True:
                time.sleep(period)  # refresh period of the display
                live.update(status_table(summary(s, record=record, where=where)), refresh=True)
    except KeyboardInterrupt:
        pass


def _since(text: str | None) -> Any:
    """``--since``: an ISO date/time (UTC) or a duration back from now."""
    import datetime as dt
    import re

    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if m:
        seconds = float(m[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]]
        return dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=seconds)
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither a UTC time like 2017-10-09T06:00 nor a duration like 2h",
                                 param_hint="--since") from None
    return when.astimezone(dt.UTC).replace(tzinfo=None) if when.tzinfo else when


def _day(text: str | None) -> Any:
    import datetime as dt

    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a day like 2017-10-09", param_hint="--day") from None


def _database_unreachable(s: Settings) -> str | None:
    """Why the database cannot be reached now, or None when it answers."""
    from ..db import DatabaseNotConfigured, connect, is_db_unavailable

    try:
        connect(s).close()
    except DatabaseNotConfigured as err:
        return str(err)
    except Exception as err:
        if is_db_unavailable(err) or type(err).__module__.startswith("botocore"):
            return " ".join(str(err).split())[:200] or type(err).__name__
        raise
    return None


def register(app: typer.Typer, produce_app: typer.Typer) -> None:
    app.command()(status)
