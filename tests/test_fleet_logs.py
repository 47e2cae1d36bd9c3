"""Worker logs the AWS way, against moto's CloudWatch Logs: the emulator
ships each worker's output to its pipeline's log group (as the CloudWatch
agent does on EC2, from the same user-data), and ``specfleet logs`` reads
them back, per pipeline or per instance, once or following."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from typer.testing import CliRunner

from helpers import wait_for
from specfleet.aws import client
from specfleet.cli.main import app
from specfleet.fleet import instances
from specfleet.fleet.emulator import FleetEmulator
from specfleet.fleet.logs import follow, read
from specfleet.pipelines import job_queue
from specfleet.settings import Settings


def _with_group(settings: Settings, pipeline: str = "echo") -> Settings:
    """A stack name of its own and its pipeline's log group (the template creates it on AWS)."""
    stack = f"logs-{uuid.uuid4().hex[:8]}"
    client("logs", settings).create_log_group(logGroupName=f"/specfleet/{stack}/{pipeline}")
    return settings.model_copy(update={"fleet_stack_name": stack, "fleet_regions": [settings.region]})


def _cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    env = {"SPECFLEET_ENDPOINT_URL": settings.endpoint_url, "SPECFLEET_FLEET_STACK_NAME": settings.fleet_stack_name,
           "SPECFLEET_QUEUE_PREFIX": settings.queue_prefix}
    result = CliRunner(env=env).invoke(app, ["logs", *args])
    return result.exit_code, result.stdout, result.stderr


def test_logs_shows_what_a_worker_wrote_on_its_instance(settings: Settings, tmp_path: Path) -> None:
    s = _with_group(settings)
    emu = FleetEmulator(s, log_dir=tmp_path / "fleet", poll_s=0.2).start()
    try:
        [instance] = instances.launch(s, "echo", 1)
        [other] = instances.launch(s, "echo", 1)
        job_queue(s, "echo").send_json([{"job_id": "loud-failure", "fail": True}])
        wait_for(lambda: any("loud-failure" in e.message for e in read(s, "echo")), timeout=60,
                 what="the worker's warning in CloudWatch Logs")
    finally:
        emu.stop()
    code, out, _ = _cli(s, "echo", "--instance", instance)
    assert code == 0
    lines = out.splitlines()
    assert lines and all(f" {instance} " in line for line in lines)  # one instance's stream only
    assert any("worker stopped" in line for line in lines)  # its last words, shipped as it stopped
    code, out, _ = _cli(s, "echo")
    assert code == 0
    assert {instance, other} <= {line.split()[2] for line in out.splitlines()}  # every instance's stream
    assert "asked to fail" in out  # the retry warning of whichever worker took the job
    code, out, _ = _cli(s, "echo", "--limit", "1")
    assert code == 0 and len(out.splitlines()) == 1


def test_follow_prints_new_events_as_they_arrive(settings: Settings) -> None:
    s = _with_group(settings, "search")
    group = f"/specfleet/{s.fleet_stack_name}/search"
    api = client("logs", s)
    api.create_log_stream(logGroupName=group, logStreamName="i-one")

    def put(message: str) -> None:
        api.put_log_events(logGroupName=group, logStreamName="i-one",
                           logEvents=[{"timestamp": int(time.time() * 1000), "message": message}])

    put("first")
    deadline = time.monotonic() + 30
    events = follow(s, "search", poll_s=0.2, stop=lambda: time.monotonic() > deadline)
    assert next(events).message == "first"
    put("second")
    assert next(events).message == "second"  # arrives on a later poll, shown once
    events.close()
    code, out, _ = _cli(s, "search", "--follow", "--for", "0.5", "--poll", "0.2")
    assert code == 0
    assert [line.split(" ", 3)[3] for line in out.splitlines()] == ["first", "second"]


def test_logs_names_what_is_missing(settings: Settings) -> None:
    s = settings.model_copy(update={"fleet_stack_name": "never-deployed"})
    code, _, err = _cli(s, "echo")
    assert code == 1 and "no log group '/specfleet/never-deployed/echo'" in err
    assert "Traceback" not in err
    code, _, err = _cli(s, "karaoke")
    assert code == 2 and "unknown pipeline 'karaoke'" in err
    code, _, err = _cli(s, "echo", "--since", "yesterday")
    assert code == 2 and "not a duration" in err
