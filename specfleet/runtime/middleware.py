"""Cross-cutting concerns, each a small composable piece (dramatiq style).

A middleware sees the worker start and stop and every job before and after
it runs. The worker calls hooks in list order before a job and in reverse
order after it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

from ..queues import Message
from .outage import is_outage
from .outcome import Outcome

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger("specfleet.runtime")


class Middleware:
    def before_worker_start(self, worker: Worker) -> None: ...

    def after_worker_stop(self, worker: Worker) -> None: ...

    def before_process(self, worker: Worker, message: Message) -> None: ...

    def after_process(self, worker: Worker, message: Message, outcome: Outcome) -> None: ...


class Heartbeat(Middleware):
    """Keeps in-flight messages invisible while their jobs run.

    Every ``interval`` seconds (a third of the visibility timeout) it extends
    the visibility of all in-flight messages in one batch call, so a job may
    run far longer than the queue's visibility timeout while a crashed worker
    still loses its jobs to others within one timeout.
    """

    def __init__(self, visibility_s: int, interval_s: float | None = None):
        self.visibility_s = visibility_s
        self.interval_s = interval_s or max(0.5, visibility_s / 3)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0

    def before_worker_start(self, worker: Worker) -> None:
        self._thread = threading.Thread(target=self._run, args=(worker,), name="heartbeat", daemon=True)
        self._thread.start()

    def after_worker_stop(self, worker: Worker) -> None:
        self._stop.set()

    def _run(self, worker: Worker) -> None:
        while not self._stop.wait(self.interval_s):
            messages = worker.inflight_messages()
            if not messages:
                continue
            try:
                failed = worker.queue.change_visibility(messages, self.visibility_s)
                self.beats += 1
                worker.outages.succeeded(worker.sqs_endpoint)
                if failed:
                    log.debug("heartbeat: %d messages settled before they could be extended", len(failed))
            except Exception as err:  # keep beating; the next beat may succeed
                if is_outage(err):
                    worker.outages.failed(worker.sqs_endpoint, err, "heartbeat")
                else:
                    log.exception("heartbeat failed")


class RateLimit(Middleware):
    """At most ``per_minute`` job starts per minute for this worker."""

    def __init__(self, per_minute: float):
        self.min_gap = 60.0 / per_minute
        self._next = 0.0
        self._lock = threading.Lock()

    def before_process(self, worker: Worker, message: Message) -> None:
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

    def after_process(self, worker: Worker, message: Message, outcome: Outcome) -> None:
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

    def after_process(self, worker: Worker, message: Message, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes[outcome.kind] += 1
            self.busy_s += outcome.seconds

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {**self.outcomes, "busy_s": round(self.busy_s, 3)}


__all__ = ["Middleware", "Heartbeat", "RateLimit", "BanGuard", "Metrics"]
