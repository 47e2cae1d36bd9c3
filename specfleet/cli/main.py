"""The ``specfleet`` command. Core commands live here; each pipeline adds
its own through its spec's ``cli`` reference, and the fleet, monitoring and
catalog tools through ``TOOLS``: each a small module exposing
``register(app, produce)``. Keep those modules light: import heavy
libraries inside the command functions."""

from __future__ import annotations

import json
import logging
import os
import sys
from importlib import import_module
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..pipelines import UnknownPipeline, get_spec, specs
from ..queues import Message
from ..settings import Settings

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
]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress to stderr.")) -> None:
    _setup_logging(verbose)


def base_settings() -> Settings:
    """Settings from the environment; if nothing points elsewhere and a
    local stack is running, use it (so ``local up`` then any command works)."""
    if not os.environ.get("AWS_ENDPOINT_URL") and not os.environ.get("SPECFLEET_ENDPOINT_URL"):
        from ..local.stack import read_state

        state = read_state(Path(Settings().local_dir))
        if state is not None:
            return state.settings()
    return Settings()


def settings() -> Settings:
    """``base_settings``, reaching the database through an SSM tunnel when
    ``SPECFLEET_FLEET_DB_TUNNEL`` asks for one (``specfleet db tunnel``);
    if the tunnel cannot open, one line says why and commands go on without."""
    s = base_settings()
    from ..fleet.tunnel import TunnelError, maybe_through_tunnel

    try:
        return maybe_through_tunnel(s)
    except TunnelError as err:
        console.print(f"[yellow]no database tunnel[/]: {err}", soft_wrap=True)
        return s


# --- local ---------------------------------------------------------------------
@local_app.command("up")
def local_up(
    dir: Path = typer.Option(Path(".specfleet/local"), help="Where the stack keeps its data and state."),
) -> None:
    """Start moto's server, PostgreSQL and the status poller in the background."""
    from ..local.stack import start_detached

    with console.status("starting the local stack"):
        state = start_detached(dir)
    console.print(f"[green]local stack up[/] (pid {state.pid}): AWS at {state.endpoint_url}, Postgres on :{state.pg_port}")
    console.print(f"point a shell at it with: eval \"$(specfleet local env --dir {dir})\"")


@local_app.command("down")
def local_down(dir: Path = typer.Option(Path(".specfleet/local"))) -> None:
    """Stop the local stack."""
    from ..local.stack import stop_detached

    console.print("stopped" if stop_detached(dir) else "no local stack was running")


@local_app.command("env")
def local_env(dir: Path = typer.Option(Path(".specfleet/local"))) -> None:
    """Print ``export`` lines that point specfleet (and the AWS CLI) at the local stack."""
    from ..local.stack import read_state

    state = read_state(dir)
    if state is None:
        console.print("[red]no local stack is running[/]: start one with `specfleet local up`")
        raise typer.Exit(1)
    for k, v in state.env().items():
        print(f"export {k}={v}")


@local_app.command("init")
def local_init() -> None:
    """Create queues (+DLQs), bucket, topic and tables wherever the
    environment points (docker-compose services, or a fresh AWS account)."""
    from ..local.stack import provision

    with console.status("provisioning queues, bucket, topic and tables"):
        provision(settings())
    console.print("[green]provisioned[/]")


@local_app.command("poll")
def local_poll() -> None:
    """Run the status writer against the status queues in the foreground
    (the local stand-in for the Lambda's SQS trigger)."""
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
    """Trivial jobs that exercise the whole path (smoke test for a deployment)."""
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
    concurrency: int = typer.Option(0, help="Jobs at once (0: the pipeline's default / one per CPU)."),
    idle_exit: float | None = typer.Option(None, help="Exit after the queue was empty this many seconds."),
    max_jobs: int | None = typer.Option(None, help="Exit after taking this many jobs."),
) -> None:
    """Consume a pipeline's job queue until stopped (SIGTERM hands jobs back)."""
    from ..pipelines import get_spec
    from ..runtime import Worker

    worker = Worker(
        settings(), get_spec(pipeline), concurrency=concurrency or None, idle_exit_s=idle_exit, max_jobs=max_jobs
    )
    code = worker.run()
    console.print(f"worker stopped: {worker.metrics()}")
    raise typer.Exit(code)


# --- status / dlq -------------------------------------------------------------------
@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Keep refreshing a live table (Ctrl-C stops)."),
    interval: float | None = typer.Option(
        None, min=0.1, help="Seconds between refreshes (default: SPECFLEET_MONITOR_REFRESH_S, 5)."
    ),
    record: bool = typer.Option(True, help="Append the queue depths to queue_depth_history."),
) -> None:
    """Queue depths, done/failed/skipped/banned, rate, ETA and instances per pipeline."""
    from ..monitoring import MonitorSettings, queue_depths, status_table, summary

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
        for pipeline, d in depths.items():
            cells = [str(d[k]) for k in ("visible", "in_flight", "delayed", "dlq")] if d else ["-"] * 4
            table.add_row(pipeline, *cells)
        Console().print(table)
        return
    if as_json:
        print(json.dumps(summary(s, record=record), indent=2, default=str))
        return
    if not watch:
        data = summary(s, record=record)
        Console().print(status_table(data))
        if data.get("rejects"):
            console.print(f"[yellow]{data['rejects']} malformed status messages in status_rejects[/]")
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
    """Messages waiting in each dead-letter queue."""
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
    pipeline: str = typer.Argument(...),
    status_queue_too: bool = typer.Option(False, "--status", help="Redrive the status queue's DLQ instead."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Move messages from a dead-letter queue back to its source queue."""
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
    pipeline: str = typer.Argument(...),
    status_queue_too: bool = typer.Option(False, "--status", help="Show the status queue's DLQ instead."),
    limit: int = typer.Option(10, min=1, max=100, help="At most this many messages."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Peek at messages in a dead-letter queue (they stay there)."""
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
    pipeline: str = typer.Argument(...),
    status_queue_too: bool = typer.Option(False, "--status", help="Purge the status queue's DLQ instead."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete every message in a pipeline's dead-letter queue (cannot be undone)."""
    dlq = _dlq_of(pipeline, status_queue_too)
    waiting = dlq.depth()["visible"]
    if not yes and not typer.confirm(f"delete all {waiting} messages in {dlq.name}? This cannot be undone"):
        console.print("nothing deleted")
        raise typer.Exit(1)
    dlq.purge()
    console.print(f"purged {dlq.name} ({waiting} messages)")


# --- demo -----------------------------------------------------------------------------
@app.command()
def demo(
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object (last line)."),
    dir: Path = typer.Option(Path(".specfleet/demo"), help="Work folder (stack data, downloads, report)."),
    pipelines: str = typer.Option("", help="Comma-separated subset of pipelines to run (default: all)."),
) -> None:
    """Run every pipeline end to end on the embedded local stack against local
    stand-ins for the remote sources, wait until the queues drain, report."""
    from ..demo import run_demo

    try:
        result = run_demo(dir, only=[p for p in pipelines.split(",") if p] or None, console=console)
    except ValueError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(result))
    else:
        Console().print_json(json.dumps(result))


def _load_plugins() -> None:
    for spec in specs():
        if spec.cli is not None:
            spec.cli.load()(app, produce_app)
    for name in TOOLS:
        import_module(name).register(app, produce_app)


_load_plugins()


if __name__ == "__main__":
    app()
