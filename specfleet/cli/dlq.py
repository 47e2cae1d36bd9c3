"""``specfleet dlq``: dead-letter queues: list, show, redrive, purge.

Each command's result is a model rendered once (``output.render``): a table
or line, or one JSON document with ``--output json``. Questions go to stderr."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import botocore.exceptions
import typer
from pydantic import BaseModel, RootModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..aws import error_code
from ..pipelines import UnknownPipeline, get_spec, specs
from ..queues import PURGE_INTERVAL_S, Message
from .app import pipeline_name
from .context import settings
from .errors import fail
from .output import JSON, OUTPUT, OutputFormat, render

console = Console(stderr=True)
dlq_app = typer.Typer(help="Dead-letter queues: list, show, redrive, purge.")


@dlq_app.command("list")
def dlq_list(output: OutputFormat = OUTPUT, as_json: bool = JSON) -> None:
    """Messages waiting in each dead-letter queue.

    Example: specfleet dlq list
    """
    from ..queues import dead_letter_queue

    s = settings()
    waiting = {}
    for spec in specs():
        for q in (spec.jobs(s), spec.statuses(s)):
            dlq = dead_letter_queue(q)
            waiting[dlq.name] = dlq.depth()["visible"]
    render(DeadLetters(waiting), _dead_letters_view, output, as_json)


class DeadLetters(RootModel[dict[str, int]]):
    """``dlq list``: messages waiting in each dead-letter queue, by its name."""


def _dead_letters_view(d: DeadLetters) -> Iterator[Table]:
    table = Table(title="dead-letter queues")
    table.add_column("queue")
    table.add_column("messages", justify="right")
    for name, count in d.root.items():
        table.add_row(name, str(count))
    yield table


@dlq_app.command("redrive")
def dlq_redrive(
    pipeline: str = typer.Argument(..., help="The pipeline whose dead-letter queue.", callback=pipeline_name),
    status_queue_too: bool = typer.Option(False, "--status", help="Redrive the status queue's DLQ instead."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Move messages from a dead-letter queue back to its source queue.

    Example: specfleet dlq redrive download --yes
    """
    from ..queues import dead_letter_queue, redrive

    q = _source_queue(pipeline, status_queue_too)
    dlq_name = dead_letter_queue(q).name
    # The question goes to stderr: stdout carries the result only (one JSON document with --output json).
    if not yes and not typer.confirm(f"move all messages from {dlq_name} back to {q.name}?", err=True):
        raise typer.Exit(1)
    render(Redriven(dlq=dlq_name, queue=q.name, moved=redrive(q)), _redriven_view, output, as_json)


class Redriven(BaseModel):
    """``dlq redrive``: how many messages went from the dead-letter queue back to its source queue."""

    dlq: str
    queue: str
    moved: int


def _redriven_view(r: Redriven) -> list[str]:
    return [f"moved {r.moved} messages back to {escape(r.queue)}"]


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
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
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
    rows = [Peeked(message_id=m.message_id, receives=m.receive_count, attributes=m.attributes, body=m.body)
            for m in seen.values()]
    render(Peek(queue=dlq.name, messages=rows), _peek_view, output, as_json)


class Peeked(BaseModel):
    message_id: str
    receives: int
    attributes: dict[str, str]
    body: str


class Peek(BaseModel):
    """``dlq show``: messages looked at in a dead-letter queue (they stay there)."""

    queue: str
    messages: list[Peeked]


def _peek_view(p: Peek) -> Iterator[Table]:
    table = Table(title=f"{p.queue}: {len(p.messages)} message(s) shown")
    for col in ("message id", "receives", "body", "attributes"):
        table.add_column(col, overflow="fold")
    for m in p.messages:
        body = m.body if len(m.body) <= 200 else m.body[:200] + "..."
        table.add_row(m.message_id, str(m.receives), escape(body), escape(json.dumps(m.attributes)) if m.attributes else "")
    yield table


@dlq_app.command("purge")
def dlq_purge(
    pipeline: str = typer.Argument(..., help="The pipeline whose dead-letter queue.", callback=pipeline_name),
    status_queue_too: bool = typer.Option(False, "--status", help="Purge the status queue's DLQ instead."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Delete every message in a pipeline's dead-letter queue (cannot be undone).

    Example: specfleet dlq purge echo --yes
    """
    dlq = _dlq_of(pipeline, status_queue_too)
    waiting = dlq.depth()["visible"]
    if not yes and not typer.confirm(f"delete all {waiting} messages in {dlq.name}? This cannot be undone", err=True):
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
    render(PurgedQueue(dlq=dlq.name, messages=waiting), _purged_view, output, as_json)


class PurgedQueue(BaseModel):
    """``dlq purge``: the dead-letter queue purged and how many messages it held just before."""

    dlq: str
    messages: int


def _purged_view(p: PurgedQueue) -> list[str]:
    return [f"purged {escape(p.dlq)} ({p.messages} messages)"]


def register(app: typer.Typer, produce_app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")
