"""Turn yt-dlp / HTTP / Selenium failures into the runtime's error classes.

Three kinds of failure need three different reactions (SPEC.md section 2):

* ban-class  -- this IP is blocked (HTTP 429, 403, bot checks, "unusual
  traffic"): raise ``Banned``; the runtime hands the job back and counts it
  toward the ban threshold, after which the worker stops.
* gone       -- the video is removed/private/unavailable (404, 410): raise
  ``Rejected``; stat 0, job deleted, never retried.
* transient  -- timeouts, resets, 5xx: raise ``Transient``; retried with
  backoff and redelivered.

Classification works on the error *text* because that is all yt-dlp gives
(``DownloadError`` wraps everything into a message) and it keeps one table
for all three sources. Ban patterns are checked first: a bot-check page can
also say "unavailable".
"""

from __future__ import annotations

import re
from typing import Literal

from ...runtime import Banned, JobError, Rejected, Transient

FailureKind = Literal["banned", "gone", "transient"]

_BANNED = re.compile(
    r"HTTP Error 429|\b429\b.*too many requests|too many requests"
    r"|HTTP Error 403|\b403\b.*forbidden"
    r"|confirm (?:you(?:'|’)re|you are) not a (?:ro)?bot|sign in to confirm"
    r"|unusual traffic|captcha|are you a robot|bot[- ]check"
    r"|this (?:ip|network) (?:is|has been) (?:blocked|banned)",
    re.IGNORECASE,
)
_GONE = re.compile(
    r"HTTP Error 404|HTTP Error 410|\b404\b.*not found"
    r"|video unavailable|this video is (?:no longer |not )?available|is not available"
    r"|private video|this video is private|has been removed|video (?:was|has been) (?:deleted|removed)"
    r"|account associated with this video has been terminated|copyright claim"
    r"|unsupported url|no video formats found|requested format is not available"
    r"|members-only|join this channel",
    re.IGNORECASE,
)
def classify_text(text: str) -> FailureKind:
    """Which kind of failure an error message describes. Everything that is
    neither ban-class nor gone -- timeouts, resets, 5xx, and unknown errors --
    is transient: retried a few times, then the dead-letter queue keeps it."""
    if _BANNED.search(text):
        return "banned"
    if _GONE.search(text):
        return "gone"
    return "transient"


def classify(err: BaseException | str, *, what: str = "") -> JobError:
    """The runtime error to raise for ``err``; ``what`` prefixes the reason."""
    if isinstance(err, JobError):
        return err
    text = err if isinstance(err, str) else _describe(err)
    text = _strip_ansi(text).strip()
    reason = f"{what}: {text}" if what else text
    reason = reason[:900]
    kind = classify_text(text)
    if kind == "banned":
        return Banned(f"ban-class failure ({reason})")
    if kind == "gone":
        return Rejected(f"gone ({reason})")
    return Transient(reason)


def _describe(err: BaseException) -> str:
    # Selenium's messages live in .msg; yt-dlp puts the cause in .exc_info.
    text = getattr(err, "msg", None) or str(err) or type(err).__name__
    cause = err.__cause__ or err.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({type(cause).__name__}: {cause})"
    return f"{type(err).__name__}: {text}"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)
