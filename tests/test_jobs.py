"""Job bodies are outside input: each bad one gets an error naming the field."""

from __future__ import annotations

import pytest

from specfleet.jobs import JobValidationError
from specfleet.pipelines import parse_body as parse_job
from specfleet.pipelines.download.models import DownloadJob
from specfleet.pipelines.hydrophone.models import HydroJob
from specfleet.pipelines.melwindows.models import SpectoJob


def test_valid_jobs_parse():
    assert parse_job("download", '{"track_id": "4uLU6hMCjMI75M1A2tKUQC", "yt_url": "https://www.youtube.com/watch?v=x"}') == DownloadJob(
        track_id="4uLU6hMCjMI75M1A2tKUQC", yt_url="https://www.youtube.com/watch?v=x")
    assert parse_job("spectrogram", {"track_id": "t1"}).source_key() == "audio/t1.mp3"  # type: ignore[union-attr]
    assert isinstance(parse_job("hydrophone", {"file_url": "https://example.org/a.mseed"}), HydroJob)


@pytest.mark.parametrize(
    "pipeline, body, needle",
    [
        ("download", "not json", "not JSON"),
        ("download", "[1, 2]", "JSON object"),
        ("download", '{"track_id": "../etc/passwd", "yt_url": "https://youtube.com/x"}', "track_id"),
        ("download", '{"track_id": "a;DROP TABLE status", "yt_url": "https://youtube.com/x"}', "track_id"),
        ("download", '{"track_id": "ok", "yt_url": "file:///etc/passwd"}', "scheme"),
        ("download", '{"track_id": "ok", "yt_url": "https://youtube.com/' + "a" * 2100 + '"}', "longer"),
        ("download", '{"track_id": "ok", "yt_url": "https://youtube.com/a::b"}', "::"),
        ("download", '{"track_id": "ok"}', "yt_url"),
        ("download", '{"track_id": "ok", "yt_url": "https://youtube.com/x", "extra": 1}', "extra"),
        ("search", '{"track_id": "ok", "query": ""}', "query"),
        ("hydrophone", '{"file_url": "http:///nohost"}', "host"),
        ("spectrogram", '{"track_id": "a b"}', "track_id"),
        # Issue 14: a URL whose trailing ':' would merge with the status separator.
        ("hydrophone", '{"file_url": "https://rawdata.oceanobservatories.org/x.mseed:"}', "end with ':'"),
        ("download", '{"track_id": "ok", "yt_url": "https://youtube.com/x:"}', "end with ':'"),
        # Bodies that can never parse are refused, not retried.
        ("echo", "[" * 100_000, "nests too deeply"),
        ("echo", '{"job_id": ' + "9" * 5001 + "}", "not readable JSON"),
    ],
)
def test_bad_jobs_are_refused_with_the_field_named(pipeline, body, needle):
    with pytest.raises(JobValidationError) as err:
        parse_job(pipeline, body)
    assert needle in str(err.value)


def test_job_body_round_trips():
    job = SpectoJob(track_id="abc")
    assert parse_job("spectrogram", job.body()) == job
