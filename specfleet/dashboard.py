"""The dashboard: a live page of the fleet, served on loopback.

``report`` is a snapshot; this page updates itself every few seconds (no
reload): per pipeline the queue and its backlog, jobs done / failed /
skipped with the clips or windows they wrote, the rate and the ETA; the
instances heard from lately and their last job; failures by reason with
example jobs; hydrophone day coverage; the level products' cost per
audio-hour beside the fleet plan's estimate; the newest clips and windows,
to look at and listen to. (Flower does this for Celery but cannot inspect
SQS workers; this reads what the fleet already records: the queues, the
status tables, the bucket.)

The server is the standard library's, bound to 127.0.0.1 only. ``/api/state``
is one JSON snapshot (each request samples the queues, like ``specfleet
status``, so the backlog history fills while the page is open); ``/media``
serves objects from the bucket under the result prefixes only. The page
writes every value with ``textContent``: status reasons and job keys come
from outside and are never read as HTML.

``specfleet dashboard`` (``cli/dashboard.py``) starts a :class:`Dashboard`
and waits for Ctrl-C.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .settings import Settings

log = logging.getLogger("specfleet.dashboard")

#: How many of each list the page shows.
LIMITS = {"instances": 20, "failures": 12, "examples": 3, "clips": 6, "windows": 8}


def _json_default(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class Snapshots:
    """What ``/api/state`` returns, built at most once per ``min_interval_s``
    (several open pages do not multiply the queries); media lists at most
    once per ``media_interval_s`` (they list the bucket)."""

    def __init__(self, settings: Settings, *, min_interval_s: float = 1.0, media_interval_s: float = 15.0):
        self.settings = settings
        self.min_interval_s = min_interval_s
        self.media_interval_s = media_interval_s
        self._lock = threading.Lock()
        self._state: dict[str, Any] | None = None
        self._at = 0.0
        self._media: dict[str, Any] = {"clips": [], "windows": []}
        self._media_at = -1e9

    def state(self) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            if self._state is None or now - self._at >= self.min_interval_s:
                self._state = self._build(now)
                self._at = now
            return self._state

    def _build(self, now: float) -> dict[str, Any]:
        from .monitoring import MonitorSettings, fetch, summary

        s = self.settings
        config = MonitorSettings()
        data = summary(s, record=True, config=config)
        alive_since = f"{config.alive_window_min} minutes"
        data["instances_last_job"] = fetch(s, """
            SELECT DISTINCT ON (instance_id, pipeline) instance_id, pipeline, job_key, stat, date
            FROM status_jobs WHERE date > (now() AT TIME ZONE 'UTC') - %s::interval AND deployment IN (%s, '')
            ORDER BY instance_id, pipeline, date DESC LIMIT %s""", (alive_since, s.queue_prefix, LIMITS["instances"]))
        data["failures"] = fetch(s, """
            SELECT pipeline, stat, coalesce(nullif(reason, ''), '(no reason given)') AS reason, count(*) AS jobs,
                   (array_agg(job_key ORDER BY date DESC))[1:%s] AS examples, max(date) AS last_seen
            FROM status_jobs WHERE stat IN (0, -1) AND deployment IN (%s, '')
            GROUP BY 1, 2, 3 ORDER BY jobs DESC, last_seen DESC LIMIT %s""",
                                 (LIMITS["examples"], s.queue_prefix, LIMITS["failures"]))
        try:
            from .pipelines.hydrophone.days import status_section

            hydro = status_section(s, limit=7)
            data["hydrophone_days"] = hydro["recent"]
            data["hydrophone_levels_cost"] = hydro["levels_cost"]
        except Exception as err:  # noqa: BLE001 - one section must not take the page down
            data["hydrophone_days"] = []
            data["hydrophone_levels_cost"] = {"days": [], "total": None}
            log.info("hydrophone days unavailable: %s", err)
        if now - self._media_at >= self.media_interval_s:
            self._media = self._find_media()
            self._media_at = now
        data.update(self._media)
        return data

    def _find_media(self) -> dict[str, Any]:
        from .monitoring import fetch
        from .pipelines.hydrophone.settings import HydroSettings
        from .pipelines.melwindows.settings import SpectroSettings
        from .report import find_clips
        from .storage import Storage

        storage = Storage(self.settings)
        clips = [{"name": c.name, "day": c.day, "png": c.png_key, "wav": c.wav_key}
                 for c in find_clips(storage, HydroSettings().prefix, LIMITS["clips"])]
        prefix = SpectroSettings().output_prefix
        windows = [{"track_id": r["track_id"], "win": r["win"], "ini": r["ini"], "fin": r["fin"],
                    "jpg": f"{prefix}{r['track_id']}__{r['win']}__{r['ini']}__{r['fin']}.jpg"}
                   for r in fetch(self.settings, "SELECT track_id, win, ini, fin FROM status_specto WHERE stat = 1"
                                                 " AND deployment IN (%s, '') ORDER BY date DESC, id DESC LIMIT %s",
                                                 (self.settings.queue_prefix, LIMITS["windows"]))]
        return {"clips": clips, "windows": windows}


def media_prefixes() -> tuple[str, ...]:
    """Bucket prefixes ``/media`` may serve: the results, nothing else."""
    from .pipelines.hydrophone.settings import HydroSettings
    from .pipelines.melwindows.settings import SpectroSettings

    hydro, spectro = HydroSettings(), SpectroSettings()
    return (hydro.prefix.strip("/") + "/", hydro.whaledr_prefix.strip("/") + "/", spectro.output_prefix)


MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".wav": "audio/wav"}


class _Handler(BaseHTTPRequestHandler):
    """The dashboard's routes: the page, its state as JSON, and result media."""

    snapshots: Snapshots
    page: bytes
    prefixes: tuple[str, ...]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("dashboard %s", format % args)

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        try:
            if url.path == "/":
                self._send(200, self.page, "text/html; charset=utf-8")
            elif url.path == "/api/state":
                body = json.dumps(self.snapshots.state(), default=_json_default).encode()
                self._send(200, body, "application/json")
            elif url.path == "/media":
                self._media(parse_qs(url.query).get("key", [""])[0])
            else:
                self._send(404, b"not found", "text/plain")
        except Exception as err:  # noqa: BLE001 - one bad request must not end the server
            log.warning("dashboard request %s failed: %s", url.path, err)
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, json.dumps({"error": str(err)[:300]}).encode(),
                       "application/json")

    def _media(self, key: str) -> None:
        from pathlib import PurePosixPath

        from .storage import Storage

        ctype = MEDIA_TYPES.get(PurePosixPath(key).suffix.lower())
        if ctype is None or ".." in key or not key.startswith(self.prefixes):
            self._send(403, b"not a result object", "text/plain")
            return
        found = Storage(self.snapshots.settings).get_with_etag(key)
        if found is None:
            self._send(404, b"no such object", "text/plain")
            return
        self._send(200, found[0], ctype)


def make_handler(snapshots: Snapshots, page: bytes) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"snapshots": snapshots, "page": page, "prefixes": media_prefixes()})


class Dashboard:
    """The server; ``start()`` serves in a thread, ``url`` says where."""

    def __init__(self, settings: Settings, *, port: int = 0, refresh_s: float = 2.0, media_interval_s: float = 15.0):
        self.snapshots = Snapshots(settings, min_interval_s=min(1.0, refresh_s / 2), media_interval_s=media_interval_s)
        self.page = PAGE.replace("__REFRESH_MS__", str(int(refresh_s * 1000))).encode()
        # loopback only: the page shows the fleet's state and serves its results
        self.server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(self.snapshots, self.page))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="dashboard", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> Dashboard:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


PAGE = """<!doctype html><html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<title>specfleet dashboard</title><link rel=icon href="data:,">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:18px 0 6px}
.muted{color:#777} table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f0f0f0;text-align:left}
td:first-child,th:first-child{text-align:left} td.text{text-align:left;max-width:520px;overflow-wrap:anywhere}
.bad{color:#b00020} .ok{color:#087f23} .grid{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #ddd;padding:6px;font-size:12px}
.card img{display:block;width:200px;height:auto} audio{width:200px} tr.total td{font-weight:bold}
</style></head><body>
<h1>specfleet dashboard</h1>
<div class=muted>updated <span id=updated>never</span> &middot; every __REFRESH_MS__ ms &middot; <span id=error class=bad></span></div>
<h2>Pipelines</h2>
<table id=pipelines><thead><tr><th>pipeline</th><th>waiting</th><th>in flight</th><th>backlog</th><th>dlq</th>
<th>done</th><th>wrote</th><th>failed</th><th>skipped</th><th>jobs/min</th><th>ETA</th><th>alive</th></tr></thead><tbody></tbody></table>
<h2>Instances heard from lately and their last job</h2>
<table id=instances><thead><tr><th>instance</th><th>pipeline</th><th>last job</th><th>outcome</th><th>at (UTC)</th></tr></thead><tbody></tbody></table>
<h2>Failures by reason</h2>
<table id=failures><thead><tr><th>pipeline</th><th>jobs</th><th>reason</th><th>examples</th></tr></thead><tbody></tbody></table>
<h2>Hydrophone days</h2>
<table id=days><thead><tr><th>day</th><th>hydrophone</th><th>state</th><th>done</th><th>failed</th><th>listed</th><th>clips</th></tr></thead><tbody></tbody></table>
<h2>Hydrophone levels: cost per audio-hour, and the plan's estimate</h2>
<table id=levels-cost><thead><tr><th>day</th><th>hydrophone</th><th>files</th><th>audio h</th><th>CPU s</th><th>cost</th>
<th>estimate</th><th>cost/audio h</th><th>estimate/audio h</th></tr></thead><tbody></tbody></table>
<h2>Newest clips</h2><div id=clips class=grid></div>
<h2>Newest spectrogram windows</h2><div id=windows class=grid></div>
<script>
"use strict";
const OUTCOME = {"1": "done", "0": "failed", "2": "skipped", "-1": "banned"};
function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text == null ? "-" : String(text); if (cls) td.className = cls; return td; }
function fill(id, rows, make) { const body = document.querySelector("#" + id + " tbody"); body.replaceChildren(); for (const r of rows) make(body.insertRow(), r); }
function duration(s) { if (s === null) return "stalled"; s = Math.round(s); if (s === 0) return "-"; const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60; return h ? h + "h" + String(m).padStart(2, "0") + "m" : m + "m" + String(r).padStart(2, "0") + "s"; }
function usd(x) { return x == null ? "-" : "$" + x.toFixed(Math.abs(x) >= 0.01 ? 4 : 6); }
function media(key) { return "/media?key=" + encodeURIComponent(key); }
function render(d) {
  fill("pipelines", Object.entries(d.pipelines), (row, [name, p]) => {
    const q = p.queue || {};
    cell(row, name); cell(row, q.visible); cell(row, q.in_flight); cell(row, p.backlog, "backlog");
    cell(row, p.dlq, p.dlq ? "bad" : ""); cell(row, p.done, "done");
    cell(row, p.items_unit ? p.items + " " + p.items_unit : "-"); cell(row, p.failed, p.failed ? "bad" : "");
    cell(row, p.skipped); cell(row, p.jobs_per_min.toFixed(1)); cell(row, duration(p.eta_s));
    cell(row, p.instances_alive.length);
    row.dataset.pipeline = name;
  });
  fill("instances", d.instances_last_job, (row, r) => {
    cell(row, r.instance_id); cell(row, r.pipeline); cell(row, r.job_key.split("/").pop(), "text");
    cell(row, OUTCOME[r.stat] || r.stat, r.stat === 1 ? "ok" : "bad"); cell(row, r.date.replace("T", " ").slice(0, 19));
  });
  fill("failures", d.failures, (row, r) => {
    cell(row, r.pipeline); cell(row, r.jobs); cell(row, r.reason, "text");
    cell(row, (r.examples || []).map(k => k.split("/").pop()).join(", "), "text");
  });
  fill("days", d.hydrophone_days || [], (row, r) => {
    cell(row, r.day); cell(row, r.hydrophone, "text"); cell(row, r.state); cell(row, r.done); cell(row, r.failed);
    cell(row, r.files_listed); cell(row, r.clips);
  });
  const lc = d.hydrophone_levels_cost || {days: []};
  fill("levels-cost", lc.days.concat(lc.total && lc.days.length ? [lc.total] : []), (row, r) => {
    cell(row, r.day || "total"); cell(row, r.hydrophone, "text"); cell(row, r.files);
    cell(row, r.audio_hours.toFixed(2)); cell(row, r.cpu_s.toFixed(1)); cell(row, usd(r.cost_usd));
    cell(row, usd(r.estimate_usd)); cell(row, usd(r.cost_per_audio_hour_usd)); cell(row, usd(r.estimate_per_audio_hour_usd));
    if (!r.day) row.className = "total";
  });
  const clips = document.getElementById("clips"); clips.replaceChildren();
  for (const c of d.clips) {
    const card = document.createElement("div"); card.className = "card";
    const img = document.createElement("img"); img.src = media(c.png); img.alt = c.name; img.className = "clip"; card.append(img);
    if (c.wav) { const a = document.createElement("audio"); a.controls = true; a.preload = "none"; a.src = media(c.wav); card.append(a); }
    const label = document.createElement("div"); label.textContent = c.day + " " + c.name; card.append(label); clips.append(card);
  }
  const windows = document.getElementById("windows"); windows.replaceChildren();
  for (const w of d.windows) {
    const card = document.createElement("div"); card.className = "card";
    const img = document.createElement("img"); img.src = media(w.jpg); img.alt = w.track_id + " window " + w.win; img.className = "window"; card.append(img);
    const label = document.createElement("div"); label.textContent = w.track_id + " #" + w.win + " (" + w.ini + "-" + w.fin + " s)"; card.append(label); windows.append(card);
  }
  document.getElementById("updated").textContent = d.generated_at + " UTC";
}
async function tick() {
  try {
    const r = await fetch("/api/state", {cache: "no-store"});
    const d = await r.json();
    if (!r.ok) throw new Error(d.error || r.statusText);
    render(d); document.getElementById("error").textContent = "";
  } catch (e) { document.getElementById("error").textContent = "not updated: " + e.message; }
  setTimeout(tick, __REFRESH_MS__);
}
tick();
</script></body></html>
"""
