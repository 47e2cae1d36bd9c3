"""YouTube as it is today (issue 24): each failure yt-dlp reports for
YouTube, reached through real yt-dlp against the local video site (its
extractor raises yt-dlp's own exception types with yt-dlp's texts), its
class, and the download worker's reaction -- never "gone" for a rate limit,
an IP block or a missing JS runtime."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import count, query, wait_for
from specfleet.cli.main import app
from specfleet.pipelines import job_queue
from specfleet.pipelines.download import SPEC as PIPELINE
from specfleet.pipelines.download.worker import audio_key, fetch_audio, reaction
from specfleet.pipelines.music.errors import Reaction, classify
from specfleet.pipelines.music.jsruntime import JsRuntimeMissing, check_js_runtime, seen_runtime
from specfleet.pipelines.music.pacing import Pacer
from specfleet.pipelines.music.settings import MusicSettings
from specfleet.runtime import EXIT_BANNED, EXIT_OK, Banned, Elsewhere, Paused, Rejected, Transient, Worker
from specfleet.runtime.middleware import BanGuard
from specfleet.runtime.outcome import Outcome
from specfleet.runtime.preflight import EXIT_CONFIG
from specfleet.settings import Settings
from specfleet.storage import Storage
from test_music_download import music_config as download_music_config

NO_RUNTIME = ["deno:/nonexistent/deno"]


def dead_letter_after(settings, receives: int) -> None:
    """Set the download queue's redrive count (its RedrivePolicy's maxReceiveCount)."""
    queue = job_queue(settings, "download")
    policy = json.loads(queue.sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["RedrivePolicy"])[
        "Attributes"]["RedrivePolicy"])
    queue.sqs.set_queue_attributes(QueueUrl=queue.url, Attributes={"RedrivePolicy": json.dumps(
        {**policy, "maxReceiveCount": receives})})
    assert queue.max_receive_count() == receives


def music_config(site, tmp_path, **overrides) -> MusicSettings:
    """The download tests' settings, with a little more time per socket (the stand-in's refusals build a
    player response first)."""
    return download_music_config(site, tmp_path, **{"socket_timeout_s": 2.0, **overrides})


def send(settings, *jobs):
    job_queue(settings, "download").send(json.dumps(j) for j in jobs)


# --- through yt-dlp: the class of each failure ------------------------------------
@pytest.mark.parametrize(("playability", "cls", "words"), [
    ("removed", Rejected, "removed by the uploader"),
    ("private", Rejected, "Private video"),
    ("age", Rejected, "Sign in to confirm your age"),
    ("geo", Rejected, "not made this video available in your country"),
    ("botcheck", Banned, "Sign in to confirm you\u2019re not a bot"),
    ("app", Banned, "The following content is not available on this app"),
])
def test_each_refusal_reaches_its_class_through_ytdlp(site, tmp_path, playability, cls, words):
    site.add_video("v1", "Artist - Song", seconds=1)
    site.set_playability("v1", playability)
    config = music_config(site, tmp_path)
    with pytest.raises(cls) as caught:
        fetch_audio(site.watch_url("v1"), tmp_path, config, reaction=reaction(Settings(), config, True))
    assert words in caught.value.reason
    assert "DownloadError" in caught.value.reason, "the text came through yt-dlp's own error"


def test_geo_restriction_goes_to_another_region_while_one_is_left(site, tmp_path):
    site.add_video("g1", "Artist - Song", seconds=1)
    site.set_playability("g1", "geo")
    config = music_config(site, tmp_path, geo_regions=["us-east-1", "eu-west-1"])
    here = Settings(region="us-east-1")
    with pytest.raises(Elsewhere, match="geo-restricted here"):
        fetch_audio(site.watch_url("g1"), tmp_path, config, reaction=reaction(here, config, True))
    # the only region left is this one: rejected with the reason
    alone = music_config(site, tmp_path, geo_regions=["us-east-1"])
    with pytest.raises(Rejected, match="geo-restricted"):
        fetch_audio(site.watch_url("g1"), tmp_path, alone, reaction=reaction(here, alone, True))


def test_session_rate_limit_is_a_pause_with_ytdlps_text_and_clears_after_the_window(site, tmp_path):
    for i in range(3):
        site.add_video(f"r{i}", f"Artist - Song {i}", seconds=1)
    site.rate_limit(after=2, window_s=0.6)
    config = music_config(site, tmp_path, rate_limit_pause_s=0.6, rate_limit_pause_jitter=0.5)
    react = reaction(Settings(), config, True)
    for i in range(2):
        (tmp_path / f"ok{i}").mkdir()
        fetch_audio(site.watch_url(f"r{i}"), tmp_path / f"ok{i}", config, reaction=react)
    with pytest.raises(Paused) as caught:
        fetch_audio(site.watch_url("r2"), tmp_path, config, reaction=react)
    assert "This content isn't available, try again later" in caught.value.reason
    assert "The current session has been rate-limited by YouTube for up to an hour" in caught.value.reason
    assert 0.6 <= caught.value.wait_s <= 0.9, "the window plus up to 50 % jitter"
    wait_for(lambda: site._limited_until < time.monotonic(), timeout=3, what="the window to pass")
    (tmp_path / "after").mkdir()
    assert fetch_audio(site.watch_url("r2"), tmp_path / "after", config, reaction=react).path.is_file()


def test_missing_js_runtime_formats_are_never_gone(site, tmp_path):
    site.add_video("n1", "Artist - Song", seconds=1)
    config = music_config(site, tmp_path, js_runtimes=NO_RUNTIME, require_js_runtime=False)
    assert seen_runtime(config) is None
    with pytest.raises(Transient) as caught:
        fetch_audio(site.watch_url("n1"), tmp_path, config, reaction=reaction(Settings(), config, False))
    assert "Requested format is not available" in caught.value.reason and "not gone" in caught.value.reason
    # the same text with a runtime present means the video has no usable format
    assert isinstance(classify(caught.value.reason.split("(", 1)[1], reaction=Reaction(js_runtime=True)), Rejected)


def test_ytdlp_sees_the_venvs_deno_and_the_check_names_what_is_missing():
    runtime = check_js_runtime(MusicSettings())
    assert runtime is not None and runtime.name == "deno" and runtime.version[0].isdigit()
    with pytest.raises(JsRuntimeMissing) as caught:
        check_js_runtime(MusicSettings(js_runtimes=NO_RUNTIME))
    assert "\n" not in str(caught.value) and "SPECFLEET_MUSIC_JS_RUNTIMES" in str(caught.value)


# --- the worker's reactions ----------------------------------------------------------
def test_ban_counter_is_not_reset_by_a_pause_but_is_by_a_rejection():
    class Control:
        stopping = None
        stops: list[bool] = []

        def report_banned(self, message, reason):
            pass

        def stop(self, banned=False):
            self.stops.append(banned)

    guard, worker = BanGuard(3), Control()
    for kind in ("banned", "paused", "banned", "elsewhere", "paused"):
        guard.after_process(worker, None, Outcome(kind))  # type: ignore[arg-type]
    assert guard.consecutive == 2 and not worker.stops
    guard.after_process(worker, None, Outcome("banned"))  # type: ignore[arg-type]
    assert worker.stops == [True]
    other = BanGuard(3)
    for kind in ("banned", "banned", "rejected", "banned"):
        other.after_process(worker, None, Outcome(kind))  # type: ignore[arg-type]
    assert other.consecutive == 1


@pytest.mark.slow
def test_worker_rejects_private_age_removed_geo_with_their_reasons(settings, site, tmp_path):
    s, config = settings, music_config(site, tmp_path)
    for p in ("removed", "private", "age", "geo"):
        site.add_video(p, f"Artist - {p}", seconds=1)
        site.set_playability(p, p)
    site.add_video("fine", "Artist - Fine", seconds=1)
    send(s, *({"track_id": f"t{p}", "yt_url": site.watch_url(p)} for p in ("removed", "private", "age", "geo", "fine")))
    assert Worker(s, PIPELINE, concurrency=2, idle_exit_s=1.5, config=config).run() == EXIT_OK
    wait_for(lambda: count(s, "status") == 5, what="five status rows")
    rows = dict(query(s, "SELECT track_id, reason FROM status WHERE stat = 0"))
    assert set(rows) == {"tremoved", "tprivate", "tage", "tgeo"}
    assert rows["tremoved"].startswith("gone") and "removed by the uploader" in rows["tremoved"]
    assert rows["tprivate"].startswith("gone") and "Private video" in rows["tprivate"]
    assert rows["tage"].startswith("age-restricted")
    assert rows["tgeo"].startswith("geo-restricted") and "in your country" in rows["tgeo"]
    assert count(s, "status", "stat = 1") == 1


@pytest.mark.slow
@pytest.mark.parametrize("playability", ["botcheck", "app"])
def test_ip_blocks_stop_the_worker_and_no_job_is_gone(settings, site, tmp_path, playability):
    s, config = settings.model_copy(update={"ban_threshold": 2}), music_config(site, tmp_path)
    for i in range(4):
        site.add_video(f"b{i}", f"Artist - Song {i}", seconds=1)
        site.set_playability(f"b{i}", playability)
    send(s, *({"track_id": f"b{i}", "yt_url": site.watch_url(f"b{i}")} for i in range(4)))
    worker = Worker(s, PIPELINE, concurrency=1, idle_exit_s=10, config=config)
    assert worker.run() == EXIT_BANNED
    wait_for(lambda: count(s, "status") >= 1, what="the banned row")
    assert [stat for (stat,) in query(s, "SELECT stat FROM status")] == [-1]
    q = job_queue(s, "download")
    wait_for(lambda: q.depth()["visible"] == 4, what="all four jobs back on the queue")


@pytest.mark.slow
def test_geo_job_is_handed_back_for_another_region_then_rejected_on_its_last_attempt(settings, site, tmp_path):
    s = settings.model_copy(update={"max_receives": 2, "region": "us-east-1"})
    dead_letter_after(s, 2)  # the worker takes the threshold from the queue itself
    config = music_config(site, tmp_path, geo_regions=["eu-west-1"])
    site.add_video("g1", "Artist - Song", seconds=1)
    site.set_playability("g1", "geo")
    send(s, {"track_id": "g1", "yt_url": site.watch_url("g1")})
    first = Worker(s, PIPELINE, concurrency=1, max_jobs=1, config=config)
    assert first.run() == EXIT_OK and first.metrics().get("elsewhere") == 1
    assert count(s, "status") == 0 and job_queue(s, "download").depth()["visible"] == 1, "handed back at once"
    second = Worker(s, PIPELINE, concurrency=1, max_jobs=1, config=config)
    assert second.run() == EXIT_OK and second.metrics().get("rejected") == 1
    wait_for(lambda: count(s, "status") == 1, what="the rejection row")
    (reason,) = query(s, "SELECT reason FROM status WHERE stat = 0")[0]
    assert "geo-restricted" in reason and "2 attempts" in reason


def test_worker_without_a_js_runtime_refuses_to_start_before_any_job(settings, site, tmp_path):
    site.add_video("j1", "Artist - Song", seconds=1)
    send(settings, {"track_id": "j1", "yt_url": site.watch_url("j1")})
    worker = Worker(settings, PIPELINE, concurrency=1, idle_exit_s=1, config=music_config(site, tmp_path, js_runtimes=NO_RUNTIME))
    assert worker.run() == EXIT_CONFIG
    assert isinstance(worker.config_error, JsRuntimeMissing)
    line = worker.config_error.line()
    assert "sees no JavaScript runtime" in line and "\n" not in line
    assert site.count("watch") == 0
    assert job_queue(settings, "download").depth() == {"visible": 1, "in_flight": 0, "delayed": 0}


@pytest.mark.slow
def test_missing_runtime_job_is_retried_not_gone(settings, site, tmp_path):
    config = music_config(site, tmp_path, js_runtimes=NO_RUNTIME, require_js_runtime=False)
    site.add_video("m1", "Artist - Song", seconds=1)
    send(settings, {"track_id": "m1", "yt_url": site.watch_url("m1")})
    worker = Worker(settings, PIPELINE, concurrency=1, max_jobs=1, config=config)
    assert worker.run() == EXIT_OK and worker.metrics().get("retry") == 1
    assert count(settings, "status") == 0
    assert job_queue(settings, "download").depth()["in_flight"] == 1, "waits out its backoff, not deleted"


@pytest.mark.slow
def test_rate_limit_storm_sixty_jobs_all_done_none_failed_pause_in_status(namespace, settings, site, tmp_path):
    n = 60
    s = settings
    config = music_config(site, tmp_path, rate_limit_pause_s=2.0, rate_limit_pause_jitter=0.2,
                          concurrent_downloads=4)
    for i in range(n):
        site.add_video(f"s{i}", f"Artist - Storm {i}", seconds=1)
    site.rate_limit(after=20, window_s=2.0)
    send(s, *({"track_id": f"s{i}", "yt_url": site.watch_url(f"s{i}")} for i in range(n)))
    worker = Worker(s, PIPELINE, concurrency=4, idle_exit_s=3, config=config)
    assert worker.run() == EXIT_OK
    assert site.rate_limited >= 1 and worker.pauses >= 2, "the site limited the session at 20 and 40 videos"
    wait_for(lambda: count(s, "status", "stat = 1") == n, timeout=60, what=f"{n} done rows")
    assert count(s, "status", "stat = 0") == 0, "no job failed, none marked gone"
    assert count(s, "status", "stat = -1") == 0, "a rate limit is not a ban"
    assert count(s, "status", "stat = 3") == worker.pauses, "one row per pause"
    assert Storage(s).count("audio/") == n and Storage(s).exists(audio_key("s59"))
    reasons = [r for (r,) in query(s, "SELECT reason FROM status WHERE stat = 3")]
    assert all("rate-limited" in r and "paused" in r for r in reasons)

    result = CliRunner().invoke(app, ["status", "--json", "--no-record"], env={**namespace.env(), "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    download = json.loads(result.stdout)["pipelines"]["download"]
    assert (download["done"], download["failed"], download["paused"]) == (n, 0, worker.pauses)
    table = CliRunner().invoke(app, ["status", "--no-record"], env={**namespace.env(), "COLUMNS": "200"})
    assert "paused" in table.stdout


def test_stand_in_serves_the_ok_video_with_its_player_response(site, tmp_path):
    site.add_video("ok1", "Artist - Song", seconds=2)
    out = tmp_path / "o"
    out.mkdir()
    fetched = fetch_audio(site.watch_url("ok1"), out, music_config(site, tmp_path))
    assert fetched.title == "Artist - Song" and fetched.duration_s == 2 and Path(fetched.path).stat().st_size > 0


# --- pacing under the limit ----------------------------------------------------------
def test_pacer_gaps_are_never_shorter_than_the_budget_across_threads_and_processes(tmp_path):
    import threading

    state = tmp_path / "pace"
    # two Pacers on one file: two worker processes of one instance (download and search)
    pacers = [Pacer(36_000, jitter=0.5, state_file=state), Pacer(36_000, jitter=0.5, state_file=state)]
    starts: list[float] = []
    lock = threading.Lock()

    def take(p: Pacer) -> None:
        for _ in range(10):
            t = p.reserve()
            with lock:
                starts.append(t)

    threads = [threading.Thread(target=take, args=(pacers[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    starts.sort()
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(starts) == 40
    assert min(gaps) >= 0.1 - 1e-6, "36,000 videos/hour: never closer than 0.1 s"
    assert max(gaps) <= 0.15 + 1e-6 and len(set(round(g, 4) for g in gaps)) > 5, "jittered, at most +50 %"


@pytest.mark.slow
def test_download_worker_slots_share_the_budget(settings, site, tmp_path):
    n, per_hour = 6, 7200.0  # one video every 0.5 s at most
    config = music_config(site, tmp_path, videos_per_hour=per_hour, pace_jitter=0.2, pace_local_sites=True,
                          pace_state_file=str(tmp_path / "pace"), concurrent_downloads=3)
    for i in range(n):
        site.add_video(f"p{i}", f"Artist - Paced {i}", seconds=1)
    send(settings, *({"track_id": f"p{i}", "yt_url": site.watch_url(f"p{i}")} for i in range(n)))
    worker = Worker(settings, PIPELINE, concurrency=3, idle_exit_s=1.5, config=config)
    assert worker.run() == EXIT_OK and worker.metrics().get("done") == n
    times = sorted(site.watch_times)
    assert len(times) == n
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # the pacer hands out start times >= 0.5 s apart; the request follows within the slot's own scheduling
    assert min(gaps) >= 0.5 - 0.15, gaps
    assert (n - 1) / (times[-1] - times[0]) * 3600 <= per_hour


# --- cookies, optional -----------------------------------------------------------------
COOKIES = ("# Netscape HTTP Cookie File\n"
           "127.0.0.1\tFALSE\t/\tFALSE\t2147483647\tLOGIN_INFO\taccount-login\n"
           "127.0.0.1\tFALSE\t/\tFALSE\t2147483647\tSAPISID\tsapisid-value\n")


@pytest.mark.slow
def test_cookies_from_secrets_manager_reported_and_refusal_said_once_then_guest(settings, site, tmp_path, caplog):
    import logging

    from specfleet.aws import client

    name = f"{settings.queue_prefix}youtube-cookies"
    client("secretsmanager", settings).create_secret(Name=name, SecretString=COOKIES)
    config = music_config(site, tmp_path, cookies_secret_id=name)
    for i in range(5):
        site.add_video(f"c{i}", f"Artist - Song {i}", seconds=1)
    send(settings, *({"track_id": f"c{i}", "yt_url": site.watch_url(f"c{i}")} for i in range(2)))
    assert Worker(settings, PIPELINE, concurrency=1, idle_exit_s=1.5, config=config).run() == EXIT_OK
    wait_for(lambda: count(settings, "status", "stat = 1") == 2, what="two done rows")
    assert site.signed_in_pages == 2, "both watch pages were asked for with the account's cookies"
    reasons = [r for (r,) in query(settings, "SELECT reason FROM status WHERE stat = 1")]
    assert all(r.startswith("cookies 0.0 days old, last success 20") for r in reasons), reasons

    site.refuse_cookies = True  # YouTube rotates them
    send(settings, *({"track_id": f"c{i}", "yt_url": site.watch_url(f"c{i}")} for i in range(2, 5)))
    with caplog.at_level(logging.WARNING, logger="specfleet.music.cookies"):
        assert Worker(settings, PIPELINE, concurrency=1, idle_exit_s=1.5, config=config).run() == EXIT_OK
    wait_for(lambda: count(settings, "status", "stat = 1") == 5, what="five done rows")
    said = [r for r in caplog.records if "refused the cookies" in r.getMessage()]
    assert len(said) == 1 and "carrying on as a guest" in said[0].getMessage()
    assert site.signed_in_pages == 3, "after the refusal the next videos go as a guest"
    later = [r for (r,) in query(settings, "SELECT reason FROM status WHERE track_id IN ('c3', 'c4')")]
    assert all(r.startswith("cookies refused by YouTube") for r in later), later


def test_unreadable_cookies_secret_stops_the_worker_before_any_job(settings, site, tmp_path):
    site.add_video("k1", "Artist - Song", seconds=1)
    send(settings, {"track_id": "k1", "yt_url": site.watch_url("k1")})
    config = music_config(site, tmp_path, cookies_secret_id=f"{settings.queue_prefix}no-such-secret")
    worker = Worker(settings, PIPELINE, concurrency=1, idle_exit_s=1, config=config)
    assert worker.run() == EXIT_CONFIG
    assert worker.config_error is not None and "cookies secret" in worker.config_error.line()
    assert site.count("watch") == 0


@pytest.mark.slow
def test_a_job_rate_limited_on_its_last_receives_is_requeued_never_dead_lettered(settings, site, tmp_path):
    from specfleet.queues import dead_letter_queue

    s = settings.model_copy(update={"max_receives": 2})
    dead_letter_after(s, 2)  # the worker takes the threshold from the queue itself
    config = music_config(site, tmp_path, rate_limit_pause_s=0.5, rate_limit_pause_jitter=0.0)
    site.add_video("first", "Artist - Song 0", seconds=1)
    site.add_video("late", "Artist - Song 1", seconds=1)
    site.rate_limit(after=1, window_s=30)
    fetch_audio(site.watch_url("first"), tmp_path, config)  # the session's one video
    send(s, {"track_id": "late", "yt_url": site.watch_url("late")})
    q = job_queue(s, "download")
    for _ in range(3):  # three receives of a job allowed two: each one paused
        worker = Worker(s, PIPELINE, concurrency=1, max_jobs=1, config=config)
        assert worker.run() == EXIT_OK and worker.metrics().get("paused") == 1
        wait_for(lambda: q.depth()["visible"] == 1, what="the job back on the queue")
    assert dead_letter_queue(q).depth()["visible"] == 0
    (message,) = q.receive(1, wait_s=1)
    assert json.loads(message.body)["track_id"] == "late" and message.receive_count == 1, "a fresh copy"
    assert count(s, "status", "stat = 0") == 0
