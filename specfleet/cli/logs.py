"""``specfleet logs PIPELINE [--instance ID] [--follow]``: worker logs from
CloudWatch Logs (group ``/specfleet/<stack>/<pipeline>``, one stream per
instance). AWS calls: ``logs:FilterLogEvents`` (paginated; ``--follow``
repeats it every ``--poll`` seconds from the newest event seen, as ``aws
logs tail --follow`` does). Reading needs no KMS permission: CloudWatch Logs
decrypts with the log group's key itself.

A stream, like ``aws logs tail``: one plain line per event on stdout as it
is read, no ``--output`` (the events are already text)."""

from __future__ import annotations

import re
import time

import typer
from rich.console import Console

from .context import fleet_settings
from .errors import fail

console = Console(stderr=True)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(text: str) -> float:
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise typer.BadParameter(f"{text!r} is not a duration like 90s, 10m, 2h or 1d")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def logs(
    pipeline: str = typer.Argument(..., help="Pipeline whose workers' logs to show."),
    instance: str | None = typer.Option(None, "--instance", help="Only this instance's stream (its instance id)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new events (Ctrl-C stops)."),
    since: str = typer.Option("1h", help="How far back to start: 90s, 10m, 2h, 1d."),
    limit: int | None = typer.Option(None, min=1, help="At most this many events (without --follow)."),
    stack: str | None = typer.Option(None, help="Stack name (default SPECFLEET_FLEET_STACK_NAME)."),
    poll: float = typer.Option(2.0, min=0.2, help="Seconds between polls with --follow."),
    follow_for: float | None = typer.Option(None, "--for", min=0, help="Stop following after this many seconds."),
) -> None:
    """Print a pipeline's worker logs, oldest first, one line per event:
    time (UTC), instance, message.

    Example: specfleet logs hydrophone --since 2h --follow
    """
    from ..fleet.logs import LogsError, read
    from ..fleet.logs import follow as follow_events
    from ..pipelines import UnknownPipeline, get_spec

    try:
        name = get_spec(pipeline).name
    except UnknownPipeline as err:
        raise typer.BadParameter(str(err)) from None
    s = fleet_settings()  # logs need no database (and so no tunnel)
    back = _seconds(since)
    try:
        if not follow:
            for event in read(s, name, instance=instance, since_s=back, stack_name=stack, limit=limit):
                print(event.line())
            return
        deadline = None if follow_for is None else time.monotonic() + follow_for
        try:
            for event in follow_events(s, name, instance=instance, since_s=back, stack_name=stack, poll_s=poll,
                                       stop=lambda: deadline is not None and time.monotonic() >= deadline):
                print(event.line(), flush=True)
        except KeyboardInterrupt:
            pass
    except LogsError as err:
        fail(str(err))


def register(app: typer.Typer, produce_app: typer.Typer) -> None:
    app.command("logs")(logs)
