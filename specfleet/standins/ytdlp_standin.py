"""The yt-dlp extractor of the local video site (``video_site.py``): it reads
the site's watch pages the way yt-dlp's YouTube extractor reads YouTube's,
so a failure reaches the worker through yt-dlp's own exception path with
yt-dlp's own text.

What is copied from yt-dlp (``yt_dlp/extractor/youtube/_video.py``,
``YoutubeIE._real_extract``, yt-dlp 2025.11+): the watch page carries a
``ytInitialPlayerResponse``; when it yields no formats, the reason is built
from ``playabilityStatus`` -> ``errorScreen.playerErrorMessageRenderer``
reason + subreason exactly as there: a subreason starting "The uploader has
not made this video available in your country" raises
``raise_geo_restricted`` (``GeoRestrictedError``); a reason holding "sign in"
gets the cookies login hint; "This content isn't available, try again
later" is rewritten into the session rate-limit text; then
``raise_no_formats(reason, expected=True)`` (``ExtractorError``), which
``YoutubeDL`` wraps into its ``DownloadError``.

The JS runtime: like ``YoutubeIE._get_requested_clients`` it asks the
challenge-solver director whether a provider is available
(``any(p.is_available() for p in self._jsc_director.providers.values())``).
Without one, the audio formats, whose URLs carry an ``n`` challenge as
YouTube's do, are dropped with yt-dlp's own warning ("n challenge solving
failed: Some formats may be missing"), leaving only the storyboard images:
yt-dlp then says "Only images are available for download" and "Requested
format is not available". (With a runtime the stand-in does not run the
challenge through it: the site's ``n`` needs no solving.)

``register()`` puts the extractor ahead of yt-dlp's generic one in this
process (yt-dlp's extractor lookup, ``yt_dlp.globals.extractors``, the same
table its ``yt_dlp_plugins`` loader prepends plugins to). It matches
loopback URLs only.
"""

from __future__ import annotations

import threading
from typing import Any

from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.extractor.youtube._base import YoutubeBaseInfoExtractor
from yt_dlp.extractor.youtube.jsc._builtin.ejs import _EJS_WIKI_URL
from yt_dlp.extractor.youtube.jsc._director import initialize_jsc_director
from yt_dlp.utils import clean_html, int_or_none, remove_end, traverse_obj

_get_text = YoutubeBaseInfoExtractor._get_text


class SpecfleetStandinIE(InfoExtractor):
    IE_NAME = "youtube:specfleet-standin"
    IE_DESC = False  # not listed among yt-dlp's supported sites
    _VALID_URL = r"https?://(?:127\.0\.0\.1|localhost|\[::1\]):\d+/watch\?v=(?P<id>[A-Za-z0-9_-]{1,32})"
    _COOKIE_HOWTO_WIKI_URL = YoutubeBaseInfoExtractor._COOKIE_HOWTO_WIKI_URL

    def _real_initialize(self) -> None:
        self._jsc_director = initialize_jsc_director(self)

    @property
    def is_authenticated(self) -> bool:
        return False  # the site has no accounts: every session is a guest's

    @property
    def _youtube_login_hint(self) -> str:
        return str(YoutubeBaseInfoExtractor._youtube_login_hint.fget(self))

    def _real_extract(self, url: str) -> dict[str, Any]:
        video_id = self._match_id(url)
        # YoutubeBaseInfoExtractor._request_webpage: account cookies that
        # YouTube cleared (rotated) since they were passed are reported.
        signed_in = "LOGIN_INFO" in self._get_cookies(url)
        webpage = self._download_webpage(url, video_id)
        if signed_in and "LOGIN_INFO" not in self._get_cookies(url):
            self.report_warning(
                "The provided YouTube account cookies are no longer valid. "
                "They have likely been rotated in the browser as a security measure. "
                f"For tips on how to effectively export YouTube cookies, refer to  {self._COOKIE_HOWTO_WIKI_URL} .",
                only_once=False)
        pr = self._search_json(r"ytInitialPlayerResponse\s*=", webpage, "initial player response", video_id)
        playability = pr.get("playabilityStatus") or {}
        details = pr.get("videoDetails") or {}
        js_runtime = any(p.is_available() for p in self._jsc_director.providers.values())
        formats = []
        dropped = False
        for fmt in traverse_obj(pr, ("streamingData", "adaptiveFormats", ...)) or []:
            if "n=" in fmt["url"] and not js_runtime:
                dropped = True
                continue
            formats.append({
                "format_id": str(fmt["itag"]), "url": fmt["url"], "ext": "m4a", "acodec": "mp4a.40.2",
                "vcodec": "none", "abr": int_or_none(fmt.get("bitrate"), 1000),
                "filesize": int_or_none(fmt.get("contentLength")),
            })
        if dropped:
            self.report_warning(
                "n challenge solving failed: Some formats may be missing. Ensure you have a supported JavaScript "
                "runtime and challenge solver script distribution installed. Review any warnings presented before "
                f"this message. For more details, refer to  {_EJS_WIKI_URL}", video_id=video_id, only_once=True)
        if formats or dropped:
            for sb in traverse_obj(pr, ("storyboards", ...)) or []:
                formats.append({
                    "format_id": sb["id"], "url": sb["url"], "ext": "mhtml", "protocol": "mhtml",
                    "acodec": "none", "vcodec": "none", "format_note": "storyboard",
                })
        if not formats:
            self._raise_unplayable(playability)
        return {
            "id": video_id,
            "title": details.get("title") or video_id,
            "duration": int_or_none(details.get("lengthSeconds")),
            "view_count": int_or_none(details.get("viewCount")),
            "channel": details.get("author"),
            "formats": formats,
        }

    def _raise_unplayable(self, playability: dict[str, Any]) -> None:
        """``YoutubeIE._real_extract``'s "no formats" branch, for one player response."""
        pemr = traverse_obj(playability, ("errorScreen", "playerErrorMessageRenderer", {dict})) or {}
        reason = _get_text(pemr, "reason") or playability.get("reason") or ""
        subreason = clean_html(_get_text(pemr, "subreason") or "")
        if subreason:
            if subreason.startswith("The uploader has not made this video available in your country"):
                self.raise_geo_restricted(subreason, playability.get("availableCountries"), metadata_available=True)
            if subreason != reason:
                reason += f". {subreason}"
        if reason:
            if "sign in" in reason.lower():
                reason = remove_end(reason, "This helps protect our community. Learn more")
                reason = f'{remove_end(reason.strip(), ".")}. {self._youtube_login_hint}'
            elif "This content isn't available, try again later" in reason:
                reason = (
                    f'{remove_end(reason.strip(), ".")}. {"Your account" if self.is_authenticated else "The current session"} '
                    "has been rate-limited by YouTube for up to an hour. It is recommended to use `-t sleep` to add a delay "
                    "between video requests to avoid exceeding the rate limit. For more information, refer to  "
                    "https://github.com/yt-dlp/yt-dlp/wiki/Extractors#this-content-isnt-available-try-again-later"
                )
        self.raise_no_formats(reason or "No video formats found", expected=True)


_registered = threading.Lock()


def register() -> None:
    """Put ``SpecfleetStandinIE`` first in yt-dlp's extractor lookup of this
    process (idempotent; ``YoutubeDL`` objects made afterwards use it)."""
    from yt_dlp.extractor import import_extractors
    from yt_dlp.globals import extractors

    with _registered:
        import_extractors()
        if "SpecfleetStandinIE" in extractors.value:
            return
        extractors.value = {"SpecfleetStandinIE": SpecfleetStandinIE, **extractors.value}
