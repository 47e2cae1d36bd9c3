"""What becomes of a job: the table in ``errors.py`` as code.

``RetryPolicy.outcome`` turns what a handler raised into an ``Outcome``;
``RetryPolicy.queue_action`` says what SQS must do with the message for
each outcome. The worker only carries the decisions out. This is the
retry of a whole job (SQS redrive); who retries each call is ``retries.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..jobs import JobValidationError
from .errors import Banned, Elsewhere, Misconfigured, Paused, Rejected, Skipped, Transient
from .outcome import Outcome

#: ("delete", 0), ("visibility", seconds until SQS shows the message again),
#: ("requeue", 0): send a fresh copy of the job and delete this one, or
#: ("dlq", 0): move it to the dead-letter queue as it is.
QueueAction = tuple[Literal["delete", "visibility", "requeue", "dlq"], int]


@dataclass(frozen=True)
class RetryPolicy:
    #: Receives after which a failing job goes to the dead-letter queue (the
    #: queue's redrive policy moves it on its next receive).
    max_receives: int
    #: Longest backoff between attempts (a retried message stays invisible
    #: this long at most).
    visibility_timeout_s: int

    def outcome(self, err: BaseException | None, receive_count: int) -> Outcome:
        """The outcome of a job whose handler returned (``err`` None) or raised ``err``."""
        if err is None:
            return Outcome("done")
        if isinstance(err, (JobValidationError, Rejected)):
            return Outcome("rejected", str(err))
        if isinstance(err, Skipped):
            return Outcome("skipped", str(err))
        if isinstance(err, Misconfigured):
            return Outcome("misconfigured", str(err))
        if isinstance(err, Banned):
            return Outcome("banned", str(err))
        if isinstance(err, Paused):
            return Outcome("paused", str(err), wait_s=err.wait_s)
        if isinstance(err, Elsewhere):
            if receive_count >= self.max_receives:
                return Outcome("rejected", f"{err} (no other worker could take it after {receive_count} attempts)")
            return Outcome("elsewhere", str(err))
        # Transient, or anything unexpected: retried, then dead-lettered.
        reason = str(err) if isinstance(err, Transient) else f"{type(err).__name__}: {err}"
        if receive_count >= self.max_receives:
            return Outcome("dead", f"gave up after {receive_count} attempts, job moved to DLQ: {reason}")
        return Outcome("retry", reason)

    def retry_delay_s(self, receive_count: int) -> int:
        """Exponential backoff through the visibility timeout; SQS redelivers."""
        return min(self.visibility_timeout_s, 2 ** min(receive_count, 10))

    def queue_action(self, outcome: Outcome, receive_count: int) -> QueueAction:
        if outcome.kind in ("done", "rejected", "skipped"):
            return ("delete", 0)
        if outcome.kind == "misconfigured":
            return ("dlq", 0)
        if outcome.kind == "retry":
            return ("visibility", self.retry_delay_s(receive_count))
        if outcome.kind == "paused" and receive_count >= self.max_receives - 1:
            # A rate limit is not the job's fault, but SQS counts every
            # receive: handed back once more, the redrive policy would move
            # it to the dead-letter queue. A fresh copy starts its count anew.
            return ("requeue", 0)
        # dead (SQS moves it to the DLQ on its next receive), banned, paused or
        # elsewhere (another worker, elsewhere, should take it now)
        return ("visibility", 0)
