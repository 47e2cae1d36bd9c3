"""Search: both backends against the local video site (real yt-dlp, real
headless Chromium), the search worker into ``track_url``, and the producers'
CSV validation."""

from __future__ import annotations

import pytest

from helpers import count, query, wait_for
from specfleet.pipelines.music.producers import (
    CsvError,
    produce_download,
    produce_search,
    read_download_csv,
    read_search_csv,
)
from specfleet.pipelines.music.search import PIPELINE
from specfleet.pipelines.music.search_backends import SeleniumBackend, YtDlpBackend, parse_views
from specfleet.pipelines.music.video_site import VideoSite
from specfleet.queues import job_queue
from specfleet.runtime import EXIT_OK, Banned, Rejected, Worker
from specfleet.settings import Settings


@pytest.fixture
def site():
    with VideoSite() as s:
        s.add_video("dp1", "Daft Punk - Around the World", seconds=2, views=2_345_678)
        s.add_video("dp2", "Daft Punk - Around the World (live)", seconds=2, views=1_200)
        s.add_video("nm1", "Nina Simone - Feeling Good", seconds=2, views=987)
        yield s


def site_settings(base: Settings, site: VideoSite, **kw) -> Settings:
    return base.model_copy(update={
        "music_extra_hosts": [site.host], "music_search_url": site.search_api_url,
        "music_results_page_url": site.results_page_url, "music_page_timeout_s": 10,
        "music_socket_timeout_s": 2, **kw,
    })


def test_parse_views():
    assert [parse_views(t) for t in ("1.2M views", "12,345 views", "987 views", "No views", "3.4K views", 42, None, "")] \
        == [1_200_000, 12_345, 987, 0, 3_400, 42, -1, -1]


def test_ytdlp_backend_against_local_search_api(site):
    backend = YtDlpBackend(site_settings(Settings(), site))
    first = backend.search("around the world daft punk")
    assert first is not None
    assert first.href == site.watch_url("dp1") and first.views == 2_345_678
    assert backend.search("no such song anywhere") is None
    site.mode = "botcheck"
    with pytest.raises(Banned, match="not a bot"):
        backend.search("feeling good")
    site.mode = "429"
    with pytest.raises(Banned, match="429"):
        backend.search("feeling good")
    assert site.count("search") == 4


def test_selenium_backend_in_headless_chromium(site, artifacts_dir):
    backend = SeleniumBackend(site_settings(Settings(), site))
    try:
        first = backend.search("Nina Simone feeling good")
        assert first is not None
        # The list is rendered by script: only a real browser sees it.
        assert first.href == site.watch_url("nm1") and first.views == 987
        top = backend.search("daft punk around the world")
        assert top is not None and top.href == site.watch_url("dp1") and top.views == 2_300_000
        backend._driver.save_screenshot(str(artifacts_dir / "music_selenium_results.png"))
        assert backend.search("nothing matches this") is None
        site.mode = "botcheck"
        with pytest.raises(Banned, match="not a bot"):
            backend.search("feeling good")
        site.mode = "404"
        with pytest.raises(Rejected):
            backend.search("feeling good")
    finally:
        backend.close()
    assert site.count("results") == 5


@pytest.mark.parametrize("backend", ["ytdlp", "selenium"])
def test_search_worker_fills_track_url(settings, site, tmp_path, backend):
    s = site_settings(settings, site, music_search_backend=backend)
    csv_path = tmp_path / "queries.csv"
    csv_path.write_text(
        "track_id,query\n"
        "t_dp,Around the World Daft Punk\n"
        "t_ns,Feeling Good Nina Simone\n"
        "t_none,Song That Does Not Exist\n"
        "t_sql,'; DROP TABLE track_url; --\n"
    )
    report = produce_search(s, csv_path)
    assert (report.total, report.enqueued) == (4, 4)
    worker = Worker(s, PIPELINE, concurrency=2, idle_exit_s=1.5)
    assert worker.run() == EXIT_OK
    rows = dict((t, (h, v)) for t, h, v in query(s, "SELECT track_id, href, views FROM track_url"))
    expected_views = 2_345_678 if backend == "ytdlp" else 2_300_000  # the page shows "2.3M views"
    assert rows == {"t_dp": (site.watch_url("dp1"), expected_views), "t_ns": (site.watch_url("nm1"), 987)}
    wait_for(lambda: count(s, "status_search") == 4, what="four search status rows")
    assert count(s, "status_search", "stat = 1") == 2
    reasons = [r for (r,) in query(s, "SELECT reason FROM status_search WHERE stat = 0 ORDER BY track_id")]
    assert len(reasons) == 2 and all("no search result" in r for r in reasons)

    # Tracks already searched are skipped next time; their URLs feed the download producer.
    again = produce_search(s, csv_path)
    assert (again.skipped, again.enqueued) == (2, 2)
    assert produce_download(s).enqueued == 2
    assert job_queue(s, "download").depth()["visible"] == 2


def test_search_result_on_foreign_host_is_refused(settings, site):
    s = site_settings(settings, site)
    s = s.model_copy(update={"music_extra_hosts": []})  # the site is no longer an allowed host
    job_queue(s, "search").send_json([{"track_id": "t1", "query": "feeling good"}])
    Worker(s, PIPELINE, concurrency=1, idle_exit_s=1).run()
    wait_for(lambda: count(s, "status_search") == 1, what="the refusal row")
    (stat, reason), = query(s, "SELECT stat, reason FROM status_search")
    assert stat == 0 and "search result refused" in reason and "not allowed" in reason
    assert count(s, "track_url") == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("track_id,query\nok1,fine\n../etc,song\n", "line 3: track_id '../etc'"),
        ("track_id,query\nok1,fine\nx;DROP TABLE track_url,song\n", "line 3: track_id"),
        ("track_id,query\nok1,\n", "line 2: query"),
        ("id,name\n1,x\n", "missing track_id, query"),
        ("track_id,query\nok1,a\nok1,b\n", "line 3: track_id 'ok1' repeats line 2"),
        ("track_id,query\nok1,a,extra\n", "line 2: more fields"),
    ],
)
def test_search_csv_bad_rows_are_named(tmp_path, content, message):
    path = tmp_path / "queries.csv"
    path.write_text(content)
    with pytest.raises(CsvError, match=message):
        read_search_csv(path)


def test_bad_csv_enqueues_nothing(settings, tmp_path):
    path = tmp_path / "queries.csv"
    path.write_text("track_id,query\n" + "".join(f"ok{i},song {i}\n" for i in range(25)) + "bad id,x\n")
    with pytest.raises(CsvError, match="line 27: track_id 'bad id'"):
        produce_search(settings, path)
    assert job_queue(settings, "search").depth()["visible"] == 0


def test_download_csv_checks_url_policy(tmp_path):
    path = tmp_path / "dl.csv"
    path.write_text("track_id,yt_url\nok1,https://www.youtube.com/watch?v=abc\nok2,file:///etc/passwd\n")
    with pytest.raises(CsvError, match="line 3: yt_url"):
        read_download_csv(path, Settings())
    path.write_text("track_id,yt_url\nok1,https://www.youtube.com/watch?v=abc\nok2,https://evil.example/watch?v=1\n")
    with pytest.raises(CsvError, match="line 3: yt_url: video host 'evil.example' is not allowed"):
        read_download_csv(path, Settings())
