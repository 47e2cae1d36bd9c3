"""The ``specfleet`` command. Core commands live here; each pipeline, the
fleet and the monitoring tools add theirs from a small module that
exposes ``register(app, produce)`` (see ``PLUGINS``). Keep those modules
light: import heavy libraries inside the command functions."""

from __future__ import annotations

import json
import logging
import os
import sys
from importlib import import_module
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ..settings import JOB_QUEUES, Settings

app = typer.Typer(help="specfleet: queue-driven audio-processing fleets on AWS.", no_args_is_help=True)
local_app = typer.Typer(help="The embedded local stack (moto server + PostgreSQL + status poller).")
produce_app = typer.Typer(help="Put jobs on a pipeline's queue.")
dlq_app = typer.Typer(help="Dead-letter queues: inspect and redrive.")
app.add_typer(local_app, name="local")
app.add_typer(produce_app, name="produce")
app.add_typer(dlq_app, name="dlq")

console = Console(stderr=True)

#: Modules that add commands: each defines ``register(app, produce_app)``.
PLUGINS = [
    "specfleet.cli.hydrophone",
    "specfleet.cli.music",
    "specfleet.cli.spectrogram",
    "specfleet.cli.fleet",
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


def settings() -> Settings:
    """Settings from the environment; if nothing points elsewhere and a
    local stack is running, use it (so ``local up`` then any command works)."""
    if not os.environ.get("AWS_ENDPOINT_URL") and not os.environ.get("SPECFLEET_ENDPOINT_URL"):
        from ..local.stack import read_state

        state = read_state(Path(Settings().local_dir))
        if state is not None:
            return state.settings()
    return Settings()


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


# --- produce / work ----------------------------------------------------------------
@produce_app.command("echo")
def produce_echo(
    count: int = typer.Option(10, min=1, help="How many jobs."),
    sleep: float = typer.Option(0.0, help="Seconds each job works."),
) -> None:
    """Trivial jobs that exercise the whole path (smoke test for a deployment)."""
    from ..queues import job_queue

    sent = job_queue(settings(), "echo").send_json({"job_id": f"echo-{i}", "sleep_s": sleep} for i in range(count))
    console.print(f"enqueued {sent} echo jobs")


@app.command()
def work(
    pipeline: str = typer.Argument(..., help=f"One of: {', '.join(JOB_QUEUES)}"),
    concurrency: int = typer.Option(0, help="Jobs at once (0: the pipeline's default / one per CPU)."),
    idle_exit: Optional[float] = typer.Option(None, help="Exit after the queue was empty this many seconds."),
    max_jobs: Optional[int] = typer.Option(None, help="Exit after taking this many jobs."),
) -> None:
    """Consume a pipeline's job queue until stopped (SIGTERM hands jobs back)."""
    from ..pipelines import get_pipeline
    from ..runtime import Worker

    worker = Worker(
        settings(), get_pipeline(pipeline), concurrency=concurrency or None, idle_exit_s=idle_exit, max_jobs=max_jobs
    )
    code = worker.run()
    console.print(f"worker stopped: {worker.metrics()}")
    raise typer.Exit(code)


# --- status / dlq -------------------------------------------------------------------
@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Summarise the status tables and queues."""
    from ..monitoring import summary

    data = summary(settings())
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    table = Table(title="specfleet status")
    for col in ("pipeline", "visible", "in flight", "dlq", "done", "failed", "banned", "skipped", "instances"):
        table.add_column(col, justify="right" if col != "pipeline" else "left")
    for name, p in data["pipelines"].items():
        table.add_row(
            name, str(p["queue"]["visible"]), str(p["queue"]["in_flight"]), str(p["dlq"]),
            str(p["done"]), str(p["failed"]), str(p["banned"]), str(p["skipped"]), str(p["instances"]),
        )
    Console().print(table)
    if data.get("rejects"):
        console.print(f"[yellow]{data['rejects']} malformed status messages in status_rejects[/]")


@dlq_app.command("list")
def dlq_list() -> None:
    """Messages waiting in each dead-letter queue."""
    from ..queues import dead_letter_queue, job_queue, status_queue

    s = settings()
    table = Table(title="dead-letter queues")
    table.add_column("queue")
    table.add_column("messages", justify="right")
    for pipeline in JOB_QUEUES:
        for q in (job_queue(s, pipeline), status_queue(s, pipeline)):
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
    from ..queues import job_queue, redrive, status_queue

    s = settings()
    q = status_queue(s, pipeline) if status_queue_too else job_queue(s, pipeline)
    if not yes and not typer.confirm(f"move all messages from {q.name}_dlq back to {q.name}?"):
        raise typer.Exit(1)
    moved = redrive(q)
    console.print(f"moved {moved} messages back to {q.name}")


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

    result = run_demo(dir, only=[p for p in pipelines.split(",") if p] or None, console=console)
    if as_json:
        print(json.dumps(result))
    else:
        Console().print_json(json.dumps(result))


def _load_plugins() -> None:
    for name in PLUGINS:
        try:
            module = import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # not written yet
                continue
            raise
        module.register(app, produce_app)


_load_plugins()
