"""How a handler says what went wrong. The runtime maps each class to one
queue action, so handlers never touch SQS themselves:

=================  ==========================================  ===============
raised             meaning                                     queue action
=================  ==========================================  ===============
``Rejected``       bad input or a source that is gone          stat 0, delete
``Skipped``        nothing to do (already done, filtered)      stat 2, delete
``Transient``      may work later (timeouts, resets, 5xx)      retry w/ backoff
``Banned``         this IP is blocked (429, 403, bot checks)   hand back; counts
                                                               toward the ban
                                                               threshold
``Paused``         this worker's session is rate-limited       hand back; the
                   (the job is fine, the worker must wait)     worker takes no
                                                               job for
                                                               ``wait_s``; one
                                                               stat 3 row
``Elsewhere``      another worker may do it (another region)   hand back; the
                                                               last attempt
                                                               rejects it
``Misconfigured``  this worker's settings cannot do the job    moved to the
                   (a source host it is not allowed to fetch)  DLQ untouched,
                                                               no status row
any other error    a bug or an unknown failure                 like Transient
=================  ==========================================  ===============

A ``Misconfigured`` job is neither a data error nor worth retrying here:
deleting it as failed would lose it, retrying would spend its attempts on
the same refusal. It goes to the dead-letter queue as it came, with the
reason in its ``specfleet_reason`` attribute, to be redriven
(``specfleet dlq redrive``) once the configuration is fixed.

After ``max_receives`` attempts a retried job goes to the dead-letter queue,
with a stat 0 status row saying so.
"""

from __future__ import annotations


class JobError(Exception):
    """Base class; ``reason`` is what the status row and logs show."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Rejected(JobError):
    pass


class Skipped(JobError):
    pass


class Transient(JobError):
    pass


class Banned(JobError):
    pass


class Paused(JobError):
    """The source limits this worker's session for a while (YouTube's
    per-session rate limit): no job is at fault, so none is failed and the
    ban counter is untouched. The worker hands the job back, takes no job for
    ``wait_s`` seconds and sends one stat 3 row per pause."""

    def __init__(self, reason: str, wait_s: float):
        super().__init__(reason)
        self.wait_s = wait_s


class Elsewhere(JobError):
    """This worker cannot do the job but a worker elsewhere may (a video
    geo-restricted in this region): handed back at once, not counted toward
    the ban threshold; on its last attempt it is rejected with the reason."""


class Misconfigured(JobError):
    pass
