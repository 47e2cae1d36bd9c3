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
from specfleet.fleet.failover import next_region
from specfleet.fleet.instances import FleetError
from specfleet.fleet.plan import PlanError, plan
from specfleet.fleet.scaling import ScalingRule, decide, rule_for
from specfleet.fleet.settings import FleetSettings
from specfleet.fleet.throughput import ThroughputError, load_prices, load_throughput, rate_per_hour
from specfleet.pipelines.music.settings import MusicSettings
from specfleet.runtime import EXIT_BANNED
from specfleet.runtime.spot import ImdsClient, termination_notice
from specfleet.settings import Settings
from specfleet.standins.imds import StubImds

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = ["hydrophone", "search", "download", "spectrogram"]


RULE = ScalingRule("download", target_backlog=100, min_size=0, max_size=10)


@pytest.mark.parametrize(
    ("visible", "in_service", "desired", "expected", "policy"),
    [
        (0, 0, 0, 0, "none"),                 # nothing to do, nothing running
        (1, 0, 0, 1, "step-from-zero"),       # target tracking cannot divide by 0 instances: the step does it
        (5000, 0, 0, 1, "step-from-zero"),    # ... with one instance; target tracking takes over once it is in service
        (5000, 0, 3, 3, "none"),              # instances launching (desired 3, none in service yet): no policy fires
        (100, 1, 1, 1, "target-tracking"),    # exactly the target per instance
        (101, 1, 1, 2, "target-tracking"),    # ceil, not round
        (950, 2, 2, 10, "target-tracking"),   # desired = ceil(visible / target), not per-instance arithmetic
        (5000, 4, 4, 10, "target-tracking"),  # bounded by max
        (0, 3, 3, 0, "target-tracking"),      # empty queue: scale in to zero (busy instances are protected)
        (7, 1, 0, 1, "target-tracking"),      # both fire (desired 0, one still in service): the larger wins
    ],
)
def test_the_scaling_rule_is_what_the_policies_do(visible: int, in_service: int, desired: int, expected: int,
                                                   policy: str) -> None:
    decision = decide(RULE, visible=visible, in_service=in_service, desired=desired)
    assert (decision.desired, decision.policy) == (expected, policy)


def test_the_scaling_rule_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="target backlog"):
        ScalingRule("x", target_backlog=0)
    with pytest.raises(ValueError, match="min_size <= max_size"):
        ScalingRule("x", target_backlog=1, min_size=5, max_size=2)
    with pytest.raises(ValueError, match=">= 0"):
        decide(RULE, visible=-1, in_service=0, desired=0)


def measured_rate(settings: FleetSettings, pipeline: str, instance_type: str) -> float:
    """Jobs per hour of ``pipeline`` on ``instance_type``, computed here from
    the throughput file and the price table (not read back from the code under test)."""
    row = load_throughput(settings)["pipelines"][pipeline]
    rate = float(row["jobs_per_instance_hour"])
    if row["scales_with_vcpus"]:
        vcpus = {name: t["vcpus"] for name, t in load_prices(settings)["instances"].items()}
        rate *= vcpus[instance_type] / vcpus[row["reference_instance_type"]]
    return rate


def planned_rate(settings: FleetSettings, pipeline: str, instance_type: str) -> float:
    """``measured_rate``, or the music pipelines' videos-per-hour budget
    (YouTube's session limit) where that is lower."""
    rate = measured_rate(settings, pipeline, instance_type)
    if pipeline in ("download", "search") and MusicSettings().videos_per_hour > 0:
        rate = min(rate, MusicSettings().videos_per_hour)
    return rate


def test_targets_come_from_throughput_and_drain_time() -> None:
    settings = FleetSettings.model_construct()
    itype = settings.fleet_instance_type
    for pipeline in ("download", "hydrophone", "spectrogram", "search"):
        # the backlog one instance clears in 300 s (at least one message)
        expected = max(1.0, round(planned_rate(settings, pipeline, itype) / 3600 * 300, 1))
        assert rule_for(settings, pipeline).target_backlog == expected, pipeline
    slower = settings.model_copy(update={"fleet_backlog_drain_s": 600.0})
    expected = max(1.0, round(planned_rate(settings, "download", itype) / 3600 * 600, 1))
    assert rule_for(slower, "download").target_backlog == expected
    with pytest.raises(ThroughputError, match="no throughput figure for 'karaoke'"):
        rate_per_hour(settings, "karaoke")


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
    settings = Settings(queue_prefix="prod_", bucket="my-data", region="eu-west-1",
                        db_secret_id="arn:aws:secretsmanager:eu-west-1:1:secret:db")
    script = userdata.render(pipeline, userdata.worker_env(settings), log_group=f"/specfleet/prod/{pipeline}")
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
    # workers hold no database settings at all, not even the secret's name
    assert not [k for k in parsed.env if "DB" in k] and "secret" not in script
    # the CloudWatch agent ships the unit's output file to the pipeline's group, one stream per instance
    assert parsed.log_target() == (f"/var/log/specfleet/{pipeline}.log", f"/specfleet/prod/{pipeline}")
    assert parsed.agent["logs"]["logs_collected"]["files"]["collect_list"][0]["log_stream_name"] == "{instance_id}"
    assert f"StandardOutput=append:/var/log/specfleet/{pipeline}.log" in script


@pytest.mark.parametrize(
    ("pipeline", "env", "message"),
    [
        ("nope", {}, "unknown pipeline"),
        ("search", {"SPECFLEET_BUCKET": "a b"}, "unsafe"),
        ("search", {"SPECFLEET_BUCKET": "$(reboot)"}, "unsafe"),
        ("search", {"SPECFLEET_DB_DSN": "postgresql://u:pw@h/db"}, "no database settings"),
        ("search", {"SPECFLEET_DB_SECRET_ID": "arn:aws:secretsmanager:x"}, "no database settings"),
        ("search", {"PATH": "/bin"}, "SPECFLEET_NAME"),
    ],
)
def test_user_data_refuses_unsafe_input(pipeline: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(userdata.UserDataError, match=message):
        userdata.render(pipeline, env, log_group="/specfleet/x/search")


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
    settings = FleetSettings(fleet_max_size=30)
    jobs = 30 * 288  # a month of 5-minute files
    row = load_throughput(settings)["pipelines"]["hydrophone"]
    rate = measured_rate(settings, "hydrophone", "c5.4xlarge")
    p = plan(settings, "hydrophone", jobs, instance_type="c5.4xlarge", deadline_h=24)
    assert p.jobs_per_instance_hour == pytest.approx(rate, abs=0.01)
    assert p.instances == max(1, math.ceil(jobs / (rate * 24)))
    assert p.wall_hours <= 24
    assert p.compute_spot_usd < p.compute_on_demand_usd
    # S3 requests as the benchmark counted them: ~121 PUTs a file (60 WAVs, 60 images, a manifest)
    assert 120 <= row["s3_put_requests_per_job"] <= 122
    assert p.s3_put_usd == round(jobs * row["s3_put_requests_per_job"] / 1000 * 0.005, 2)
    assert p.egress_usd == pytest.approx(p.egress_gb * 0.09, abs=0.06)
    assert p.fixed_usd == pytest.approx(30.0 * p.wall_hours / 730, abs=0.01)
    parts = (p.compute_spot_usd, p.s3_put_usd, p.s3_get_usd, p.s3_storage_month_usd, p.sqs_usd, p.egress_usd,
             p.fixed_usd)
    assert p.total_spot_usd == pytest.approx(sum(parts), abs=0.05)
    assert "benchmarks/fleet.py" in p.throughput_source
    # a smaller instance: the CPU-bound rate scales with vCPUs (16 -> 4)
    small = plan(settings, "hydrophone", jobs, instance_type="c6i.xlarge", deadline_h=24)
    assert small.jobs_per_instance_hour == pytest.approx(rate / 4, abs=0.01)
    assert small.instances == max(1, math.ceil(jobs / (rate / 4 * 24)))


def test_plan_names_bad_input() -> None:
    with pytest.raises(PlanError, match="instance type 'z9.huge'"):
        plan(FleetSettings(), "download", 10, instance_type="z9.huge")
    with pytest.raises(PlanError, match="no throughput figure"):
        plan(FleetSettings(), "karaoke", 10)
    with pytest.raises(PlanError, match="deadline"):
        plan(FleetSettings(), "download", 10, deadline_h=0)


def test_plan_cli_prints_json() -> None:
    from specfleet.cli.main import app

    result = CliRunner().invoke(app, ["fleet", "plan", "--pipeline", "download", "--jobs", "61551", "--deadline", "4", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rate = planned_rate(FleetSettings(), "download", data["instance_type"])
    assert data["instances"] == math.ceil(61551 / (rate * 4))
    assert data["jobs"] == 61551


def test_plan_uses_the_video_budget_below_the_measured_rate(monkeypatch) -> None:
    from specfleet.cli.main import app

    measured = measured_rate(FleetSettings(), "download", FleetSettings().fleet_instance_type)
    monkeypatch.setenv("SPECFLEET_MUSIC_VIDEOS_PER_HOUR", "300")
    assert 300 < measured, "the table's download rate is above YouTube's guest limit"
    result = CliRunner().invoke(app, ["fleet", "plan", "--pipeline", "download", "--jobs", "61551", "--output", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["jobs_per_instance_hour"] == 300
    assert data["instance_hours"] == round(61551 / 300, 2)
    assert any(f"budget implies {61551 / 300:.1f} instance-hours" in n for n in data["notes"]), data["notes"]
    # unpaced: the measured rate again
    monkeypatch.setenv("SPECFLEET_MUSIC_VIDEOS_PER_HOUR", "0")
    assert plan(FleetSettings(), "download", 61551).jobs_per_instance_hour == round(measured, 2)
    # a budget above the measured rate changes nothing
    monkeypatch.setenv("SPECFLEET_MUSIC_VIDEOS_PER_HOUR", str(measured * 2))
    assert plan(FleetSettings(), "download", 61551).jobs_per_instance_hour == round(measured, 2)


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


@pytest.mark.slow  # imports every pipeline and warms the spectrogram kernels: ~15 s
def test_provision_scripts_python_snippets_run_against_this_checkout() -> None:
    """The image build's checks (``python -c '...'`` in provision.sh) use
    this package's API: run each here, for every pipeline, so a rename
    fails in seconds rather than in the six-minute image test."""
    import re
    import subprocess
    import sys

    from specfleet.pipelines import names

    script = (ROOT / "ami" / "provision.sh").read_text()
    snippets = re.findall(r"-c \\?\s*'([^']+)'", script)
    assert len(snippets) >= 4, snippets
    for code in snippets:
        for name in names() if "sys.argv[1]" in code else ["-"]:
            done = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"{code!r} ({name}): {done.stderr[-800:]}"


def test_plan_charges_transfer_out_only_for_the_share_read_out() -> None:
    """Results used in the region cost no transfer out (``--read-out 0``,
    ``SPECFLEET_FLEET_RESULTS_READ_OUT``); a share read out costs that share."""
    settings = FleetSettings()
    price_gb = load_prices(settings)["transfer"]["internet_out_gb"]
    whole = plan(settings, "hydrophone", 1000)
    assert whole.egress_gb == whole.s3_storage_gb > 0  # by default every result is read out once
    assert whole.egress_usd == pytest.approx(whole.egress_gb * price_gb, abs=0.06)
    half = plan(settings, "hydrophone", 1000, read_out=0.5)
    assert half.egress_usd == pytest.approx(whole.egress_usd / 2, abs=0.01)
    in_region = plan(FleetSettings(fleet_results_read_out=0.0), "hydrophone", 1000)
    assert (in_region.egress_gb, in_region.egress_usd) == (0.0, 0.0)
    assert in_region.total_spot_usd == pytest.approx(whole.total_spot_usd - whole.egress_usd, abs=0.02)
    with pytest.raises(PlanError, match="between 0 and 1"):
        plan(settings, "hydrophone", 10, read_out=1.5)

    from specfleet.cli.main import app

    result = CliRunner().invoke(app, ["fleet", "plan", "--pipeline", "hydrophone", "--jobs", "1000", "--read-out", "0", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["egress_usd"] == 0.0
