"""Failure classification table: every message a real source produces maps to
the right runtime error class (ban-class / gone / transient)."""

import pytest

from specfleet.pipelines.music.errors import classify, classify_text
from specfleet.runtime import Banned, Rejected, Transient

CASES = [
    # today's YouTube (yt-dlp _video.py texts): rate limit first, though it says "Video unavailable"
    ("ERROR: [youtube] abc: Video unavailable. This content isn't available, try again later. The current session "
     "has been rate-limited by YouTube for up to an hour.", "ratelimited"),
    ("ERROR: [youtube] abc: Sign in to confirm your age. This video may be inappropriate for some users.",
     "agerestricted"),
    ("ERROR: [youtube] abc: The following content is not available on this app.. Watch on the latest version of "
     "YouTube.", "banned"),
    ("ERROR: [youtube] abc: The uploader has not made this video available in your country", "georestricted"),
    ("ERROR: [youtube] abc: Requested format is not available. Use --list-formats for a list of available formats",
     "noformats"),
    ("WARNING: Only images are available for download. use --list-formats to see them", "noformats"),
    # ban-class: this IP is blocked
    ("ERROR: [generic] x: Unable to download webpage: HTTP Error 429: Too Many Requests", "banned"),
    ("ERROR: [youtube] abc: Sign in to confirm you’re not a bot. This helps protect our community.", "banned"),
    ("ERROR: Sign in to confirm you're not a bot", "banned"),
    ("ERROR: unable to download video data: HTTP Error 403: Forbidden", "banned"),
    ("Our systems have detected unusual traffic from your computer network", "banned"),
    ("search page: Before you continue: please solve this CAPTCHA", "banned"),
    # gone: removed / private / unavailable
    ("ERROR: [generic] x: Unable to download webpage: HTTP Error 404: Not Found", "gone"),
    ("ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader", "gone"),
    ("ERROR: [youtube] abc: Private video. Sign in if you've been granted access", "gone"),
    ("ERROR: [youtube] abc: This video is not available", "gone"),
    ("ERROR: HTTP Error 410: Gone", "gone"),
    ("ERROR: Unsupported URL: http://127.0.0.1:1/nothing", "gone"),
    # transient: timeouts, resets, 5xx, anything unknown
    ("ERROR: Unable to download webpage: HTTPConnectionPool(host='127.0.0.1'): Read timed out.", "transient"),
    ("ERROR: [Errno 104] Connection reset by peer", "transient"),
    ("ERROR: Unable to download webpage: HTTP Error 503: Service Unavailable", "transient"),
    ("ERROR: Unable to download webpage: HTTP Error 500: Internal Server Error", "transient"),
    ("TimeoutException: timed out waiting for search results", "transient"),
    ("unknown error: net::ERR_CONNECTION_REFUSED", "transient"),
    ("something nobody has seen before", "transient"),
]


@pytest.mark.parametrize(("message", "kind"), CASES)
def test_classify_text(message, kind):
    assert classify_text(message) == kind


@pytest.mark.parametrize(
    ("message", "cls"),
    [("HTTP Error 429: Too Many Requests", Banned), ("HTTP Error 404: Not Found", Rejected),
     ("Read timed out", Transient)],
)
def test_classify_builds_runtime_errors_with_reason(message, cls):
    err = classify(RuntimeError(message), what="downloading audio")
    assert type(err) is cls
    assert "downloading audio" in err.reason and message in err.reason


def test_classify_strips_terminal_colours_and_passes_job_errors_through():
    assert isinstance(classify("\x1b[0;31mERROR:\x1b[0m HTTP Error 429"), Banned)
    original = Rejected("already decided")
    assert classify(original) is original
