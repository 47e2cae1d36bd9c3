"""Turn yt-dlp / HTTP / Selenium failures into the runtime's error classes.

The one table that classifies (``TAXONOMY``), built from the texts and
exception types yt-dlp really produces for YouTube today (yt-dlp 2025.11+,
``yt_dlp/extractor/youtube/_video.py`` ``_real_extract``: the
``playabilityStatus`` reason/subreason handling; ``yt_dlp/YoutubeDL.py``
``process_video_result``; yt-dlp issues #11426, #15012, PR #12958 and the
wiki's "Extractors -> Common YouTube Errors" and "EJS" pages). Rows are
tried in order; the first that matches decides:

=============  ===================================================  ======================
kind           what yt-dlp says                                     reaction
=============  ===================================================  ======================
ratelimited    "This content isn't available, try again later"      ``Paused``: hand back,
               (after "Video unavailable."): the session hit       no job failed, no ban
               YouTube's ~300 videos/hour guest limit               count; wait out the
                                                                    window (up to an hour)
agerestricted  "Sign in to confirm your age", "age-restricted"      ``Rejected``
banned         "Sign in to confirm you’re not a bot" (a curly       ``Banned``: hand back,
               apostrophe), "The following content is not           counts toward the ban
               available on this app" (an IP-level block), captcha, threshold, then stop
               HTTP 429 / 403                                       and fail over
georestricted  ``GeoRestrictedError``: "The uploader has not made   ``Elsewhere`` while the
               this video available in your country"               fleet has another
                                                                    region, else
                                                                    ``Rejected``
noformats      "Requested format is not available", "Only images    ``Transient`` while no
               are available", "n challenge solving failed"         JS runtime is seen
                                                                    (never gone), else
                                                                    ``Rejected``
gone           removed, private, terminated, 404/410, unsupported   ``Rejected``
transient      timeouts, resets, 5xx, anything unknown              ``Transient``: retried
=============  ===================================================  ======================

Why the order: the rate-limit text starts with "Video unavailable." (a
gone text), the age check says "Sign in to confirm" like the bot check, and
a bot-check page can also say "unavailable".

Classification reads the error *text* because that is what yt-dlp gives
(``DownloadError`` wraps everything into a message), plus the exception type
where yt-dlp has one (``GeoRestrictedError``, kept in ``exc_info``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Literal

from ...runtime import Banned, Elsewhere, JobError, Paused, Rejected, Transient

FailureKind = Literal[
    "ratelimited", "agerestricted", "banned", "georestricted", "noformats", "gone", "transient"
]


@dataclass(frozen=True)
class Rule:
    kind: FailureKind
    pattern: re.Pattern[str]
    #: Where the text comes from (yt-dlp's source or issue).
    source: str


def _re(text: str) -> re.Pattern[str]:
    return re.compile(text, re.IGNORECASE)


#: The one table (see the module docstring), first match wins.
TAXONOMY: tuple[Rule, ...] = (
    Rule("ratelimited", _re(r"this content isn.t available, try again later|has been rate-limited by youtube"),
         "yt_dlp/extractor/youtube/_video.py _real_extract; yt-dlp #11426, PR #12958"),
    Rule("agerestricted", _re(r"confirm your age|age[- ]restricted|inappropriate for some users"),
         "yt_dlp/extractor/youtube/_video.py _is_agegated / playabilityStatus reason"),
    Rule("banned", _re(
        r"confirm (?:you(?:'|’)re|you are) not a (?:ro)?bot|sign in to confirm"
        r"|the following content is not available on this app"
        r"|requiring a captcha|unusual traffic|captcha|are you a robot|bot[- ]check"
        r"|HTTP Error 429|\b429\b.*too many requests|too many requests"
        r"|HTTP Error 403|\b403\b.*forbidden"
        r"|this (?:ip|network) (?:is|has been) (?:blocked|banned)"),
         "yt_dlp/extractor/youtube/_video.py (login hint, captcha); yt-dlp wiki Common YouTube Errors"),
    Rule("georestricted", _re(
        r"not made this video available in your country|not available from your location"
        r"|geo[- ]?restrict"),
         "yt_dlp/extractor/common.py raise_geo_restricted (GeoRestrictedError)"),
    Rule("noformats", _re(
        r"requested format is not available|only images are available|no video formats found"
        r"|(?:n|signature) challenge solving failed|no supported javascript runtime"),
         "yt_dlp/YoutubeDL.py process_video_result; yt-dlp #15012 (JS runtime required)"),
    Rule("gone", _re(
        r"HTTP Error 404|HTTP Error 410|\b404\b.*not found"
        r"|video unavailable|this video is (?:no longer |not )?available|is not available"
        r"|private video|this video is private|has been removed|video (?:was|has been) (?:deleted|removed)"
        r"|account associated with this video has been terminated|copyright claim"
        r"|unsupported url|members-only|join this channel"),
         "yt_dlp/extractor/youtube/_video.py playabilityStatus reasons"),
)


def classify_text(text: str) -> FailureKind:
    """Which kind of failure an error message describes. Everything no rule
    matches -- timeouts, resets, 5xx, unknown errors -- is transient: retried
    a few times, then the dead-letter queue keeps it."""
    for rule in TAXONOMY:
        if rule.pattern.search(text):
            return rule.kind
    return "transient"


@dataclass(frozen=True)
class Reaction:
    """What this worker can do about a failure besides its text: the
    session-limit window, whether another fleet region is left, whether
    yt-dlp sees a JS runtime."""

    #: Longest a session rate limit lasts (yt-dlp: "for up to an hour").
    pause_s: float = 3600.0
    #: Up to this fraction is added at random, so a fleet does not resume at once.
    pause_jitter: float = 0.1
    #: Another fleet region could fetch a video geo-restricted here.
    other_regions: bool = False
    #: yt-dlp sees a JS runtime (missing formats then mean the video has none).
    js_runtime: bool = True

    def pause_for(self, rng: random.Random | None = None) -> float:
        return self.pause_s * (1.0 + (rng or random).uniform(0.0, max(0.0, self.pause_jitter)))


def classify(err: BaseException | str, *, what: str = "", reaction: Reaction | None = None) -> JobError:
    """The runtime error to raise for ``err``; ``what`` prefixes the reason."""
    if isinstance(err, JobError):
        return err
    reaction = reaction or Reaction()
    text = err if isinstance(err, str) else _describe(err)
    text = _strip_ansi(text).strip()
    reason = f"{what}: {text}" if what else text
    reason = reason[:900]
    kind = "georestricted" if not isinstance(err, str) and _is_geo_error(err) else classify_text(text)
    if kind == "ratelimited":
        return Paused(f"session rate-limited ({reason})", reaction.pause_for())
    if kind == "banned":
        return Banned(f"ban-class failure ({reason})")
    if kind == "georestricted":
        if reaction.other_regions:
            return Elsewhere(f"geo-restricted here, for another fleet region ({reason})")
        return Rejected(f"geo-restricted ({reason})")
    if kind == "agerestricted":
        return Rejected(f"age-restricted ({reason})")
    if kind == "noformats":
        if not reaction.js_runtime:
            return Transient(f"formats missing and no JS runtime: not gone ({reason})")
        return Rejected(f"no usable formats ({reason})")
    if kind == "gone":
        return Rejected(f"gone ({reason})")
    return Transient(reason)


def _is_geo_error(err: BaseException) -> bool:
    """yt-dlp raised its ``GeoRestrictedError`` somewhere in ``err``'s chain
    (``DownloadError`` keeps the extractor's exception in ``exc_info``)."""
    cause: BaseException | None = err
    for _ in range(10):
        if cause is None:
            return False
        if type(cause).__name__ == "GeoRestrictedError":
            return True
        exc_info = getattr(cause, "exc_info", None)
        nxt = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None
        cause = nxt if isinstance(nxt, BaseException) and nxt is not cause else (cause.__cause__ or cause.__context__)
    return False


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
