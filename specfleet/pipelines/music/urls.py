"""Which video URLs the music pipelines accept.

Production accepts YouTube hosts only; tests and the demo add the local
video site's ``host:port`` through ``MusicSettings.extra_hosts``. A URL
that fails here is bad input: the worker raises ``Rejected`` with the reason.
"""

from __future__ import annotations

from ...outbound import HostPolicy, OutboundRefused
from .settings import MusicSettings


class UrlPolicyError(ValueError):
    """The URL is not one the music pipelines may fetch; the message says why."""


def video_policy(config: MusicSettings) -> HostPolicy:
    """Where video pages, search answers and their media may be fetched from
    (``specfleet.outbound``: listed hosts, public addresses unless named)."""
    return HostPolicy.of([*config.allowed_hosts, *config.extra_hosts], what="video")


def check_video_url(url: str, config: MusicSettings) -> str:
    """Return ``url`` if allowed, else raise ``UrlPolicyError`` naming the problem."""
    if not isinstance(url, str) or not url:
        raise UrlPolicyError("video URL is empty")
    if len(url) > config.max_url_len:
        raise UrlPolicyError(f"video URL is {len(url)} characters, longer than {config.max_url_len}")
    if "::" in url.split("://", 1)[-1] or url.endswith(":"):
        raise UrlPolicyError("video URL contains '::' or ends with ':'")
    try:
        return video_policy(config).check_url(url)
    except OutboundRefused as err:
        raise UrlPolicyError(str(err)) from None
