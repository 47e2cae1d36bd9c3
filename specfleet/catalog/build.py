"""``specfleet catalog build``: chart pages + Spotify API -> catalog tables.

Main artists are taken from the chart in order, ``CatalogSettings.artists_per_commit``
at a time. For each group: scrape their songs pages; fetch details of them
and their featuring artists in batched calls; fetch top tracks of the
featuring artists that are not on the chart (streams -1, peak date = album
release date) and the related artists of every artist not expanded before;
then write everything plus the progress marks in one transaction. A crash
loses at most the group in flight; the next run skips finished artists.
Genre inference runs last, over the whole catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg2.extensions

from ..db import connect
from ..settings import Settings
from .charts import ArtistChart, ChartArtist, ChartScraper
from .errors import CatalogError, ChartPageError
from .genre import UNDEFINED, infer_genres
from .settings import CatalogSettings
from .spotify import SpotifyClient
from .store import (
    CatalogBatch,
    artists_without_genre,
    dangling_references,
    done_artists,
    replace_inferred_genres,
    reset_progress,
    table_counts,
    write_batch,
)

log = logging.getLogger("specfleet.catalog")


@dataclass
class BuildReport:
    chart_artists: int = 0
    already_done: int = 0
    processed: int = 0
    batches: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    inferred: int = 0
    undefined: int = 0
    api_calls: int = 0
    throttled: int = 0
    #: Artists whose chart page could not be read (only with keep_going).
    bad_pages: list[str] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)


def _expanded_artists(conn: psycopg2.extensions.connection) -> set[str]:
    """Artists whose related artists (and top tracks) are already stored."""
    with conn.cursor() as cur:
        cur.execute("SELECT DISTINCT query FROM rel_artist_artist")
        return {r[0] for r in cur.fetchall()}


def collect_batch(
    charts: Sequence[ArtistChart],
    main_ids: set[str],
    expanded: set[str],
    spotify: SpotifyClient,
) -> CatalogBatch:
    """All rows for a group of main artists (network only, no database).
    Adds the artists it expanded to ``expanded``."""
    batch = CatalogBatch()
    names: dict[str, str] = {}  # catalog artist -> chart name, for error messages
    for chart in charts:
        main = chart.artist
        names[main.artist_id] = main.name
        for track in chart.tracks:
            batch.add_track(track.track_id, track.name, track.peak_date, track.streams)
            batch.link(main.artist_id, track.track_id, "main")
            for feat in track.featuring:
                names.setdefault(feat.artist_id, feat.name)
                batch.link(feat.artist_id, track.track_id, "featured")
        batch.progress[main.artist_id] = len(chart.tracks)

    catalog_ids = list(names)
    details = spotify.artists(catalog_ids, names)
    for artist_id in catalog_ids:
        artist = details[artist_id]
        batch.add_artist(artist_id, artist.name, is_main=artist_id in main_ids)
        for genre in artist.genres:
            batch.genres[(artist_id, genre)] = "spotify"

    for artist_id in catalog_ids:
        if artist_id in expanded:
            continue
        name = names[artist_id]
        if artist_id not in main_ids:
            for top in spotify.top_tracks(artist_id, name):
                batch.add_track(top.id, top.name, top.album.release(), -1)
                batch.link(artist_id, top.id, "main" if top.artists[0].id == artist_id else "featured")
        for rel in spotify.related_artists(artist_id, name):
            batch.add_artist(rel.id, rel.name, is_main=rel.id in main_ids)
            batch.relate(artist_id, rel.id, rel.genres, rel.popularity)
        expanded.add(artist_id)
    return batch


def build_catalog(
    settings: Settings,
    *,
    limit: int | None = None,
    fresh: bool = False,
    keep_going: bool = False,
    scraper: ChartScraper | None = None,
    spotify: SpotifyClient | None = None,
    on_progress: Callable[[BuildReport], None] | None = None,
    config: CatalogSettings | None = None,
) -> BuildReport:
    """Build (or resume building) the catalog; returns what was done.
    ``settings``: the database; ``config``: the sources (default: environment)."""
    config = config or CatalogSettings()
    report = BuildReport()
    own_scraper, own_spotify = scraper is None, spotify is None
    scraper = scraper or ChartScraper(config)
    spotify = spotify or SpotifyClient(config)
    conn = connect(settings)
    try:
        if fresh:
            reset_progress(conn)
        chart = scraper.top_artists()
        if limit:
            chart = chart[:limit]
        report.chart_artists = len(chart)
        main_ids = {a.artist_id for a in chart}
        done = done_artists(conn)
        todo = [a for a in chart if a.artist_id not in done]
        report.already_done = len(chart) - len(todo)
        expanded = _expanded_artists(conn)
        size = max(1, config.artists_per_commit)
        for start in range(0, len(todo), size):
            group: list[ChartArtist] = todo[start:start + size]
            charts: list[ArtistChart] = []
            for artist in group:
                try:
                    charts.append(scraper.artist_chart(artist))
                except ChartPageError as err:
                    if not keep_going:
                        raise
                    log.warning("%s", err)
                    report.bad_pages.append(str(err))
            batch = collect_batch(charts, main_ids, expanded, spotify)
            for table, n in write_batch(conn, batch).items():
                report.rows_written[table] = report.rows_written.get(table, 0) + n
            report.processed += len(charts)
            report.batches += 1
            report.api_calls, report.throttled = spotify.calls, spotify.throttled
            log.info("catalog: %d/%d main artists done", report.already_done + report.processed, len(chart))
            if on_progress:
                on_progress(report)
        genres = infer_genres(artists_without_genre(conn), seed=config.seed)
        replace_inferred_genres(conn, genres)
        report.undefined = sum(1 for g in genres.values() if g == UNDEFINED)
        report.inferred = len(genres) - report.undefined
        report.api_calls, report.throttled = spotify.calls, spotify.throttled
        report.tables = table_counts(conn)
        dangling = dangling_references(conn)
        if dangling:
            raise CatalogError(f"catalog has rows pointing at missing artists or tracks: {dangling}")
        return report
    finally:
        conn.close()
        if own_scraper:
            scraper.close()
        if own_spotify:
            spotify.close()
