"""Fleet logic without a fleet: autoscale math, user-data, provisioning
script, plan, IMDS drain signals, region order."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from specfleet.fleet import userdata
from specfleet.fleet.ami import bake_user_data
from specfleet.fleet.autoscale import desired_capacity, load_throughput
from specfleet.fleet.failover import next_region
from specfleet.fleet.instances import FleetError
from specfleet.fleet.plan import PlanError, plan
from specfleet.runtime import EXIT_BANNED
from specfleet.runtime.spot import ImdsClient, termination_notice
from specfleet.settings import Settings
from specfleet.standins.imds import StubImds

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = ["hydrophone", "search", "download", "spectrogram"]


@pytest.mark.parametrize(
    ("backlog", "per_instance", "lo", "hi", "expected"),
    [
        (0, 100, 0, 10, 0),      # empty queue -> scale to zero
        (0, 100, 2, 10, 0),      # ... even with a minimum: min applies only while there is work
        (1, 100, 0, 10, 1),      # any work -> at least one instance
        (100, 100, 0, 10, 1),    # exactly one instance-interval of work
        (101, 100, 0, 10, 2),    # ceil, not round
        (950, 100, 0, 10, 10),
        (5000, 100, 0, 10, 10),  # bounded by max
        (50, 100, 3, 10, 3),     # bounded by min while there is work
        (7, 2.5, 0, 30, 3),      # fractional throughput per interval
    ],
)
def test_desired_capacity_table(backlog: int, per_instance: float, lo: int, hi: int, expected: int) -> None:
    assert desired_capacity(backlog, per_instance, lo, hi) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [((-1, 10, 0, 5), "backlog"), ((5, 0, 0, 5), "per interval"), ((5, 10, 6, 5), "min_size")],
)
def test_desired_capacity_rejects_nonsense(args: tuple[int, float, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        desired_capacity(*args)


def _shellcheck(path: Path) -> subprocess.CompletedProcess[str]:
    assert shutil.which("shellcheck"), "shellcheck must be installed (apt-get install -y shellcheck)"
    return subprocess.run(["shellcheck", "--shell=bash", str(path)], capture_output=True, text=True)


def test_provisioning_script_passes_shellcheck() -> None:
    result = _shellcheck(ROOT / "ami" / "provision.sh")
    assert result.returncode == 0, result.stdout


def test_shellcheck_catches_a_bad_script(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/bin/bash\nrm -rf $1/*\n")  # unquoted expansion: SC2086
    assert _shellcheck(bad).returncode != 0


def test_unit_does_not_restart_on_ban_code() -> None:
    unit = (ROOT / "ami" / "specfleet-worker@.service").read_text()
    assert "ExecStart=/opt/specfleet/venv/bin/specfleet work %i" in unit
    assert "Restart=always" in unit
    assert f"RestartPreventExitStatus={EXIT_BANNED}" in unit


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_user_data_renders_for_every_pipeline(pipeline: str, tmp_path: Path) -> None:
    settings = Settings(queue_prefix="prod_", bucket="my-data", region="eu-west-1", db_secret_id="arn:aws:secretsmanager:eu-west-1:1:secret:db")
    script = userdata.render(pipeline, userdata.worker_env(settings))
    path = tmp_path / "user-data.sh"
    path.write_text(script)
    result = _shellcheck(path)
    assert result.returncode == 0, result.stdout
    assert f"systemctl enable --now specfleet-worker@{pipeline}.service" in script
    assert f'"$EXIT_STATUS" = "{EXIT_BANNED}"' in script and "poweroff" in script
    assert "DSN" not in script
    parsed = userdata.parse(script, "i-0abc")
    assert parsed.pipeline == pipeline
    assert parsed.argv == ["specfleet", "work", pipeline]
    assert parsed.env["SPECFLEET_INSTANCE_ID"] == "i-0abc"
    assert parsed.env["SPECFLEET_QUEUE_PREFIX"] == "prod_"
    assert parsed.env["SPECFLEET_REGION"] == "eu-west-1"
    assert parsed.env["SPECFLEET_IMDS_URL"] == userdata.IMDS_URL
    assert parsed.env["SPECFLEET_DB_SECRET_ID"].endswith(":secret:db")


@pytest.mark.parametrize(
    ("pipeline", "env", "message"),
    [
        ("nope", {}, "unknown pipeline"),
        ("search", {"SPECFLEET_BUCKET": "a b"}, "unsafe"),
        ("search", {"SPECFLEET_BUCKET": "$(reboot)"}, "unsafe"),
        ("search", {"SPECFLEET_DB_DSN": "postgresql://u:pw@h/db"}, "password"),
        ("search", {"PATH": "/bin"}, "SPECFLEET_NAME"),
    ],
)
def test_user_data_refuses_unsafe_input(pipeline: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(userdata.UserDataError, match=message):
        userdata.render(pipeline, env)


def test_user_data_parse_names_a_foreign_script() -> None:
    with pytest.raises(userdata.UserDataError, match="specfleet:env"):
        userdata.parse("#!/bin/bash\necho hello\n", "i-1")


def test_bake_user_data_is_valid_shell(tmp_path: Path) -> None:
    script = bake_user_data(
        "specfleet @ https://example.invalid/specfleet-0.1.0-py3-none-any.whl?X-Amz=1&b=2", "https://example.invalid/lock?a=1&b=2"
    )
    path = tmp_path / "bake.sh"
    path.write_text(script)
    assert _shellcheck(path).returncode == 0
    assert "export SPECFLEET_POWEROFF=1" in script
    assert script.count("#!") == 1


def test_plan_for_a_hydrophone_month() -> None:
    settings = Settings(fleet_max_size=30)
    jobs = 30 * 288  # a month of 5-minute files
    rate = load_throughput(settings)["pipelines"]["hydrophone"]["jobs_per_instance_hour"]  # on c5.4xlarge
    p = plan(settings, "hydrophone", jobs, instance_type="c5.4xlarge", deadline_h=24)
    assert p.instances == max(1, math.ceil(jobs / (rate * 24)))
    assert p.wall_hours <= 24
    assert p.compute_spot_usd < p.compute_on_demand_usd
    assert p.s3_put_usd == round(jobs * 120 / 1000 * 0.005, 2)
    assert p.total_spot_usd == round(p.compute_spot_usd + p.s3_put_usd + p.s3_storage_month_usd + p.sqs_usd, 2)
    assert "benchmarks/hydrophone.py" in p.throughput_source
    # a smaller instance: CPU-bound rate scales with vCPUs (16 -> 4)
    small = plan(settings, "hydrophone", jobs, instance_type="c6i.xlarge", deadline_h=24)
    assert small.jobs_per_instance_hour == pytest.approx(rate / 4)
    assert small.instances == max(1, math.ceil(jobs / (rate / 4 * 24)))


def test_plan_names_bad_input() -> None:
    with pytest.raises(PlanError, match="instance type 'z9.huge'"):
        plan(Settings(), "download", 10, instance_type="z9.huge")
    with pytest.raises(PlanError, match="no throughput figure"):
        plan(Settings(), "karaoke", 10)
    with pytest.raises(PlanError, match="deadline"):
        plan(Settings(), "download", 10, deadline_h=0)


def test_plan_cli_prints_json_last() -> None:
    from specfleet.cli.main import app

    result = CliRunner().invoke(app, ["fleet", "plan", "--pipeline", "download", "--jobs", "61551", "--deadline", "4"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["instances"] == 39  # ceil(61551 / (400 * 4))
    assert data["jobs"] == 61551


def test_imds_signals_drive_the_termination_notice() -> None:
    stub = StubImds("i-123").start()
    try:
        # IMDSv2: no token, no metadata
        assert httpx.get(f"{stub.url}/latest/meta-data/instance-id").status_code == 401
        imds = ImdsClient(stub.url)
        assert imds.get("instance-id") == "i-123"
        assert termination_notice(imds) is None
        stub.set_lifecycle("Terminated")
        assert "auto scaling" in (termination_notice(imds) or "")
        stub.set_lifecycle("InService")
        stub.interrupt()
        notice = termination_notice(imds) or ""
        assert notice.startswith("spot interruption notice") and '"action": "terminate"' in notice
        imds.close()
    finally:
        stub.stop()


def test_next_region_wraps_and_refuses_single_region() -> None:
    regions = ["us-east-1", "us-west-2", "eu-west-1"]
    assert next_region(regions, "us-east-1") == "us-west-2"
    assert next_region(regions, "eu-west-1") == "us-east-1"
    assert next_region(regions, "ap-south-1") == "us-east-1"
    with pytest.raises(FleetError, match="only one fleet region"):
        next_region(["us-east-1"], "us-east-1")
