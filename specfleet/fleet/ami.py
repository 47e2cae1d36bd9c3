"""``ami bake``: build the worker AMI with boto3 (Packer users: ami/packer.pkr.hcl).

Launch a base image with ``ami/provision.sh`` as user-data (plus
``SPECFLEET_SOURCE`` and ``SPECFLEET_POWEROFF=1``); the script installs
everything and powers the builder off; we wait for ``stopped``, create the
image, wait until it is available, tag it, terminate the builder and copy the
image to other regions if asked.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..aws import aws_retry, client
from ..settings import Settings
from . import failover
from .deploy import REPO_ROOT, upload_package

PROVISION_SCRIPT = REPO_ROOT / "ami" / "provision.sh"
TAG_ROLE = "specfleet:role"
Progress = Callable[[str], None]


class BakeError(RuntimeError):
    pass


def bake_user_data(source: str, script: str | None = None) -> str:
    """provision.sh as user-data, told what to install and to power off at the end."""
    body = script if script is not None else PROVISION_SCRIPT.read_text()
    lines = body.splitlines()
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    header = [
        "#!/usr/bin/env bash",
        "# specfleet AMI bake: provision, then power off (the bake waits for 'stopped')",
        f"export SPECFLEET_SOURCE={shlex.quote(source)}",
        "export SPECFLEET_POWEROFF=1",
    ]
    return "\n".join(header + lines) + "\n"


def wheel_source(settings: Settings, bucket: str | None = None, expires_s: int = 7200) -> str:
    """Build this checkout's wheel, upload it, return a presigned pip requirement."""
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp, str(REPO_ROOT)],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise BakeError(f"building the specfleet wheel failed:\n{result.stderr[-2000:]}")
        wheel = next(Path(tmp).glob("specfleet-*.whl"))
        bucket_name, key = upload_package(settings, wheel, bucket)
    url = client("s3", settings).generate_presigned_url(
        "get_object", Params={"Bucket": bucket_name, "Key": key}, ExpiresIn=expires_s
    )
    return f"specfleet @ {url}"


def bake(
    settings: Settings,
    *,
    base_ami: str,
    source: str,
    name: str | None = None,
    instance_type: str | None = None,
    copy_to: list[str] | None = None,
    timeout_s: float = 3600,
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    ec2 = client("ec2", settings)
    local = bool(settings.endpoint_url)
    delay = 1 if local else 15
    attempts = max(1, int(timeout_s / delay))
    name = name or f"specfleet-worker-{time.strftime('%Y%m%d-%H%M%S')}"
    kwargs: dict[str, Any] = {
        "ImageId": base_ami,
        "InstanceType": instance_type or settings.fleet_instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "UserData": bake_user_data(source),
        "InstanceInitiatedShutdownBehavior": "stop",
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": [{"Key": TAG_ROLE, "Value": "ami-builder"}, {"Key": "Name", "Value": name}]}
        ],
    }
    if settings.fleet_subnet_id:
        kwargs["SubnetId"] = settings.fleet_subnet_id
    builder = aws_retry(ec2.run_instances)(**kwargs)["Instances"][0]["InstanceId"]
    progress(f"builder {builder} launched from {base_ami}; provisioning (waits for it to power off)")
    try:
        ec2.get_waiter("instance_stopped").wait(
            InstanceIds=[builder], WaiterConfig={"Delay": delay, "MaxAttempts": attempts}
        )
        progress("builder powered off; creating the image")
        image = aws_retry(ec2.create_image)(InstanceId=builder, Name=name, Description="specfleet worker")["ImageId"]
        ec2.get_waiter("image_available").wait(ImageIds=[image], WaiterConfig={"Delay": delay, "MaxAttempts": attempts})
        aws_retry(ec2.create_tags)(
            Resources=[image], Tags=[{"Key": TAG_ROLE, "Value": "worker-ami"}, {"Key": "Name", "Value": name}]
        )
    finally:
        aws_retry(ec2.terminate_instances)(InstanceIds=[builder])
    copies: dict[str, str] = {}
    for region in copy_to or []:
        progress(f"copying {image} to {region}")
        copies[region] = failover.ensure_ami(settings, settings.region, image, region, timeout_s)
    return {"image_id": image, "region": settings.region, "name": name, "builder": builder, "copies": copies}



