"""Malformed chart pages and bad API answers give clear errors naming the
page, artist or track; 429 Retry-After is honoured; ids are batched."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from catalog_helpers import catalog_config, serve_fakes
from helpers import query
from specfleet.catalog import ChartPageError, SpotifyError
from specfleet.catalog.build import build_catalog
from specfleet.catalog.charts import ChartArtist, parse_artist_page, parse_artists_page
from specfleet.catalog.errors import MissingCredentials
from specfleet.catalog.settings import CatalogSettings
from specfleet.catalog.spotify import SpotifyClient
from specfleet.settings import Settings
from specfleet.standins.catalog_fakes import (
    FakeSources,
    artist_page,
    artists_page,
    make_world,
)

WORLD = make_world(n_main=6, seed=11, tracks_per_artist=3)
MAIN = ChartArtist(artist_id=WORLD.chart[2], name=WORLD.artists[WORLD.chart[2]].name)
URL = "http://127.0.0.1/charts/artist/x_songs.html"


@pytest.fixture
def sources(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSources]:
    with serve_fakes(WORLD, monkeypatch) as src:
        yield src


@pytest.fixture
def offline_settings(sources: FakeSources) -> CatalogSettings:
    """For tests that need no database."""
    return catalog_config(sources)


# --- chart pages ---------------------------------------------------------------------
def test_well_formed_pages_parse() -> None:
    artists = parse_artists_page(artists_page(WORLD), URL)
    assert [a.artist_id for a in artists] == WORLD.chart
    assert [a.name for a in artists] == [WORLD.artists[a].name for a in WORLD.chart]  # & unescaped
    chart = parse_artist_page(artist_page(WORLD, MAIN.artist_id), URL, MAIN)
    assert [t.track_id for t in chart.tracks] == WORLD.chart_tracks[MAIN.artist_id]
    for parsed in chart.tracks:
        truth = WORLD.tracks[parsed.track_id]
        assert (parsed.name, parsed.streams, parsed.peak_date) == (truth.name, truth.streams, truth.peak_date)
        assert [f.artist_id for f in parsed.featuring] == [a for a in truth.artists if a != MAIN.artist_id]


GOOD_ROW_TRACK = WORLD.chart_tracks[MAIN.artist_id][0]


def _broken(old: str, new: str) -> str:
    page = artist_page(WORLD, MAIN.artist_id)
    assert old in page
    return page.replace(old, new, 1)


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        (lambda: "<html><body><p>We are down for maintenance</p></body></html>", r"no <table> on the page"),
        (lambda: _broken("<th>Peak Date</th>", "<th>Top</th>"), r"no 'peak' column"),
        (lambda: _broken(f"https://open.spotify.com/track/{GOOD_ROW_TRACK}", "https://example.org/x"),
         r"row 1 has no link to a Spotify track"),
        (lambda: _broken(f"<td>{WORLD.tracks[GOOD_ROW_TRACK].streams:,}</td>", "<td>n/a</td>"),
         rf"row 1 \(track {GOOD_ROW_TRACK} .*\): streams 'n/a' is not a number"),
        (lambda: _broken(f"<td>{WORLD.tracks[GOOD_ROW_TRACK].peak_date}</td>", "<td>yesterday</td>"),
         rf"row 1 \(track {GOOD_ROW_TRACK} .*\): peak date 'yesterday' is not YYYY-MM-DD"),
        (lambda: _broken("<tbody>", "<tbody><tr><td>only one cell</td></tr>"), r"row 1 has 1 cells, expected 4"),
    ],
)
def test_malformed_artist_page_names_artist_and_row(page, problem: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ChartPageError, match=problem) as err:
        parse_artist_page(page(), URL, MAIN)
    assert f"chart page of artist {MAIN.artist_id} ({MAIN.name}) ({URL})" in str(err.value)


def test_malformed_artists_page() -> None:
    with pytest.raises(ChartPageError, match=r"chart page .*: row 2 has no link to an artist page"):
        parse_artists_page(artists_page(WORLD).replace("artist/" + WORLD.chart[1], "nowhere/", 1), URL)
    with pytest.raises(ChartPageError, match=r"the artists table has no rows"):
        parse_artists_page("<table><tr><th>Artist</th></tr></table>", URL)


def test_build_stops_on_a_bad_page_naming_it_or_skips_it_with_keep_going(settings: Settings, sources: FakeSources) -> None:
    s, config = settings, catalog_config(sources, artists_per_commit=2)
    bad = WORLD.chart[3]
    sources.overrides[f"/charts/artist/{bad}_songs.html"] = (200, "<html><body>Access denied</body></html>")
    name = WORLD.artists[bad].name
    with pytest.raises(ChartPageError, match=rf"chart page of artist {bad} \({name}\) .*no <table>"):
        build_catalog(s, config=config)
    assert query(s, "SELECT count(*) FROM catalog_progress")[0][0] == 2  # the batch before the bad page

    report = build_catalog(s, keep_going=True, config=config)
    assert len(report.bad_pages) == 1 and bad in report.bad_pages[0]
    done = {r[0] for r in query(s, "SELECT artist_id FROM catalog_progress")}
    assert done == set(WORLD.chart) - {bad}  # the bad artist stays to do for the next run

    del sources.overrides[f"/charts/artist/{bad}_songs.html"]
    sources.overrides[f"/charts/artist/{bad}_songs.html"] = (404, "gone")
    with pytest.raises(ChartPageError, match=rf"artist {bad} .*HTTP 404"):
        build_catalog(s, config=config)


# --- Spotify API -----------------------------------------------------------------------
def test_invalid_api_answers_name_the_artist(offline_settings: CatalogSettings, sources: FakeSources) -> None:
    guest = next(a for a in WORLD.top_tracks)
    gname = WORLD.artists[guest].name
    sources.overrides[f"/v1/artists/{guest}/top-tracks"] = (200, json.dumps({"tracks": [{"id": "x", "name": "y"}]}))
    sources.overrides[f"/v1/artists/{MAIN.artist_id}/related-artists"] = (404, json.dumps({"error": "gone"}))
    with SpotifyClient(offline_settings) as api:
        with pytest.raises(SpotifyError, match=rf"top tracks of artist {guest} \({gname}\): invalid answer at tracks\.0\.id"):
            api.top_tracks(guest, gname)
        with pytest.raises(SpotifyError, match=rf"related artists of artist {MAIN.artist_id} \(.+\): HTTP 404") as err:
            api.related_artists(MAIN.artist_id, MAIN.name)
        assert err.value.status == 404
        with pytest.raises(SpotifyError, match=r"artist 0000000000000000000000 \(Nobody\): unknown artist id"):
            api.artists([WORLD.chart[0], "0" * 22], names={"0" * 22: "Nobody"})
        sources.fail_after_artists = 0
        with pytest.raises(SpotifyError, match=r"related artists of artist .*: HTTP 500 after 3 attempts"):
            api.related_artists(WORLD.chart[0])
    assert sources.count(rf"/v1/artists/{WORLD.chart[0]}/related-artists") == 3  # retried, then gave up


def test_429_retry_after_is_honoured(offline_settings: CatalogSettings, sources: FakeSources) -> None:
    artist = WORLD.chart[1]
    path = f"/v1/artists/{artist}/related-artists"
    sources.throttle[path] = 1
    sources.retry_after = "1"
    with SpotifyClient(offline_settings) as api:
        started = time.monotonic()
        related = api.related_artists(artist)
        waited = time.monotonic() - started
    assert [r.id for r in related] == WORLD.artists[artist].related
    assert api.throttled == 1 and sources.count(path) == 2
    assert waited >= 1.0  # the client slept Retry-After, not its 0.01 s back-off


def test_too_long_retry_after_fails_clearly(offline_settings: CatalogSettings, sources: FakeSources) -> None:
    sources.throttle[f"/v1/artists/{WORLD.chart[1]}/related-artists"] = 1
    sources.retry_after = "86400"
    with SpotifyClient(offline_settings) as api:
        with pytest.raises(SpotifyError, match=r"rate limited for 86400s"):
            api.related_artists(WORLD.chart[1])


def test_artist_details_are_batched(offline_settings: CatalogSettings, sources: FakeSources) -> None:
    ids = list(WORLD.artists)
    assert len(ids) == 20
    s = offline_settings.model_copy(update={"artists_per_call": 8})
    with SpotifyClient(s) as api:
        details = api.artists(ids)
    assert set(details) == set(ids)
    assert all(details[i].genres == WORLD.artists[i].genres for i in ids)
    assert sources.count(r"^/v1/artists\?ids=") == 3  # 8 + 8 + 4


def test_credentials_come_from_the_environment(
    offline_settings: CatalogSettings, sources: FakeSources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPOTIFY_CLIENT_SECRET")
    with pytest.raises(MissingCredentials, match="SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET"):
        SpotifyClient(offline_settings)
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", "wrong")
    with SpotifyClient(offline_settings) as api:
        with pytest.raises(SpotifyError, match="client credentials refused"):
            api.related_artists(WORLD.chart[0])


def test_revoked_token_is_renewed_once(offline_settings: CatalogSettings, sources: FakeSources) -> None:
    with SpotifyClient(offline_settings) as api:
        api.related_artists(WORLD.chart[0])
        sources.tokens.clear()  # the server forgets every token
        assert [r.id for r in api.related_artists(WORLD.chart[0])] == WORLD.artists[WORLD.chart[0]].related
    assert sources.count("^/api/token$") == 2
