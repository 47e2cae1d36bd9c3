"""Day listings as the real archive serves them, and listings no archive
should serve: reached through a redirect to ``.../index.html`` or a sort
query, with an ``addendum/`` folder, trickling, huge, or linking far more
files than a day holds. A local HTTP server plays each one (loopback only;
every server loop is bounded in count and time)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from specfleet.outbound import HostPolicy
from specfleet.pipelines.hydrophone.listing import ListingError, fetch_listing, folder_url
from specfleet.pipelines.hydrophone.producer import list_range
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.pipelines.hydrophone.timerange import TimeRange
from specfleet.standins.http import BackgroundServer

HYDRO = "CE02SHBP/LJ01D/11-HYDBBA106"
T0 = dt.datetime(2017, 10, 9)


def name_at(t: dt.datetime) -> str:
    return f"OO-HYVM1--YDH-{t:%Y-%m-%dT%H:%M:%S}.000000.mseed"


def apache_index(names: list[str], *, folders: tuple[str, ...] = ()) -> bytes:
    """An Apache fancy index: sort links in the header, a parent link, sub-folders, files."""
    rows = "".join(f'<tr><td><a href="{f}">{f}</a></td><td>-</td></tr>' for f in folders)
    rows += "".join(f'<tr><td><a href="{n}">{n}</a></td><td>612K</td></tr>' for n in names)
    return (
        '<html><body><table><tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th>'
        '<th><a href="?C=S;O=A">Size</a></th></tr><tr><td><a href="/files/">Parent Directory</a></td></tr>'
        f"{rows}</table></body></html>"
    ).encode()


class Archive(BackgroundServer):
    """Day folders at ``/files/{HYDRO}/YYYY/MM/DD/``:

    - 2017/10/09: redirects to ``index.html``, which lists 3 files + ``addendum/`` (2 files);
    - 2017/10/10: redirects to ``?C=M;O=A``, the listing sorted by date;
    - 2017/10/11: sends its listing one byte every 2 s (for at most 60 s);
    - 2017/10/15: sends even its headers one byte every 2 s (at most 80 s);
    - 2017/10/12: a 64 MB page (no Content-Length: only counting can stop it);
    - 2017/10/13: links 300 files; 2017/10/14: 2,000 files;
    - 2017/10/16: links an ``addendum/`` that is not there (404).
    Any ``.mseed`` URL inside a day folder answers 200; anything else 404."""

    def __init__(self) -> None:
        self.day9 = [name_at(T0 + dt.timedelta(minutes=5 * i)) for i in range(3)]
        self.addendum = [name_at(T0 + dt.timedelta(hours=23, minutes=5 * i)) for i in range(2)]
        self.day10 = [name_at(T0 + dt.timedelta(days=1, minutes=5 * i)) for i in range(2)]
        self.requests: list[str] = []
        archive = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                archive.requests.append(self.path)
                archive.answer(self)

        super().__init__(Handler, name="listing-archive")

    def day(self, day: int) -> str:
        return f"/files/{HYDRO}/2017/10/{day:02d}/"

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        path, query = parts.path, parts.query
        if path == self.day(9):
            return self.redirect(h, path + "index.html")
        if path == self.day(9) + "index.html":
            return self.send(h, apache_index(self.day9, folders=("addendum/",)))
        if path == self.day(9) + "addendum/":
            return self.send(h, apache_index(self.addendum))
        if path == self.day(10) and query != "C=M;O=A":
            return self.redirect(h, path + "?C=M;O=A")
        if path == self.day(10):
            return self.send(h, apache_index(self.day10[::-1]))
        if path == self.day(11):
            return self.trickle(h)
        if path == self.day(16):
            return self.send(h, apache_index(self.day9, folders=("addendum/",)))  # its addendum/ is missing
        if path == self.day(15):
            return self.trickle_headers(h)
        if path == self.day(12):
            return self.huge(h, 64 * 1024 * 1024)
        if path == self.day(13):
            return self.send(h, apache_index([name_at(T0 + dt.timedelta(days=4, seconds=i)) for i in range(300)]))
        if path == self.day(14):
            return self.send(h, apache_index([name_at(T0 + dt.timedelta(days=5, seconds=i)) for i in range(2000)]))
        if path.startswith(f"/files/{HYDRO}/2017/10/") and path.endswith(".mseed"):
            return self.send(h, b"\0" * 512, "application/octet-stream")
        h.send_error(404)

    @staticmethod
    def redirect(h: BaseHTTPRequestHandler, location: str) -> None:
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    @staticmethod
    def send(h: BaseHTTPRequestHandler, body: bytes, ctype: str = "text/html;charset=UTF-8") -> None:
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    @staticmethod
    def trickle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Connection", "close")
        h.end_headers()
        body = apache_index([name_at(T0)])
        ended = threading.Event()
        for byte in body[:30]:  # 30 bytes, one every 2 s: at most 60 s
            try:
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
            except OSError:
                return
            ended.wait(2.0)  # the trickle's pace, not a synchronisation

    @staticmethod
    def trickle_headers(h: BaseHTTPRequestHandler) -> None:
        """The status line and headers themselves, a byte every 2 s (at most 60 s)."""
        ended = threading.Event()
        for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Pad: " + b"a" * 10:
            try:
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
            except OSError:
                return
            ended.wait(2.0)  # the trickle's pace, not a synchronisation
        h.close_connection = True

    @staticmethod
    def huge(h: BaseHTTPRequestHandler, size: int) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Connection", "close")
        h.end_headers()
        chunk = (b'<a href="OO-HYVM1--YDH-2017-10-12T00:00:00.000000.mseed">x</a>\n' * 1024)
        sent = 0
        while sent < size:
            try:
                h.wfile.write(chunk)
            except OSError:
                return
            sent += len(chunk)


@pytest.fixture(scope="module")
def archive() -> Iterator[Archive]:
    server = Archive()
    server.start()
    try:
        yield server
    finally:
        server.close()


def config_for(archive: Archive, **kw: Any) -> HydroSettings:
    return HydroSettings(allowed_hosts=[archive.netloc], base_url=archive.base_url + "/files/", download_attempts=1,
                         **kw)


def test_folder_of_a_page_drops_the_page_name_and_the_query() -> None:
    day = "https://rawdata.oceanobservatories.org/files/CE02SHBP/LJ01D/11-HYDBBA106/2017/10/09/"
    assert folder_url(day + "index.html") == day
    assert folder_url(day + "?C=M;O=A") == day
    assert folder_url(day + "index.html?C=N;O=D#top") == day
    assert folder_url(day.rstrip("/")) == day  # a folder reached without its slash
    assert folder_url(day) == day


def test_redirect_to_index_html_builds_file_urls_in_the_folder_and_takes_the_addendum(archive: Archive) -> None:
    listing = fetch_listing(archive.base_url + archive.day(9), policy=HostPolicy.of([archive.netloc]))
    folder = archive.base_url + archive.day(9)
    assert listing.url == folder  # the folder, not .../index.html
    assert listing.files == [folder + n for n in archive.day9] + [folder + "addendum/" + n for n in archive.addendum]
    assert not any("index.html" in f for f in listing.files)
    reasons = dict(listing.ignored)
    assert reasons["?C=M;O=A"] == reasons["?C=N;O=D"] == "a column-sort link"
    assert reasons["addendum/?C=S;O=A"] == "a column-sort link"
    # Every URL the listing gave is a file the server has (none built under the page's name).
    with httpx.Client() as client:
        assert [client.get(f).status_code for f in listing.files] == [200] * 5
    assert listing.notes == []


def test_a_missing_addendum_leaves_the_day_s_own_files(archive: Archive) -> None:
    listing = fetch_listing(archive.base_url + archive.day(16), policy=HostPolicy.of([archive.netloc]))
    assert listing.files == [archive.base_url + archive.day(16) + n for n in archive.day9]
    assert ("addendum/", "its listing answered HTTP 404") in listing.ignored


def test_redirect_to_a_sort_query_builds_file_urls_in_the_folder(archive: Archive) -> None:
    listing = fetch_listing(archive.base_url + archive.day(10), policy=HostPolicy.of([archive.netloc]))
    folder = archive.base_url + archive.day(10)
    assert listing.files == [folder + n for n in sorted(archive.day10)]
    with httpx.Client() as client:
        assert [client.get(f).status_code for f in listing.files] == [200, 200]


@pytest.mark.slow
def test_a_trickling_listing_ends_within_the_budget_with_a_clear_error(archive: Archive) -> None:
    config = config_for(archive, listing_budget_s=3.0, read_timeout_s=30.0)
    started = time.monotonic()
    with pytest.raises(ListingError, match=r"took longer than its 3 s budget.*LISTING_BUDGET_S"):
        list_range(TimeRange.of_day(dt.date(2017, 10, 11)), hydrophone=HYDRO, config=config)
    took = time.monotonic() - started
    assert took < 3.0 + 2.5, took  # the budget, plus at most one 2 s trickle step of slack
    started = time.monotonic()
    with pytest.raises(ListingError, match=r"took longer than its 3 s budget"):
        list_range(TimeRange.of_day(dt.date(2017, 10, 15)), hydrophone=HYDRO, config=config)
    assert time.monotonic() - started < 3.0 + 2.5  # also while the headers trickle


def test_a_64_mb_listing_is_cut_at_the_byte_cap_with_a_clear_error(archive: Archive) -> None:
    config = config_for(archive, listing_max_bytes=1024 * 1024)
    started = time.monotonic()
    with pytest.raises(ListingError, match=r"over the 1048576-byte limit.*LISTING_MAX_BYTES"):
        list_range(TimeRange.of_day(dt.date(2017, 10, 12)), hydrophone=HYDRO, config=config)
    assert time.monotonic() - started < 10  # stopped at the cap, not after 64 MB


@pytest.mark.slow
def test_more_files_than_a_day_holds_is_noted_and_far_more_is_refused(archive: Archive) -> None:
    [day] = list_range(TimeRange.of_day(dt.date(2017, 10, 13)), hydrophone=HYDRO, config=config_for(archive))
    assert day.listing is not None and len(day.files) == 300
    assert any("links 300 .mseed files, more than the 288" in note for note in day.listing.notes)
    with pytest.raises(ListingError, match=r"links 2000 .mseed files, more than SPECFLEET_HYDRO_MAX_DAY_FILES=1000"):
        list_range(TimeRange.of_day(dt.date(2017, 10, 14)), hydrophone=HYDRO, config=config_for(archive))
    # Told to, it takes them all.
    [big] = list_range(TimeRange.of_day(dt.date(2017, 10, 14)), hydrophone=HYDRO,
                       config=config_for(archive, max_day_files=2000))
    assert len(big.files) == 2000
