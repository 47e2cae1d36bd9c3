"""``specfleet produce echo``: trivial jobs that exercise the whole path."""

from __future__ import annotations

import typer
from rich.console import Console

from ..pipelines import get_spec
from .context import settings

console = Console(stderr=True)


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
