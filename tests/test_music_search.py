"""Search: both backends against the local video site (real yt-dlp, real
headless Chromium) reading every result, the worker taking the first whose
title matches (or NOTFOUND) with ``track_url`` written by the status writer,
and the producers' CSV validation."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from helpers import count, query, wait_for
from specfleet.pipelines import job_queue
from specfleet.pipelines.music.settings import MusicSettings
from specfleet.pipelines.search import SPEC as PIPELINE
from specfleet.pipelines.search.backends import SeleniumBackend, YtDlpBackend, parse_views, views_from_label
from specfleet.producers.music import (
    CsvError,
    produce_download,
    produce_search,
    read_download_csv,
    read_search_csv,
)
from specfleet.runtime import EXIT_OK, Banned, Rejected, Worker
from specfleet.standins.video_site import VideoSite


@pytest.fixture
def site():
    with VideoSite() as s:
        s.add_video("dp1", "Daft Punk - Around the World", seconds=2, views=2_345_678, channel="Daft Punk")
        s.add_video("dp2", "Daft Punk - Around the World (live)", seconds=2, views=1_200, channel="Daft Punk")
        s.add_video("nm1", "Nina Simone - Feeling Good", seconds=2, views=987, channel="Nina Simone")
        yield s


#: Results pages like real ones: what comes first is not the track.
COVER = ("cov1", "Around the World - Cover by Jane Doe", "Jane Doe")
REACTION = ("rea1", "FIRST TIME reacting to Feeling Good!!", "ReactTV")
OTHER_SONG = ("oth1", "Nina Simone - Sinnerman", "Nina Simone")
UNRELATED = ("unr1", "Totally Different Song", "Somebody Else")


def pin_tricky_pages(site: VideoSite) -> None:
    for vid, title, channel in (COVER, REACTION, OTHER_SONG, UNRELATED):
        site.add_video(vid, title, seconds=2, views=50_000_000, channel=channel)
    site.set_results("Around the World Daft Punk", ["cov1", "dp1", "dp2"])
    site.set_results("Feeling Good Nina Simone", ["rea1", "oth1", "nm1"])
    site.set_results("Song That Does Not Exist Nobody", ["unr1", "cov1"])


def site_config(site: VideoSite, **kw) -> MusicSettings:
    """Music settings pointed at the local video site."""
    return MusicSettings(**{
        "extra_hosts": [site.host], "search_url": site.search_api_url,
        "results_page_url": site.results_page_url, "page_timeout_s": 10, "socket_timeout_s": 2, **kw,
    })


def test_parse_views():
    assert [parse_views(t) for t in ("1.2M views", "12,345 views", "987 views", "No views", "3.4K views", 42, None, "")] \
        == [1_200_000, 12_345, 987, 0, 3_400, 42, -1, -1]


def test_views_from_accessibility_label():
    # the exact count the original read: "." thousands on the Spanish page, "," on the English one
    assert views_from_label("Daft Punk - Around the World de Daft Punk hace 3 años 7 minutos y 9 segundos "
                            "2.345.678 visualizaciones") == 2_345_678
    assert views_from_label("Song by Chan 3 years ago 4 minutes, 2 seconds 1,234 views") == 1_234
    # a title with a number and "views" in it does not fool it: the count closes the label
    assert views_from_label("100 views of Paris by Chan 1 year ago 3 minutes 56 views") == 56
    assert views_from_label("no count here") == -1 and views_from_label(None) == -1


@pytest.mark.slow
def test_ytdlp_backend_lists_results_in_order(site):
    pin_tricky_pages(site)
    backend = YtDlpBackend(site_config(site))
    results = backend.search("around the world daft punk")
    assert [(r.href, r.title, r.channel, r.views) for r in results] == [
        (site.watch_url("cov1"), COVER[1], "Jane Doe", 50_000_000),
        (site.watch_url("dp1"), "Daft Punk - Around the World", "Daft Punk", 2_345_678),
        (site.watch_url("dp2"), "Daft Punk - Around the World (live)", "Daft Punk", 1_200),
    ]
    # ytsearchN: N is a setting
    two = YtDlpBackend(site_config(site, search_results=2)).search("around the world daft punk")
    assert [r.href for r in two] == [site.watch_url("cov1"), site.watch_url("dp1")]
    assert backend.search("no such song anywhere") == []
    site.mode = "botcheck"
    with pytest.raises(Banned, match="not a bot"):
        backend.search("feeling good")
    site.mode = "429"
    with pytest.raises(Banned, match="429"):
        backend.search("feeling good")
    assert site.count("search") == 5


@pytest.mark.slow
def test_selenium_backend_reads_every_result_in_headless_chromium(site, artifacts_dir):
    pin_tricky_pages(site)
    backend = SeleniumBackend(site_config(site))
    try:
        results = backend.search("Feeling Good Nina Simone")
        # The list is rendered by script: only a real browser sees it. Views
        # come from the title link's label, exact, as the original read them.
        assert [(r.href, r.title, r.channel, r.views) for r in results] == [
            (site.watch_url("rea1"), REACTION[1], "ReactTV", 50_000_000),
            (site.watch_url("oth1"), OTHER_SONG[1], "Nina Simone", 50_000_000),
            (site.watch_url("nm1"), "Nina Simone - Feeling Good", "Nina Simone", 987),
        ]
        top = backend.search("daft punk around the world")  # not pinned: every word, most viewed first
        assert [(r.href, r.views) for r in top] == [(site.watch_url("dp1"), 2_345_678), (site.watch_url("dp2"), 1_200)]
        backend._driver.save_screenshot(str(artifacts_dir / "music_selenium_results.png"))
        assert backend.search("nothing matches this") == []
        site.mode = "botcheck"
        with pytest.raises(Banned, match="not a bot"):
            backend.search("feeling good")
        site.mode = "404"
        with pytest.raises(Rejected):
            backend.search("feeling good")
    finally:
        backend.close()
    assert site.count("results") == 5


QUERIES_CSV = (
    "track_id,query,track_name,artist_name\n"
    "t_dp,Around the World Daft Punk,Around the World,Daft Punk\n"
    "t_ns,Feeling Good Nina Simone,Feeling Good,Nina Simone\n"
    "t_none,Song That Does Not Exist Nobody,Song That Does Not Exist,Nobody\n"
    "t_sql,'; DROP TABLE track_url; --,,\n"
)


@pytest.mark.parametrize("backend", ["ytdlp", "selenium"])
def test_search_worker_takes_the_first_matching_result_or_notfound(settings, site, tmp_path, backend):
    pin_tricky_pages(site)
    s, config = settings, site_config(site, search_backend=backend)
    csv_path = tmp_path / "queries.csv"
    csv_path.write_text(QUERIES_CSV)
    report = produce_search(s, csv_path)
    assert (report.total, report.enqueued) == (4, 4)
    # The worker holds no database credentials (issue 17): the status writer
    # derives track_url from its status messages.
    no_db = s.model_copy(update={"db_dsn": SecretStr("postgresql://nobody@127.0.0.1:9/none"), "db_secret_id": None})
    worker = Worker(no_db, PIPELINE, concurrency=2, idle_exit_s=1.5, config=config)
    assert worker.run() == EXIT_OK
    wait_for(lambda: count(s, "track_url") == 4, what="four track_url rows")
    rows = {t: rest for t, *rest in query(s, "SELECT track_id, href, views, is_found, queried FROM track_url")}
    assert rows == {
        # the cover came first; the second result is the track
        "t_dp": [site.watch_url("dp1"), 2_345_678, True, "around the world daft punk"],
        # a reaction video and another song of the artist came first
        "t_ns": [site.watch_url("nm1"), 987, True, "feeling good nina simone"],
        "t_none": ["NOTFOUND", -1, False, "song that does not exist nobody"],
        "t_sql": ["NOTFOUND", -1, False, "'; drop table track_url; --"],
    }
    status = {t: (stat, url, reason) for t, stat, url, reason in
              query(s, "SELECT track_id, stat, yt_url, reason FROM status_search")}
    assert status["t_dp"][:2] == (1, site.watch_url("dp1")) and "result 2 of 3 matched" in status["t_dp"][2]
    assert status["t_ns"][:2] == (1, site.watch_url("nm1")) and "result 3 of 3 matched" in status["t_ns"][2]
    assert status["t_none"][:2] == (2, "NOTFOUND")
    assert "Song That Does Not Exist Nobody" in status["t_none"][2] and "2 results scanned" in status["t_none"][2]
    assert status["t_sql"][:2] == (2, "NOTFOUND") and "0 results scanned" in status["t_sql"][2]
    assert count(s, "status_search", "stat = 0") == 0

    # Every track was searched (found or not): none is enqueued again; only
    # the found URLs feed the download producer.
    again = produce_search(s, csv_path)
    assert (again.skipped, again.enqueued) == (4, 0)
    assert produce_download(s, config=config).enqueued == 2
    assert job_queue(s, "download").depth()["visible"] == 2


def test_strictness_first_keeps_the_unchecked_first_result(settings, site, tmp_path):
    pin_tricky_pages(site)
    s, config = settings, site_config(site, title_match="first")
    job_queue(s, "search").send_json([{"track_id": "t_dp", "query": "Around the World Daft Punk",
                                       "track_name": "Around the World", "artist_name": "Daft Punk"}])
    Worker(s, PIPELINE, concurrency=1, idle_exit_s=1, config=config).run()
    wait_for(lambda: count(s, "track_url") == 1, what="the track_url row")
    assert query(s, "SELECT href, is_found FROM track_url") == [(site.watch_url("cov1"), True)]


def test_search_result_on_foreign_host_is_refused(settings, site):
    s, config = settings, site_config(site, extra_hosts=[])  # the site is not an allowed host
    job_queue(s, "search").send_json([{"track_id": "t1", "query": "feeling good"}])
    Worker(s, PIPELINE, concurrency=1, idle_exit_s=1, config=config).run()
    wait_for(lambda: count(s, "status_search") == 1, what="the refusal row")
    (stat, reason), = query(s, "SELECT stat, reason FROM status_search")
    assert stat == 0 and "search result refused" in reason and "not allowed" in reason
    assert count(s, "track_url") == 0


def test_search_csv_with_split_and_the_original_format(tmp_path):
    path = tmp_path / "queries.csv"
    path.write_text(QUERIES_CSV)
    jobs = {j.track_id: j for j in read_search_csv(path)}
    assert (jobs["t_dp"].track_name, jobs["t_dp"].artist_name) == ("Around the World", "Daft Punk")
    assert jobs["t_sql"].track_name is None and json.loads(jobs["t_sql"].body()) == {
        "track_id": "t_sql", "query": "'; DROP TABLE track_url; --"}  # old body shape without a split
    # the original's queries.csv: ';'-separated, an index column, no query column
    path.write_text("index;artist_id;artist_name;track_id;track_name\n0;a1;Daft Punk;t1;Around the World\n"
                    "1;a2;Nina Simone;t2;Feeling Good\n")
    jobs = read_search_csv(path)
    assert [(j.track_id, j.query, j.track_name, j.artist_name) for j in jobs] == [
        ("t1", "Around the World Daft Punk", "Around the World", "Daft Punk"),
        ("t2", "Feeling Good Nina Simone", "Feeling Good", "Nina Simone"),
    ]
    path.write_text("track_id,query,track_name,artist_name\nt1,q,Only The Track,\n")
    with pytest.raises(CsvError, match="line 2: artist_name .*at least 1 character"):
        read_search_csv(path)


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
        read_download_csv(path, MusicSettings())
    path.write_text("track_id,yt_url\nok1,https://www.youtube.com/watch?v=abc\nok2,https://evil.example/watch?v=1\n")
    with pytest.raises(CsvError, match="line 3: yt_url: video host 'evil.example' is not allowed"):
        read_download_csv(path, MusicSettings())


@pytest.mark.slow
def test_track_url_keeps_rule_and_score_and_overrides_csv_wins(settings, site, tmp_path):
    """Match quality (issue 24): each track_url row keeps the rule that chose
    it and its title score; a person's overrides CSV (URL or NOTFOUND) is
    honoured without a search."""
    from specfleet.pipelines.search.overrides import OverridesError, parse_overrides
    from specfleet.pipelines.search.title_match import TrackQuery, title_score

    pin_tricky_pages(site)
    overrides = tmp_path / "overrides.csv"
    overrides.write_text(f"track_id,url\n# live take chosen by hand\nt_live,{site.watch_url('dp2')}\nt_none,NOTFOUND\n")
    config = site_config(site, overrides_csv=str(overrides))
    jobs = [
        {"track_id": "t_dp", "query": "Around the World Daft Punk", "track_name": "Around the World",
         "artist_name": "Daft Punk"},
        {"track_id": "t_live", "query": "Around the World Daft Punk"},
        {"track_id": "t_none", "query": "Feeling Good Nina Simone"},
    ]
    job_queue(settings, "search").send(json.dumps(j) for j in jobs)
    searches_before = site.count("search")
    assert Worker(settings, PIPELINE, concurrency=1, idle_exit_s=1.5, config=config).run() == EXIT_OK
    wait_for(lambda: count(settings, "track_url") == 3, what="three track_url rows")
    rows = {t: (href, found, rule, score) for t, href, found, rule, score in
            query(settings, "SELECT track_id, href, is_found, match_rule, match_score FROM track_url")}
    expected = title_score(TrackQuery("Around the World", "Daft Punk"), "Daft Punk - Around the World")
    assert rows["t_dp"] == (site.watch_url("dp1"), True, "all_words", pytest.approx(expected))
    assert 0 < expected <= 1
    assert rows["t_live"] == (site.watch_url("dp2"), True, "override", 1.0)
    assert rows["t_none"] == ("NOTFOUND", False, "override", 1.0)
    assert site.count("search") - searches_before == 1, "overridden tracks are not searched"
    # a weak match scores below a full one; a malformed file says which line
    assert title_score(TrackQuery("Around the World", "Daft Punk"), "Around the World - Cover by Jane Doe") < 1
    with pytest.raises(OverridesError, match="line 2"):
        parse_overrides("track_id,url\nt1,ftp://x\n")


def test_overrides_file_read_from_s3_and_again_when_it_changes(settings):
    from specfleet.pipelines.search.overrides import Overrides
    from specfleet.storage import Storage

    storage = Storage(settings)
    storage.put_bytes("config/overrides.csv", b"t1,https://www.youtube.com/watch?v=abc\n", content_type="text/csv")
    overrides = Overrides(f"s3://{settings.bucket}/config/overrides.csv", settings, recheck_s=0)
    assert overrides.get("t1") == "https://www.youtube.com/watch?v=abc" and overrides.get("t2") is None
    storage.put_bytes("config/overrides.csv", b"t1,NOTFOUND\nt2,https://youtu.be/x\n", content_type="text/csv")
    assert overrides.get("t1") == "NOTFOUND" and overrides.get("t2") == "https://youtu.be/x"
