"""Worker instances launched directly with user-data (``fleet launch|ls|stop|scale``).

Instances carry tags so the fleet can find its own: ``specfleet:pipeline``
and ``specfleet:prefix`` (the queue prefix, i.e. which deployment they serve).
The same calls work against AWS and against moto (where the fleet emulator
turns each instance into a local worker process).
"""

from __future__ import annotations

import base64
import os
from dataclasses import asdict, dataclass
from typing import Any

from ..aws import client
from ..pipelines import UnknownPipeline, get_spec
from . import userdata
from .settings import FleetSettings

TAG_PIPELINE = "specfleet:pipeline"
TAG_PREFIX = "specfleet:prefix"
TAG_SOURCE_AMI = "specfleet:source-ami"
TAG_RELAUNCHED = "specfleet:relaunched-as"
LIVE_STATES = ["pending", "running"]


class FleetError(RuntimeError):
    """A fleet operation cannot go ahead; the message says what to fix."""


@dataclass(frozen=True)
class InstanceInfo:
    instance_id: str
    region: str
    pipeline: str
    state: str
    instance_type: str
    image_id: str
    launched: str
    lifecycle: str  # "spot" or "on-demand"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def in_region(settings: FleetSettings, region: str) -> FleetSettings:
    return settings if region == settings.region else settings.model_copy(update={"region": region})


def ec2(settings: FleetSettings, region: str | None = None) -> Any:
    return client("ec2", in_region(settings, region or settings.region))


def check_pipeline(pipeline: str) -> None:
    try:
        get_spec(pipeline)
    except UnknownPipeline as err:
        raise FleetError(str(err)) from None


def resolve_ami(settings: FleetSettings, region: str) -> str:
    """The worker AMI in ``region``: the configured one at home, its tagged
    copy elsewhere. Against a local emulator any registered image will do."""
    api = ec2(settings, region)
    if settings.fleet_ami_id:
        if region == settings.region:
            return settings.fleet_ami_id
        images = api.describe_images(
            Owners=["self"], Filters=[{"Name": f"tag:{TAG_SOURCE_AMI}", "Values": [settings.fleet_ami_id]}]
        )["Images"]
        available = [i["ImageId"] for i in images if i.get("State", "available") == "available"]
        if not available:
            raise FleetError(
                f"no copy of {settings.fleet_ami_id} in {region}: run `specfleet ami bake --copy-to {region}` "
                "(failover copies it automatically)"
            )
        return available[0]
    if settings.endpoint_url:
        return local_worker_image(settings, region)
    raise FleetError("no worker AMI configured: set SPECFLEET_FLEET_AMI_ID (see `specfleet ami bake`)")


LOCAL_IMAGE_NAME = "specfleet-worker-local"


def local_worker_image(settings: FleetSettings, region: str) -> str:
    """Against an emulator (moto): a registered stand-in for the baked AMI
    (the emulator runs workers from this checkout, not from the image)."""
    api = ec2(settings, region)
    found = api.describe_images(
        Owners=["self"], Filters=[{"Name": "name", "Values": [LOCAL_IMAGE_NAME]}]
    )["Images"]
    if found:
        return str(found[0]["ImageId"])
    return str(api.register_image(Name=LOCAL_IMAGE_NAME, RootDeviceName="/dev/xvda")["ImageId"])


def launch(
    settings: FleetSettings,
    pipeline: str,
    count: int,
    *,
    region: str | None = None,
    user_data: str | None = None,
    image_id: str | None = None,
    instance_type: str | None = None,
) -> list[str]:
    """Start ``count`` workers for ``pipeline``; return their instance ids."""
    check_pipeline(pipeline)
    if count < 1:
        raise FleetError("count must be at least 1")
    region = region or settings.region
    script = user_data or userdata.render(
        pipeline, {**userdata.worker_env(settings), **userdata.stack_setting_env(pipeline, os.environ)},
        log_group=userdata.log_group_name(settings.fleet_stack_name, pipeline),
    )
    tags = [
        {"Key": TAG_PIPELINE, "Value": pipeline},
        {"Key": TAG_PREFIX, "Value": settings.queue_prefix or "-"},
        {"Key": "Name", "Value": f"specfleet-{settings.queue_prefix}{pipeline}"},
    ]
    kwargs: dict[str, Any] = {
        "ImageId": image_id or resolve_ami(settings, region),
        "InstanceType": instance_type or settings.fleet_instance_type,
        "MinCount": count,
        "MaxCount": count,
        "UserData": script,
        # A worker that powers off (ban) must not linger as a stopped instance.
        "InstanceInitiatedShutdownBehavior": "terminate",
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1},
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}],
    }
    if settings.fleet_spot:
        kwargs["InstanceMarketOptions"] = {
            "MarketType": "spot",
            "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"},
        }
    if settings.fleet_instance_profile:
        key = "Arn" if settings.fleet_instance_profile.startswith("arn:") else "Name"
        kwargs["IamInstanceProfile"] = {key: settings.fleet_instance_profile}
    if settings.fleet_security_group_ids and region == settings.region:
        kwargs["SecurityGroupIds"] = settings.fleet_security_group_ids
    if settings.fleet_subnet_id and region == settings.region:
        kwargs["SubnetId"] = settings.fleet_subnet_id
    resp = ec2(settings, region).run_instances(**kwargs)
    return [i["InstanceId"] for i in resp["Instances"]]


def _tags(raw: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in raw.get("Tags", [])}


def list_instances(
    settings: FleetSettings,
    pipeline: str | None = None,
    *,
    regions: list[str] | None = None,
    states: list[str] | None = None,
) -> list[InstanceInfo]:
    """This deployment's worker instances (by tags) across ``regions``."""
    out: list[InstanceInfo] = []
    filters = [{"Name": f"tag:{TAG_PREFIX}", "Values": [settings.queue_prefix or "-"]}]
    if pipeline:
        filters.append({"Name": f"tag:{TAG_PIPELINE}", "Values": [pipeline]})
    if states:
        filters.append({"Name": "instance-state-name", "Values": states})
    for region in regions or fleet_regions(settings):
        paginator = ec2(settings, region).get_paginator("describe_instances")
        for page in paginator.paginate(Filters=filters):
            for res in page["Reservations"]:
                for raw in res["Instances"]:
                    tags = _tags(raw)
                    out.append(
                        InstanceInfo(
                            instance_id=raw["InstanceId"],
                            region=region,
                            pipeline=tags.get(TAG_PIPELINE, ""),
                            state=raw["State"]["Name"],
                            instance_type=raw.get("InstanceType", ""),
                            image_id=raw.get("ImageId", ""),
                            launched=str(raw.get("LaunchTime", "")),
                            lifecycle="spot" if raw.get("InstanceLifecycle") == "spot" else "on-demand",
                        )
                    )
    return out


def fleet_regions(settings: FleetSettings) -> list[str]:
    regions = list(settings.fleet_regions)
    if settings.region not in regions:
        regions.insert(0, settings.region)
    return regions


def user_data_of(settings: FleetSettings, region: str, instance_id: str) -> str:
    attr = ec2(settings, region).describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    value = attr.get("UserData", {}).get("Value", "")
    return base64.b64decode(value).decode() if value else ""


def terminate(settings: FleetSettings, region: str, instance_ids: list[str]) -> None:
    if instance_ids:
        ec2(settings, region).terminate_instances(InstanceIds=instance_ids)


def stop(settings: FleetSettings, pipeline: str | None = None, *, region: str | None = None) -> list[str]:
    """Terminate this deployment's live workers (of ``pipeline``, in ``region``)."""
    live = list_instances(settings, pipeline, regions=[region] if region else None, states=LIVE_STATES)
    by_region: dict[str, list[str]] = {}
    for inst in live:
        by_region.setdefault(inst.region, []).append(inst.instance_id)
    for r, ids in by_region.items():
        terminate(settings, r, ids)
    return [i.instance_id for i in live]


def scale(settings: FleetSettings, pipeline: str, count: int, *, region: str | None = None) -> dict[str, Any]:
    """Launch or terminate workers in ``region`` until ``count`` are live.
    Scale-in terminates the newest first; their workers drain on SIGTERM."""
    check_pipeline(pipeline)
    if count < 0:
        raise FleetError("count must be >= 0")
    region = region or settings.region
    live = sorted(
        list_instances(settings, pipeline, regions=[region], states=LIVE_STATES), key=lambda i: i.launched
    )
    launched: list[str] = []
    terminated: list[str] = []
    if count > len(live):
        launched = launch(settings, pipeline, count - len(live), region=region)
    elif count < len(live):
        terminated = [i.instance_id for i in live[count:]]
        terminate(settings, region, terminated)
    return {"pipeline": pipeline, "region": region, "before": len(live), "desired": count,
            "launched": launched, "terminated": terminated}
