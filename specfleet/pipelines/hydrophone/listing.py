"""The OOI day listing: an HTML directory index of ``.mseed`` files.

Parsed with a real HTML parser (BeautifulSoup over ``html.parser``). Every
link is resolved against the listing URL and kept only if it names a
``.mseed`` file directly inside that folder on the same host, with no query
or fragment; everything else (parent links, column-sorting links,
``../`` tricks, sub-folders, other hosts, other file types) is set aside
with the reason, so the producer can say what it ignored.

File sizes come from the listing's size column where it has one (Apache's
fancy index: ``612K``, ``9.6M`` -- rounded, so approximate; a bare number
of bytes -- exact); nothing is fetched to learn them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from posixpath import normpath
from urllib.parse import quote, unquote, urljoin, urlsplit

from bs4 import BeautifulSoup, NavigableString, Tag

from ...outbound import HostPolicy, OutboundRefused, guarded_client

#: What a file name may look like: no path separators, no ``::`` (status
#: framing), no whitespace or control characters.
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(?::[A-Za-z0-9_.\-]+)*\.mseed$")


#: A size column entry: bytes, or a number with Apache's K/M/G/T suffix (powers of 1024).
SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class ListingError(Exception):
    """The day listing could not be read or holds no miniSEED files."""


class DayNotInArchive(ListingError):
    """The archive has no such day (HTTP 404) or the day holds no miniSEED files:
    a normal gap in a date range, not a failure."""


@dataclass
class Listing:
    url: str
    #: Absolute file URLs, sorted by file name, unique.
    files: list[str] = field(default_factory=list)
    #: ``(href, reason)`` for every link that was not taken.
    ignored: list[tuple[str, str]] = field(default_factory=list)
    #: Bytes per file URL, for files whose row shows a size.
    sizes: dict[str, int] = field(default_factory=dict)
    #: Some sizes were rounded by the listing (``9.6M``), so they are approximate.
    sizes_approximate: bool = False

    def total_bytes(self) -> int | None:
        """Bytes of all files, or ``None`` if the listing shows no size for some."""
        if any(f not in self.sizes for f in self.files):
            return None
        return sum(self.sizes[f] for f in self.files)


def parse_listing(html: str, url: str) -> Listing:
    """File URLs of the ``.mseed`` files a day listing at ``url`` links to."""
    base = url if url.endswith("/") else url + "/"
    base_parts = urlsplit(base)
    folder = normpath(unquote(base_parts.path)).rstrip("/") + "/"
    out = Listing(url=base)
    found: dict[str, str] = {}
    sizes: dict[str, tuple[int, bool]] = {}
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
        size = _listed_size(a)
        if size is not None:
            sizes.setdefault(name, size)
    out.files = [found[n] for n in sorted(found)]
    out.sizes = {found[n]: sizes[n][0] for n in sorted(found) if n in sizes}
    out.sizes_approximate = any(sizes[n][1] for n in found if n in sizes)
    return out


def parse_size(text: str) -> tuple[int, bool] | None:
    """``("612K")`` -> ``(626688, True)``: bytes and whether they are rounded;
    ``None`` for anything else (``-`` of folders, dates, descriptions)."""
    m = SIZE_RE.fullmatch(text.strip())
    if not m:
        return None
    number, unit = m.group(1), m.group(2).upper()
    return int(float(number) * _SIZE_UNITS[unit]), bool(unit) or "." in number


def _listed_size(a: Tag) -> tuple[int, bool] | None:
    """The size shown next to a link: the last size-looking cell after the
    link's cell in its table row (Apache's fancy index), or the last
    size-looking word on the rest of its line (Apache's and nginx's
    ``<pre>`` indexes)."""
    cell = a.find_parent(["td", "th"])
    row = cell.find_parent("tr") if cell is not None else None
    if cell is not None and row is not None:
        cells = row.find_all(["td", "th"])
        after = cells[cells.index(cell) + 1 :] if cell in cells else []
        found = [s for s in (parse_size(c.get_text(" ", strip=True)) for c in after) if s is not None]
        return found[-1] if found else None
    tail = a.next_sibling
    if isinstance(tail, NavigableString):
        words = str(tail).split("\n", 1)[0].split()
        found = [s for s in map(parse_size, words) if s is not None]
        return found[-1] if found else None
    return None


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
        raise DayNotInArchive(f"no listing at {url} (HTTP 404): that day is not in the archive")
    if resp.status_code != 200:
        raise ListingError(f"day listing {url} answered HTTP {resp.status_code}")
    listing = parse_listing(resp.text, str(resp.url))
    if not listing.files:
        raise DayNotInArchive(
            f"day listing {url} links to no .mseed files ({len(listing.ignored)} other links ignored)"
        )
    return listing
