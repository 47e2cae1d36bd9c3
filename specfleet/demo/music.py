"""Demo steps for ``specfleet demo``: search then download, against the local
video site (started here, closed by the demo through ``ctx.cleanup``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..pipelines.music.settings import MusicSettings
from ..storage import Storage

if TYPE_CHECKING:
    from . import DemoContext, PipelineSummary

#: (track_id, query, video title, seconds). The last row is hostile: it is
#: valid CSV, but an SQL injection attempt as a query, found nowhere.
DEMO_TRACKS = [
    ("demo_t1", "Around the World Daft Punk", "Daft Punk - Around the World", 40),
    ("demo_t2", "Feeling Good Nina Simone", "Nina Simone - Feeling Good", 45),
    ("demo_t3", "Bohemian Rhapsody Queen", "Queen - Bohemian Rhapsody", 50),
    ("demo_t4", "Clair de Lune Debussy", "Claude Debussy - Clair de Lune", 35),
    ("demo_t5", "So What Miles Davis", "Miles Davis - So What", 42),
    ("demo_t6", "'; DROP TABLE track_url; --", "", 0),
]


def _music_config(ctx: DemoContext) -> MusicSettings:
    """The music settings pointed at the local video site."""
    site = ctx.shared["video_site"]
    return MusicSettings(
        extra_hosts=[site.host],
        search_url=site.search_api_url,
        results_page_url=site.results_page_url,
        tmp_dir=str(ctx.workdir / "music-tmp"),
    )


def search_step(ctx: DemoContext) -> PipelineSummary:
    from ..producers.music import produce_search
    from ..standins.video_site import VideoSite
    from . import PipelineSummary, count_status, keys_with_status, run_worker, wait_for_status_drain

    site = VideoSite(ctx.workdir / "video-site").start()
    ctx.cleanup.append(site)
    ctx.shared["video_site"] = site
    for i, (_track_id, _query, title, seconds) in enumerate(DEMO_TRACKS):
        if title:
            site.add_video(f"vid{i}", title, seconds=seconds, views=10_000 * (i + 1))
    (ctx.workdir / "music-tmp").mkdir(exist_ok=True)
    queries = ctx.workdir / "queries.csv"
    lines = ["track_id,query"] + [f'{t},"{q}"' for t, q, _, _ in DEMO_TRACKS]
    queries.write_text("\n".join(lines) + "\n")

    report = produce_search(ctx.settings, queries)
    run_worker(ctx, "search", concurrency=2, config=_music_config(ctx))
    wait_for_status_drain(ctx, "search")
    counts = count_status(ctx, "search")
    seen = keys_with_status(ctx, "search", "track_id")
    ids = [t for t, *_ in DEMO_TRACKS]
    return PipelineSummary(jobs=report.enqueued, objects=0, lost=len(set(ids) - seen), **counts)


def download_step(ctx: DemoContext) -> PipelineSummary:
    from ..pipelines.download.worker import audio_key
    from ..producers.music import produce_download, tracks_with_url
    from . import PipelineSummary, count_status, keys_with_status, run_worker, wait_for_status_drain

    if "video_site" not in ctx.shared:
        raise RuntimeError("the download demo step needs the search step's video site (run search first)")
    config = _music_config(ctx)
    wanted = sorted(tracks_with_url(ctx.settings, found_only=True))
    report = produce_download(ctx.settings, config=config)
    run_worker(ctx, "download", concurrency=config.concurrent_downloads, config=config)
    wait_for_status_drain(ctx, "download")
    counts = count_status(ctx, "download")
    seen = keys_with_status(ctx, "download", "track_id")
    in_s3 = {key for key, _ in Storage(ctx.settings).list("audio/")}
    downloaded = [t for t in wanted if audio_key(t) in in_s3]
    ctx.shared["downloaded_tracks"] = downloaded
    return PipelineSummary(jobs=report.enqueued, objects=len(downloaded), lost=len(set(wanted) - seen), **counts)
