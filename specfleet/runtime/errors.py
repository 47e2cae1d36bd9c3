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


class Misconfigured(JobError):
    pass
