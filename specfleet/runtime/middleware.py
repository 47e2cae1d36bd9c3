"""Cross-cutting concerns, each a small composable piece (dramatiq style).

A middleware sees the worker start and stop and every job before and after
it runs; the worker calls hooks in list order before a job and in reverse
order after it. Middleware sees the worker only through ``WorkerControl``:
what is in flight, extending its visibility, stopping, and the one ban
report -- never the worker's queue, threads or bookkeeping.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from typing import Protocol

from ..queues import Message
from ..retries import heartbeat_deadline_s, heartbeat_interval_s
from .outage import is_outage
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
        """Keep ``messages`` invisible ``seconds`` longer: one short attempt
        (``retries.HEARTBEAT``) that raises what SQS raised; the caller retries."""
        ...

    def stop(self, banned: bool = False) -> None:
        """Stop taking jobs; with ``banned`` hand in-flight ones back as soon as
        the open receive has returned (no drain grace) and exit 75."""
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
        # Fixed rate: a poll is due ``next_wait_s()`` after the last one
        # started, however long that one took (at once if it overran).
        due = time.monotonic() + self.interval_s
        try:
            while not self._stop.wait(max(0.0, due - time.monotonic())):
                started = time.monotonic()
                if self.poll(worker):
                    return
                due = started + self.next_wait_s()
        finally:
            self.close()

    def poll(self, worker: WorkerControl) -> bool:
        raise NotImplementedError

    def next_wait_s(self) -> float:
        """Seconds from the start of one poll to the next (``interval_s``)."""
        return self.interval_s

    def close(self) -> None:
        """Release what ``poll`` used (its thread is ending)."""


class Heartbeat(Polling):
    """Keeps in-flight messages invisible while their jobs run.

    Every ``interval`` seconds (a third of the visibility timeout) it extends
    the visibility of all in-flight messages in one batch call, so a job may
    run far longer than the queue's visibility timeout while a crashed worker
    still loses its jobs to others within one timeout.

    It is the one retry owner of its calls (``retries.py``): each beat is one
    attempt of at most ``deadline_s`` (half an interval); after a failed
    beat the next comes one deadline later instead of a whole interval. So
    while SQS accepts connections and never answers for less than the
    visibility timeout minus one interval, a beat lands before any job's
    visibility lapses. Each failed beat logs when the jobs' visibility
    lapses; when the next beat may come too late, or the visibility has
    lapsed, it says so by job: SQS may then hand the job to another worker.
    """

    name = "heartbeat"

    def __init__(self, visibility_s: int, interval_s: float | None = None):
        super().__init__(interval_s or heartbeat_interval_s(visibility_s))
        self.visibility_s = visibility_s
        #: One beat's longest attempt, and the wait after a failed one.
        self.deadline_s = heartbeat_deadline_s(visibility_s, self.interval_s)
        self.beats = 0
        self.failures = 0
        #: message id -> when (monotonic) its visibility runs out, as far as
        #: this worker knows: received, or last extended, plus the timeout.
        self._lapses: dict[str, float] = {}
        #: Failed beats since the last one that landed.
        self._failing = 0

    def next_wait_s(self) -> float:
        return self.deadline_s if self._failing else self.interval_s

    def poll(self, worker: WorkerControl) -> bool:
        messages = worker.inflight()
        ids = {m.message_id for m in messages}
        self._lapses = {k: v for k, v in self._lapses.items() if k in ids}
        if not messages:
            self._failing = 0
            return False
        for m in messages:
            self._lapses.setdefault(m.message_id, m.received_at + self.visibility_s)
        started = time.monotonic()
        try:
            worker.extend_visibility(messages, self.visibility_s)
        except Exception as err:  # keep beating; the next beat is the retry
            self.failures += 1
            self._failing += 1
            self._report_failure(messages, err)
            return False
        self.beats += 1
        if self._failing:
            log.warning("heartbeat extended %d job(s) again after %d failed beat(s)", len(messages), self._failing)
        self._failing = 0
        for m in messages:
            self._lapses[m.message_id] = started + self.visibility_s
        return False

    def _report_failure(self, messages: list[Message], err: Exception) -> None:
        now = time.monotonic()
        wall = dt.datetime.now(dt.UTC)

        def at(t: float) -> str:
            return f"{wall + dt.timedelta(seconds=t - now):%H:%M:%S} UTC"

        if not is_outage(err):
            log.exception("heartbeat failed (not an outage); the next beat in %.0f s retries it", self.deadline_s)
        else:
            first = min(self._lapses[m.message_id] for m in messages)
            log.warning("heartbeat could not extend %d job(s) (%s: %s); one attempt, the next beat in %.0f s "
                        "is its retry; the first visibility lapses at %s (in %.0f s)", len(messages),
                        type(err).__name__, str(err)[:200], self.deadline_s, at(first), first - now)
        # The next beat starts one deadline from now and may take another to land.
        for m in messages:
            lapse = self._lapses[m.message_id]
            if lapse <= now:
                log.warning("job %s: its visibility lapsed at %s (%.0f s ago): SQS may hand it to another worker",
                            m.message_id, at(lapse), now - lapse)
            elif lapse < now + 2 * self.deadline_s:
                log.warning("job %s: its visibility lapses at %s (in %.0f s), before the next beat can land: "
                            "SQS may hand it to another worker", m.message_id, at(lapse), lapse - now)


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
