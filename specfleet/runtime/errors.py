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
any other error    a bug or an unknown failure                 like Transient
=================  ==========================================  ===============

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
