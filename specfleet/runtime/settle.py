"""The settle owner: the one thread that carries out what became of each job.

A worker's job threads hand each outcome over as a ``Settlement`` (the
job's status messages and what SQS must do with its message) and go on to
their next job; this thread sends the status messages, then deletes the
messages, changes their visibility (a retry's backoff, a hand-back), sends
requeued copies and dead-letter moves. Nothing else settles a job, so:

* batching needs no lock held across a call: what arrives together goes
  out together (one SendMessageBatch and one DeleteMessageBatch for ten
  jobs that finish together), with a short linger while jobs are still in
  their handlers so the first one does not go alone;
* a job's status goes out before its delete, in one place: a job whose
  status could not be sent is not deleted and comes back after its
  visibility timeout, so no job ends without its row;
* hand-backs (visibility 0) asked for while the worker is stopping wait
  until its receive loop has stopped (``hold``): SQS returns a message made
  visible during an open long poll to that very poll, so a job handed back
  before then would be received again by the worker that is stopping and
  spend a second receive for nothing.

``done(ok)`` of a settlement runs on this thread once it was carried out
(the worker runs its middleware's ``after_process`` there).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ..queues import BATCH, Message, OutgoingMessage, Queue
from ..retries import SETTLE
from .outage import Outages, call_through_outages
from .status_sender import StatusSender

log = logging.getLogger("specfleet.runtime")

#: What becomes of the message: deleted; made visible again after ``seconds``;
#: ``copy`` sent to ``to`` and then deleted (requeue, dead-letter move); or
#: nothing (None: a status-only settlement, or a job already handed back).
Action = Literal["delete", "visibility", "move"] | None


@dataclass
class Settlement:
    message: Message | None = None
    statuses: list[OutgoingMessage] = field(default_factory=list)
    action: Action = None
    seconds: int = 0
    copy: OutgoingMessage | None = None
    to: Queue | None = None
    #: Called on the settle thread once carried out: True, or False if a call failed.
    done: Callable[[bool], None] | None = None


class Settler:
    """One worker's settle owner (see the module docstring)."""

    def __init__(
        self,
        jobs: Queue,
        sender: StatusSender,
        outages: Outages,
        endpoint: str,
        *,
        deadline_s: float,
        hold: Callable[[], bool],
        outstanding: Callable[[], int],
        linger_s: float = 0.05,
    ):
        self._jobs = jobs
        self._sender = sender
        self._outages = outages
        self._endpoint = endpoint
        #: A settle call rides out an SQS outage this long at most: past the
        #: visibility timeout SQS hands the job to another worker anyway.
        self._deadline_s = deadline_s
        self._hold = hold
        #: Jobs still in their handler: while fewer settlements are at hand,
        #: wait up to ``linger_s`` for a fuller batch.
        self._outstanding = outstanding
        self._linger_s = linger_s
        #: Submitted and not yet taken by the thread; ``_cv`` guards them and the flags.
        self._pending: list[Settlement] = []
        self._settling = 0  # of them, those with a message
        self._woken = False
        self._closing = False
        self._cv = threading.Condition()
        #: Hand-backs waiting for the receive loop to stop (this thread only).
        self._held: list[Settlement] = []
        self._thread = threading.Thread(target=self._run, name="settle", daemon=True)
        self._closed = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def submit(self, settlement: Settlement) -> None:
        """Hand ``settlement`` over; once closed, carried out on the caller's thread."""
        if self._closed.is_set():
            self._carry_out([settlement])
            return
        with self._cv:
            self._pending.append(settlement)
            self._settling += settlement.message is not None
            # Wake the thread to start its linger, and again once the batch is
            # full: not once per job.
            if len(self._pending) == 1 or self._full():
                self._cv.notify()

    def wake(self) -> None:
        """``hold`` may have changed: hand back what it held."""
        with self._cv:
            self._woken = True
            self._cv.notify()

    def close(self, timeout: float) -> None:
        """Carry out everything submitted so far (held hand-backs too), then end."""
        with self._cv:
            self._closing = True
            self._cv.notify()
        self._thread.join(timeout)
        self._closed.set()

    def _full(self) -> bool:
        return self._settling >= min(BATCH, self._settling + self._outstanding())

    # --- the thread --------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cv:
                while not (self._pending or self._woken or self._closing):
                    self._cv.wait()
                deadline = time.monotonic() + self._linger_s
                while self._pending and not self._closing and not self._full():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cv.wait(left)
                batch, self._pending, self._settling, self._woken = self._pending, [], 0, False
                closing = self._closing
            try:
                if batch:
                    self._carry_out(batch)
                if self._held and (closing or not self._hold()):
                    held, self._held = self._held, []
                    self._carry_out(held, holding=False)
            except Exception:  # never let the settle thread die: the jobs come back after their timeout
                log.exception("settling %d jobs failed", len(batch))
            if closing:
                with self._cv:
                    if not self._pending:
                        return

    def _through(self, action: Callable[[], object], what: str) -> None:
        call_through_outages(action, outages=self._outages, endpoint=self._endpoint, what=what,
                             stop=threading.Event(), deadline_s=self._deadline_s)

    def _carry_out(self, batch: list[Settlement], *, holding: bool = True) -> None:
        ok = {id(s): True for s in batch}
        statuses = [m for s in batch for m in s.statuses]
        if statuses:
            try:
                # One batch call at a time: a pool of senders per call costs this
                # process more than the overlap saves.
                for start in range(0, len(statuses), BATCH):
                    self._through(functools.partial(self._sender.send_many, statuses[start:start + BATCH], call=SETTLE),
                                  "status send")
            except Exception:
                log.exception("sending %d status messages failed; their jobs come back after their visibility "
                              "timeout", len(statuses))
                for s in batch:
                    if s.statuses:
                        ok[id(s)] = False
        deletes: list[Settlement] = []
        visibility: dict[int, list[Settlement]] = {}
        later: list[Settlement] = []
        for s in batch:
            if not ok[id(s)] or s.message is None or s.action is None:
                continue
            if s.action == "delete":
                deletes.append(s)
            elif s.action == "visibility":
                if s.seconds == 0 and holding and self._hold():
                    later.append(s)
                else:
                    visibility.setdefault(s.seconds, []).append(s)
            else:  # move: the copy first, so a failure leaves the original to come back
                copy, to = s.copy, s.to
                assert copy is not None and to is not None
                try:
                    self._through(functools.partial(to.send, [copy], call=SETTLE), f"send to {to.name}")
                    deletes.append(s)
                except Exception:
                    log.exception("sending job %s to %s failed; it comes back after its visibility timeout",
                                  s.message.message_id, to.name)
                    ok[id(s)] = False
        if deletes:
            messages = [s.message for s in deletes if s.message is not None]
            try:
                self._through(functools.partial(self._jobs.delete, messages), "delete")
            except Exception:
                log.exception("deleting %d jobs failed; they come back after their visibility timeout",
                              len(messages))
                for s in deletes:
                    ok[id(s)] = False
        for seconds, group in visibility.items():
            messages = [s.message for s in group if s.message is not None]
            try:
                self._through(functools.partial(self._jobs.change_visibility, messages, seconds), "visibility")
            except Exception:
                log.exception("changing the visibility of %d jobs failed; they come back after their "
                              "visibility timeout", len(messages))
                for s in group:
                    ok[id(s)] = False
            if seconds == 0:
                log.info("handed back %d jobs", len(messages))
        self._held.extend(later)
        waiting = {id(s) for s in later}
        for s in batch:
            if s.done is not None and id(s) not in waiting:
                try:
                    s.done(ok[id(s)])
                except Exception:
                    log.exception("after settling a job")
