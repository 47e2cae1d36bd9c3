"""The results of a video search: one interface, two backends.

* ``YtDlpBackend``    yt-dlp's Python API. Production: ``ytsearchN:{query}``
  (N = ``MusicSettings.search_results``). With ``search_url`` set (tests, demo)
  a small yt-dlp ``SearchInfoExtractor`` reads that JSON search API instead
  (``localsearchN:``), so the same yt-dlp code path runs against the local
  stand-in. With ``SPECFLEET_MUSIC_COOKIES_SECRET_ID`` set it searches with
  the same account cookies as the download worker (``music/cookies.py``):
  a session YouTube asks to sign in ("not a bot") or rate-limits as a guest
  can still search. Each search gets its own copy of the jar (yt-dlp writes
  it back on close); a refusal drops them for good, as for downloads.
* ``SeleniumBackend`` a real headless Chromium (Debian's chromium +
  chromedriver; nothing downloaded at run time) opens the results page and
  reads every result on it (``ytd-video-renderer``): href, title, channel
  name and views, as the original scraper did.

Both return the results in page order as ``SearchResult`` objects (an empty
list when there are none); which one is the track is decided by
``title_match``. They raise the runtime's error classes (via
``errors.classify``) for blocked, gone or flaky sites.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote_plus, urljoin

from pydantic import BaseModel, Field

from ...runtime import JobError
from ...settings import Settings
from ..music.cookies import REFUSED_TEXT, Cookies, load_cookies
from ..music.errors import Reaction, classify, classify_text
from ..music.jsruntime import js_runtimes_option
from ..music.pacing import pace
from ..music.settings import MusicSettings

log = logging.getLogger("specfleet.music.search")

#: Browser flags: headless, sandbox-less (containers), and no traffic of its own.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--mute-audio",
)


class SearchResult(BaseModel):
    """One result of a search (an outside answer: validated)."""

    href: str = Field(min_length=1, max_length=4096)
    views: int = Field(default=-1, ge=-1)
    title: str = Field(default="", max_length=1000)
    channel: str = Field(default="", max_length=1000)


class SearchBackend(Protocol):
    name: str

    def search(self, query: str) -> list[SearchResult]: ...

    def close(self) -> None: ...


def parse_views(text: str | int | None) -> int:
    """``"1.2M views"`` / ``"12,345 views"`` / ``"No views"`` / 42 -> an int; -1 if unknown."""
    if text is None:
        return -1
    if isinstance(text, int):
        return text if text >= 0 else -1
    t = text.strip().lower().replace(",", "").replace("\u00a0", " ")
    if t.startswith("no views"):
        return 0
    m = re.search(r"(\d+(?:\.\d+)?)\s*([kmb]?)", t)
    if not m:
        return -1
    scale = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}[m.group(2)]
    return int(round(float(m.group(1)) * scale))


#: The exact count in a result's accessibility label, as the original read it:
#: "... 1.234.567 visualizaciones" (Spanish page) or "... 1,234,567 views".
_LABEL_VIEWS = re.compile(r"(\d[\d.,\u00a0\u202f]*)\s+(?:de\s+)?(?:visualizaciones|views)\b", re.IGNORECASE)


def views_from_label(label: str | None) -> int:
    """The full view count in an ``aria-label``; -1 if it has none."""
    # The count closes the label; a title like "100 views of X" comes first.
    found = list(_LABEL_VIEWS.finditer(label or ""))
    if not found:
        return -1
    digits = re.sub(r"\D", "", found[-1].group(1))
    return int(digits) if digits else -1


# --- yt-dlp -------------------------------------------------------------------
def _local_search_ie(template: str) -> Any:
    """A yt-dlp search extractor (``localsearchN:query``) for a JSON search API
    answering ``{"results": [{"url", "title", "views"}]}``."""
    from yt_dlp.extractor.common import SearchInfoExtractor
    from yt_dlp.utils import ExtractorError

    class LocalSiteSearchIE(SearchInfoExtractor):
        IE_NAME = "localsite:search"
        _SEARCH_KEY = "localsearch"
        _MAX_RESULTS = 50

        def _search_results(self, query: str) -> Iterator[dict[str, Any]]:
            url = template.replace("{query}", quote_plus(query))
            text = self._download_webpage(url, query, note="Searching the local site")
            if re.search(r"not a (?:ro)?bot|unusual traffic|captcha", text, re.IGNORECASE):
                # What YouTube's extractor says for a bot-check page.
                raise ExtractorError("Sign in to confirm you're not a bot", expected=True)
            try:
                data = json.loads(text)
            except ValueError:
                raise ExtractorError(f"search answer is not JSON: {text[:80]!r}", expected=True) from None
            for item in data.get("results", []) if isinstance(data, dict) else []:
                if isinstance(item, dict) and isinstance(item.get("url"), str):
                    yield self.url_result(
                        urljoin(url, item["url"]), ie="Generic", video_title=item.get("title"),
                        view_count=item.get("views"), channel=item.get("channel"),
                    )

    return LocalSiteSearchIE


class _QuietLogger:
    def __init__(self) -> None:
        #: yt-dlp's warning that YouTube refused (rotated) the account cookies.
        self.cookies_refused = ""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    info = error = debug

    def warning(self, msg: str) -> None:
        if REFUSED_TEXT in msg:
            self.cookies_refused = msg
        log.debug("yt-dlp: %s", msg)


class YtDlpBackend:
    name = "ytdlp"

    def __init__(self, config: MusicSettings, cookies: Cookies | None = None):
        self.config = config
        #: YouTube account cookies (``SPECFLEET_MUSIC_COOKIES_SECRET_ID``), None: guest.
        self.cookies = cookies
        self._ie_class = _local_search_ie(config.search_url) if config.search_url else None

    def search(self, query: str) -> list[SearchResult]:
        if self.cookies is None:
            return self._search(query, None)
        with tempfile.TemporaryDirectory(prefix="specfleet-search-", dir=self.config.tmp_dir or None) as workdir:
            logger = _QuietLogger()
            try:
                results = self._search(query, self.cookies.copy_into(Path(workdir)), logger)
            finally:
                if logger.cookies_refused:
                    self.cookies.refuse(logger.cookies_refused)
        self.cookies.succeeded()
        return results

    def _search(self, query: str, cookiefile: str | None, logger: _QuietLogger | None = None) -> list[SearchResult]:
        import yt_dlp
        from yt_dlp.utils import unsmuggle_url

        n = self.config.search_results
        # Searches draw from the same per-instance budget as downloads.
        pace(self.config.search_url or "https://www.youtube.com/results", self.config)
        opts = {
            "quiet": True, "no_warnings": True, "noprogress": True, "logger": logger or _QuietLogger(),
            # Flat: list the results without resolving their video pages.
            "extract_flat": "in_playlist", "skip_download": True,
            "socket_timeout": self.config.socket_timeout_s, "extractor_retries": 0, "cachedir": False,
            "js_runtimes": js_runtimes_option(self.config.js_runtimes),
            # account cookies: this search's own copy; None = guest
            "cookiefile": cookiefile,
        }
        with yt_dlp.YoutubeDL(opts) as ydl:
            if self._ie_class is not None:
                ydl.add_info_extractor(self._ie_class())
                target, ie_key = f"localsearch{n}:{query}", self._ie_class.ie_key()
            else:
                target, ie_key = f"ytsearch{n}:{query}", "YoutubeSearch"
            try:
                info = ydl.extract_info(target, download=False, ie_key=ie_key)
            except Exception as err:
                raise classify(err, what="search", reaction=Reaction(
                    pause_s=self.config.rate_limit_pause_s, pause_jitter=self.config.rate_limit_pause_jitter,
                )) from None
        results = []
        for entry in list((info or {}).get("entries") or [])[:n]:
            href = entry.get("url") or entry.get("webpage_url")
            if not href:
                continue
            href, _ = unsmuggle_url(href)  # the local extractor's results carry yt-dlp's routing hint
            if not href.startswith("http") and entry.get("id") and ie_key == "YoutubeSearch":
                href = f"https://www.youtube.com/watch?v={entry['id']}"
            results.append(_result(
                href=href, views=parse_views(entry.get("view_count")), title=entry.get("title") or "",
                channel=entry.get("channel") or entry.get("uploader") or "",
            ))
        return results

    def close(self) -> None:
        if self.cookies is not None:
            self.cookies.close()


# --- Selenium -----------------------------------------------------------------
class SeleniumBackend:
    """One headless Chromium per worker process, used by one job at a time."""

    name = "selenium"

    def __init__(self, config: MusicSettings):
        self.config = config
        self._lock = threading.Lock()
        self._driver: Any = None

    def _start(self) -> Any:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = self.config.chromium_path
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument("--window-size=1280,900")
        # An explicit driver path: Selenium Manager never downloads anything.
        service = Service(executable_path=self.config.chromedriver_path)
        driver = webdriver.Chrome(options=options, service=service)
        driver.set_page_load_timeout(self.config.page_timeout_s)
        return driver

    def search(self, query: str) -> list[SearchResult]:
        from selenium.common.exceptions import TimeoutException, WebDriverException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        url = self.config.results_page_url.replace("{query}", quote_plus(query))
        pace(url, self.config)  # the instance's videos-per-hour budget, as for yt-dlp's search
        with self._lock:
            try:
                if self._driver is None:
                    self._driver = self._start()
                driver = self._driver
                driver.get(url)
                # Wait for whichever comes first: a result, "no results", or an error/block page.
                WebDriverWait(driver, self.config.page_timeout_s).until(_page_settled)
                # One round trip for the whole page instead of several per result.
                rows = driver.execute_script(_READ_RESULTS_JS)
                if not rows:
                    if driver.find_elements(By.ID, "no-results"):
                        return []
                    body_text = driver.find_element(By.TAG_NAME, "body").text
                    raise classify(f"{driver.title}: {body_text[:300]}", what="search page")
            except JobError:
                raise
            except TimeoutException as err:
                raise classify(f"timed out waiting for search results at {url}: {err.msg or ''}") from None
            except WebDriverException as err:
                self._quit()  # a broken browser is restarted for the next job
                raise classify(err, what="search page") from None
        results = []
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict) or not isinstance(row.get("href"), str) or not row["href"]:
                continue
            views = views_from_label(row.get("label"))
            if views < 0:
                views = next((parse_views(m) for m in row.get("meta") or [] if _looks_like_views(m)), -1)
            results.append(_result(
                href=row["href"], views=views, title=_text(row.get("title")), channel=_text(row.get("channel")),
            ))
        return results

    def _quit(self) -> None:
        if self._driver is not None:
            try:
                self._driver.quit()
            except Exception:
                log.debug("chromium did not quit cleanly", exc_info=True)
            self._driver = None

    def close(self) -> None:
        with self._lock:
            self._quit()


#: Every ``ytd-video-renderer`` of the page: the ``a#video-title`` link (href,
#: title attribute, accessibility label with the exact view count), the
#: channel name and the metadata line ("2.3M views", "3 years ago").
_READ_RESULTS_JS = """
return Array.from(document.querySelectorAll('ytd-video-renderer')).map(r => {
  const a = r.querySelector('a#video-title');
  const ch = r.querySelector('ytd-channel-name a, #channel-name a, #channel-name');
  return {
    href: a ? a.href : '',
    title: a ? (a.getAttribute('title') || a.textContent || '') : '',
    label: a ? (a.getAttribute('aria-label') || '') : '',
    channel: ch ? ch.textContent : '',
    meta: Array.from(r.querySelectorAll('#metadata-line span')).map(s => s.textContent || ''),
  };
});
"""


def _text(value: object) -> str:
    return " ".join(value.split())[:1000] if isinstance(value, str) else ""


def _looks_like_views(text: object) -> bool:
    # English only: ``parse_views`` reads "2.3M views"; a Spanish page's exact
    # count comes from the label ("2,3 M de visualizaciones" would misread).
    return isinstance(text, str) and bool(re.search(r"\bviews?\b", text, re.IGNORECASE))


def _result(**fields: Any) -> SearchResult:
    """A validated result; oversize fields are cut, not fatal."""
    fields["title"] = fields.get("title", "")[:1000]
    fields["channel"] = fields.get("channel", "")[:1000]
    return SearchResult(**fields)


def _page_settled(driver: Any) -> bool:
    """Results, "no results", or a page that is clearly an error or block page."""
    from selenium.webdriver.common.by import By

    if driver.find_elements(By.CSS_SELECTOR, "ytd-video-renderer a#video-title, #no-results"):
        return True
    if re.match(r"\d{3}\b", driver.title or ""):
        return True
    text = driver.find_element(By.TAG_NAME, "body").text[:2000]
    return bool(text) and classify_text(text) != "transient"


BACKENDS: dict[str, Callable[[MusicSettings], SearchBackend]] = {"ytdlp": YtDlpBackend, "selenium": SeleniumBackend}


def make_backend(settings: Settings, config: MusicSettings) -> SearchBackend:
    """The worker's search backend (``spec.resources``): made once per process.
    yt-dlp's gets the account cookies, when set (read here, at start: the
    pre-flight check already refused a secret it cannot read); the browser
    searches as a guest."""
    try:
        cls = BACKENDS[config.search_backend]
    except KeyError:
        raise ValueError(
            f"SPECFLEET_MUSIC_SEARCH_BACKEND must be one of {', '.join(BACKENDS)}, got {config.search_backend!r}"
        ) from None
    if cls is YtDlpBackend:
        return YtDlpBackend(config, load_cookies(settings, config))
    return cls(config)
