"""Who retries what: one retry owner per call class, and its timeouts.

Every remote call specfleet makes belongs to one class below. Each class has
exactly ONE retry mechanism; every other layer makes a single attempt, so a
failure is never retried by two loops at once (a stalled endpoint costs one
bounded attempt per owner's try, not attempts x tries x read timeouts).
The botocore ``Config`` of each AWS class is built here (``botocore_config``);
``aws.client(service, settings, call=...)`` caches one client per class.

=============  ==================================  =====================  ==========================
call class     calls                               the one retry owner    per-attempt bound
=============  ==================================  =====================  ==========================
``RECEIVE``    SQS ReceiveMessage (long poll)      the caller's outage    connect 5 s, read = the
               of workers and the status poller    loop (``Outages``:     long poll + 10 s;
                                                   jittered backoff)      botocore: 1 attempt
``HEARTBEAT``  ChangeMessageVisibilityBatch that   the next beat: every   one beat's deadline, half
               keeps running jobs invisible        interval, after a      the interval (at least
                                                   failure one deadline   3 s); botocore: 1 attempt
                                                   later (``Heartbeat``)
``SETTLE``     a finished job's status send,       the settle thread's    connect 5 s, read 10 s;
               delete, requeue, dead-letter send,  outage loop, bounded   botocore: 1 attempt
               retry delay and hand-back           by the visibility
                                                   timeout (``settle.py``;
                                                   past it the job comes
                                                   back anyway)
``CONTROL``    everything else on AWS: queue       botocore (standard     connect 5 s, read 30 s;
               metadata, producers' sends, SNS,    mode, 5 attempts,      botocore: 5 attempts
               CloudFormation, EC2, SSM, logs      its own backoff)
``S3``         S3 reads and writes                 botocore (standard     connect 5 s, read 60 s;
                                                   mode, 5 attempts);     botocore: 5 attempts
                                                   then the job (SQS
                                                   redrive)
DB             PostgreSQL connects (``db.py``)     the caller: the        ``db_connect_timeout_s``
                                                   status poller's        (5 s); one attempt
                                                   outage loop, the
                                                   status Lambda's
                                                   batch failure backoff
S3 merge       a conditional JSON-list write that  its read-modify-write  30 writes, jittered
               lost a race (412/409: contention,   loop (``Storage.       backoff; each write an
               not a failure)                      merge_json_list``)     ``S3`` call
job            a handler that raised ``Transient`` SQS redrive: the       the queue's own
               (or anything unexpected)            receive count, read    ``maxReceiveCount``
                                                   from the queue's
                                                   RedrivePolicy
source HTTP    remote sources (OOI archive,        tenacity in the        ``FetchLimits`` /
               chart pages, Spotify, yt-dlp)       pipeline's fetch       the pipeline's settings
                                                   (``source.download``,  (httpx never retries)
                                                   ``spotify``) or
                                                   yt-dlp's ``retries``
=============  ==================================  =====================  ==========================

Why each owner: a long poll that fails is simply the next poll, after the
outage backoff; a heartbeat is periodic, so its retry is the next beat, and
a beat must end before the next is due or the job's visibility lapses
behind a hung call; settle calls run in the job's thread, whose outage loop
knows the deadline (the visibility timeout) past which retrying is
pointless; control-plane calls have no loop of their own, so botocore's is
theirs. Within one SendMessageBatch call, entries SQS failed on its side
(not the sender's fault) are sent again at once, up to 5 times: SQS's batch
contract (only those entries), not a retry of the call.

Two places still have two owners, each for calls made once at start: a
worker's pre-flight checks are ``CONTROL`` calls (botocore's 5 attempts)
and the pre-flight loop waits out an outage between checks; the local
status poller's first call (its queue's ARN) likewise. No job is held
meanwhile, so nothing can lapse.
"""

from __future__ import annotations

from dataclasses import dataclass

import botocore.config

from .settings import Settings

#: Longest connect of any AWS call (a refused or black-holed endpoint).
CONNECT_S = 5.0
#: Time an answer to a long poll may take beyond the poll itself.
LONG_POLL_MARGIN_S = 10.0
#: Shortest per-attempt deadline of a heartbeat (a loaded machine answers a
#: visibility change well within it).
MIN_BEAT_DEADLINE_S = 3.0


@dataclass(frozen=True)
class CallClass:
    """One row of the table above."""

    name: str
    #: Attempts botocore makes per call (1: none of its own retries).
    attempts: int
    #: Who retries a failed call (for the docs and logs).
    owner: str


RECEIVE = CallClass("receive", 1, "the receive loop's outage backoff")
HEARTBEAT = CallClass("heartbeat", 1, "the next heartbeat beat")
SETTLE = CallClass("settle", 1, "the settle thread's outage loop, bounded by the visibility timeout")
CONTROL = CallClass("control", 5, "botocore (standard mode)")
S3 = CallClass("s3", 5, "botocore (standard mode)")

CLASSES = (RECEIVE, HEARTBEAT, SETTLE, CONTROL, S3)


def heartbeat_interval_s(visibility_s: float) -> float:
    """Seconds between heartbeats: a third of the visibility timeout."""
    return max(0.5, visibility_s / 3)


def heartbeat_deadline_s(visibility_s: float, interval_s: float | None = None) -> float:
    """Longest one heartbeat attempt may take: half an interval (at least
    ``MIN_BEAT_DEADLINE_S``). After a failed beat the next comes one
    deadline later, so while SQS stalls for less than the visibility timeout
    minus one interval a beat still lands before the job's visibility
    lapses (stall + deadline < visibility)."""
    interval = interval_s if interval_s is not None else heartbeat_interval_s(visibility_s)
    return max(MIN_BEAT_DEADLINE_S, interval / 2)


def timeouts(call: CallClass, settings: Settings) -> tuple[float, float]:
    """``(connect, read)`` seconds of one attempt of ``call``."""
    if call is RECEIVE:
        return CONNECT_S, max(0, min(20, settings.wait_time_s)) + LONG_POLL_MARGIN_S
    if call is HEARTBEAT:
        deadline = heartbeat_deadline_s(settings.visibility_timeout_s)
        connect = min(CONNECT_S, max(1.0, deadline / 4))
        return connect, deadline - connect
    if call is SETTLE:
        return CONNECT_S, 10.0
    if call is S3:
        return CONNECT_S, 60.0
    return CONNECT_S, 30.0


def botocore_config(call: CallClass, settings: Settings) -> botocore.config.Config:
    """The client configuration of ``call``: its timeouts and its botocore attempts."""
    connect, read = timeouts(call, settings)
    return botocore.config.Config(
        retries={"mode": "standard", "total_max_attempts": call.attempts},
        connect_timeout=connect,
        read_timeout=read,
        max_pool_connections=64,
    )


def db_connect_timeout_s(settings: Settings) -> int:
    """libpq's ``connect_timeout`` for one connect (one attempt; the caller retries)."""
    return max(1, settings.db_connect_timeout_s)
