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

The real archive is an Apache index: its column headers are sort links
(``?C=M;O=A``), a folder may be reached as ``.../index.html`` or with a sort
query, and some days hold an ``addendum/`` folder of further files. Links
are therefore resolved against the *folder* of the page (never against the
page's own name), and an ``addendum/`` link is followed one level down. The
fetch is bounded: a byte cap and one time budget for all its attempts (a
page that trickles, or a 64 MB page, ends with a ``ListingError`` naming the
limit).
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from posixpath import normpath
from urllib.parse import quote, unquote, urljoin, urlsplit

from bs4 import BeautifulSoup, NavigableString, Tag

from ...outbound import (
    FetchLimits,
    FetchTooLarge,
    FetchTooSlow,
    HostPolicy,
    OutboundRefused,
    guard_connections,
    guarded_client,
    stream_to_file,
)

#: What a file name may look like: no path separators, no ``::`` (status
#: framing), no whitespace or control characters.
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(?::[A-Za-z0-9_.\-]+)*\.mseed$")


#: A size column entry: bytes, or a number with Apache's K/M/G/T suffix (powers of 1024).
SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class ListingError(Exception):
    """The day listing could not be read or holds no miniSEED files."""


#: A day of 5-minute files holds this many; more links in one listing are worth a note.
FILES_PER_DAY = 288
#: The sub-folder some OOI days have, whose files belong to the day.
ADDENDUM = "addendum/"
#: Apache's column-sort links (``?C=N;O=D``): never files.
SORT_QUERY_RE = re.compile(r"^C=[NMSD](;|&)O=[AD]$", re.IGNORECASE)


class DayNotInArchive(ListingError):
    """The archive has no such day (HTTP 404) or the day holds no miniSEED files:
    a normal gap in a date range, not a failure. ``reason``: which, in a few words."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


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
    #: The ``addendum/`` folder's URL when the listing links one (its files are
    #: added by ``fetch_listing``).
    addendum: str = ""
    #: Things worth saying about the listing (more files than a day can hold...).
    notes: list[str] = field(default_factory=list)

    def total_bytes(self) -> int | None:
        """Bytes of all files, or ``None`` if the listing shows no size for some."""
        if any(f not in self.sizes for f in self.files):
            return None
        return sum(self.sizes[f] for f in self.files)


def folder_url(url: str) -> str:
    """The folder a listing page at ``url`` shows: the query and fragment
    dropped (``?C=M;O=A``), and a page name (``index.html``: a last segment
    with a ``.``) replaced by the folder it is in. A last segment without a
    dot (``.../09``) is the folder itself, reached without its slash."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if not path.endswith("/"):
        head, _, last = path.rpartition("/")
        path = head + "/" if "." in last else path + "/"
    return parts._replace(path=path, query="", fragment="").geturl()


def parse_listing(html: str, url: str) -> Listing:
    """File URLs of the ``.mseed`` files a day listing at ``url`` links to
    (``url``: where the page came from, after redirects)."""
    base = folder_url(url)
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
        if reason == "a folder, not a file" and urljoin(base, ref) == base + ADDENDUM:
            out.addendum = base + ADDENDUM
            continue
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
    if parts.query and SORT_QUERY_RE.fullmatch(parts.query):
        return "a column-sort link"
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


def fetch_listing(
    url: str,
    *,
    policy: HostPolicy,
    timeout_s: float = 30.0,
    attempts: int = 3,
    max_bytes: int = 8 * 1024 * 1024,
    budget_s: float = 120.0,
) -> Listing:
    """Download and parse a day listing and its ``addendum/`` folder; a
    missing day is a ``DayNotInArchive``, anything else unreadable a
    ``ListingError``.

    ``policy`` decides which hosts the listing (and its redirects) may come
    from; ``max_bytes`` caps each page, ``budget_s`` bounds the whole fetch
    (every attempt and the addendum included)."""
    started = time.monotonic()
    listing = parse_listing(*_get_page(url, policy, timeout_s, attempts, max_bytes, budget_s, started))
    in_folder = len(listing.files)
    extra = Listing(url=listing.addendum)
    if listing.addendum:
        try:
            extra = parse_listing(*_get_page(listing.addendum, policy, timeout_s, attempts, max_bytes, budget_s,
                                             started))
        except DayNotInArchive:  # a dangling addendum/ link: the day's own files stand
            listing.ignored.append((ADDENDUM, "its listing answered HTTP 404"))
        taken = {url.rsplit("/", 1)[-1] for url in listing.files}
        for file_url in extra.files:
            if file_url.rsplit("/", 1)[-1] in taken:  # one done-marker per file name
                listing.ignored.append((file_url, "same name as a file of the day folder"))
                continue
            listing.files.append(file_url)
            if file_url in extra.sizes:
                listing.sizes[file_url] = extra.sizes[file_url]
        listing.sizes_approximate = listing.sizes_approximate or extra.sizes_approximate
        listing.ignored += [(f"{ADDENDUM}{href}", why) for href, why in extra.ignored if why != "a folder, not a file"]
    if in_folder > FILES_PER_DAY:  # an addendum/ may add to a full day; the folder itself may not
        listing.notes.append(
            f"day listing {listing.url} links {in_folder} .mseed files, more than the {FILES_PER_DAY} "
            "5-minute files a day holds (its addendum/ aside): not the archive's usual day"
        )
    if not listing.files:
        raise DayNotInArchive(
            f"day listing {url} links to no .mseed files ({len(listing.ignored)} other links ignored)",
            reason="no .mseed files",
        )
    return listing


def _get_page(
    url: str, policy: HostPolicy, timeout_s: float, attempts: int, max_bytes: int, budget_s: float, started: float
) -> tuple[str, str]:
    """``(text, final URL)`` of one listing page within the byte cap and what
    is left of the budget that began at ``started``."""
    import httpx

    from .source import http_retry

    limits = FetchLimits(max_bytes=max_bytes, connect_timeout_s=timeout_s, read_timeout_s=timeout_s,
                         budget_s=budget_s)

    @http_retry(attempts)
    def get(dest: Path) -> tuple[int, str]:
        left = budget_s - (time.monotonic() - started)
        if left <= 0:
            raise _OverBudget()
        # The scope's budget also ends a server that trickles its headers
        # (stream_to_file's own deadline starts with the body).
        with guard_connections(policy, budget_s=left) as budget:
            try:
                with guarded_client(policy, connect_timeout_s=min(timeout_s, left),
                                    read_timeout_s=min(timeout_s, left)) as client, client.stream("GET", url) as resp:
                    if resp.status_code >= 500 or resp.status_code == 429:
                        resp.raise_for_status()
                    if resp.status_code != 200:
                        return resp.status_code, str(resp.url)
                    stream_to_file(resp, dest, limits, started)
                    return 200, str(resp.url)
            except (FetchTooSlow, httpx.TransportError):
                if budget.expired.is_set() or time.monotonic() - started > budget_s:
                    raise _OverBudget() from None  # the budget is the whole fetch's: no retry
                raise

    with tempfile.TemporaryDirectory(prefix="hydro-listing-") as tmp:
        dest = Path(tmp) / "listing.html"
        try:
            code, final = get(dest)
        except _OverBudget:
            raise ListingError(
                f"day listing {url} took longer than its {budget_s:g} s budget "
                "(SPECFLEET_HYDRO_LISTING_BUDGET_S): the server is too slow or trickling"
            ) from None
        except FetchTooLarge as err:
            raise ListingError(
                f"day listing {url} {err} (SPECFLEET_HYDRO_LISTING_MAX_BYTES); a day's listing is tens of kB"
            ) from None
        except OutboundRefused as err:
            raise ListingError(f"day listing {url} refused: {err}") from None
        except httpx.HTTPError as err:
            raise ListingError(f"could not read the day listing {url}: {type(err).__name__}: {err}") from None
        if code == 404:
            raise DayNotInArchive(f"no listing at {url} (HTTP 404): that day is not in the archive", reason="HTTP 404")
        if code != 200:
            raise ListingError(f"day listing {url} answered HTTP {code}")
        return dest.read_bytes().decode("utf-8", errors="replace"), final


class _OverBudget(Exception):
    """The listing's whole-fetch budget ran out (not retried)."""
