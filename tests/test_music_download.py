"""Download worker end to end: real yt-dlp against the local video site, real
ffmpeg, real moto S3/SQS and Postgres through the status poller."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from helpers import count, query, wait_for
from specfleet.pipelines import get_spec, job_queue
from specfleet.pipelines.download import SPEC as PIPELINE
from specfleet.pipelines.download.worker import audio_key, ffmpeg_path
from specfleet.pipelines.music.settings import MusicSettings
from specfleet.pipelines.search.models import SearchStatus
from specfleet.producers.music import produce_download
from specfleet.runtime import EXIT_BANNED, EXIT_OK, StatusSender, Worker
from specfleet.status import Stat
from specfleet.storage import Storage


def music_config(site, tmp_path, **overrides) -> MusicSettings:
    """Music settings pointed at the local video site."""
    (tmp_path / "dl").mkdir(exist_ok=True)
    return MusicSettings(**{"extra_hosts": [site.host], "socket_timeout_s": 1.5, "ytdlp_retries": 0,
                            "tmp_dir": str(tmp_path / "dl"), **overrides})


def send(settings, *bodies):
    job_queue(settings, "download").send(b if isinstance(b, str) else json.dumps(b) for b in bodies)


def decoded_seconds(data: bytes, tmp_path: Path) -> float:
    """Decode an mp3 with ffmpeg and return its length (proves it is real audio)."""
    path = tmp_path / "check.mp3"
    path.write_bytes(data)
    out = subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", "8000", "-"],
                         capture_output=True, check=True).stdout
    return len(out) / 2 / 8000


def test_tracks_download_end_to_end_from_track_url(settings, site, tmp_path):
    n = 4
    s, config = settings, music_config(site, tmp_path)
    seconds = {f"trk{i}": 3 + i for i in range(n)}
    search_status = StatusSender(s, get_spec("search"))  # track_url comes from search status messages
    for tid, secs in seconds.items():
        site.add_video(f"v{tid}", f"Artist {tid} - Song", seconds=secs)
        search_status.send(SearchStatus(instance_id="i-search", stat=Stat.DONE, track_id=tid,
                                        yt_url=site.watch_url(f"v{tid}"), views=5))
    wait_for(lambda: count(s, "track_url") == n, what=f"{n} track_url rows")

    report = produce_download(s, config=config)
    assert (report.enqueued, report.skipped) == (n, 0)
    worker = Worker(s, PIPELINE, concurrency=2, idle_exit_s=1.5, config=config)
    assert worker.run() == EXIT_OK
    assert worker.metrics()["done"] == n

    wait_for(lambda: count(s, "status") == n, what=f"{n} download status rows")
    assert count(s, "status", "stat = 1") == n
    rows = dict(query(s, "SELECT track_id, yt_url FROM status"))
    assert rows == {tid: site.watch_url(f"v{tid}") for tid in seconds}
    storage = Storage(s)
    assert sorted(k for k, _ in storage.list("audio/")) == sorted(audio_key(t) for t in seconds)
    for tid, secs in seconds.items():
        assert decoded_seconds(storage.get_bytes(audio_key(tid)), tmp_path) == pytest.approx(secs, abs=0.2)
    assert list((tmp_path / "dl").iterdir()) == [], "temp folders must be cleaned"

    # Everything is in S3 now: the producer enqueues nothing; a redelivered job is skipped (stat 2).
    assert produce_download(s, config=config).skipped == n
    send(s, {"track_id": "trk0", "yt_url": site.watch_url("vtrk0")})
    Worker(s, PIPELINE, concurrency=1, idle_exit_s=1, config=config).run()
    wait_for(lambda: count(s, "status", "stat = 2") == 1, what="skip row")
    assert site.count("watch:vtrk0") == 1, "an mp3 already in S3 must not be fetched again"


def test_429_storm_stops_worker_after_three_and_leaves_jobs_on_queue(settings, site, tmp_path):
    s, config = settings.model_copy(update={"ban_threshold": 3}), music_config(site, tmp_path)
    for i in range(6):
        site.add_video(f"b{i}", f"Band {i} - Tune", seconds=2)
    send(s, *({"track_id": f"ban{i}", "yt_url": site.watch_url(f"b{i}")} for i in range(6)))
    site.mode = "429"

    worker = Worker(s, PIPELINE, concurrency=1, idle_exit_s=10, config=config)
    assert worker.run() == EXIT_BANNED
    # run() returns as soon as the guard trips; the third job's thread may
    # still be finishing its bookkeeping.
    wait_for(lambda: worker.metrics().get("banned") == 3, timeout=5, what="three ban-class outcomes")
    assert site.count("watch") == 3, "exactly three attempts before stopping"

    wait_for(lambda: count(s, "status") >= 1, what="the banned status row")
    rows = query(s, "SELECT stat, reason FROM status")
    assert len(rows) == 1 and rows[0][0] == -1
    assert "3 consecutive ban-class failures" in rows[0][1] and "429" in rows[0][1]

    # All six jobs are back on the queue, visible at once; together they were
    # received exactly three times (the attempts), so the rest are untouched.
    q = job_queue(s, "download")
    wait_for(lambda: q.depth()["visible"] == 6 and q.depth()["in_flight"] == 0, what="six visible jobs")
    messages = []
    while len(messages) < 6:
        batch = q.receive(10, wait_s=1)
        assert batch, "jobs went missing"
        messages += batch
    assert sorted(json.loads(m.body)["track_id"] for m in messages) == [f"ban{i}" for i in range(6)]
    assert sum(m.receive_count - 1 for m in messages) == 3
    assert Storage(s).count("audio/") == 0


def test_gone_video_is_rejected_once_and_not_retried(settings, site, tmp_path):
    s, config = settings, music_config(site, tmp_path)
    site.add_video("gone1", "Removed - Song", gone=True)
    send(s, {"track_id": "gone1", "yt_url": site.watch_url("gone1")})
    worker = Worker(s, PIPELINE, concurrency=1, idle_exit_s=2.5, config=config)
    assert worker.run() == EXIT_OK
    wait_for(lambda: count(s, "status") == 1, what="the rejection row")
    (stat, reason), = query(s, "SELECT stat, reason FROM status")
    assert stat == 0 and "gone" in reason and "404" in reason
    assert site.count("watch:gone1") == 1, "a gone video must not be retried"
    assert job_queue(s, "download").depth() == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_stalled_site_is_transient_then_retried_to_success(settings, site, tmp_path):
    s, config = settings, music_config(site, tmp_path, socket_timeout_s=1.0)
    site.add_video("slow1", "Slow - Song", seconds=2)
    send(s, {"track_id": "slow1", "yt_url": site.watch_url("slow1")})
    site.mode = "stall"
    first = Worker(s, PIPELINE, concurrency=1, max_jobs=1, config=config)
    assert first.run() == EXIT_OK
    assert first.metrics().get("retry") == 1
    assert job_queue(s, "download").depth()["in_flight"] == 1, "the job waits out its backoff, not deleted"
    assert count(s, "status") == 0

    site.mode = "ok"
    second = Worker(s, PIPELINE, concurrency=1, idle_exit_s=5, config=config)
    assert second.run() == EXIT_OK
    assert second.metrics().get("done") == 1
    wait_for(lambda: count(s, "status", "stat = 1") == 1, what="the retried job's done row")
    assert Storage(s).exists(audio_key("slow1"))


def test_multi_hour_video_refused_before_download(settings, site, tmp_path):
    s, config = settings, music_config(site, tmp_path, max_duration_s=1800)
    site.add_video("mix3h", "DJ - Three Hour Mix", seconds=2, advertised_seconds=3 * 3600)
    send(s, {"track_id": "mix3h", "yt_url": site.watch_url("mix3h")})
    Worker(s, PIPELINE, concurrency=1, idle_exit_s=2, config=config).run()
    wait_for(lambda: count(s, "status") == 1, what="the refusal row")
    (stat, reason), = query(s, "SELECT stat, reason FROM status")
    assert stat == 0 and "10800 s long" in reason and "not downloaded" in reason
    full_size = 3 * 3600 * 8000
    # yt-dlp's metadata probe opens the media URL and closes it after the
    # headers; what the server pushed into loopback socket buffers meanwhile
    # (a few MB) is far from the 86 MB a download would pull.
    assert site.media_bytes("mix3h") < full_size / 10, "the long media must not be pulled"
    assert not Storage(s).exists(audio_key("mix3h"))


def test_mp3_size_guard(settings, site, tmp_path):
    s, config = settings, music_config(site, tmp_path, max_mp3_bytes=20_000)
    site.add_video("big1", "Big - Song", seconds=8)
    send(s, {"track_id": "big1", "yt_url": site.watch_url("big1")})
    Worker(s, PIPELINE, concurrency=1, idle_exit_s=2, config=config).run()
    wait_for(lambda: count(s, "status") == 1, what="the refusal row")
    (stat, reason), = query(s, "SELECT stat, reason FROM status")
    assert stat == 0 and "byte limit" in reason
    assert not Storage(s).exists(audio_key("big1"))
    assert list((tmp_path / "dl").iterdir()) == []


def test_hostile_jobs_rejected_with_reasons_and_nothing_written_outside_temp(settings, site, tmp_path):
    s, config = settings, music_config(site, tmp_path)
    site.add_video("good", "Good - Song", seconds=2)
    long_url = site.watch_url("good") + "&pad=" + "a" * (300 - len(site.watch_url("good")) - 5)
    assert len(long_url) == 300
    hostile = {
        "dotdot": ({"track_id": "../../etc/passwd", "yt_url": site.watch_url("good")}, "track_id"),
        "drop": ({"track_id": "x;DROP TABLE status;--", "yt_url": site.watch_url("good")}, "track_id"),
        "longurl": ({"track_id": "long1", "yt_url": long_url}, "300 characters"),
        "foreign": ({"track_id": "foreign1", "yt_url": "https://evil.example.com/watch?v=x"}, "not allowed"),
        "file": ({"track_id": "file1", "yt_url": "file:///etc/passwd"}, "scheme"),
        "sep_url": ({"track_id": "sep1", "yt_url": "https://www.youtube.com/watch?v=a::b"}, "'::'"),
        "sep_id": ({"track_id": "a::b", "yt_url": site.watch_url("good")}, "track_id"),
        "notjson": ("{not json", "not JSON"),
    }
    send(s, *(body for body, _ in hostile.values()), {"track_id": "good1", "yt_url": site.watch_url("good")})
    worker = Worker(s, PIPELINE, concurrency=2, idle_exit_s=2, config=config)
    assert worker.run() == EXIT_OK
    wait_for(lambda: count(s, "status") == len(hostile) + 1, what="one row per job")
    assert count(s, "status", "stat = 1") == 1
    reasons = [r for (r,) in query(s, "SELECT reason FROM status WHERE stat = 0")]
    assert len(reasons) == len(hostile)
    for name, (_, expected) in hostile.items():
        assert any(expected in r for r in reasons), f"{name}: no reason mentions {expected!r}: {reasons}"
    assert sorted(k for k, _ in Storage(s).list("")) == ["audio/good1.mp3"]
    assert count(s, "status_search") == 0  # tables intact: the ;DROP never reached SQL
    assert [p.name for p in tmp_path.iterdir()] == ["dl"] and list((tmp_path / "dl").iterdir()) == []
    assert site.count("watch") == 1, "no hostile job reached the site"
