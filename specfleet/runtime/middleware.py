"""Cross-cutting concerns, each a small composable piece (dramatiq style).

A middleware sees the worker start and stop and every job before and after
it runs; the worker calls hooks in list order before a job and in reverse
order after it. Middleware sees the worker only through ``WorkerControl``:
what is in flight, extending its visibility, stopping, and the one ban
report -- never the worker's queue, threads or bookkeeping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Protocol

from ..queues import Message
from .outcome import Outcome

log = logging.getLogger("specfleet.runtime")


class WorkerControl(Protocol):
    """What middleware may ask of a worker."""

    #: Set once the worker stops taking jobs (waits on it end early).
    stopping: threading.Event

    def inflight(self) -> list[Message]:
        """Messages taken and not yet settled."""
        ...

    def extend_visibility(self, messages: list[Message], seconds: int) -> None:
        """Keep ``messages`` invisible ``seconds`` longer (outages are the worker's to report)."""
        ...

    def stop(self, banned: bool = False) -> None:
        """Stop taking jobs; with ``banned`` hand in-flight ones back now and exit 75."""
        ...

    def report_banned(self, message: Message, reason: str) -> None:
        """Send this worker's one stat -1 status."""
        ...


class Middleware:
    def before_worker_start(self, worker: WorkerControl) -> None: ...

    def after_worker_stop(self, worker: WorkerControl) -> None: ...

    def before_process(self, worker: WorkerControl, message: Message) -> None: ...

    def after_process(self, worker: WorkerControl, message: Message, outcome: Outcome) -> None: ...


class Polling(Middleware):
    """A middleware that does something every ``interval_s`` on a thread of
    its own while the worker runs (``poll``); ``poll`` returning True ends it."""

    name = "poll"

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def before_worker_start(self, worker: WorkerControl) -> None:
        self._thread = threading.Thread(target=self._run, args=(worker,), name=self.name, daemon=True)
        self._thread.start()

    def after_worker_stop(self, worker: WorkerControl) -> None:
        self._stop.set()

    def _run(self, worker: WorkerControl) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                if self.poll(worker):
                    return
        finally:
            self.close()

    def poll(self, worker: WorkerControl) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        """Release what ``poll`` used (its thread is ending)."""


class Heartbeat(Polling):
    """Keeps in-flight messages invisible while their jobs run.

    Every ``interval`` seconds (a third of the visibility timeout) it extends
    the visibility of all in-flight messages in one batch call, so a job may
    run far longer than the queue's visibility timeout while a crashed worker
    still loses its jobs to others within one timeout.
    """

    name = "heartbeat"

    def __init__(self, visibility_s: int, interval_s: float | None = None):
        super().__init__(interval_s or max(0.5, visibility_s / 3))
        self.visibility_s = visibility_s
        self.beats = 0

    def poll(self, worker: WorkerControl) -> bool:
        messages = worker.inflight()
        if messages:
            try:
                worker.extend_visibility(messages, self.visibility_s)
                self.beats += 1
            except Exception:  # keep beating; the next beat may succeed
                log.exception("heartbeat failed")
        return False


class RateLimit(Middleware):
    """At most ``per_minute`` job starts per minute for this worker."""

    def __init__(self, per_minute: float):
        self.min_gap = 60.0 / per_minute
        self._next = 0.0
        self._lock = threading.Lock()

    def before_process(self, worker: WorkerControl, message: Message) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.min_gap
        delay = start - now
        if delay > 0:
            worker.stopping.wait(delay)


class BanGuard(Middleware):
    """Counts consecutive ban-class failures; at ``threshold`` it sends one
    stat -1 status, and tells the worker to stop taking jobs, hand in-flight
    ones back and exit with the ban exit code."""

    def __init__(self, threshold: int):
        self.threshold = threshold
        self.consecutive = 0
        self.tripped = False
        self._lock = threading.Lock()

    def after_process(self, worker: WorkerControl, message: Message, outcome: Outcome) -> None:
        with self._lock:
            if outcome.kind == "banned":
                self.consecutive += 1
            elif outcome.kind in ("done", "rejected", "skipped"):
                self.consecutive = 0
            if self.tripped or self.consecutive < self.threshold:
                return
            self.tripped = True
        log.error("ban threshold reached after %d consecutive ban-class failures: stopping", self.consecutive)
        worker.report_banned(message, outcome.reason)
        worker.stop(banned=True)


class Metrics(Middleware):
    """Counts outcomes and job time; ``snapshot()`` for logs and benchmarks."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.busy_s = 0.0
        self._lock = threading.Lock()

    def after_process(self, worker: WorkerControl, message: Message, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes[outcome.kind] += 1
            self.busy_s += outcome.seconds

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {**self.outcomes, "busy_s": round(self.busy_s, 3)}


__all__ = ["Middleware", "WorkerControl", "Polling", "Heartbeat", "RateLimit", "BanGuard", "Metrics"]
