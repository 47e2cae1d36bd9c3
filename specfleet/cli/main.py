"""The ``specfleet`` command. Core commands live here; each pipeline adds
its own through its spec's ``cli`` reference, and the fleet, monitoring and
catalog tools through ``TOOLS``: each a small module exposing
``register(app, produce)``. Keep those modules light: import heavy
libraries inside the command functions."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore.exceptions
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..aws import error_code
from ..pipelines import UnknownPipeline, get_spec, specs
from ..queues import PURGE_INTERVAL_S, Message
from ..runtime.middleware import Middleware
from ..runtime.outcome import Outcome
from ..settings import Settings

if TYPE_CHECKING:
    from ..fleet.settings import FleetSettings
from .errors import endpoint_hint, explain, fail
from .output import polish, quiet_console, setup_logging, verbosity

app = typer.Typer(help="specfleet: queue-driven audio-processing fleets on AWS.", no_args_is_help=True)
local_app = typer.Typer(help="The embedded local stack (moto server + PostgreSQL + status poller).")
produce_app = typer.Typer(help="Put jobs on a pipeline's queue.")
dlq_app = typer.Typer(help="Dead-letter queues: list, show, redrive, purge.")
app.add_typer(local_app, name="local")
app.add_typer(produce_app, name="produce")
app.add_typer(dlq_app, name="dlq")

console = Console(stderr=True)

#: Tools (not pipelines) that add commands: each defines ``register(app, produce_app)``.
TOOLS = [
    "specfleet.cli.fleet",
    "specfleet.cli.logs",
    "specfleet.cli.db",
    "specfleet.cli.monitoring",
    "specfleet.cli.catalog",
    "specfleet.cli.results",
    "specfleet.cli.dashboard",
]


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show progress messages (they always go to the log file)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Show errors only."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error."),
) -> None:
    """Run audio-processing fleets on AWS, or all of it on this machine.

    Logs go to ~/.specfleet/logs/specfleet.log (SPECFLEET_HOME); the terminal shows warnings and errors.
    """
    setup_logging(1 if verbose else -1 if quiet else 0)


def base_settings(*, check_endpoint: bool = True) -> Settings:
    """Settings from the environment; if nothing points elsewhere and a
    local stack is running, use it (so ``local up`` then any command works),
    saying so once. An emulator endpoint that does not answer is an error
    now, not after a minute of retries (``check_endpoint=False``: a worker,
    which waits out outages instead). A ``specfleet.toml`` (``infra deploy
    --guided``) supplies defaults first; a project deployed to AWS (not the
    emulator) never falls back to the local stack."""
    from .project import ProjectFileError, apply_env, load, project_path

    try:
        project = load()
    except ProjectFileError as err:
        fail(str(err), "fix it or move it away; `specfleet infra deploy --guided` writes a new one")
    if project is not None and apply_env(project) and verbosity() >= 0:
        where = f"stack {project.deploy.stack_name or '?'} in {project.deploy.region or '?'}"
        console.print(f"[dim]using {project_path()} ({where})[/]", highlight=False)
    on_aws = project is not None and not project.deploy.emulator
    if not on_aws and not os.environ.get("AWS_ENDPOINT_URL") and not os.environ.get("SPECFLEET_ENDPOINT_URL"):
        from ..local.stack import read_state

        local_dir = _stack_dir(None)
        state = read_state(local_dir)
        if state is not None:
            if verbosity() >= 0:
                console.print(f"[dim]using the local stack in {local_dir} ({state.endpoint_url})[/]", highlight=False)
            return state.settings()
    s = Settings()
    if s.endpoint_url and check_endpoint:
        _require_answering(s.endpoint_url)
    return s


def _require_answering(url: str) -> None:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "", parts.port or 80), timeout=2).close()
    except OSError:
        fail(f"nothing answers at {url} (AWS_ENDPOINT_URL)", endpoint_hint(url))


def fleet_settings(*, check_endpoint: bool = True) -> FleetSettings:
    """``base_settings`` plus the fleet's own (``SPECFLEET_FLEET_*``), for
    the commands that manage instances and the stack."""
    from ..fleet.settings import FleetSettings

    return FleetSettings.over(base_settings(check_endpoint=check_endpoint))


def settings(*, check_endpoint: bool = True) -> Settings:
    """``base_settings``, reaching the database through an SSM tunnel when
    ``SPECFLEET_FLEET_DB_TUNNEL`` asks for one (``specfleet db tunnel``);
    if the tunnel cannot open, one line says why and commands go on without."""
    s = base_settings(check_endpoint=check_endpoint)
    from ..fleet.tunnel import TunnelError, maybe_through_tunnel

    try:
        return maybe_through_tunnel(s)
    except TunnelError as err:
        console.print(f"[yellow]no database tunnel[/]: {err}", soft_wrap=True)
        return s


# --- local ---------------------------------------------------------------------
#: One local stack per user: ``--dir`` defaults to ``SPECFLEET_LOCAL_DIR``, else ``~/.specfleet/local``.
_STACK_DIR_HELP = "The stack's folder (default: SPECFLEET_LOCAL_DIR, else ~/.specfleet/local; SPECFLEET_HOME moves it)."


def _stack_dir(dir: Path | None) -> Path:
    return Path(dir if dir is not None else Settings().local_dir).expanduser().resolve()


@local_app.command("up")
def local_up(dir: Path | None = typer.Option(None, help=_STACK_DIR_HELP)) -> None:
    """Start moto's server, PostgreSQL and the status poller in the background.

    One stack per user: any folder's `local env`, `local down` and commands find it.

    Example: specfleet local up && eval "$(specfleet local env)"
    """
    from ..local.stack import read_state, start_detached

    where = _stack_dir(dir)
    running = read_state(where)
    if running is not None:
        console.print(f"a local stack is already running (pid {running.pid}, {where}): AWS at "
                      f"{running.endpoint_url}, Postgres on :{running.pg_port}", highlight=False, soft_wrap=True)
        return
    with console.status("starting the local stack"):
        state = start_detached(where)
    console.print(f"[green]local stack up[/] (pid {state.pid}): AWS at {state.endpoint_url}, Postgres on :{state.pg_port}")
    console.print(f"its folder and log: {where}", highlight=False, soft_wrap=True)
    console.print("point a shell at it with: eval \"$(specfleet local env)\"", highlight=False)


@local_app.command("down")
def local_down(dir: Path | None = typer.Option(None, help=_STACK_DIR_HELP)) -> None:
    """Stop the local stack. Its queues, objects and tables go with it
    (moto keeps S3 and SQS in memory; the database is wiped with them so the
    two never disagree): the next `local up` starts empty.

    Example: specfleet local down
    """
    from ..local.stack import stop_detached

    where = _stack_dir(dir)
    if stop_detached(where):
        console.print("stopped: its queues, objects and tables are gone (the next `local up` starts empty)")
    else:
        console.print(f"no local stack was running (looked in {where})", highlight=False, soft_wrap=True)


@local_app.command("env")
def local_env(dir: Path | None = typer.Option(None, help=_STACK_DIR_HELP)) -> None:
    """Print ``export`` lines that point specfleet (and the AWS CLI) at the local stack.

    Example: eval "$(specfleet local env)"
    """
    from ..local.stack import read_state

    where = _stack_dir(dir)
    state = read_state(where)
    if state is None:
        fail(f"no local stack is running (looked in {where})", "start one with `specfleet local up`")
    for k, v in state.env().items():
        print(f"export {k}={v}")


@local_app.command("init")
def local_init() -> None:
    """Create queues (+DLQs), bucket, topic and tables wherever the environment points.

    That is docker-compose's services, or a fresh AWS account.

    Example: specfleet local init
    """
    from ..local.stack import provision

    with console.status("provisioning queues, bucket, topic and tables"):
        provision(settings())
    console.print("[green]provisioned[/]")


@local_app.command("poll")
def local_poll() -> None:
    """Run the status writer against the status queues in the foreground
    (the local stand-in for the Lambda's SQS trigger).

    Example: specfleet local poll
    """
    from ..local.poller import StatusPoller
    from ..local.stack import stop_on_signals, wait_until

    stop = stop_on_signals()
    poller = StatusPoller(settings()).start()
    console.print("polling the status queues; Ctrl-C stops")
    try:
        wait_until(stop)
    finally:
        poller.stop()


# --- produce / work ----------------------------------------------------------------
def produce_echo(
    count: int = typer.Option(10, min=1, help="How many jobs."),
    sleep: float = typer.Option(0.0, help="Seconds each job works."),
) -> None:
    """Trivial jobs that exercise the whole path (smoke test for a deployment).

    Example: specfleet produce echo --count 100
    """
    sent = get_spec("echo").jobs(settings()).send_json({"job_id": f"echo-{i}", "sleep_s": sleep} for i in range(count))
    console.print(f"enqueued {sent} echo jobs")


def register_echo(app: typer.Typer, produce: typer.Typer) -> None:
    produce.command("echo")(produce_echo)


def pipeline_name(value: str) -> str:
    """A registered pipeline's name, or a usage error naming the choices."""
    try:
        return get_spec(value).name
    except UnknownPipeline as err:
        raise typer.BadParameter(str(err)) from None


@app.command()
def work(
    pipeline: str = typer.Argument(..., help="The pipeline whose jobs to take.", callback=pipeline_name),
    concurrency: int = typer.Option(0, help="Jobs at once (0: the pipeline's default, one per CPU)."),
    idle_exit: float | None = typer.Option(None, help="Exit after the queue was empty this many seconds."),
    max_jobs: int | None = typer.Option(None, help="Exit after taking this many jobs."),
) -> None:
    """Take a pipeline's jobs until stopped; Ctrl-C or SIGTERM hands the jobs in hand back.

    Prints a start banner and one line per job (-q: errors only). On EC2 the
    worker runs as the unit specfleet-worker@PIPELINE: `journalctl -u
    specfleet-worker@PIPELINE` on the instance, `specfleet logs PIPELINE` from
    anywhere.

    Example: specfleet work echo --idle-exit 10
    """
    from ..pipelines import get_spec
    from ..runtime import Worker, default_middleware

    s = settings(check_endpoint=False)  # a worker waits out an endpoint that is down
    spec = get_spec(pipeline)
    middleware = default_middleware(s)
    if verbosity() >= 0:
        middleware.append(JobLines(console))
    worker = Worker(s, spec, concurrency=concurrency or None, idle_exit_s=idle_exit, max_jobs=max_jobs,
                    middleware=middleware)
    endpoint = s.endpoint_url or f"AWS ({s.region})"
    console.print(
        f"[bold]{spec.name}[/] worker [dim]{s.instance_id}[/]: queue {worker.queue.name}, "
        f"{worker.concurrency} at once, endpoint {endpoint}", highlight=False,
    )
    code = worker.run()
    if worker.config_error is not None:
        fail(worker.config_error.what, worker.config_error.hint, code=code)
    why = " (banned: exit 75)" if code == 75 else ""
    if worker.stop_signal is not None:
        why = " (Ctrl-C)" if worker.stop_signal == signal.SIGINT else f" ({signal.Signals(worker.stop_signal).name})"
        if worker.stop_signal == signal.SIGINT and console.is_terminal:
            console.print()  # the terminal echoed ^C where the next line would start
    console.print(f"worker stopped{why}: {worker_summary(worker.metrics(), worker.handed_back)}", highlight=False,
                  soft_wrap=True)
    raise typer.Exit(code)


#: How each outcome reads on a job line and in the closing summary, and its colour.
OUTCOME_WORDS = {
    "done": ("done", "green"),
    "rejected": ("failed", "red"),
    "skipped": ("skipped", "yellow"),
    "retry": ("will retry", "yellow"),
    "dead": ("gave up", "red"),
    "misconfigured": ("kept", "red"),
    "banned": ("blocked", "magenta"),
}


def worker_summary(metrics: dict[str, float], handed_back: int) -> str:
    """The closing line's counts: the outcomes that were settled (each one's
    status sent), then the jobs handed back unfinished (no status: the next
    worker does them)."""
    parts = [f"{int(metrics[kind])} {word}" for kind, (word, _) in OUTCOME_WORDS.items() if metrics.get(kind)]
    if handed_back:
        parts.append(f"{handed_back} handed back to the queue")
    return ", ".join(parts) or "no jobs"


def job_label(key: str) -> str:
    """A job as a person names it: a file's name (which carries its start
    time) rather than its whole URL; a track id as it is."""
    return key.rstrip("/").rsplit("/", 1)[-1] if "://" in key else key


class JobLines(Middleware):
    """One terminal line per settled job: what became of it, which job, what
    it wrote, its time, and why when it did not succeed. Printed after the
    job's status was sent (the worker calls this after settling). A job
    handed back at shutdown gets no line (the closing summary counts it), and
    nothing is printed once the worker has stopped: the summary is last."""

    def __init__(self, out: Console):
        self.out = out
        self._closed = False
        self._lock = threading.Lock()

    def after_worker_stop(self, worker: object) -> None:
        with self._lock:
            self._closed = True

    def after_process(self, worker: object, message: Message, outcome: Outcome) -> None:
        if outcome.kind not in OUTCOME_WORDS:
            return
        word, style = OUTCOME_WORDS[outcome.kind]
        wrote = f"  {escape(outcome.wrote)}" if outcome.wrote else ""
        reason = outcome.reason[:300]
        if outcome.kind == "misconfigured":
            reason = f"in the dead-letter queue, not failed: {reason}"
        why = f"  [dim]{escape(reason)}[/]" if reason and outcome.kind != "done" else ""
        line = f"[{style}]{word:>10}[/] {escape(job_label(outcome.key))}{wrote}  {outcome.seconds:.1f}s{why}"
        with self._lock:
            if not self._closed:
                self.out.print(line, highlight=False, soft_wrap=True)


# --- status / dlq -------------------------------------------------------------------
def _status_sections(s: Settings) -> list[Any]:
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



@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Keep refreshing a live table (Ctrl-C stops)."),
    interval: float | None = typer.Option(
        None, min=0.1, help="Seconds between refreshes (default: SPECFLEET_MONITOR_REFRESH_S, 5)."
    ),
    record: bool = typer.Option(True, help="Append the queue depths to queue_depth_history."),
    pipeline: list[str] = typer.Option([], "--pipeline", "-p", help="Only this pipeline (repeatable).",
                                       callback=lambda v: [pipeline_name(x) for x in v]),
    since: str | None = typer.Option(None, help="Count only work done since this UTC time (2017-10-09, "
                                     "'2017-10-09T06:00') or this long ago (30m, 2h, 1d).", metavar="WHEN"),
    day: str | None = typer.Option(None, help="Count only this day: a hydrophone file's recording day, the "
                                   "day the work was done for the others.", metavar="YYYY-MM-DD"),
) -> None:
    """Jobs done/failed (files, tracks) with their clips or windows, queues, rate, ETA, instances.

    Counts are jobs, not status rows: a file redone, or a track's windows, count once.

    Example: specfleet status --pipeline hydrophone --day 2017-10-09
    """
    from ..monitoring import MonitorSettings, StatusFilter, queue_depths, status_table
    from ..monitoring import summary as full_summary

    where = StatusFilter(tuple(pipeline), _since(since), _day(day))

    def summary(s: Settings, record: bool) -> dict[str, Any]:
        return full_summary(s, record=record, where=where)

    s = settings()
    unreachable = _database_unreachable(s)
    if unreachable is not None:
        # One line, then what SQS alone can tell.
        console.print(f"[yellow]database unreachable[/] ({unreachable}): queue depths only", soft_wrap=True)
        depths = queue_depths(s)
        if as_json:
            print(json.dumps({"database": f"unreachable: {unreachable}", "queues": depths}, indent=2))
            return
        table = Table(title="queue depths (no database)")
        for col in ("pipeline", "visible", "in flight", "delayed", "dlq"):
            table.add_column(col, justify="left" if col == "pipeline" else "right")
        for name, d in depths.items():
            cells = [str(d[k]) for k in ("visible", "in_flight", "delayed", "dlq")] if d else ["-"] * 4
            table.add_row(name, *cells)
        Console().print(table)
        return
    if as_json:
        data = summary(s, record=record)
        data.update({part.key: part.data for part in _status_sections(s) if not pipeline or "hydrophone" in pipeline})
        print(json.dumps(data, indent=2, default=str))
        return
    if not watch:
        data = summary(s, record=record)
        out = Console()
        out.print(status_table(data))
        if data.get("rejects"):
            console.print(f"[yellow]{data['rejects']} malformed status messages in status_rejects[/]")
        if not pipeline or "hydrophone" in pipeline:
            for part in _status_sections(s):
                out.print(part.table)
        return
    import time

    from rich.live import Live

    period = MonitorSettings().refresh_s if interval is None else interval
    try:
        with Live(status_table(summary(s, record=record)), console=Console(), auto_refresh=False) as live:
            while True:
                time.sleep(period)  # refresh period of the display
                live.update(status_table(summary(s, record=record)), refresh=True)
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


@dlq_app.command("list")
def dlq_list() -> None:
    """Messages waiting in each dead-letter queue.

    Example: specfleet dlq list
    """
    from ..queues import dead_letter_queue

    s = settings()
    table = Table(title="dead-letter queues")
    table.add_column("queue")
    table.add_column("messages", justify="right")
    for spec in specs():
        for q in (spec.jobs(s), spec.statuses(s)):
            dlq = dead_letter_queue(q)
            table.add_row(dlq.name, str(dlq.depth()["visible"]))
    Console().print(table)


@dlq_app.command("redrive")
def dlq_redrive(
    pipeline: str = typer.Argument(..., help="The pipeline whose dead-letter queue.", callback=pipeline_name),
    status_queue_too: bool = typer.Option(False, "--status", help="Redrive the status queue's DLQ instead."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Move messages from a dead-letter queue back to its source queue.

    Example: specfleet dlq redrive download --yes
    """
    from ..queues import redrive

    q = _source_queue(pipeline, status_queue_too)
    if not yes and not typer.confirm(f"move all messages from {q.name}_dlq back to {q.name}?"):
        raise typer.Exit(1)
    moved = redrive(q)
    console.print(f"moved {moved} messages back to {q.name}")


def _source_queue(pipeline: str, status_queue_too: bool):
    try:
        spec = get_spec(pipeline)
    except UnknownPipeline as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(2) from None
    s = settings()
    return spec.statuses(s) if status_queue_too else spec.jobs(s)


def _dlq_of(pipeline: str, status_queue_too: bool):
    from ..queues import dead_letter_queue

    return dead_letter_queue(_source_queue(pipeline, status_queue_too))


@dlq_app.command("show")
def dlq_show(
    pipeline: str = typer.Argument(..., help="The pipeline whose dead-letter queue.", callback=pipeline_name),
    status_queue_too: bool = typer.Option(False, "--status", help="Show the status queue's DLQ instead."),
    limit: int = typer.Option(10, min=1, max=100, help="At most this many messages."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Peek at messages in a dead-letter queue (they stay there).

    Example: specfleet dlq show hydrophone --limit 5
    """
    dlq = _dlq_of(pipeline, status_queue_too)
    seen: dict[str, Message] = {}
    held = []
    try:
        while len(seen) < limit:
            batch = dlq.receive(min(10, limit - len(seen)), wait_s=1, visibility_s=30)
            if not batch:
                break
            held.extend(batch)
            for m in batch:
                seen.setdefault(m.message_id, m)
    finally:
        dlq.change_visibility(held, 0)  # hand them straight back: this is a peek
    rows = [
        {"message_id": m.message_id, "receives": m.receive_count, "attributes": m.attributes, "body": m.body}
        for m in seen.values()
    ]
    if as_json:
        print(json.dumps({"queue": dlq.name, "messages": rows}, indent=2))
        return
    table = Table(title=f"{dlq.name}: {len(rows)} message(s) shown")
    for col in ("message id", "receives", "body", "attributes"):
        table.add_column(col, overflow="fold")
    for m in seen.values():
        body = m.body if len(m.body) <= 200 else m.body[:200] + "..."
        table.add_row(m.message_id, str(m.receive_count), body, json.dumps(m.attributes) if m.attributes else "")
    Console().print(table)


@dlq_app.command("purge")
def dlq_purge(
    pipeline: str = typer.Argument(..., help="The pipeline whose dead-letter queue.", callback=pipeline_name),
    status_queue_too: bool = typer.Option(False, "--status", help="Purge the status queue's DLQ instead."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete every message in a pipeline's dead-letter queue (cannot be undone).

    Example: specfleet dlq purge echo --yes
    """
    dlq = _dlq_of(pipeline, status_queue_too)
    waiting = dlq.depth()["visible"]
    if not yes and not typer.confirm(f"delete all {waiting} messages in {dlq.name}? This cannot be undone"):
        console.print("nothing deleted")
        raise typer.Exit(1)
    try:
        dlq.purge()
    except botocore.exceptions.ClientError as err:
        if "PurgeQueueInProgress" not in error_code(err):
            raise
        # SQS allows one purge per queue every 60 s and does not say when the last one was.
        again = (datetime.now(UTC) + timedelta(seconds=PURGE_INTERVAL_S)).strftime("%H:%M:%S UTC")
        fail(f"{dlq.name} was already purged less than {PURGE_INTERVAL_S} s ago, and SQS allows one purge "
             f"per queue every {PURGE_INTERVAL_S} s", f"to purge it again, run this at {again} or later")
    console.print(f"purged {dlq.name} ({waiting} messages)")


# --- demo -----------------------------------------------------------------------------
@app.command()
def demo(
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object (the last line on stdout)."),
    dir: Path = typer.Option(Path(".specfleet/demo"), help="Work folder: stack data, downloads, logs, report."),
    pipelines: str = typer.Option("", help="Comma-separated pipelines to run (default: all but echo)."),
) -> None:
    """Run every pipeline end to end on this machine and show what happened.

    Starts the embedded stack (moto + PostgreSQL) and local stand-ins for the
    remote sources (an OOI-shaped archive, a video site), produces jobs, runs
    each pipeline's worker until its queue drains, and writes an HTML report.
    Logs go to DIR/logs/demo.log.

    Example: specfleet demo --json
    """
    from rich.table import Table

    from ..demo import run_demo

    out = Console(stderr=True)
    log_level = verbosity()

    def log_into(workdir: Path) -> None:
        setup_logging(log_level, workdir / "logs" / "demo.log")
        quiet_console()  # the steps' own lines are the progress; details are in the log file

    result = run_demo(dir, only=[p for p in pipelines.split(",") if p] or None, console=out, on_workdir=log_into)
    table = Table(title="specfleet demo", title_justify="left")
    for column in ("pipeline", "jobs", "ok", "failed", "skipped", "objects", "status rows", "lost"):
        table.add_column(column, justify="left" if column == "pipeline" else "right")
    for name, row in result["pipelines"].items():
        table.add_row(name, *(str(row[k]) for k in ("jobs", "ok", "failed", "skipped", "objects", "status_rows")),
                      f"[{'green' if row['lost'] == 0 else 'red'}]{row['lost']}[/]")
    out.print(table)
    report = Path(result["report"])
    size = report.stat().st_size / 1e6 if report.exists() else 0.0
    # One path per line, never wrapped, so that each can be copied whole.
    out.print(f"report: {report} ({size:.1f} MB)", highlight=False, soft_wrap=True)
    out.print(f"logs:   {report.parent / 'logs' / 'demo.log'}", highlight=False, soft_wrap=True)
    if as_json:
        print(json.dumps(result))


def _load_plugins() -> None:
    for spec in specs():
        if spec.cli is not None:
            spec.cli.load()(app, produce_app)
    for name in TOOLS:
        import_module(name).register(app, produce_app)


_load_plugins()


def main(argv: list[str] | None = None) -> None:
    """The ``specfleet`` command: the typer app with readable help, and one
    line (plus a hint) instead of a traceback or a box when something fails."""
    args = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    polish(command)
    try:
        code = command.main(args=args, prog_name="specfleet", standalone_mode=False)
    except typer.Abort:
        console.print("aborted")
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        console.print("interrupted")
        raise SystemExit(130) from None
    except Exception as err:
        if hasattr(err, "format_message") and hasattr(err, "exit_code"):  # click's usage errors
            ctx = getattr(err, "ctx", None)
            where = f" -- see '{ctx.command_path} --help'" if ctx is not None else ""
            console.print(f"[red]error[/]: {escape(err.format_message() + where)}", highlight=False, soft_wrap=True)
            raise SystemExit(err.exit_code) from None
        logging.getLogger("specfleet.cli").info("command failed", exc_info=err)  # the log file keeps the traceback
        if "--debug" in args:
            raise
        explained = explain(err)
        console.print(f"[red]error[/]: {escape(explained.line())}", highlight=False, soft_wrap=True)
        raise SystemExit(explained.exit_code) from None
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
