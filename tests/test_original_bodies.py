"""Queues fed by the original producers keep working (issue 16, item 3): the
original wrote ``track_id::yt_url`` on jobs_download and a bare ``track_id``
on jobs_specto (SPEC.md, "Queue bodies of the original producers"). Both go
through the real workers end to end, next to today's JSON bodies."""

from __future__ import annotations

import pytest

from helpers import query, wait_for
from specfleet.jobs import JobValidationError
from specfleet.pipelines import get_spec, job_queue, parse_body
from specfleet.pipelines.download.models import DownloadJob
from specfleet.pipelines.melwindows.models import SpectoJob
from specfleet.pipelines.music.settings import MusicSettings
from specfleet.runtime import Worker
from specfleet.standins.video_site import VideoSite
from specfleet.storage import Storage
from test_spectrogram_dsp import make_mp3


@pytest.mark.parametrize(
    ("pipeline", "body", "job"),
    [
        ("download", "4uLU6hMCjMI75M1A2tKUQC::https://www.youtube.com/watch?v=abc",
         DownloadJob(track_id="4uLU6hMCjMI75M1A2tKUQC", yt_url="https://www.youtube.com/watch?v=abc")),
        ("download", " t1::https://youtu.be/x\n", DownloadJob(track_id="t1", yt_url="https://youtu.be/x")),
        ("spectrogram", "4uLU6hMCjMI75M1A2tKUQC", SpectoJob(track_id="4uLU6hMCjMI75M1A2tKUQC")),
        ("spectrogram", "12345", SpectoJob(track_id="12345")),  # valid JSON too: still the track id
    ],
)
def test_original_bodies_read_as_jobs(pipeline, body, job):
    assert parse_body(pipeline, body) == job


@pytest.mark.parametrize(
    ("pipeline", "body", "needle"),
    [
        ("download", "../etc::https://youtu.be/x", "not JSON"),
        ("download", "t1::file:///etc/passwd", "not JSON"),
        ("download", "t1::https://youtu.be/x::extra", "'::'"),
        ("spectrogram", "a b", "not JSON"),
    ],
)
def test_bad_original_style_bodies_are_still_refused(pipeline, body, needle):
    with pytest.raises(JobValidationError, match=needle):
        parse_body(pipeline, body)


def test_original_bodies_end_to_end(settings, tmp_path):
    storage = Storage(settings)
    with VideoSite() as site:
        site.add_video("vorig", "Original Artist - Original Song", seconds=3)
        s, config = settings, MusicSettings(extra_hosts=[site.host], ytdlp_retries=0)
        job_queue(s, "download").send([f"origtrack::{site.watch_url('vorig')}"])  # as the original producer wrote it
        assert Worker(s, get_spec("download"), concurrency=1, idle_exit_s=1.5, config=config).run() == 0
    wait_for(lambda: query(s, "SELECT track_id, stat FROM status") == [("origtrack", 1)], what="the download row")
    assert storage.exists("audio/origtrack.mp3")

    storage.put_file("audio/other.mp3", make_mp3(tmp_path / "other.mp3", seconds=35.0))
    job_queue(s, "spectrogram").send(["origtrack", '{"track_id": "other"}'])  # original and today's bodies
    assert Worker(s, get_spec("spectrogram"), concurrency=2, idle_exit_s=1.5).run() == 0
    wait_for(lambda: {r[0] for r in query(s, "SELECT DISTINCT track_id FROM status_specto WHERE stat = 1")}
             == {"origtrack", "other"}, what="windows of both tracks")
    assert storage.count("spec/origtrack__") >= 1 and storage.count("spec/other__") == 2
