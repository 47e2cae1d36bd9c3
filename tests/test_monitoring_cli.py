"""``specfleet status`` (JSON, table, --watch) and ``specfleet dlq show|purge``
against a real flow of echo jobs on the embedded stack."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

from typer.testing import CliRunner

from helpers import count, query, wait_for
from specfleet.cli.main import app
from specfleet.pipelines import get_spec, job_queue
from specfleet.queues import dead_letter_queue
from specfleet.runtime import Worker

runner = CliRunner()


def _cli(namespace, *args: str, input: str | None = None):
    return runner.invoke(app, list(args), env={**namespace.env(), "COLUMNS": "200"}, input=input)


def test_status_json_matches_tables_and_queues(namespace, settings):
    q = job_queue(settings, "echo")
    q.send_json({"job_id": f"j{i}"} for i in range(10))
    q.send(["not json", '{"job_id": ""}'])  # rejected by the worker: stat 0 rows
    worker = Worker(settings, get_spec("echo"), concurrency=4, idle_exit_s=1)
    worker.run()
    wait_for(lambda: count(settings, "status_echo") == 12, what="12 echo status rows")
    q.send_json({"job_id": f"later{i}"} for i in range(8))  # backlog nobody works on
    dead_letter_queue(q).send(["poison"])

    result = _cli(namespace, "status", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    echo = data["pipelines"]["echo"]

    by_stat = dict(query(settings, "SELECT stat, count(*) FROM status_echo GROUP BY stat"))
    assert (echo["done"], echo["failed"]) == (by_stat.get(1, 0), by_stat.get(0, 0)) == (10, 2)
    assert echo["skipped"] == by_stat.get(2, 0) and echo["banned"] == by_stat.get(-1, 0)
    depth = q.depth()
    assert echo["queue"]["visible"] == depth["visible"] == 8
    assert echo["dlq"] == dead_letter_queue(q).depth()["visible"] == 1
    assert echo["instances_alive"] == [settings.instance_id] == data["instances"]["alive"]
    assert echo["jobs_per_min"] > 0 and echo["eta_s"] is not None and echo["eta_s"] > 0
    for other in ("hydrophone", "search", "download", "spectrogram"):
        assert data["pipelines"][other]["done"] == 0
    # the command recorded exactly the figures it printed
    assert query(
        settings, "SELECT visible, in_flight, dlq FROM queue_depth_history WHERE pipeline = 'echo'"
    ) == [(echo["queue"]["visible"], echo["queue"]["in_flight"], echo["dlq"])]

    table = _cli(namespace, "status", "--no-record")
    assert table.exit_code == 0, table.output
    assert "echo" in table.stdout and "spectrogram" in table.stdout
    assert count(settings, "queue_depth_history") == 5  # --no-record added nothing


def test_status_watch_keeps_refreshing(namespace, settings):
    env = {**os.environ, **namespace.env(), "COLUMNS": "160"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "specfleet.cli.main", "status", "--watch", "--interval", "0.3"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # every refresh appends one sample per pipeline
        wait_for(lambda: count(settings, "queue_depth_history", "pipeline = 'echo'") >= 3,
                 timeout=60, what="three refreshes of status --watch")
        job_queue(settings, "echo").send_json([{"job_id": "seen-by-watch"}])
        wait_for(lambda: count(settings, "queue_depth_history", "pipeline = 'echo' AND visible = 1") >= 1,
                 timeout=30, what="a refresh that sees the new job")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "specfleet status" in out


def test_dlq_show_and_purge(namespace, settings):
    dlq = dead_letter_queue(job_queue(settings, "echo"))
    bodies = {'{"job_id": "d1"}', '{"job_id": "d2"}', "garbage"}
    dlq.send(sorted(bodies))

    shown = _cli(namespace, "dlq", "show", "echo", "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["queue"] == dlq.name
    assert {m["body"] for m in data["messages"]} == bodies
    # a peek leaves every message in place and visible
    wait_for(lambda: dlq.depth()["visible"] == 3, what="peeked messages visible again")

    table = _cli(namespace, "dlq", "show", "echo")
    assert table.exit_code == 0 and "garbage" in table.stdout

    refused = _cli(namespace, "dlq", "purge", "echo", input="n\n")
    assert refused.exit_code == 1
    assert dlq.depth()["visible"] == 3

    unknown = _cli(namespace, "dlq", "purge", "nosuch", "--yes")
    assert unknown.exit_code == 2 and "unknown pipeline" in unknown.output

    purged = _cli(namespace, "dlq", "purge", "echo", "--yes")
    assert purged.exit_code == 0, purged.output
    wait_for(lambda: dlq.depth()["visible"] == 0 and not dlq.receive(1, wait_s=0), what="an empty DLQ")


def test_a_second_dlq_purge_within_a_minute_says_when_it_can_run(namespace, settings):
    dlq = dead_letter_queue(job_queue(settings, "echo"))
    dlq.send(["first"])
    assert _cli(namespace, "dlq", "purge", "echo", "--yes").exit_code == 0
    dlq.send(["second"])
    again = _cli(namespace, "dlq", "purge", "echo", "--yes")
    assert again.exit_code == 1
    lines = [line for line in again.output.splitlines() if line.strip()]
    assert len(lines) == 1, again.output
    assert f"{dlq.name} was already purged less than 60 s ago" in lines[0]
    assert re.search(r"run this at \d\d:\d\d:\d\d UTC or later", lines[0]), lines[0]
    assert "AWS error" not in again.output and "Traceback" not in again.output
    assert dlq.depth()["visible"] == 1  # SQS refused: the second message is still there
