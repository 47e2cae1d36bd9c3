"""Local stand-ins for the catalog's remote sources, on 127.0.0.1:

* chart pages (``/charts/artists.html``, ``/charts/artist/<id>_songs.html``)
  rendered from a ``FakeWorld``;
* the few Spotify endpoints the build uses (``POST /api/token``,
  ``GET /v1/artists?ids=``, ``/v1/artists/<id>/top-tracks``,
  ``/v1/artists/<id>/related-artists``) with bearer-token checks, the
  50-ids limit, 429 + ``Retry-After`` on demand, a "fail hard after N
  artists" switch and per-path overrides for malformed answers.

``make_world`` builds a seeded, deterministic catalog with the cases the
build must handle: featuring artists on and off the chart, collaborations
between chart artists, a non-chart artist's top track that is also a chart
track, two tracks with the same name and artist, artists without genres
(a clear majority, a tie, and nothing to vote with).
"""

from __future__ import annotations

import html
import json
import random
import re
import string
import threading
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .http import BackgroundServer

FAKE_CLIENT_ID = "fake-client-id"
FAKE_CLIENT_SECRET = "fake-client-secret"
GENRES = ["pop", "rap", "latin", "reggaeton", "edm", "rock", "k-pop", "trap", "r&b", "indie"]


@dataclass
class FakeArtist:
    id: str
    name: str
    genres: list[str]
    popularity: int
    related: list[str] = field(default_factory=list)


@dataclass
class FakeTrack:
    id: str
    name: str
    artists: list[str]  # first = the track's main artist
    streams: int
    peak_date: date
    release_date: str
    release_precision: str = "day"


@dataclass
class FakeWorld:
    artists: dict[str, FakeArtist]
    tracks: dict[str, FakeTrack]
    #: Top-artists page, in order.
    chart: list[str]
    #: Main artist -> the tracks on their songs page.
    chart_tracks: dict[str, list[str]]
    #: Artist -> what the API gives as their top tracks.
    top_tracks: dict[str, list[str]]


def _ids(rng: random.Random) -> Any:
    alphabet = string.ascii_letters + string.digits
    seen: set[str] = set()
    while True:
        new = "".join(rng.choice(alphabet) for _ in range(22))
        if new not in seen:
            seen.add(new)
            yield new


def make_world(n_main: int = 50, seed: int = 7, tracks_per_artist: int = 4) -> FakeWorld:
    rng = random.Random(seed)
    ids = _ids(rng)
    artists: dict[str, FakeArtist] = {}

    def artist(name: str, genres: list[str]) -> str:
        a = FakeArtist(next(ids), name, genres, rng.randint(1, 100))
        artists[a.id] = a
        return a.id

    def some_genres(k_max: int = 2) -> list[str]:
        return rng.sample(GENRES, rng.randint(1, k_max))

    # every 5th chart artist and every 3rd guest has no genre on Spotify
    mains = [artist(f"Main Artist {i:02d}" + (" & Co" if i % 7 == 3 else ""), [] if i % 5 == 0 else some_genres())
             for i in range(n_main)]
    guests = [artist(f"Guest {i:02d}", [] if i % 3 == 0 else some_genres(1)) for i in range(max(2, n_main // 2))]
    related_pool = [artist(f"Related {i:02d}", [] if i % 4 == 0 else some_genres()) for i in range(max(4, n_main))]
    tie_a, tie_b = artist("Tie Pop", ["pop"]), artist("Tie Rock", ["rock"])
    majority = [artist(f"Majority {i}", g) for i, g in enumerate((["latin"], ["latin", "pop"], ["edm"]))]

    for aid in mains + guests:
        artists[aid].related = rng.sample(related_pool, 4) + rng.sample([m for m in mains if m != aid], 1)
    artists[mains[0]].related = [tie_a, tie_b]  # genre-less, a 1:1 tie
    artists[mains[5]].related = majority  # genre-less, latin wins 2:1:1
    artists[guests[0]].related = []  # genre-less, nothing to vote with

    tracks: dict[str, FakeTrack] = {}
    chart_tracks: dict[str, list[str]] = {m: [] for m in mains}
    top_tracks: dict[str, list[str]] = {g: [] for g in guests}
    day0 = date(2017, 1, 1)

    def track(name: str, by: list[str], streams: int, precision: str = "day") -> str:
        released = day0 + timedelta(days=rng.randint(0, 2000))
        rel = {"day": released.isoformat(), "month": released.isoformat()[:7], "year": str(released.year)}[precision]
        t = FakeTrack(next(ids), name, by, streams, released + timedelta(days=rng.randint(0, 60)), rel, precision)
        tracks[t.id] = t
        return t.id

    for i, main in enumerate(mains):
        for k in range(tracks_per_artist):
            name = f"Song {i:02d}-{k}"
            by = [main]
            if k == 1:
                by.append(guests[i % len(guests)])  # every guest is on some hit
            elif k == 2 and i % 4 == 0:
                by.append(mains[(i + 1) % n_main])  # a collaboration of two chart artists
            if k == 3 and i % 10 == 1:
                name = f"Song {i:02d}-0"  # same title as k=0: one query after de-duplication
            tid = track(name, by, rng.randint(1_000_000, 2_000_000_000))
            for a in by:
                if a in chart_tracks:
                    chart_tracks[a].append(tid)
                else:
                    top_tracks[a].append(tid)  # a guest's top tracks include the hit they are on
    for g, guest in enumerate(guests):
        for k in range(2):
            top_tracks[guest].append(track(f"Guest Song {g:02d}-{k}", [guest], -1, "year" if k else "month"))
    chart = list(mains)
    return FakeWorld(artists, tracks, chart, chart_tracks, top_tracks)


# --- rendering ------------------------------------------------------------------
def artists_page(world: FakeWorld) -> str:
    rows = "\n".join(
        f'<tr><td>{pos}</td><td class="text"><div><a href="artist/{aid}_songs.html">'
        f"{html.escape(world.artists[aid].name)}</a></div></td><td>{1_000_000 * (100 - pos):,}</td></tr>"
        for pos, aid in enumerate(world.chart, start=1)
    )
    return (
        "<!DOCTYPE html><html><head><title>Spotify Top Artists</title></head><body>"
        '<table class="addpos sortable"><thead><tr><th>Pos</th><th>Artist</th><th>Streams</th></tr></thead>'
        f"<tbody>\n{rows}\n</tbody></table></body></html>"
    )


def artist_page(world: FakeWorld, artist_id: str) -> str:
    rows = []
    for tid in world.chart_tracks[artist_id]:
        t = world.tracks[tid]
        others = [a for a in t.artists if a != artist_id]
        feat = ""
        if others:
            links = ", ".join(
                f'<a href="../artist/{a}_songs.html">{html.escape(world.artists[a].name)}</a>' for a in others
            )
            feat = f" (w/ {links})"
        rows.append(
            f'<tr><td class="text"><div><a href="https://open.spotify.com/track/{t.id}">{html.escape(t.name)}</a>'
            f"{feat}</div></td><td>{t.streams:,}</td><td>{t.streams // 1000:,}</td><td>{t.peak_date}</td></tr>"
        )
    name = html.escape(world.artists[artist_id].name)
    return (
        f"<!DOCTYPE html><html><head><title>{name} - Spotify Songs</title></head><body><h1>{name}</h1>"
        '<table class="sortable"><thead><tr><th>Song Title</th><th>Streams</th><th>Daily</th><th>Peak Date</th>'
        "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table></body></html>"
    )


def _artist_json(a: FakeArtist) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "genres": a.genres, "popularity": a.popularity, "type": "artist"}


def _track_json(world: FakeWorld, t: FakeTrack) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "artists": [{"id": a, "name": world.artists[a].name} for a in t.artists],
        "album": {"release_date": t.release_date, "release_date_precision": t.release_precision},
    }


# --- server -----------------------------------------------------------------------
class FakeSources:
    """Chart pages + fake Spotify API on one local HTTP server."""

    def __init__(self, world: FakeWorld, client_id: str = FAKE_CLIENT_ID, client_secret: str = FAKE_CLIENT_SECRET):
        self.world = world
        self.credentials = (client_id, client_secret)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        #: path -> number of 429 answers still to give before serving it.
        self.throttle: dict[str, int] = {}
        self.retry_after = "1"
        #: After this many related-artists answers, every API call is a 500.
        self.fail_after_artists: int | None = None
        self.related_served = 0
        #: path -> (status, body): malformed pages or answers.
        self.overrides: dict[str, tuple[int, str]] = {}
        self.tokens: set[str] = set()
        self._server: BackgroundServer | None = None

    # --- lifecycle ---------------------------------------------------------------
    def start(self, port: int = 0) -> FakeSources:
        sources = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                sources._handle(self, "GET")

            def do_POST(self) -> None:
                sources._handle(self, "POST")

        self._server = BackgroundServer(Handler, port=port, name="fake-catalog").start()
        return self

    def close(self) -> None:
        if self._server:
            self._server.close()
            self._server = None

    stop = close

    @property
    def base_url(self) -> str:
        assert self._server is not None, "not started"
        return self._server.base_url

    def settings_overrides(self) -> dict[str, Any]:
        """``CatalogSettings`` fields that point the catalog builder here."""
        return {
            "chart_url": f"{self.base_url}/charts/",
            "spotify_api_url": f"{self.base_url}/v1",
            "spotify_auth_url": f"{self.base_url}/api/token",
        }

    def env(self) -> dict[str, str]:
        """Environment that points ``specfleet catalog build`` here."""
        o = self.settings_overrides()
        return {
            "SPECFLEET_CATALOG_CHART_URL": o["chart_url"],
            "SPECFLEET_SPOTIFY_API_URL": o["spotify_api_url"],
            "SPECFLEET_SPOTIFY_AUTH_URL": o["spotify_auth_url"],
            "SPOTIFY_CLIENT_ID": self.credentials[0],
            "SPOTIFY_CLIENT_SECRET": self.credentials[1],
        }

    def count(self, pattern: str) -> int:
        with self.lock:
            return sum(1 for _, p in self.requests if re.search(pattern, p))

    # --- request handling ------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(req.path)
        path, query = url.path, parse_qs(url.query)
        with self.lock:
            self.requests.append((method, req.path))
            throttled = self.throttle.get(path, 0)
            if throttled:
                self.throttle[path] = throttled - 1
        if throttled:
            return self._send(req, 429, json.dumps({"error": {"status": 429, "message": "API rate limit exceeded"}}),
                              headers={"Retry-After": self.retry_after})
        if path in self.overrides:
            status, body = self.overrides[path]
            return self._send(req, status, body, "application/json" if path.startswith("/v1") else "text/html")
        if path.startswith("/charts/"):
            return self._chart(req, path)
        if path == "/api/token" and method == "POST":
            return self._token(req)
        if path.startswith("/v1/"):
            return self._api(req, path, query)
        self._send(req, 404, "not found", "text/plain")

    def _send(self, req: BaseHTTPRequestHandler, status: int, body: str, ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8")
        req.send_response(status)
        req.send_header("Content-Type", f"{ctype}; charset=utf-8")
        req.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            req.send_header(k, v)
        req.end_headers()
        req.wfile.write(data)

    def _chart(self, req: BaseHTTPRequestHandler, path: str) -> None:
        if path == "/charts/artists.html":
            return self._send(req, 200, artists_page(self.world), "text/html")
        m = re.fullmatch(r"/charts/artist/([0-9A-Za-z]{22})_songs\.html", path)
        if m and m.group(1) in self.world.chart_tracks:
            return self._send(req, 200, artist_page(self.world, m.group(1)), "text/html")
        self._send(req, 404, "<html><body>Not Found</body></html>", "text/html")

    def _token(self, req: BaseHTTPRequestHandler) -> None:
        import base64

        length = int(req.headers.get("Content-Length") or 0)
        form = parse_qs(req.rfile.read(length).decode())
        expected = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        if req.headers.get("Authorization") != expected or form.get("grant_type") != ["client_credentials"]:
            return self._send(req, 401, json.dumps({"error": "invalid_client"}))
        with self.lock:
            token = f"tok{len(self.tokens)}"
            self.tokens.add(token)
        self._send(req, 200, json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": 3600}))

    def _api(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        auth = req.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return self._send(req, 401, json.dumps({"error": {"status": 401, "message": "Invalid access token"}}))
        with self.lock:
            failing = self.fail_after_artists is not None and self.related_served >= self.fail_after_artists
        if failing:
            return self._send(req, 500, json.dumps({"error": {"status": 500, "message": "Server error"}}))
        world = self.world
        if path == "/v1/artists":
            ids = [i for i in query.get("ids", [""])[0].split(",") if i]
            if not ids or len(ids) > 50:
                return self._send(req, 400, json.dumps({"error": {"status": 400, "message": "Invalid ids"}}))
            body = {"artists": [_artist_json(world.artists[i]) if i in world.artists else None for i in ids]}
            return self._send(req, 200, json.dumps(body))
        m = re.fullmatch(r"/v1/artists/([^/]+)/(top-tracks|related-artists)", path)
        if not m or m.group(1) not in world.artists:
            return self._send(req, 404, json.dumps({"error": {"status": 404, "message": "Non existing id"}}))
        artist = world.artists[m.group(1)]
        if m.group(2) == "top-tracks":
            if not query.get("market"):
                return self._send(req, 400, json.dumps({"error": {"status": 400, "message": "Missing market"}}))
            tracks = [_track_json(world, world.tracks[t]) for t in world.top_tracks.get(artist.id, [])]
            return self._send(req, 200, json.dumps({"tracks": tracks}))
        with self.lock:
            self.related_served += 1
        self._send(req, 200, json.dumps({"artists": [_artist_json(world.artists[a]) for a in artist.related]}))
