"""A local stand-in for the OOI raw-data archive (tests and the demo).

Serves ``root`` over HTTP on 127.0.0.1 the way the archive does: every
folder as an Apache-style HTML index (parent link, column-sorting links,
sub-folders, files), files as ``application/octet-stream``, 404 for
anything missing. A folder holding ``index.html`` serves that file as its
listing instead (tests use it for hostile listings). ``write_day`` fills a
day folder with synthetic miniSEED written by obspy.
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


class _Handler(SimpleHTTPRequestHandler):
    server_version = "Apache"
    root: Path

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

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        target = self._local()
        if target is None or not target.exists():
            self.send_error(404, "Not Found")
            return
        if target.is_dir():
            if not urlsplit(self.path).path.endswith("/"):
                self.send_response(301)
                self.send_header("Location", urlsplit(self.path).path + "/")
                self.end_headers()
                return
            custom = target / "index.html"
            body = custom.read_bytes() if custom.exists() else self._index(target).encode()
            self._send(body, "text/html;charset=UTF-8")
            return
        self._send(target.read_bytes(), "application/octet-stream")

    def _send(self, body: bytes, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _index(self, folder: Path) -> str:
        path = urlsplit(self.path).path
        rows = ['<tr><td><a href="../">Parent Directory</a></td><td>&nbsp;</td><td>-</td></tr>']
        for entry in sorted(folder.iterdir()):
            name = entry.name + ("/" if entry.is_dir() else "")
            size = "-" if entry.is_dir() else f"{entry.stat().st_size // 1024}K"
            rows.append(f'<tr><td><a href="{quote(name)}">{html.escape(name)}</a></td><td>2017-10-10 00:00</td><td>{size}</td></tr>')
        return (
            f"<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\"><html><head><title>Index of {html.escape(path)}</title>"
            f"</head><body><h1>Index of {html.escape(path)}</h1><table>"
            '<tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th>'
            '<th><a href="?C=S;O=A">Size</a></th></tr>' + "".join(rows) + "</table></body></html>"
        )


class OOIServer:
    """``with OOIServer(root) as srv: srv.base_url`` -> ``http://127.0.0.1:PORT/files/``."""

    def __init__(self, root: Path, port: int = 0):
        self.root = Path(root).resolve()
        handler = type("OOIHandler", (_Handler,), {"root": self.root})
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


def write_day(
    root: Path,
    hydrophone: str,
    day: dt.date,
    *,
    clean_files: int = 1,
    clean_seconds: float = 300.0,
    gap_file: bool = True,
    bad_file: bool = True,
) -> dict[str, list[str]]:
    """Fill one day folder; return file names by kind (clean, gap, bad)."""
    folder = day_dir(root, hydrophone, day)
    t0 = dt.datetime.combine(day, dt.time())
    names: dict[str, list[str]] = {"clean": [], "gap": [], "bad": []}
    for i in range(clean_files):
        start = t0 + dt.timedelta(minutes=5 * i)
        name = file_name_for(start)
        (folder / name).write_bytes(synth.mseed_bytes(synth.synthetic_signal(clean_seconds, seed=i), start))
        names["clean"].append(name)
    if gap_file:
        start = t0 + dt.timedelta(minutes=5 * clean_files)
        name = file_name_for(start)
        (folder / name).write_bytes(synth.gap_mseed_bytes(40.0, start, gap_from_s=12.0, gap_s=9.0, label_noise_s=0.04))
        names["gap"].append(name)
    if bad_file:
        start = t0 + dt.timedelta(minutes=5 * (clean_files + 1))
        name = file_name_for(start)
        good = synth.mseed_bytes(synth.synthetic_signal(12.0, seed=9), start)
        (folder / name).write_bytes(good[: len(good) // 2 + 1000])  # cut mid-record
        names["bad"].append(name)
    return names
