"""The OOI day listing: an HTML directory index of ``.mseed`` files.

Parsed with a real HTML parser (BeautifulSoup over ``html.parser``). Every
link is resolved against the listing URL and kept only if it names a
``.mseed`` file directly inside that folder on the same host, with no query
or fragment; everything else (parent links, column-sorting links,
``../`` tricks, sub-folders, other hosts, other file types) is set aside
with the reason, so the producer can say what it ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from posixpath import normpath
from urllib.parse import quote, unquote, urljoin, urlsplit

from bs4 import BeautifulSoup

from ...outbound import HostPolicy, OutboundRefused, guarded_client

#: What a file name may look like: no path separators, no ``::`` (status
#: framing), no whitespace or control characters.
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(?::[A-Za-z0-9_.\-]+)*\.mseed$")


class ListingError(Exception):
    """The day listing could not be read or holds no miniSEED files."""


@dataclass
class Listing:
    url: str
    #: Absolute file URLs, sorted by file name, unique.
    files: list[str] = field(default_factory=list)
    #: ``(href, reason)`` for every link that was not taken.
    ignored: list[tuple[str, str]] = field(default_factory=list)


def parse_listing(html: str, url: str) -> Listing:
    """File URLs of the ``.mseed`` files a day listing at ``url`` links to."""
    base = url if url.endswith("/") else url + "/"
    base_parts = urlsplit(base)
    folder = normpath(unquote(base_parts.path)).rstrip("/") + "/"
    out = Listing(url=base)
    found: dict[str, str] = {}
    soup = BeautifulSoup(html, "html.parser")
    for a in soup.find_all("a", href=True):
        href = str(a["href"]).strip()
        ref = _as_reference(href)
        reason = _reject_reason(ref, base, base_parts, folder)
        if reason:
            out.ignored.append((href, reason))
            continue
        name = unquote(urlsplit(urljoin(base, ref)).path.rsplit("/", 1)[-1])
        # One spelling per file (``%3A`` or ``:``): the folder URL + the quoted name.
        found.setdefault(name, base + quote(name, safe=":"))
    out.files = [found[n] for n in sorted(found)]
    return out


def _as_reference(href: str) -> str:
    """OOI names hold ``:`` (``...T00:00:00.000000.mseed``), so an unescaped
    name parses as a URL with scheme ``OO-HYVM1--YDH-2017-10-09T00``. A bare
    name with no ``/`` and a scheme other than http(s) is a relative file name."""
    scheme = urlsplit(href).scheme.lower()
    if scheme and scheme not in ("http", "https") and "/" not in href:
        return "./" + href
    return href


def _reject_reason(href: str, base: str, base_parts: object, folder: str) -> str:
    if not href or href.startswith("#"):
        return "anchor"
    absolute = urljoin(base, href)
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or parts.netloc != base_parts.netloc:  # type: ignore[attr-defined]
        return "other host or scheme"
    if parts.query or parts.fragment:
        return "has a query string or fragment"
    raw_path = unquote(parts.path)
    if ".." in raw_path.split("/") or "\\" in raw_path:
        return "path escapes the day folder"
    if raw_path.endswith("/"):
        return "a folder, not a file"
    parent, _, name = raw_path.rpartition("/")
    if parent + "/" != folder:
        return "not directly inside the day folder"
    if not name.lower().endswith(".mseed"):
        return "not a .mseed file"
    if not FILE_NAME_RE.fullmatch(name):
        return "file name has characters we do not accept"
    return ""


def fetch_listing(url: str, *, policy: HostPolicy, timeout_s: float = 30.0, attempts: int = 3) -> Listing:
    """Download and parse a day listing; a missing day is a ``ListingError``.

    ``policy`` decides which hosts the listing (and its redirects) may come from."""
    import httpx

    from .source import http_retry

    @http_retry(attempts)
    def get() -> httpx.Response:
        with guarded_client(policy, connect_timeout_s=timeout_s, read_timeout_s=timeout_s) as client:
            resp = client.get(url)
        if resp.status_code >= 500 or resp.status_code == 429:
            resp.raise_for_status()
        return resp

    try:
        resp = get()
    except OutboundRefused as err:
        raise ListingError(f"day listing {url} refused: {err}") from None
    except httpx.HTTPError as err:
        raise ListingError(f"could not read the day listing {url}: {type(err).__name__}: {err}") from None
    if resp.status_code == 404:
        raise ListingError(f"no listing at {url} (HTTP 404): that day is not in the archive")
    if resp.status_code != 200:
        raise ListingError(f"day listing {url} answered HTTP {resp.status_code}")
    listing = parse_listing(resp.text, str(resp.url))
    if not listing.files:
        raise ListingError(
            f"day listing {url} links to no .mseed files ({len(listing.ignored)} other links ignored)"
        )
    return listing
