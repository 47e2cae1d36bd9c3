"""Autoscaling the AWS way, exercised in the emulator: the template's
policies (deployed into moto), applied by the fleet emulator as Auto Scaling
would, scale an emulated group out from zero and back to zero; busy workers
protect their instance from scale-in; no job is lost. And the dry run."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet_helpers import EmulatedStack, deploy_emulated
from helpers import count, query, wait_for
from specfleet import pipelines
from specfleet.aws import client
from specfleet.fleet import autoscale, template
from specfleet.fleet.emulator import FleetEmulator
from specfleet.fleet.settings import FleetSettings
from specfleet.fleet.throughput import load_throughput
from specfleet.local.poller import StatusPoller
from specfleet.runtime.spec import FleetProfile
from specfleet.settings import Settings

JOBS = 30
#: Messages per instance the target tracks: 30 jobs want 6 instances -- capped at 3.
TARGET = 5.0
#: The drain time that makes echo's measured rate (throughput.json, from
#: benchmarks/fleet.py) come out at that target.
ECHO_PER_S = load_throughput(FleetSettings.model_construct())["pipelines"]["echo"]["jobs_per_instance_hour"] / 3600
DRAIN_S = TARGET / ECHO_PER_S
MAX_INSTANCES = 3


@pytest.fixture
def scaled_echo(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatedStack]:
    """The template rendered with echo autoscaled (it is not, by default: it
    is the smoke-test pipeline) and a short drain target, deployed to moto."""
    echo = pipelines.get_spec("echo")
    autoscaled = dataclasses.replace(echo, fleet=FleetProfile(autoscaled=True))
    monkeypatch.setattr(template, "specs", lambda: tuple(autoscaled if s.name == "echo" else s
                                                         for s in pipelines.specs()))
    rendered = tmp_path / "template.yaml"
    rendered.write_text(template.render(template.defaults().model_copy(
        update={"fleet_backlog_drain_s": DRAIN_S, "fleet_max_size": MAX_INSTANCES})))
    stack = deploy_emulated(settings, tmp_path, with_writer=False, template=rendered,
                            MaxInstancesPerPipeline=str(MAX_INSTANCES))
    yield stack
    from specfleet.fleet import deploy

    deploy.destroy(stack.settings, stack_name=stack.name)


def _group(settings: Settings, name: str) -> dict:
    return client("autoscaling", settings).describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"][0]


def test_dry_run_reads_the_deployed_policy(scaled_echo: EmulatedStack) -> None:
    s = scaled_echo.settings
    [view] = autoscale.dry_run(s, ["echo"])
    assert (view.rule_source, view.rule.target_backlog, view.rule.max_size) == ("deployed", TARGET, MAX_INSTANCES)
    assert view.queue_name == f"{scaled_echo.prefix}jobs_echo"
    assert (view.decision.desired, view.decision.policy) == (0, "none")
    pipelines.job_queue(s, "echo").send_json({"job_id": f"d{i}"} for i in range(12))
    [view] = autoscale.dry_run(s, ["echo"])
    assert (view.decision.visible, view.decision.desired, view.decision.policy) == (12, 1, "step-from-zero")
    assert _group(s, view.name)["DesiredCapacity"] == 0  # a dry run changes nothing
    # the CLI prints the same: one JSON list, one entry per group
    from typer.testing import CliRunner

    from specfleet.cli.main import app

    env = {"SPECFLEET_ENDPOINT_URL": s.endpoint_url, "SPECFLEET_QUEUE_PREFIX": s.queue_prefix}
    result = CliRunner(env=env).invoke(app, ["fleet", "autoscale", "--pipeline", "echo", "--json"])
    assert result.exit_code == 0, result.output
    [group] = json.loads(result.stdout)
    assert (group["desired"], group["policy"]) == (1, "step-from-zero")
    shown = CliRunner(env=env).invoke(app, ["fleet", "autoscale", "--pipeline", "echo"])
    assert shown.exit_code == 0 and "desired 0 -> 1" in shown.stdout and "{" not in shown.stdout, shown.output


@pytest.mark.slow
def test_target_tracking_scales_the_emulated_fleet_out_from_zero_and_back_with_no_job_lost(
    scaled_echo: EmulatedStack, tmp_path: Path
) -> None:
    s = scaled_echo.settings.model_copy(update={"imds_poll_s": 0.3})
    group = scaled_echo.outputs["EchoGroupName"]
    assert _group(s, group)["DesiredCapacity"] == 0
    poller = StatusPoller(s).start()  # the Lambda's stand-in, on the stack's status queues
    emu = FleetEmulator(s, log_dir=tmp_path / "fleet", poll_s=0.2, autoscale=True, scale_every_s=0.5).start()
    seen_in_service: list[int] = []
    seen_protected = 0
    try:
        pipelines.job_queue(s, "echo").send_json({"job_id": f"a{i}", "sleep_s": 1.0} for i in range(JOBS))

        def all_done() -> bool:
            nonlocal seen_protected
            g = _group(s, group)
            seen_in_service.append(sum(1 for i in g["Instances"] if i["LifecycleState"] == "InService"))
            seen_protected = max(seen_protected, sum(1 for i in g["Instances"] if i.get("ProtectedFromScaleIn")))
            return count(s, "status_echo", "stat = 1") >= JOBS

        wait_for(all_done, timeout=120, interval=0.3, what=f"{JOBS} echo jobs done by the scaled group")
        # ... and back to zero once the queue is empty and the workers idle
        wait_for(lambda: _group(s, group)["DesiredCapacity"] == 0 and not _group(s, group)["Instances"]
                 and not emu.alive(), timeout=60, what="the group back at 0 instances")
    finally:
        emu.stop()
        poller.stop()

    for v in emu.scaling:  # the scaling history, for the log of a failed run
        print(f"{v.decision.policy}: {v.decision.desired_before} -> {v.decision.desired} ({v.decision.reason})")
    policies = [v.decision.policy for v in emu.scaling]
    assert policies[0] == "step-from-zero"  # target tracking cannot act on an empty group
    assert "target-tracking" in policies
    assert max(seen_in_service) == MAX_INSTANCES  # scaled out to the cap (30 jobs / 5 per instance = 6)
    assert seen_protected >= 1  # busy workers protected their instances from scale-in
    assert emu.scaling[-1].decision.desired == 0 and emu.scaling[-1].decision.policy == "target-tracking"
    # no job lost, none failed, each done once
    done = query(s, "SELECT job_id, count(*) FROM status_echo WHERE stat = 1 GROUP BY job_id")
    assert sorted(j for j, _ in done) == sorted(f"a{i}" for i in range(JOBS))
    assert count(s, "status_echo", "stat <> 1") == 0
    assert pipelines.job_queue(s, "echo").depth() == {"visible": 0, "in_flight": 0, "delayed": 0}
    workers = emu.instances.values()
    exits = {w.instance_id: (w.exit_codes, w.phase, w.restarts) for w in workers}
    assert len(workers) >= MAX_INSTANCES and all(w.exit_codes and w.exit_codes[-1] == 0 for w in workers), exits
