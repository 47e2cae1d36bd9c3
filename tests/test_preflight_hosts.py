"""Allowed hosts are configuration (issue 26): a hydrophone worker whose
settings do not allow the archive it serves refuses to start, in one line,
before it receives a job; a job naming a host this worker may not fetch
from is kept in the dead-letter queue for a redrive, never deleted as
failed and never given a failure row."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from helpers import count, query, wait_for
from specfleet.local.stack import Namespace
from specfleet.pipelines import get_spec, job_queue
from specfleet.pipelines.hydrophone.producer import produce_day
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.queues import dead_letter_queue, redrive
from specfleet.runtime import Worker
from specfleet.runtime.preflight import EXIT_CONFIG
from specfleet.standins.ooi_archive import OOIServer, write_day

DAY = dt.date(2017, 10, 9)
HYDRO = "CE02SHBP/LJ01D/11-HYDBBA106"


@pytest.fixture
def archive(tmp_path: Path):
    write_day(tmp_path / "ooi", HYDRO, DAY, clean_files=3, clean_seconds=12.0, gap_file=False, bad_file=False)
    with OOIServer(tmp_path / "ooi") as server:
        yield server


@pytest.mark.slow
def test_a_worker_missing_its_archive_host_refuses_and_every_job_stays(
    namespace: Namespace, archive: OOIServer, tmp_path: Path
) -> None:
    s = namespace.settings
    allowed = HydroSettings(allowed_hosts=[archive.netloc], base_url=archive.base_url)
    enqueued = produce_day(s, DAY, base_url=archive.base_url, hydrophone=HYDRO, config=allowed).enqueued
    assert len(enqueued) == 3
    # What `specfleet local ooi-archive` prints, less its allowed-hosts line.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SPECFLEET_", "AWS_"))}
    env = {**base, **namespace.env(), "COLUMNS": "300", "SPECFLEET_WAIT_TIME_S": "1",
           "SPECFLEET_HYDRO_BASE_URL": archive.base_url}
    ran = subprocess.run([sys.executable, "-m", "specfleet.cli.main", "work", "hydrophone", "--idle-exit", "2"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert ran.returncode == EXIT_CONFIG, ran.stderr[-2000:]
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    [line] = [line for line in lines if not line.startswith("hydrophone worker ")]
    assert line.startswith("error: hydrophone archive host"), line
    assert archive.netloc in line and "SPECFLEET_HYDRO_ALLOWED_HOSTS" in line, line
    assert len(lines) == 2, ran.stderr  # the banner and the error: no job line

    # Every job still waits, never received: this receive is each one's first.
    sqs = boto3.client("sqs", endpoint_url=s.endpoint_url, region_name=s.region,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    url = sqs.get_queue_url(QueueName=job_queue(s, "hydrophone").name)["QueueUrl"]
    got: list[dict] = []
    for _ in range(5):
        got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   MessageSystemAttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
        if len(got) >= 3:
            break
    assert sorted(json.loads(m["Body"])["file_url"] for m in got) == sorted(enqueued)
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in got} == {"1"}
    assert count(s, "status_hydro") == 0


@pytest.mark.slow
def test_a_job_on_a_host_not_allowed_is_kept_in_the_dlq_not_failed(
    namespace: Namespace, archive: OOIServer
) -> None:
    s = namespace.settings
    config = HydroSettings(allowed_hosts=[archive.netloc], base_url=archive.base_url, processes=1)
    enqueued = produce_day(s, DAY, base_url=archive.base_url, hydrophone=HYDRO, config=config).enqueued
    # One job on a host this worker may not fetch from (refused before any connection).
    foreign = "https://archive.example.org/files/" + enqueued[0].split("/files/", 1)[1]
    queue = job_queue(s, "hydrophone")
    queue.send_json([{"file_url": foreign, "hydrophone": HYDRO}])

    worker = Worker(s, get_spec("hydrophone"), idle_exit_s=2, config=config)
    assert worker.run() == 0
    assert worker.metrics().get("done") == 3 and worker.metrics().get("misconfigured") == 1, worker.metrics()
    wait_for(lambda: count(s, "status_hydro") == 3, what="three status rows")
    # no failure row: a configuration problem is not a data error
    assert {row[0] for row in query(s, "SELECT file_url FROM status_hydro")} == set(enqueued)
    assert query(s, "SELECT count(*) FROM status_hydro WHERE stat <> 1") == [(0,)]
    dlq = dead_letter_queue(queue)
    held = dlq.receive(10, wait_s=1, visibility_s=0)
    assert [json.loads(m.body)["file_url"] for m in held] == [foreign]
    reason = held[0].attributes["specfleet_reason"]
    assert "archive.example.org" in reason and "not allowed" in reason and "SPECFLEET_HYDRO_ALLOWED_HOSTS" in reason
    assert queue.depth() == {"visible": 0, "in_flight": 0, "delayed": 0}
    # once the configuration is fixed, the kept job goes back to work as it came
    assert redrive(queue) == 1
    [back] = queue.receive(1, wait_s=1, visibility_s=0)
    assert json.loads(back.body)["file_url"] == foreign
