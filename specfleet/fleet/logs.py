"""Worker logs in CloudWatch Logs: one group per pipeline
(``/specfleet/<stack>/<pipeline>``, created by the template with its
retention), one stream per instance (named by its instance id).

On EC2 the CloudWatch agent ships ``/var/log/specfleet/<pipeline>.log``
(``cloudwatch-agent.json``, written by the user-data). Locally the fleet
emulator plays the agent with ``LogShipper``: ``CreateLogStream`` once, then
``PutLogEvents`` with the lines added since the last call.

``read`` is ``specfleet logs``: ``FilterLogEvents`` on the pipeline's group
(one instance's stream with ``--instance``), paginated; ``--follow`` polls
it again from the last event's time, as ``aws logs tail --follow`` does,
skipping events already shown.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..aws import client
from .settings import FleetSettings
from .userdata import log_group_name

log = logging.getLogger("specfleet.fleet.logs")

#: PutLogEvents limits: 10,000 events and 1 MiB (with 26 bytes overhead per event) per call.
MAX_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
#: CloudWatch Logs truncates longer events; keep lines whole below this.
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD


class LogsError(RuntimeError):
    """The logs cannot be read; the message says why."""


@dataclass(frozen=True)
class LogEvent:
    timestamp_ms: int
    stream: str
    message: str
    event_id: str

    def line(self) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.timestamp_ms / 1000))
        return f"{stamp} {self.stream} {self.message.rstrip()}"


class LogShipper:
    """Ships new lines of one file to one stream (what the agent does)."""

    def __init__(self, settings: FleetSettings, region: str, path: Path, group: str, stream: str):
        self.settings = settings if region == settings.region else settings.model_copy(update={"region": region})
        self.path = Path(path)
        self.group = group
        self.stream = stream
        self.offset = 0
        self.shipped = 0
        #: Why shipping stopped (no such log group: the stack was not deployed), or None.
        self.disabled: str | None = None
        self._stream_ready = False

    def ship(self) -> int:
        """Send the complete lines written since the last call; return how many."""
        if self.disabled or not self.path.exists():
            return 0
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n")
        if end < 0:
            return 0
        lines = data[: end + 1].decode("utf-8", "replace").splitlines()
        api = client("logs", self.settings)
        if not self._stream_ready:
            try:
                api.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
            except api.exceptions.ResourceAlreadyExistsException:
                pass
            except api.exceptions.ResourceNotFoundException:
                # As the agent would: no group, nowhere to ship (launched without the stack).
                self.disabled = f"no log group {self.group}"
                log.warning("%s: not shipping %s (%s)", self.stream, self.path, self.disabled)
                return 0
            self._stream_ready = True
        now = int(time.time() * 1000)
        batch: list[dict[str, object]] = []
        size = 0
        for line in (ln for ln in lines if ln.strip()):
            text = line.encode()[:MAX_EVENT_BYTES].decode("utf-8", "ignore")
            cost = len(text.encode()) + EVENT_OVERHEAD
            if batch and (len(batch) == MAX_EVENTS or size + cost > MAX_BATCH_BYTES):
                api.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=batch)
                batch, size = [], 0
            batch.append({"timestamp": now, "message": text})
            size += cost
        if batch:
            api.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=batch)
        self.offset += end + 1
        sent = sum(1 for ln in lines if ln.strip())
        self.shipped += sent
        return sent


def read(
    settings: FleetSettings,
    pipeline: str,
    *,
    instance: str | None = None,
    since_s: float = 3600,
    stack_name: str | None = None,
    limit: int | None = None,
) -> list[LogEvent]:
    """Events of ``pipeline``'s workers (one instance's with ``instance``)
    from the last ``since_s`` seconds, oldest first, at most ``limit``."""
    group = log_group_name(stack_name or settings.fleet_stack_name, pipeline)
    start = int((time.time() - since_s) * 1000)
    return list(_filter(settings, group, instance, start, limit))


def _filter(settings: FleetSettings, group: str, instance: str | None, start_ms: int,
            limit: int | None) -> Iterator[LogEvent]:
    api = client("logs", settings)
    kwargs: dict[str, object] = {"logGroupName": group, "startTime": start_ms}
    if instance:
        kwargs["logStreamNames"] = [instance]
    count = 0
    try:
        for page in api.get_paginator("filter_log_events").paginate(**kwargs):
            for e in page.get("events", []):
                yield LogEvent(int(e["timestamp"]), str(e.get("logStreamName", "")), str(e["message"]),
                               str(e.get("eventId", "")))
                count += 1
                if limit is not None and count >= limit:
                    return
    except api.exceptions.ResourceNotFoundException:
        what = f"stream {instance!r} in " if instance else ""
        raise LogsError(f"no {what}log group {group!r}: is the stack deployed (--stack) and has that instance "
                        "logged anything yet?") from None


def follow(
    settings: FleetSettings,
    pipeline: str,
    *,
    instance: str | None = None,
    since_s: float = 600,
    stack_name: str | None = None,
    poll_s: float = 2.0,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[LogEvent]:
    """New events as they arrive, until ``stop()`` is true (checked each poll)."""
    group = log_group_name(stack_name or settings.fleet_stack_name, pipeline)
    start = int((time.time() - since_s) * 1000)
    seen: set[str] = set()
    while True:
        newest = start
        for event in _filter(settings, group, instance, start, None):
            newest = max(newest, event.timestamp_ms)
            if event.event_id not in seen:
                seen.add(event.event_id)
                yield event
        # Events of the last millisecond may still arrive: ask again from it,
        # and forget ids older than that window.
        start = newest
        if len(seen) > 100_000:
            seen.clear()
        if stop():
            return
        time.sleep(poll_s)  # polling FilterLogEvents, as `aws logs tail --follow` does
