"""Scrape the public chart pages (kworb-style HTML tables).

* the top-artists page: one table row per artist, the first cell links to
  ``artist/<spotify id>_songs.html``;
* an artist's songs page: one row per track; the title cell links to
  ``open.spotify.com/track/<id>`` and then to the featuring artists' pages;
  the ``Streams`` and ``Peak Date`` columns are found by their headers.

Parsing uses BeautifulSoup; anything not shaped like that raises
``ChartPageError`` naming the page, the artist and the row.
"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urljoin

import httpx
from bs4 import BeautifulSoup, Tag
from pydantic import BaseModel, Field

from ..outbound import HostPolicy, OutboundRefused, guarded_client
from .errors import ChartPageError
from .settings import CatalogSettings

_ARTIST_HREF = re.compile(r"artist/([0-9A-Za-z]{22})(?:_songs)?\.html$")
_TRACK_HREF = re.compile(r"open\.spotify\.com/track/([0-9A-Za-z]{22})(?:[?#].*)?$")
SpotifyId = str


class ChartArtist(BaseModel):
    artist_id: SpotifyId = Field(pattern=r"^[0-9A-Za-z]{22}$")
    name: str = Field(min_length=1)


class ChartTrack(BaseModel):
    track_id: SpotifyId = Field(pattern=r"^[0-9A-Za-z]{22}$")
    name: str = Field(min_length=1)
    streams: int = Field(ge=0)
    peak_date: date
    featuring: list[ChartArtist] = []


class ArtistChart(BaseModel):
    artist: ChartArtist
    tracks: list[ChartTrack]


def _soup_table(html: str, url: str, artist: str | None) -> tuple[list[str], list[Tag]]:
    """Headers (lower-case) and body rows of the page's first data table."""
    soup = BeautifulSoup(html, "html.parser")
    table = soup.find("table")
    if not isinstance(table, Tag):
        raise ChartPageError(url, "no <table> on the page", artist)
    headers = [th.get_text(" ", strip=True).lower() for th in table.find_all("th")]
    rows = [tr for tr in table.find_all("tr") if tr.find("td") is not None]
    return headers, rows


def _column(headers: list[str], wanted: str, url: str, artist: str | None) -> int:
    for i, h in enumerate(headers):
        if wanted in h:
            return i
    raise ChartPageError(url, f"no {wanted!r} column (headers: {headers})", artist)


def parse_artists_page(html: str, url: str) -> list[ChartArtist]:
    """The top-artists list, in chart order, without repeats."""
    _, rows = _soup_table(html, url, None)
    artists: list[ChartArtist] = []
    seen: set[str] = set()
    for n, row in enumerate(rows, start=1):
        link = row.find("a", href=_ARTIST_HREF)
        if not isinstance(link, Tag):
            raise ChartPageError(url, f"row {n} has no link to an artist page")
        artist_id = _ARTIST_HREF.search(str(link["href"])).group(1)  # type: ignore[union-attr]
        name = link.get_text(strip=True)
        if not name:
            raise ChartPageError(url, f"row {n}: artist {artist_id} has an empty name")
        if artist_id not in seen:
            seen.add(artist_id)
            artists.append(ChartArtist(artist_id=artist_id, name=name))
    if not artists:
        raise ChartPageError(url, "the artists table has no rows")
    return artists


def _int(text: str) -> int:
    return int(text.replace(",", "").replace(" ", ""))


def parse_artist_page(html: str, url: str, artist: ChartArtist) -> ArtistChart:
    """One main artist's chart tracks with their featuring artists."""
    label = f"{artist.artist_id} ({artist.name})"
    headers, rows = _soup_table(html, url, label)
    streams_col = _column(headers, "streams", url, label)
    peak_col = _column(headers, "peak", url, label)
    tracks: list[ChartTrack] = []
    for n, row in enumerate(rows, start=1):
        cells = row.find_all("td")
        if len(cells) <= max(streams_col, peak_col):
            raise ChartPageError(url, f"row {n} has {len(cells)} cells, expected {len(headers)}", label)
        title = cells[0]
        link = title.find("a", href=_TRACK_HREF)
        if not isinstance(link, Tag):
            raise ChartPageError(url, f"row {n} has no link to a Spotify track", label)
        track_id = _TRACK_HREF.search(str(link["href"])).group(1)  # type: ignore[union-attr]
        name = link.get_text(strip=True)
        where = f"row {n} (track {track_id} {name!r})"
        if not name:
            raise ChartPageError(url, f"{where}: empty track name", label)
        streams_text = cells[streams_col].get_text(strip=True)
        peak_text = cells[peak_col].get_text(strip=True)
        try:
            streams = _int(streams_text)
        except ValueError:
            raise ChartPageError(url, f"{where}: streams {streams_text!r} is not a number", label) from None
        try:
            peak = date.fromisoformat(peak_text)
        except ValueError:
            raise ChartPageError(url, f"{where}: peak date {peak_text!r} is not YYYY-MM-DD", label) from None
        featuring = []
        for a in title.find_all("a", href=_ARTIST_HREF):
            fid = _ARTIST_HREF.search(str(a["href"])).group(1)  # type: ignore[union-attr]
            fname = a.get_text(strip=True)
            if not fname:
                raise ChartPageError(url, f"{where}: featuring artist {fid} has an empty name", label)
            if fid != artist.artist_id:
                featuring.append(ChartArtist(artist_id=fid, name=fname))
        tracks.append(ChartTrack(track_id=track_id, name=name, streams=streams, peak_date=peak, featuring=featuring))
    if not tracks:
        raise ChartPageError(url, "the songs table has no rows", label)
    return ArtistChart(artist=artist, tracks=tracks)


class ChartScraper:
    """Fetches chart pages over HTTP (one pooled client)."""

    def __init__(self, settings: CatalogSettings, client: httpx.Client | None = None):
        self.base = settings.chart_url.rstrip("/") + "/"
        self.settings = settings
        # Only the configured chart host, redirects included (specfleet.outbound).
        self.client = client or guarded_client(
            HostPolicy.for_urls([settings.chart_url], what="chart site"),
            connect_timeout_s=settings.http_timeout_s,
            read_timeout_s=settings.http_timeout_s,
        )

    def close(self) -> None:
        self.client.close()

    def _get(self, url: str, artist: str | None) -> str:
        try:
            resp = self.client.get(url)
        except (httpx.HTTPError, OutboundRefused) as err:
            raise ChartPageError(url, f"could not fetch: {err}", artist) from err
        if resp.status_code != 200:
            raise ChartPageError(url, f"HTTP {resp.status_code}", artist)
        return resp.text

    def artists_url(self) -> str:
        return urljoin(self.base, self.settings.artists_page)

    def artist_url(self, artist_id: str) -> str:
        return urljoin(self.base, self.settings.artist_page.format(artist_id=artist_id))

    def top_artists(self) -> list[ChartArtist]:
        url = self.artists_url()
        return parse_artists_page(self._get(url, None), url)

    def artist_chart(self, artist: ChartArtist) -> ArtistChart:
        url = self.artist_url(artist.artist_id)
        return parse_artist_page(self._get(url, f"{artist.artist_id} ({artist.name})"), url, artist)
