"""The local fleet emulator: instances launched on moto run as worker
processes; spot notices drain them; a banned worker's capacity moves region."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import count, query, wait_for
from specfleet.aws import client
from specfleet.fleet import failover, instances
from specfleet.fleet.emulator import FleetEmulator
from specfleet.pipelines import job_queue
from specfleet.runtime import EXIT_BANNED
from specfleet.settings import Settings

REGIONS = ["us-east-1", "us-west-2"]


@pytest.fixture
def fleet_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"fleet_regions": REGIONS, "imds_poll_s": 0.2, "fleet_spot": True})


@pytest.fixture
def emulator(fleet_settings: Settings, tmp_path: Path) -> Iterator[FleetEmulator]:
    emu = FleetEmulator(fleet_settings, log_dir=tmp_path / "fleet", poll_s=0.2).start()
    try:
        yield emu
    finally:
        emu.stop()


def _ready(emu: FleetEmulator, ids: list[str]) -> bool:
    """Every worker is up: its spot watch has polled its instance's IMDS."""
    members = [emu.get(i) for i in ids]
    return all(m is not None and m.alive and m.imds.requests > 0 for m in members)


def _state(settings: Settings, region: str, instance_id: str) -> str:
    raw = client("ec2", settings.model_copy(update={"region": region})).describe_instances(InstanceIds=[instance_id])
    return raw["Reservations"][0]["Instances"][0]["State"]["Name"]


def test_launch_three_workers_drain_a_queue(fleet_settings: Settings, emulator: FleetEmulator) -> None:
    ids = instances.launch(fleet_settings, "echo", 3)
    assert len(ids) == 3
    wait_for(lambda: _ready(emulator, ids), timeout=40, what="3 emulated workers up")
    listed = instances.list_instances(fleet_settings, "echo", states=instances.LIVE_STATES)
    assert {i.instance_id for i in listed} == set(ids)
    assert all(i.lifecycle == "spot" for i in listed)

    job_queue(fleet_settings, "echo").send_json({"job_id": f"j{i}", "sleep_s": 0.3} for i in range(18))
    wait_for(lambda: count(fleet_settings, "status_echo", "stat = 1") == 18, timeout=60, what="18 done rows")
    # status rows are sent before their job is deleted: wait for the deletes
    wait_for(lambda: job_queue(fleet_settings, "echo").depth() == {"visible": 0, "in_flight": 0, "delayed": 0},
             timeout=15, what="queue drained")
    workers = {r[0] for r in query(fleet_settings, "SELECT DISTINCT instance_id FROM status_echo")}
    assert workers == set(ids)  # every instance's worker took jobs, under its instance id

    stopped = instances.stop(fleet_settings, "echo")
    assert set(stopped) == set(ids)
    wait_for(lambda: all(emulator.get(i).exit_codes for i in ids), timeout=30, what="workers to exit")
    assert all(emulator.get(i).exit_codes == [0] for i in ids)  # SIGTERM -> clean drain


def test_spot_notice_drains_one_worker_and_loses_no_job(fleet_settings: Settings, emulator: FleetEmulator) -> None:
    ids = instances.launch(fleet_settings, "echo", 2)
    wait_for(lambda: _ready(emulator, ids), timeout=40, what="2 emulated workers up")
    victim, survivor = ids
    jobs = 24
    job_queue(fleet_settings, "echo").send_json({"job_id": f"s{i}", "sleep_s": 1.0} for i in range(jobs))
    # Interrupt the victim while it holds jobs.
    wait_for(
        lambda: count(fleet_settings, "status_echo", "instance_id = %s", (victim,)) >= 1,
        timeout=30, what="victim working",
    )
    emulator.get(victim).imds.interrupt()

    wait_for(lambda: emulator.get(victim).exit_codes, timeout=30, what="victim drained and exited")
    assert emulator.get(victim).exit_codes == [0]
    wait_for(lambda: _state(fleet_settings, "us-east-1", victim) == "terminated", timeout=15, what="victim reclaimed")
    assert emulator.get(survivor).alive

    wait_for(
        lambda: count(fleet_settings, "status_echo", "stat = 1") >= jobs, timeout=60, what="all jobs done"
    )
    done = {r[0] for r in query(fleet_settings, "SELECT DISTINCT job_id FROM status_echo WHERE stat = 1")}
    assert done == {f"s{i}" for i in range(jobs)}  # 0 lost
    assert count(fleet_settings, "status_echo", "stat <> 1") == 0
    after_notice = query(
        fleet_settings, "SELECT count(*) FROM status_echo WHERE instance_id = %s", (survivor,)
    )[0][0]
    assert after_notice > 0
    assert job_queue(fleet_settings, "echo").depth()["visible"] == 0


def test_banned_worker_stops_and_capacity_moves_to_next_region(
    fleet_settings: Settings, emulator: FleetEmulator
) -> None:
    banning = fleet_settings.model_copy(update={"ban_threshold": 1})
    [first] = instances.launch(banning, "echo", 1)
    wait_for(lambda: _ready(emulator, [first]), timeout=40, what="worker up")
    queue = job_queue(fleet_settings, "echo")
    queue.send_json([{"job_id": "blocked", "ban": True}])

    wait_for(lambda: emulator.get(first).exit_codes == [EXIT_BANNED], timeout=30, what="worker exits banned")
    wait_for(lambda: _state(fleet_settings, "us-east-1", first) == "terminated", timeout=15, what="instance off")
    wait_for(
        lambda: count(fleet_settings, "status_echo", "stat = -1 AND instance_id = %s", (first,)) == 1,
        timeout=20, what="stat -1 row",
    )
    wait_for(lambda: queue.depth()["visible"] == 1, timeout=10, what="the job handed back")
    queue.purge()  # this job would ban any worker; the point is the capacity move

    moves = failover.relaunch_banned(fleet_settings, "echo")
    assert len(moves) == 1
    move = moves[0]
    assert (move.banned_instance, move.from_region, move.to_region) == (first, "us-east-1", "us-west-2")
    west = client("ec2", fleet_settings.model_copy(update={"region": "us-west-2"}))
    image = west.describe_images(ImageIds=[move.image_id])["Images"][0]
    source = instances.list_instances(fleet_settings, "echo", regions=["us-east-1"])[0].image_id
    assert {t["Key"]: t["Value"] for t in image.get("Tags", [])}[instances.TAG_SOURCE_AMI] == source
    [second] = move.new_instances
    assert failover.relaunch_banned(fleet_settings, "echo") == []  # handled once

    wait_for(lambda: _ready(emulator, [second]), timeout=40, what="relaunched worker up")
    assert emulator.get(second).region == "us-west-2"
    queue.send_json([{"job_id": "after-move"}])
    wait_for(
        lambda: count(fleet_settings, "status_echo", "stat = 1 AND instance_id = %s", (second,)) == 1,
        timeout=30, what="relaunched worker does the work",
    )


def test_scale_converges_on_direct_launches(fleet_settings: Settings) -> None:
    """No emulator here: instances stay plain moto instances."""
    s = fleet_settings
    up = instances.scale(s, "echo", 3)
    assert up["before"] == 0 and len(up["launched"]) == 3
    down = instances.scale(s, "echo", 1)
    assert down["before"] == 3 and len(down["terminated"]) == 2
    live = instances.list_instances(s, "echo", states=instances.LIVE_STATES)
    assert [i.instance_id for i in live] == [i for i in up["launched"] if i not in down["terminated"]]
    assert instances.scale(s, "echo", 1)["launched"] == []
    instances.stop(s, "echo")
