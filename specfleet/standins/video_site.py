"""A local stand-in for the video site, for tests, the demo and benchmarks.

It serves, on 127.0.0.1 only:

* ``/watch?v=ID``            a watch page with a schema.org VideoObject (name,
  duration, views, media URL) and an HTML5 ``<audio>`` element. yt-dlp's
  *generic* extractor reads it and downloads the media for real.
* ``/media/ID.m4a``          the audio (AAC in MP4), made with numpy + ffmpeg.
* ``/api/search?q=...``       JSON search results (url, title, channel, views),
  read by the yt-dlp backend's small local extractor (production uses
  ``ytsearchN:``).
* ``/results?search_query=`` a results page shaped like YouTube's list
  (``ytd-video-renderer``, ``a#video-title`` with its title and accessibility
  label holding the exact view count, ``ytd-channel-name``,
  ``#metadata-line``), rendered by JavaScript after load, for the Selenium
  backend; ``hl=es`` gives the Spanish labels the original read
  ("1.234.567 visualizaciones").

Which videos a query returns: by default those whose title holds every
query word, most viewed first. ``set_results(query, [ids])`` pins the exact
result list of one query, like a real results page where a reaction video,
a cover or another song of the artist comes first.

Like today's YouTube (issue 24), a watch page also carries a
``ytInitialPlayerResponse`` (``videoDetails``, ``streamingData`` whose
format URLs hold an ``n`` challenge, ``storyboards``, ``playabilityStatus``)
and ``ytdlp_standin.SpecfleetStandinIE`` -- registered with yt-dlp when the
site starts -- reads it with the code of yt-dlp's YouTube extractor, so each
failure below reaches a worker as the yt-dlp exception and text a real run
produces. A video's ``playability`` answers with one of YouTube's refusals
(texts from yt-dlp's ``_video.py`` and its issues, see ``PLAYABILITY``):

* ``removed``: "Video unavailable. This video has been removed by the uploader"
* ``private``: "Private video. Sign in if you've been granted access to this video"
* ``age``:     "Sign in to confirm your age. This video may be inappropriate for some users."
* ``geo``:     subreason "The uploader has not made this video available in
  your country" -> yt-dlp's ``GeoRestrictedError``
* ``botcheck``: "Sign in to confirm you’re not a bot" (curly apostrophe, as
  YouTube writes it; yt-dlp #10128 and the wiki's "Common YouTube Errors")
* ``app``:     "The following content is not available on this app.. Watch
  on the latest version of YouTube." (an IP-level block: yt-dlp #13930, #10482)

``rate_limit(after, window_s)`` makes the session rate limit of yt-dlp
#11426 / PR #12958 / wiki "Common YouTube Errors": after ``after`` watch
pages (videos) the site answers every watch page with "Video unavailable.
This content isn't available, try again later." until ``window_s`` seconds
have passed (YouTube: ~300 videos an hour for a guest session, "rate-limited
for up to an hour"); then a new session window starts. Without a JS runtime
yt-dlp cannot solve the formats' ``n`` challenge (yt-dlp #15012): only the
storyboard images remain and yt-dlp ends in "Requested format is not
available".

Account cookies: a watch page asked for with a ``LOGIN_INFO`` cookie is
counted (``signed_in_pages``); with ``refuse_cookies`` the site answers it
by clearing ``LOGIN_INFO`` (an expired ``Set-Cookie``), which is how YouTube
rotates cookies and how yt-dlp notices ("The provided YouTube account
cookies are no longer valid", ``yt_dlp/extractor/youtube/_base.py``).
With ``search_needs_sign_in`` the search API answers a guest (no
``LOGIN_INFO`` cookie) with the bot-check page, as YouTube does for a
session it distrusts: yt-dlp's answer to "Sign in to confirm you're not a
bot" is account cookies (its wiki's FAQ "How do I pass cookies to
yt-dlp", yt-dlp #10128, #11981), and ``ytsearchN:`` is an extractor like any
other: ``YoutubeSearchIE._search_results`` (``yt_dlp/extractor/youtube/
_tab.py``) calls the innertube API with the session's cookie jar and the
SAPISID auth headers (``_base.py``, ``generate_api_headers``). Searches
asked for with the cookie are counted (``signed_in_searches``).

``mode`` switches the whole site to answer like a blocked or broken site:
``"429"``, ``"403"``, ``"botcheck"`` (HTML pages say "Sign in to confirm you're
not a bot"; watch and media requests get that page with status 403), ``"404"``,
``"500"`` or ``"stall"`` (accept, then never answer until the site closes).
A video can also be ``gone`` on its own (404 "This video has been removed").
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, quote_plus, urlsplit

import numpy as np

from ..ffmpeg import ffmpeg_path
from .http import BackgroundServer

SiteMode = Literal["ok", "429", "403", "botcheck", "404", "500", "stall"]
Playability = Literal["ok", "removed", "private", "age", "geo", "botcheck", "app"]
#: playabilityStatus of each refusal: (status, reason, subreason), as YouTube
#: sends them and yt-dlp's ``_video.py`` joins them ("reason. subreason").
PLAYABILITY: dict[str, tuple[str, str, str]] = {
    "removed": ("ERROR", "Video unavailable", "This video has been removed by the uploader"),
    "private": ("LOGIN_REQUIRED", "Private video", "Sign in if you've been granted access to this video"),
    "age": ("LOGIN_REQUIRED", "Sign in to confirm your age", "This video may be inappropriate for some users."),
    "geo": ("UNPLAYABLE", "Video unavailable", "The uploader has not made this video available in your country"),
    "botcheck": ("LOGIN_REQUIRED", "Sign in to confirm you\u2019re not a bot", "This helps protect our community. Learn more"),
    "app": ("UNPLAYABLE", "The following content is not available on this app.", "Watch on the latest version of YouTube."),
    "ratelimited": ("ERROR", "Video unavailable", "This content isn't available, try again later."),
}
BOT_CHECK_TEXT = "Sign in to confirm you're not a bot. This helps protect our community."
SAMPLE_RATE = 22_050


def tone(seconds: float, *, sample_rate: int = SAMPLE_RATE, base_hz: float = 220.0, seed: int = 0) -> np.ndarray:
    """A short "song": a few harmonics of ``base_hz`` with a slow vibrato and a
    little noise, float32 in [-1, 1]. Deterministic for a given ``seed``."""
    t = np.arange(int(seconds * sample_rate), dtype=np.float64) / sample_rate
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * base_hz * t + 3.0 * np.sin(2 * np.pi * 0.5 * t)
    y = sum(np.sin(k * phase) / k for k in (1, 2, 3, 5))
    y = y / np.max(np.abs(y)) * 0.6 + 0.02 * rng.standard_normal(t.size)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def encode_m4a(samples: np.ndarray, path: Path, *, sample_rate: int = SAMPLE_RATE, ffmpeg: str | None = None) -> Path:
    """Encode mono float samples to AAC-in-MP4 at ``path`` with ffmpeg."""
    ffmpeg = ffmpeg or ffmpeg_path()
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "s16le", "-ar", str(sample_rate), "-ac", "1",
         "-i", "pipe:0", "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", str(path)],
        input=pcm, check=True, capture_output=True,
    )
    return path


def _iso_duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"PT{s // 3600}H{s % 3600 // 60}M{s % 60}S"


def _views_text(views: int) -> str:
    if views >= 1_000_000:
        return f"{views / 1_000_000:.1f}M views"
    if views >= 1_000:
        return f"{views / 1_000:.1f}K views"
    return f"{views} views"


def _cyclic_slice(data: bytes, offset: int, n: int) -> bytes:
    """``n`` bytes of ``data`` repeated end to end, starting at ``offset``."""
    start = offset % len(data)
    reps = (start + n) // len(data) + 1
    return (data * reps)[start:start + n]


def _aria_label(video: Video, *, spanish: bool) -> str:
    """The accessibility label YouTube puts on a result's title link; it
    holds the exact view count the original scraper read."""
    minutes, seconds = divmod(int(round(video.advertised_seconds or video.seconds)), 60)
    if spanish:
        views = f"{video.views:,}".replace(",", ".")
        return (f"{video.title} de {video.channel} hace 3 años {minutes} minutos y {seconds} segundos "
                f"{views} visualizaciones")
    return f"{video.title} by {video.channel} 3 years ago {minutes} minutes, {seconds} seconds {video.views:,} views"


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


@dataclass
class Video:
    video_id: str
    title: str
    seconds: float = 6.0
    views: int = 1000
    gone: bool = False
    #: Duration the page claims (a "3-hour mix" whose media is never fetched).
    advertised_seconds: float | None = None
    #: The uploader's channel name shown under the title.
    channel: str = "Music Uploads"
    #: What the player response says (``PLAYABILITY``); "ok" plays.
    playability: Playability = "ok"


def _query_key(query: str) -> str:
    return " ".join(query.lower().split())


class VideoSite:
    def __init__(self, workdir: str | Path | None = None, *, throttle_bytes_per_s: int = 0, stall_s: float = 60.0):
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="video-site-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.videos: dict[str, Video] = {}
        #: Pinned result lists: normalised query -> video ids in page order.
        self.pinned: dict[str, list[str]] = {}
        self.mode: SiteMode = "ok"
        #: Simulated network speed per connection (0 = as fast as loopback goes).
        self.throttle_bytes_per_s = throttle_bytes_per_s
        self.stall_s = stall_s
        #: Requests seen, by route and by ``route:video_id``.
        self.hits: Counter[str] = Counter()
        self._media_bytes: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: BackgroundServer | None = None
        #: Session rate limit: watch pages per window (0: none), the window,
        #: pages served in the current window, and until when (monotonic) the
        #: session is limited.
        self.limit_after = 0
        self.limit_window_s = 3600.0
        self._session_videos = 0
        self._limited_until = 0.0
        #: Watch pages answered with the rate-limit refusal.
        self.rate_limited = 0
        #: Watch pages asked for with a LOGIN_INFO cookie; refuse (clear) it when set.
        self.signed_in_pages = 0
        self.refuse_cookies = False
        #: Refuse guest searches (bot check) and count the signed-in ones.
        self.search_needs_sign_in = False
        self.signed_in_searches = 0
        #: When (``time.monotonic()``) each watch page was asked for: a video's start.
        self.watch_times: list[float] = []

    # --- catalogue -------------------------------------------------------------
    def add_video(self, video_id: str, title: str, *, seconds: float = 6.0, views: int = 1000,
                  gone: bool = False, advertised_seconds: float | None = None,
                  channel: str = "Music Uploads") -> Video:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", video_id):
            raise ValueError(f"video id {video_id!r} must be 1-32 characters of A-Z a-z 0-9 _ -")
        video = Video(video_id, title, seconds, views, gone, advertised_seconds, channel)
        if not gone:
            self.media_path(video_id).exists() or encode_m4a(
                tone(seconds, base_hz=110.0 + 20 * (len(self.videos) % 12), seed=len(self.videos)),
                self.media_path(video_id),
            )
        self.videos[video_id] = video
        return video

    def set_playability(self, video_id: str, playability: Playability) -> None:
        self.videos[video_id].playability = playability

    def rate_limit(self, after: int, window_s: float) -> None:
        """Limit the session after ``after`` videos for ``window_s`` seconds
        (``after`` 0: no limit). Starts a new session window."""
        with self._lock:
            self.limit_after, self.limit_window_s = after, window_s
            self._session_videos, self._limited_until = 0, 0.0

    def _session_limited(self) -> bool:
        """Count one watch page against the session; True when it is refused."""
        with self._lock:
            if self.limit_after <= 0:
                return False
            now = time.monotonic()
            if now < self._limited_until:
                self.rate_limited += 1
                return True
            if self._limited_until:  # the window has passed: a fresh session window
                self._limited_until, self._session_videos = 0.0, 0
            if self._session_videos >= self.limit_after:
                self._limited_until = now + self.limit_window_s
                self.rate_limited += 1
                return True
            self._session_videos += 1
            return False

    def media_path(self, video_id: str) -> Path:
        return self.workdir / f"{video_id}.m4a"

    # --- addresses -------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the site first"
        return self._server.base_url

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc

    def watch_url(self, video_id: str) -> str:
        return f"{self.base_url}/watch?v={video_id}"

    def media_url(self, video_id: str) -> str:
        return f"{self.base_url}/media/{video_id}.m4a"

    @property
    def search_api_url(self) -> str:
        return self.base_url + "/api/search?q={query}"

    @property
    def results_page_url(self) -> str:
        # The original's page: Spanish interface (hl=es&gl=ES).
        return self.base_url + "/results?hl=es&gl=ES&search_query={query}"

    def set_results(self, query: str, video_ids: list[str]) -> None:
        """Pin the results of ``query`` (case and spacing ignored) to these
        videos, in this order."""
        unknown = [v for v in video_ids if v not in self.videos]
        if unknown:
            raise ValueError(f"unknown video ids {unknown}: add_video() them first")
        self.pinned[_query_key(query)] = list(video_ids)

    def search(self, query: str) -> list[Video]:
        """The pinned results of ``query``, else the videos whose title holds
        every word of ``query``, most viewed first."""
        pinned = self.pinned.get(_query_key(query))
        if pinned is not None:
            return [self.videos[v] for v in pinned]
        words = _tokens(query)
        found = [v for v in self.videos.values() if words and words <= _tokens(v.title)]
        return sorted(found, key=lambda v: -v.views)

    # --- lifecycle -------------------------------------------------------------
    def start(self) -> VideoSite:
        site = self

        class Handler(_Handler):
            pass

        Handler.site = site
        try:  # yt-dlp reads the watch pages like YouTube's (see the module docstring)
            from .ytdlp_standin import register
        except ImportError:  # yt-dlp not installed: its generic extractor is not needed either
            pass
        else:
            register()
        self._server = BackgroundServer(Handler, name="video-site").start()
        return self

    def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> VideoSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count(self, key: str) -> int:
        with self._lock:
            return self.hits[key]

    def media_bytes(self, video_id: str) -> int:
        """Media bytes written to clients for ``video_id``."""
        with self._lock:
            return self._media_bytes[video_id]

    def _sent(self, video_id: str, n: int) -> None:
        with self._lock:
            self._media_bytes[video_id] += n

    def _hit(self, route: str, video_id: str = "") -> None:
        with self._lock:
            if route == "watch":
                self.watch_times.append(time.monotonic())
            self.hits[route] += 1
            if video_id:
                self.hits[f"{route}:{video_id}"] += 1


class _Handler(BaseHTTPRequestHandler):
    site: VideoSite
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    # --- plumbing ----------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _page(self, status: int, title: str, body: str, headers: dict[str, str] | None = None) -> None:
        doc = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>{body}</body></html>"
        self._send(status, doc.encode(), "text/html; charset=utf-8", headers)

    def _blocked(self, route: str) -> bool:
        """Answer like a blocked/broken site if the mode says so."""
        mode = self.site.mode
        if mode == "ok":
            return False
        if mode == "stall":
            self.site._closing.wait(self.site.stall_s)
            self.close_connection = True
            return True
        if mode == "429":
            self._send(429, b"Too Many Requests", "text/plain", {"Retry-After": "3600"})
        elif mode == "403":
            self._send(403, b"Forbidden", "text/plain")
        elif mode == "404":
            self._page(404, "404 Not Found", "<h1>404 Not Found</h1>")
        elif mode == "500":
            self._page(500, "Internal Server Error", "<h1>500</h1>")
        elif mode == "botcheck":
            # Scrapers read the page; the downloader gets it with a 403.
            status = 200 if route in ("results", "search") else 403
            self._page(status, "Before you continue", f"<div id='bot-check'><p>{html.escape(BOT_CHECK_TEXT)}</p></div>")
        return True

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        qs = parse_qs(parts.query)
        route = {"/watch": "watch", "/api/search": "search", "/results": "results"}.get(parts.path)
        if route is None and parts.path.startswith("/media/"):
            route = "media"
        if route is None:
            self._page(404, "404", "<h1>404 Not Found</h1>")
            return
        video_id = ""
        if route == "watch":
            video_id = qs.get("v", [""])[0]
        elif route == "media":
            video_id = parts.path[len("/media/"):].removesuffix(".m4a")
        self.site._hit(route, video_id)
        if self._blocked(route):
            return
        getattr(self, f"_{route}")(qs, video_id)

    # --- routes ------------------------------------------------------------------
    def _video_or_404(self, video_id: str) -> Video | None:
        video = self.site.videos.get(video_id)
        if video is None or video.gone:
            self._page(404, "Video unavailable", "<h1>This video has been removed by the uploader</h1>")
            return None
        return video

    def _watch(self, qs: dict[str, list[str]], video_id: str) -> None:
        video = self._video_or_404(video_id)
        if video is None:
            return
        media = f"/media/{video.video_id}.m4a"
        headers: dict[str, str] = {}
        if "LOGIN_INFO=" in self.headers.get("Cookie", ""):
            with self.site._lock:
                self.site.signed_in_pages += 1
            if self.site.refuse_cookies:  # YouTube rotating the account's cookies
                headers["Set-Cookie"] = "LOGIN_INFO=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        playability = "ratelimited" if self.site._session_limited() else video.playability
        player = self._player_response(video, playability)
        ld = {
            "@context": "https://schema.org", "@type": "VideoObject", "name": video.title,
            "duration": _iso_duration(video.advertised_seconds or video.seconds),
            "contentUrl": self.site.base_url + media, "uploadDate": "2020-01-01",
            "interactionStatistic": {"@type": "InteractionCounter",
                                     "interactionType": "https://schema.org/WatchAction",
                                     "userInteractionCount": video.views},
        }
        if playability != "ok":  # YouTube's refusal pages carry no media
            self._page(200, video.title, f"<script>var ytInitialPlayerResponse = {json.dumps(player)};</script>",
                       headers)
            return
        self._page(200, video.title, (
            f"<script>var ytInitialPlayerResponse = {json.dumps(player)};</script>"
            f"<script type='application/ld+json'>{json.dumps(ld)}</script>"
            f"<h1>{html.escape(video.title)}</h1><p><a href='{media}'>listen</a></p>"
        ), headers)

    def _player_response(self, video: Video, playability: str) -> dict[str, object]:
        """The watch page's ``ytInitialPlayerResponse`` (the fields yt-dlp reads)."""
        if playability != "ok":
            status, reason, subreason = PLAYABILITY[playability]
            return {"playabilityStatus": {
                "status": status, "reason": reason,
                "errorScreen": {"playerErrorMessageRenderer": {
                    "reason": {"simpleText": reason}, "subreason": {"simpleText": subreason}}},
            }}
        base = self.site.base_url
        seconds = video.advertised_seconds or video.seconds
        size = int(video.advertised_seconds * 8000) if video.advertised_seconds else self.site.media_path(
            video.video_id).stat().st_size
        return {
            "playabilityStatus": {"status": "OK", "playableInEmbed": True},
            "videoDetails": {"videoId": video.video_id, "title": video.title, "lengthSeconds": str(int(round(seconds))),
                             "viewCount": str(video.views), "author": video.channel},
            # YouTube's format URLs carry an "n" challenge only a JS runtime solves.
            "streamingData": {"adaptiveFormats": [{
                "itag": 139, "mimeType": 'audio/mp4; codecs="mp4a.40.5"', "bitrate": 64000,
                "contentLength": str(size), "url": f"{base}/media/{video.video_id}.m4a?n=Zm9vYmFy"}]},
            "storyboards": [{"id": "sb0", "url": f"{base}/storyboard/{video.video_id}/M0.jpg"}],
        }

    def _media(self, qs: dict[str, list[str]], video_id: str) -> None:
        video = self._video_or_404(video_id)
        if video is None:
            return
        data = self.site.media_path(video.video_id).read_bytes()
        size = len(data)
        if video.advertised_seconds:
            # A "3-hour mix": the full-size body (~64 kbit/s) repeats the short
            # file, so a downloader that ignores the duration really pulls it.
            size = int(video.advertised_seconds * 8000)
        start, end = 0, size - 1
        status, headers = 200, {"Accept-Ranges": "bytes"}
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if m:
            start = min(int(m.group(1)), end)
            end = min(int(m.group(2)), end) if m.group(2) else end
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self.send_response(status)
        self.send_header("Content-Type", "audio/mp4")
        self.send_header("Content-Length", str(end + 1 - start))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        rate = self.site.throttle_bytes_per_s
        chunk = max(4096, rate // 20) if rate else 256 * 1024
        started = time.monotonic()
        offset = start
        while offset <= end:
            n = min(chunk, end + 1 - offset)
            piece = _cyclic_slice(data, offset, n)
            self.wfile.write(piece)
            offset += n
            self.site._sent(video.video_id, n)
            if rate:
                # Pace to ``rate``: this simulates the network, it is not synchronisation.
                ahead = (offset - start) / rate - (time.monotonic() - started)
                if ahead > 0 and self.site._closing.wait(ahead):
                    return

    def _search(self, qs: dict[str, list[str]], video_id: str) -> None:
        query = qs.get("q", [""])[0]
        if "LOGIN_INFO=" in self.headers.get("Cookie", ""):
            with self.site._lock:
                self.site.signed_in_searches += 1
        elif self.site.search_needs_sign_in:  # a guest session YouTube distrusts
            self._page(200, "Before you continue", f"<div id='bot-check'><p>{html.escape(BOT_CHECK_TEXT)}</p></div>")
            return
        results = [
            {"url": self.site.watch_url(v.video_id), "title": v.title, "channel": v.channel, "views": v.views,
             "duration": v.advertised_seconds or v.seconds}
            for v in self.site.search(query)
        ]
        self._send(200, json.dumps({"query": query, "results": results}).encode(), "application/json")

    def _results(self, qs: dict[str, list[str]], video_id: str) -> None:
        query = qs.get("search_query", [""])[0]
        spanish = qs.get("hl", [""])[0].lower().startswith("es")
        items = [
            {"href": f"/watch?v={v.video_id}", "title": v.title, "channel": v.channel,
             "label": _aria_label(v, spanish=spanish), "views": _views_text(v.views)}
            for v in self.site.search(query)
        ]
        # Like YouTube, the list is rendered by script after the page loads,
        # so a scraper must run a real browser and wait for it.
        data = json.dumps(items).replace("</", "<\\/")
        # %-formatting, not format(): the script is full of braces.
        script = """
<script>
const items = %s;
setTimeout(() => {
  const contents = document.getElementById('contents');
  for (const it of items) {
    const r = document.createElement('ytd-video-renderer');
    r.className = 'style-scope ytd-item-section-renderer';
    const wrap = document.createElement('div');
    wrap.className = 'text-wrapper style-scope ytd-video-renderer';
    const a = document.createElement('a');
    a.id = 'video-title'; a.className = 'yt-simple-endpoint'; a.href = it.href;
    a.title = it.title; a.textContent = it.title; a.setAttribute('aria-label', it.label);
    const meta = document.createElement('div');
    meta.id = 'metadata-line';
    const views = document.createElement('span');
    views.className = 'inline-metadata-item'; views.textContent = it.views;
    const age = document.createElement('span');
    age.className = 'inline-metadata-item'; age.textContent = '3 years ago';
    meta.append(views, age);
    const chn = document.createElement('ytd-channel-name'); chn.id = 'channel-name';
    const cha = document.createElement('a');
    cha.className = 'yt-simple-endpoint style-scope yt-formatted-string';
    cha.href = '/@' + encodeURIComponent(it.channel); cha.textContent = it.channel;
    chn.append(cha); wrap.append(a, meta, chn); r.append(wrap); contents.append(r);
  }
  if (!items.length) {
    const p = document.createElement('p'); p.id = 'no-results'; p.textContent = 'No results found';
    contents.append(p);
  }
}, 150);
</script>""" % data  # noqa: UP031
        self._page(200, f"{query} - results", f"<ytd-section-list-renderer><div id='contents'></div></ytd-section-list-renderer>{script}")


def start_site(videos: dict[str, str] | None = None, **kwargs: object) -> VideoSite:
    """Start a site with ``{video_id: title}`` videos (a helper for scripts)."""
    site = VideoSite(**kwargs).start()  # type: ignore[arg-type]
    for vid, title in (videos or {}).items():
        site.add_video(vid, title)
    return site


def search_query_url(template: str, query: str) -> str:
    return template.replace("{query}", quote_plus(query))
