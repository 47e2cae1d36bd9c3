"""A local stand-in for the OOI raw-data archive (tests and the demo), as
awkward as the real one.

What the real archive holds (ooi-data/ooi-hyd-tools: README.md "How the
repair works" and "Known issues to fix", docs/data-access.md,
docs/upstream-repair.md; ooi-data/ooi-hyd-tools commit ca871bc "mseed to
audio looks for addendum by default"), and what ``write_day`` writes:

- a 5-minute file comes in 1 to 1,200+ pieces (one obspy trace per
  packet) whose time labels are wrong by a fraction of a millisecond up to
  a quarter second, differently per instrument and year (observed 10-250
  ms); samples are never dropped or duplicated. Every file here is written
  in ~1,200 pieces per 5 minutes with that day's label noise (largest
  overlaps of 10-250 ms, ``label_noise_for``);
- real breaks (recording missing mid-file): the "gap" file;
- short files (recording diverted away before the slot ends): "short";
- a file holding more than its 5 minutes ("CASE C", duplicated packets
  shore-side): "long";
- days 50-100 % covered: slots of the day's grid left empty;
- an ``addendum/`` folder in some days, holding late pieces;
- Apache's listings: fancy-index HTML with column-sorting links
  (``?C=N;O=D``, ``?C=M;O=A``, ...) that really sort, ``index.html`` served
  as the folder's listing, and days whose folder URL redirects to
  ``.../index.html`` or ``.../?C=M;O=A`` (``listing_redirect``).

Days go under whatever hydrophone path the caller gives ``write_day`` or
``day_dir``, so a test can put one day in the archive's numbered folder
(``11-HYDBBA106``) and the next in the plain one (``HYDBBA106``), as the
archive did around its 2023-06-07 layout change and its later retroactive
move of old days (ooipy issues #159 and #201).

Serves ``root`` over HTTP on 127.0.0.1: folders as listings, files as
``application/octet-stream``, 404 for anything missing. A folder holding a
real ``index.html`` serves that file as its listing (tests use it for
hostile listings). Files are written by obspy (``mseed_synth``).
"""

from __future__ import annotations

import datetime as dt
import html
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from . import mseed_synth as synth
from .http import BackgroundServer

URL_ROOT = "/files/"
#: A day folder holding this file redirects its listing there (``index.html`` or ``?C=M;O=A``).
REDIRECT_MARKER = ".redirect"
#: ~1,200 pieces per 5-minute file, as the archive holds them (README "How the repair works").
PIECE_SAMPLES = 16_000


class _Handler(SimpleHTTPRequestHandler):
    server_version = "Apache"
    root: Path
    requests: list[str]

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _local(self) -> Path | None:
        path = unquote(urlsplit(self.path).path)
        if not path.startswith(URL_ROOT):
            return None
        rel = path[len(URL_ROOT):]
        target = (self.root / rel).resolve()
        if target != self.root and self.root not in target.parents:
            return None
        return target

    def _redirect(self, location: str, code: int = 301) -> None:
        self.send_response(code)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        self.requests.append(self.path)
        target = self._local()
        parts = urlsplit(self.path)
        # Apache's DirectoryIndex: ".../index.html" is the folder's listing.
        if target is not None and target.name == "index.html" and not target.exists() and target.parent.is_dir():
            self._send(self._index(target.parent, parts.path[: -len("index.html")], parts.query).encode(),
                       "text/html;charset=UTF-8")
            return
        if target is None or not target.exists() or target.name.startswith("."):
            self.send_error(404, "Not Found")
            return
        if target.is_dir():
            if not parts.path.endswith("/"):
                self._redirect(parts.path + "/")
                return
            marker = target / REDIRECT_MARKER
            if marker.exists() and not parts.query:
                self._redirect(parts.path + marker.read_text().strip(), 302)
                return
            custom = target / "index.html"
            body = custom.read_bytes() if custom.exists() else self._index(target, parts.path, parts.query).encode()
            self._send(body, "text/html;charset=UTF-8")
            return
        self._send(target.read_bytes(), "application/octet-stream")

    def _send(self, body: bytes, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _index(self, folder: Path, path: str, query: str = "") -> str:
        """Apache's fancy index of ``folder``: sorted as ``?C=N|M|S;O=A|D`` asks
        (name ascending by default), every column header a sort link."""
        sort = dict(p.split("=", 1) for p in query.replace("&", ";").split(";") if "=" in p)
        column, order = sort.get("C", "N"), sort.get("O", "A")
        entries = [e for e in folder.iterdir() if not e.name.startswith(".") and e.name != "index.html"]
        keys = {"M": lambda e: (e.stat().st_mtime, e.name), "S": lambda e: (e.stat().st_size, e.name)}
        entries.sort(key=keys.get(column, lambda e: (0, e.name)), reverse=order == "D")
        rows = ['<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td>'
                '<td><a href="../">Parent Directory</a></td><td>&nbsp;</td><td align="right">  - </td></tr>']
        for entry in entries:
            name = entry.name + ("/" if entry.is_dir() else "")
            size = "-" if entry.is_dir() else _apache_size(entry.stat().st_size)
            when = dt.datetime.fromtimestamp(entry.stat().st_mtime, dt.UTC)
            icon = "folder" if entry.is_dir() else "unknown"
            rows.append(
                f'<tr><td valign="top"><img src="/icons/{icon}.gif" alt="[   ]"></td>'
                f'<td><a href="{quote(name)}">{html.escape(name)}</a></td>'
                f'<td align="right">{when:%Y-%m-%d %H:%M}  </td><td align="right">{size}</td></tr>'
            )

        def head(col: str, label: str) -> str:
            flip = "D" if (column, order) == (col, "A") else "A"
            return f'<th><a href="?C={col};O={flip}">{label}</a></th>'

        return (
            f"<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\"><html><head><title>Index of {html.escape(path)}</title>"
            f"</head><body><h1>Index of {html.escape(path)}</h1><table>"
            '<tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th>'
            + head("N", "Name") + head("M", "Last modified") + head("S", "Size")
            + "</tr>" + "".join(rows) + "</table></body></html>"
        )


def _apache_size(n: int) -> str:
    """The size column in whole KiB, rounded down (``612K``)."""
    return f"{n // 1024}K"


class OOIServer:
    """``with OOIServer(root) as srv: srv.base_url`` -> ``http://127.0.0.1:PORT/files/``."""

    def __init__(self, root: Path, port: int = 0):
        self.root = Path(root).resolve()
        #: Paths asked, in order (tests check which folders a client tried).
        self.requests: list[str] = []
        handler = type("OOIHandler", (_Handler,), {"root": self.root, "requests": self.requests})
        self.server = BackgroundServer(handler, port=port, name="ooi-stand-in")

    @property
    def base_url(self) -> str:
        return self.server.base_url + URL_ROOT

    @property
    def netloc(self) -> str:
        """What ``HydroSettings.allowed_hosts`` must name for workers to fetch from here."""
        return self.server.netloc

    def start(self) -> OOIServer:
        self.server.start()
        return self

    def close(self) -> None:
        self.server.close()

    def __enter__(self) -> OOIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def file_name_for(start: dt.datetime, station: str = "HYVM1", channel: str = "YDH") -> str:
    """OOI-style file name: ``OO-HYVM1--YDH-2017-10-09T00:00:00.000000.mseed``."""
    return f"OO-{station}--{channel}-{start:%Y-%m-%dT%H:%M:%S}.000000.mseed"


def day_dir(root: Path, hydrophone: str, day: dt.date) -> Path:
    path = Path(root) / hydrophone / f"{day:%Y/%m/%d}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def label_noise_for(day: dt.date) -> float:
    """The day's largest label error in seconds, 5-125 ms either way, so the
    largest overlap between two pieces (OOI's measure of a file's label
    noise, two labels' errors) comes out at 10-250 ms as observed. It
    differs between instruments and years in the real archive; here by date."""
    return 0.005 + (day.toordinal() * 37 % 121) / 1000.0


def _pieces(data: object, start: dt.datetime, noise: float, seed: int, **kw: object) -> bytes:
    return synth.pieces_mseed_bytes(data, start, piece_samples=PIECE_SAMPLES, label_noise_s=noise, seed=seed, **kw)  # type: ignore[arg-type]


def write_day(
    root: Path,
    hydrophone: str,
    day: dt.date,
    *,
    clean_files: int = 1,
    clean_seconds: float = 300.0,
    gap_file: bool = True,
    bad_file: bool = True,
    short_file: bool = False,
    long_file: bool = False,
    addendum: bool = False,
    empty_slots: tuple[int, ...] = (),
    listing_redirect: str = "",
) -> dict[str, list[str]]:
    """Fill one day folder; return file names by kind (clean, gap, bad,
    short, long, addendum). Every file is written in pieces with the day's
    label noise (``label_noise_for``). Files take the day's 5-minute slots
    in order, skipping ``empty_slots`` (coverage below 100 %):

    - clean: ``clean_seconds`` of recording each;
    - gap: 40 s with a real 9 s break at 12 s;
    - bad: cut mid-record;
    - short: the recording diverted away after 45 s of its slot;
    - long: ``clean_seconds`` + 0.5 s (more than a 5-minute file holds when
      ``clean_seconds`` is 300);
    - addendum: a 3 s file of late pieces in ``addendum/`` (listed as a
      sub-folder of the day);

    ``listing_redirect``: ``"index.html"`` or ``"?C=M;O=A"`` makes the day's
    folder URL redirect to that form of its listing."""
    folder = day_dir(root, hydrophone, day)
    t0 = dt.datetime.combine(day, dt.time())
    noise = label_noise_for(day)
    slot = (i for i in range(288) if i not in set(empty_slots))
    names: dict[str, list[str]] = {k: [] for k in ("clean", "gap", "bad", "short", "long", "addendum")}

    def put(kind: str, data: bytes, where: Path = folder, start: dt.datetime | None = None) -> None:
        at = start or t0 + dt.timedelta(minutes=5 * next(slot))
        name = file_name_for(at)
        (where / name).write_bytes(data)
        names[kind].append(name)

    for i in range(clean_files):
        at = t0 + dt.timedelta(minutes=5 * next(slot))
        put("clean", _pieces(synth.synthetic_signal(clean_seconds, seed=i), at, noise, i), start=at)
    if gap_file:
        at = t0 + dt.timedelta(minutes=5 * next(slot))
        put("gap", synth.gap_mseed_bytes(40.0, at, gap_from_s=12.0, gap_s=9.0, label_noise_s=noise), start=at)
    if bad_file:
        at = t0 + dt.timedelta(minutes=5 * next(slot))
        good = synth.mseed_bytes(synth.synthetic_signal(12.0, seed=9), at)
        put("bad", good[: len(good) // 2 + 1000], start=at)  # cut mid-record
    if short_file:
        at = t0 + dt.timedelta(minutes=5 * next(slot))
        put("short", _pieces(synth.synthetic_signal(45.0, seed=21), at, noise, 21), start=at)
    if long_file:
        at = t0 + dt.timedelta(minutes=5 * next(slot))
        put("long", _pieces(synth.synthetic_signal(clean_seconds + 0.5, seed=22), at, noise, 22), start=at)
    if addendum:
        extra = folder / "addendum"
        extra.mkdir(exist_ok=True)
        at = t0 + dt.timedelta(minutes=5 * next(slot), seconds=7.25)
        put("addendum", _pieces(synth.synthetic_signal(3.0, seed=23), at, noise, 23), where=extra, start=at)
    marker = folder / REDIRECT_MARKER
    if listing_redirect:
        if listing_redirect not in ("index.html", "?C=M;O=A"):
            raise ValueError(f"listing_redirect must be 'index.html' or '?C=M;O=A', got {listing_redirect!r}")
        marker.write_text(listing_redirect)
    elif marker.exists():
        marker.unlink()
    return names
