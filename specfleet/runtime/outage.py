"""Riding out unreachable dependencies (SQS, S3, SNS, the database).

A worker must outlive an outage of any length: it stops taking jobs while a
dependency is down, waits with capped, jittered exponential backoff, tries
again, and carries on when the dependency answers -- never spinning, never
exiting. ``Outages`` keeps the state per endpoint (``host:port``), logs one
line when an endpoint is lost (with the backoff it uses) and one when it is
back (with how long it was gone), and answers "how long to wait now".

It is the retry owner of receives and settle calls only; which loop owns
every other call's retries is the table in ``retries.py``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import botocore.exceptions

from ..aws import is_transient_aws_error

log = logging.getLogger("specfleet.runtime")

T = TypeVar("T")

#: botocore errors that mean "could not talk to the endpoint at all".
_UNREACHABLE = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
)


def endpoint_key(url: str) -> str:
    """``scheme://host:port`` of an endpoint URL: one key per server."""
    parts = urlsplit(url)
    scheme = parts.scheme or "https"
    return f"{scheme}://{parts.hostname or ''}:{parts.port or (443 if scheme == 'https' else 80)}"


def client_endpoint(client: object) -> str:
    """The endpoint key of a boto3 client."""
    return endpoint_key(str(client.meta.endpoint_url))  # type: ignore[attr-defined]


def unreachable_endpoint(err: BaseException) -> str | None:
    """Endpoint key of the server ``err`` says could not be reached, else None."""
    if isinstance(err, _UNREACHABLE):
        url = str(err.kwargs.get("endpoint_url") or "")
        return endpoint_key(url) if url else None
    return None


def is_outage(err: BaseException) -> bool:
    """An error that waiting can fix: an unreachable endpoint, throttling, 5xx,
    or credentials not available yet (an instance profile at boot)."""
    return (
        unreachable_endpoint(err) is not None
        or is_transient_aws_error(err)
        or isinstance(err, (botocore.exceptions.NoCredentialsError, botocore.exceptions.CredentialRetrievalError))
    )


@dataclass
class _Down:
    since: float
    attempts: int
    reason: str
    next_try: float = 0.0


class Outages:
    """Per-endpoint outage state with backoff; safe to share between threads."""

    def __init__(self, *, initial_s: float = 1.0, max_s: float = 60.0, rng: random.Random | None = None):
        self.initial_s = initial_s
        self.max_s = max_s
        self._down: dict[str, _Down] = {}
        self._lock = threading.Lock()
        self._rng = rng or random.Random()

    def failed(self, endpoint: str, err: BaseException | str, what: str = "") -> float:
        """Record a failure; return the (jittered) seconds to wait before the next try."""
        reason = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
        with self._lock:
            state = self._down.get(endpoint)
            if state is None:
                state = self._down[endpoint] = _Down(time.monotonic(), 0, reason)
            state.attempts += 1
            cap = min(self.max_s, self.initial_s * 2 ** (state.attempts - 1))
            first = state.attempts == 1
        # Jitter: workers that lost the endpoint together do not come back together.
        delay = self._rng.uniform(cap / 2, cap)
        with self._lock:
            state.next_try = time.monotonic() + delay
        if first:
            log.warning("lost %s%s (%s); retrying with backoff up to %.0f s",
                        endpoint, f" during {what}" if what else "", reason[:300], self.max_s)
        else:
            log.info("%s still unreachable after %d tries; next try in %.1f s", endpoint, state.attempts, delay)
        return delay

    def succeeded(self, endpoint: str) -> None:
        with self._lock:
            state = self._down.pop(endpoint, None)
        if state is not None:
            log.warning("%s is back after %.1f s (%d failed tries)", endpoint, time.monotonic() - state.since,
                        state.attempts)

    def down(self) -> list[str]:
        with self._lock:
            return sorted(self._down)

    def is_down(self, endpoint: str) -> bool:
        with self._lock:
            return endpoint in self._down

    def next_try_in(self, endpoint: str) -> float:
        """Seconds until ``endpoint`` is due for another try (0 if due or up)."""
        with self._lock:
            state = self._down.get(endpoint)
            return max(0.0, state.next_try - time.monotonic()) if state else 0.0


def probe(endpoint: str, timeout_s: float = 5.0) -> bool:
    """Does the server at ``endpoint`` answer HTTP at all (any status)?

    Used for endpoints a job found unreachable (S3, SNS): a cheap request
    that needs no permissions, so the worker learns the endpoint is back
    without spending a job's attempt on finding out."""
    import httpx

    try:
        httpx.head(endpoint + "/", timeout=timeout_s, trust_env=False)
    except httpx.HTTPError:
        return False
    return True

def call_through_outages(
    fn: Callable[[], T],
    *,
    outages: Outages,
    endpoint: str,
    what: str,
    stop: threading.Event,
    deadline_s: float | None = None,
) -> T:
    """``fn()``, retried through outages until it works, ``stop`` is set or
    ``deadline_s`` passes (then the last error is raised). Errors that waiting
    cannot fix are raised at once."""
    started = time.monotonic()
    while True:
        try:
            result = fn()
        except Exception as err:
            if not is_outage(err):
                raise
            delay = outages.failed(unreachable_endpoint(err) or endpoint, err, what)
            if deadline_s is not None:
                left = deadline_s - (time.monotonic() - started)
                if left <= 0:
                    raise
                delay = min(delay, left)
            if stop.wait(delay):
                raise
            continue
        outages.succeeded(endpoint)
        return result
