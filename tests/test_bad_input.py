"""Outside input that used to end in a traceback or in pointless retries
(issue 14, item 7): each now gets one clear error naming what was wrong."""

from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

from lambdas.status_writer.handler import build_handler
from specfleet.cli.main import app
from specfleet.local.poller import sqs_event
from specfleet.pipelines import status_queue
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.pipelines.hydrophone.worker import fetch_and_cut
from specfleet.producers.music import CsvError, read_search_csv
from specfleet.queues import Message
from specfleet.runtime import Rejected
from specfleet.standins import mseed_synth as synth
from specfleet.status_writer import StatusWriter


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("track_id,query\nt1,caf\u00e9\n".encode("latin-1"), "not UTF-8 text"),
        ("track_id,query\nt1,x\n".encode("utf-16"), "not UTF-8 text"),
        (b'track_id,query\nt1,"no closing quote\nt2,y\n', "unexpected end of data"),
    ],
)
def test_queries_csv_in_another_encoding_or_with_an_open_quote_is_a_clear_error(tmp_path, raw, message):
    path = tmp_path / "queries.csv"
    path.write_bytes(raw)
    with pytest.raises(CsvError, match=message):
        read_search_csv(path)


def test_dlq_commands_name_an_unknown_pipeline_instead_of_a_traceback():
    for args in (["dlq", "redrive", "hydrofone", "--yes"], ["dlq", "show", "hydrofone"], ["dlq", "purge", "x", "--yes"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2, res.output
        assert "unknown pipeline" in res.output
        assert isinstance(res.exception, SystemExit)  # a clean exit, not a KeyError


def test_lambda_handler_called_without_a_context(settings):
    arn = "arn:aws:sqs:us-east-1:000000000000:" + status_queue(settings, "echo").name
    handler = build_handler(lambda: StatusWriter(settings))
    event = sqs_event(arn, "us-east-1", [Message("m1", "rh", "i-1::1::j1::2024-01-01 00:00:00")])
    assert handler(event, None) == {"batchItemFailures": []}
    assert handler(event) == {"batchItemFailures": []}


def test_a_20_hz_file_with_the_rate_check_off_is_rejected_with_the_reason(tmp_path):
    path = tmp_path / "OO-HYVM1--YDH-2017-10-09T00:00:00.000000.mseed"
    rate = 20.0
    path.write_bytes(synth.mseed_bytes(synth.synthetic_signal(60.0, sample_rate=rate), dt.datetime(2017, 10, 9),
                                       sample_rate=rate))
    with pytest.raises(Rejected, match="20 Hz is too low"):
        fetch_and_cut(str(path), HydroSettings(expected_sample_rate=0), tmp_path / "out", None)


@pytest.mark.parametrize(("pipeline", "table"), [("search", "status_search"), ("download", "status")])
def test_a_body_nested_too_deeply_to_read_still_gets_its_failed_row(settings, pipeline, table):
    """50,000 nested ``[``: Python's JSON reader gives up (RecursionError);
    the job is refused with its reason, and salvaging the row's fields from
    the body must not fail the same way, or the job would get no row."""
    from helpers import query, wait_for
    from specfleet.pipelines import get_spec, job_queue
    from specfleet.runtime import Worker

    job_queue(settings, pipeline).send(["[" * 50_000])
    assert Worker(settings, get_spec(pipeline), concurrency=1, idle_exit_s=1.5).run() == 0
    wait_for(lambda: query(settings, f"SELECT stat FROM {table}") == [(0,)], what=f"the failed row in {table}")
    assert job_queue(settings, pipeline).depth() == {"visible": 0, "in_flight": 0, "delayed": 0}
