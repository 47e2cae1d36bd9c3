"""Which video URLs the music pipelines accept.

Production accepts YouTube hosts only; tests and the demo add the local
video site's ``host:port`` through ``settings.music_extra_hosts``. A URL
that fails here is bad input: the worker raises ``Rejected`` with the reason.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ...settings import Settings


class UrlPolicyError(ValueError):
    """The URL is not one the music pipelines may fetch; the message says why."""


def check_video_url(url: str, settings: Settings) -> str:
    """Return ``url`` if allowed, else raise ``UrlPolicyError`` naming the problem."""
    if not isinstance(url, str) or not url:
        raise UrlPolicyError("video URL is empty")
    if len(url) > settings.music_max_url_len:
        raise UrlPolicyError(f"video URL is {len(url)} characters, longer than {settings.music_max_url_len}")
    if any(c in url for c in "\r\n\t\x00 ") or "::" in url.split("://", 1)[-1]:
        raise UrlPolicyError("video URL contains whitespace, control characters or '::'")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UrlPolicyError(f"video URL scheme must be http or https, got {parts.scheme or 'none'!r}")
    if parts.username or parts.password:
        raise UrlPolicyError("video URL may not carry user credentials")
    host = (parts.hostname or "").lower()
    if not host:
        raise UrlPolicyError("video URL has no host")
    try:
        port = parts.port
    except ValueError:
        raise UrlPolicyError("video URL has an invalid port") from None
    extra = {h.lower() for h in settings.music_extra_hosts}
    if port is None and host in {h.lower() for h in settings.music_allowed_hosts}:
        return url
    if host in extra or (port is not None and f"{host}:{port}" in extra):
        return url
    allowed = ", ".join([*settings.music_allowed_hosts, *settings.music_extra_hosts])
    raise UrlPolicyError(f"video host {parts.netloc!r} is not allowed (allowed: {allowed})")
