"""Region failover for banned workers.

A worker whose IP looks banned reports stat -1 and exits 75; its instance
powers off. ``relaunch_banned`` finds such instances (stat -1 rows in the
pipeline's status table, matched to this deployment's instances), makes sure
each is gone, and relaunches the same capacity, with the same user-data, in
the next region of ``settings.fleet_regions``, copying the AMI there first
if needed. Each handled instance is tagged ``specfleet:relaunched-as`` so a
second run does not relaunch it again.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from ..db import connect
from ..pipelines import get_spec
from ..status import Stat
from . import instances
from .instances import TAG_RELAUNCHED, TAG_SOURCE_AMI, FleetError
from .settings import FleetSettings


@dataclass(frozen=True)
class Relaunch:
    banned_instance: str
    from_region: str
    to_region: str
    image_id: str
    new_instances: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def next_region(regions: list[str], current: str) -> str:
    """The region after ``current`` in ``regions`` (wrapping around)."""
    if not regions:
        raise FleetError("no fleet regions configured (SPECFLEET_FLEET_REGIONS)")
    if current not in regions:
        return regions[0]
    if len(regions) == 1:
        raise FleetError(f"only one fleet region ({current}); add more to SPECFLEET_FLEET_REGIONS to fail over")
    return regions[(regions.index(current) + 1) % len(regions)]


def ensure_ami(settings: FleetSettings, source_region: str, image_id: str, target_region: str, timeout_s: float = 1800) -> str:
    """``image_id``'s copy in ``target_region`` (copied now if there is none)."""
    if source_region == target_region:
        return image_id
    api = instances.ec2(settings, target_region)
    found = api.describe_images(
        Owners=["self"], Filters=[{"Name": f"tag:{TAG_SOURCE_AMI}", "Values": [image_id]}]
    )["Images"]
    if found:
        copy_id = found[0]["ImageId"]
    else:
        name = f"specfleet-worker-{image_id}-{int(time.time())}"
        copy_id = api.copy_image(SourceRegion=source_region, SourceImageId=image_id, Name=name)["ImageId"]
        api.create_tags(Resources=[copy_id], Tags=[{"Key": TAG_SOURCE_AMI, "Value": image_id}])
    api.get_waiter("image_available").wait(
        ImageIds=[copy_id], WaiterConfig={"Delay": 2 if settings.endpoint_url else 15, "MaxAttempts": max(1, int(timeout_s / 15))}
    )
    return copy_id


def banned_instance_ids(settings: FleetSettings, pipeline: str) -> set[str]:
    table = get_spec(pipeline).status_model.table
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            # table comes from our own model registry, never from input
            cur.execute(f'SELECT DISTINCT instance_id FROM "{table}" WHERE stat = %s', (int(Stat.BANNED),))
            return {r[0] for r in cur.fetchall()}
    finally:
        conn.close()


def relaunch_banned(settings: FleetSettings, pipeline: str) -> list[Relaunch]:
    instances.check_pipeline(pipeline)
    banned = banned_instance_ids(settings, pipeline)
    if not banned:
        return []
    done: list[Relaunch] = []
    for info in instances.list_instances(settings, pipeline):
        if info.instance_id not in banned:
            continue
        api = instances.ec2(settings, info.region)
        raw = api.describe_instances(InstanceIds=[info.instance_id])["Reservations"][0]["Instances"][0]
        if any(t["Key"] == TAG_RELAUNCHED for t in raw.get("Tags", [])):
            continue
        if info.state in instances.LIVE_STATES:  # reported banned but still up: power it off
            instances.terminate(settings, info.region, [info.instance_id])
        target = next_region(instances.fleet_regions(settings), info.region)
        image = ensure_ami(settings, info.region, info.image_id, target)
        script = instances.user_data_of(settings, info.region, info.instance_id)
        new_ids = instances.launch(
            settings, pipeline, 1, region=target, user_data=script or None, image_id=image,
            instance_type=info.instance_type or None,
        )
        api.create_tags(
            Resources=[info.instance_id], Tags=[{"Key": TAG_RELAUNCHED, "Value": f"{target}/{new_ids[0]}"}]
        )
        done.append(Relaunch(info.instance_id, info.region, target, image, new_ids))
    return done
