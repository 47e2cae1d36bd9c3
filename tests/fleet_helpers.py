"""Deploying infra/template.yaml into the test stack's moto (emulator mode),
for the template, autoscaling and least-privilege tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from specfleet.aws import client
from specfleet.fleet import deploy
from specfleet.fleet.instances import local_worker_image
from specfleet.settings import Settings


@dataclass
class EmulatedStack:
    name: str
    prefix: str
    outputs: dict[str, str]
    events: list[str]
    #: Settings pointing at the stack's queues and bucket.
    settings: Settings


def deploy_emulated(settings: Settings, tmp_path: Path, *, with_writer: bool = True,
                    template: Path = deploy.TEMPLATE, **parameters: str) -> EmulatedStack:
    """Create the committed template on moto under a fresh name and prefix;
    ``with_writer`` uploads a Lambda package so the functions and their
    triggers are created too."""
    ec2 = client("ec2", settings)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    tag = uuid.uuid4().hex[:8]
    prefix = f"cfn{tag}_"
    name = f"specfleet-test-{tag}"
    artifacts = f"cfn-{tag}-artifacts"
    params = {
        "QueuePrefix": prefix, "DataBucketName": f"cfn-{tag}-data", "VpcId": vpc,
        "SubnetIds": ",".join(subnets[:2]), "AmiId": local_worker_image(settings, settings.region),
        "ArtifactBucket": artifacts, "Emulator": "true",
        # moto 5 rounds a mixed group's on-demand share down per instance, so
        # 20% of 1 instance launches none: all spot here.
        "OnDemandPercentage": "0",
        **parameters,
    }
    if with_writer:
        package = deploy.build_package(tmp_path / "lambda", with_dependencies=False)
        bucket, key = deploy.upload_package(settings, package, artifacts)
        params["ArtifactKey"] = key
    events: list[str] = []
    outputs = deploy.deploy(settings, params, stack_name=name, template=template, progress=events.append)
    deployed = settings.model_copy(update={"queue_prefix": prefix, "bucket": outputs["DataBucketName"],
                                           "fleet_stack_name": name})
    return EmulatedStack(name, prefix, outputs, events, deployed)
