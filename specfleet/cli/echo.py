"""``specfleet produce echo``: trivial jobs that exercise the whole path.

The result (how many jobs went on which queue) is rendered once: a line, or
one JSON document with ``--output json``."""

from __future__ import annotations

import typer
from pydantic import BaseModel
from rich.markup import escape

from ..pipelines import get_spec
from .context import settings
from .output import JSON, OUTPUT, OutputFormat, render


def produce_echo(
    count: int = typer.Option(10, min=1, help="How many jobs."),
    sleep: float = typer.Option(0.0, help="Seconds each job works."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Trivial jobs that exercise the whole path (smoke test for a deployment).

    Example: specfleet produce echo --count 100
    """
    q = get_spec("echo").jobs(settings())
    sent = q.send_json({"job_id": f"echo-{i}", "sleep_s": sleep} for i in range(count))
    render(EchoEnqueued(queue=q.name, jobs=sent), _enqueued_view, output, as_json)


class EchoEnqueued(BaseModel):
    """``produce echo``: the jobs put on the echo queue."""

    queue: str
    jobs: int


def _enqueued_view(e: EchoEnqueued) -> list[str]:
    return [f"enqueued {e.jobs} echo jobs on {escape(e.queue)}"]


def register_echo(app: typer.Typer, produce: typer.Typer) -> None:
    produce.command("echo")(produce_echo)
