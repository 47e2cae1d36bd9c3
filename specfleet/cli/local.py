"""``specfleet local``: the embedded local stack (moto server + PostgreSQL + status poller).

``local down`` and ``local init`` return a result rendered once (a line, or
one JSON document with ``--output json``). The others are not data
commands: ``local up`` reports progress on stderr, ``local env`` prints
shell ``export`` lines for ``eval``, ``local poll`` runs in the foreground
until Ctrl-C.
"""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

from .context import settings, stack_dir
from .errors import fail
from .output import JSON, OUTPUT, OutputFormat, render

console = Console(stderr=True)
local_app = typer.Typer(help="The embedded local stack (moto server + PostgreSQL + status poller).")

#: One local stack per user: ``--dir`` defaults to ``SPECFLEET_LOCAL_DIR``, else ``~/.specfleet/local``.
_STACK_DIR_HELP = "The stack's folder (default: SPECFLEET_LOCAL_DIR, else ~/.specfleet/local; SPECFLEET_HOME moves it)."


@local_app.command("up")
def local_up(dir: Path | None = typer.Option(None, help=_STACK_DIR_HELP)) -> None:
    """Start moto's server, PostgreSQL and the status poller in the background.

    One stack per user: any folder's `local env`, `local down` and commands find it.

    Example: specfleet local up && eval "$(specfleet local env)"
    """
    from ..local.stack import read_state, start_detached

    where = stack_dir(dir)
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
def local_down(
    dir: Path | None = typer.Option(None, help=_STACK_DIR_HELP),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Stop the local stack. Its queues, objects and tables go with it
    (moto keeps S3 and SQS in memory; the database is wiped with them so the
    two never disagree): the next `local up` starts empty.

    Example: specfleet local down
    """
    from ..local.stack import stop_detached

    where = stack_dir(dir)
    render(Stopped(dir=str(where), stopped=stop_detached(where)), _stopped_view, output, as_json)


class Stopped(BaseModel):
    """``local down``: whether a stack was running in ``dir`` and is now stopped."""

    dir: str
    stopped: bool


def _stopped_view(s: Stopped) -> list[str]:
    if s.stopped:
        return ["stopped: its queues, objects and tables are gone (the next `local up` starts empty)"]
    return [f"no local stack was running (looked in {escape(s.dir)})"]


@local_app.command("env")
def local_env(dir: Path | None = typer.Option(None, help=_STACK_DIR_HELP)) -> None:
    """Print ``export`` lines that point specfleet (and the AWS CLI) at the local stack.

    Example: eval "$(specfleet local env)"
    """
    from ..local.stack import read_state

    where = stack_dir(dir)
    state = read_state(where)
    if state is None:
        fail(f"no local stack is running (looked in {where})", "start one with `specfleet local up`")
    for k, v in state.env().items():
        print(f"export {k}={v}")


@local_app.command("init")
def local_init(output: OutputFormat = OUTPUT, as_json: bool = JSON) -> None:
    """Create queues (+DLQs), bucket, topic and tables wherever the environment points.

    That is docker-compose's services, or a fresh AWS account.

    Example: specfleet local init
    """
    from ..local.stack import provision

    s = settings()
    with console.status("provisioning queues, bucket, topic and tables"):
        provision(s)
    render(Provisioned(queue_prefix=s.queue_prefix, bucket=s.bucket, topic=s.topic()), _provisioned_view, output,
           as_json)


class Provisioned(BaseModel):
    """``local init``: where the queues (their name prefix), bucket and topic were made (the tables too)."""

    queue_prefix: str
    bucket: str
    topic: str


def _provisioned_view(p: Provisioned) -> list[str]:
    queues = f"queues {escape(p.queue_prefix)}*" if p.queue_prefix else "queues"
    return [f"[green]provisioned[/]: {queues}, bucket {escape(p.bucket)}, topic {escape(p.topic)}, tables"]


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


def register(app: typer.Typer, produce_app: typer.Typer) -> None:
    app.add_typer(local_app, name="local")
