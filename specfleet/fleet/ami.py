"""``ami bake``: build the worker AMI with boto3 (Packer users: ami/packer.pkr.hcl).

Launch a base image with ``ami/provision.sh`` as user-data; the script installs
everything and powers the builder off; we wait for ``stopped``, create the
image, wait until it is available, tag it, terminate the builder and copy the
image to other regions if asked.

The user-data is rendered here: a header that writes
``ami/specfleet-worker@.service`` (the unit's one source) next to the script
and exports where the wheel and the hashed lock (``ami/requirements.lock``)
are (both uploaded to the artifact bucket and presigned), then provision.sh.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..aws import client
from ..pipelines import get_spec
from ..pipelines import names as pipeline_names
from . import failover
from .deploy import REPO_ROOT, upload_package
from .settings import FleetSettings

AMI_DIR = REPO_ROOT / "ami"
PROVISION_SCRIPT = AMI_DIR / "provision.sh"
UNIT_FILE = AMI_DIR / "specfleet-worker@.service"
LOCK_FILE = AMI_DIR / "requirements.lock"
#: Where the bake's user-data writes the unit before provision.sh installs it.
BAKE_UNIT_PATH = "/run/specfleet-bake/specfleet-worker@.service"
_UNIT_DELIMITER = "SPECFLEET_UNIT_FILE_END"
#: EC2 refuses user-data longer than this (before base64).
USER_DATA_LIMIT = 16384
TAG_ROLE = "specfleet:role"
Progress = Callable[[str], None]


class BakeError(RuntimeError):
    pass


def bake_user_data(
    source: str,
    lock: str,
    *,
    pipelines: list[str] | None = None,
    script: str | None = None,
    unit: str | None = None,
    agent_debs: list[str] | None = None,
) -> str:
    """provision.sh as user-data: told where the wheel (``source``) and the
    hashed ``lock`` are, which ``pipelines`` to provision (default: all),
    carrying the unit file, and told to power off at the end."""
    body = script if script is not None else PROVISION_SCRIPT.read_text()
    unit_text = unit if unit is not None else UNIT_FILE.read_text()
    if _UNIT_DELIMITER in unit_text:
        raise BakeError(f"the unit file may not contain {_UNIT_DELIMITER!r} (it ends the heredoc)")
    for name in pipelines or []:
        if name not in pipeline_names():
            raise BakeError(f"unknown pipeline {name!r}; choose from {', '.join(pipeline_names())}")
    lines = body.splitlines()
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    header = [
        "#!/usr/bin/env bash",
        "# specfleet AMI bake: provision, then power off (the bake waits for 'stopped')",
        "set -euo pipefail",
        f"export SPECFLEET_SOURCE={shlex.quote(source)}",
        f"export SPECFLEET_LOCK={shlex.quote(lock)}",
        f"export SPECFLEET_UNIT_FILE={BAKE_UNIT_PATH}",
        "export SPECFLEET_POWEROFF=1",
    ]
    if pipelines:
        header.append(f"export SPECFLEET_PIPELINES={shlex.quote(' '.join(pipelines))}")
    # the extras of the pipelines it serves (their specs' fleet profiles): the
    # installed specfleet names what its workers need
    extras = sorted({e for name in pipelines or pipeline_names() for e in get_spec(name).fleet.extras})
    if extras:
        header.append(f"export SPECFLEET_EXTRAS={shlex.quote(','.join(extras))}")
    for deb in agent_debs or []:
        url, sep, digest = deb.partition("#sha256=")
        if not (url and sep and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
            raise BakeError(f"agent package {url.split('?')[0]!r} must look like URL#sha256=<64 hex digits>")
    if agent_debs:
        header.append(f"export SPECFLEET_AGENT_DEBS={shlex.quote(' '.join(agent_debs))}")
    header += [
        f"install -d -m 0755 {shlex.quote(str(Path(BAKE_UNIT_PATH).parent))}",
        f"cat > \"$SPECFLEET_UNIT_FILE\" <<'{_UNIT_DELIMITER}'",
        unit_text.rstrip("\n"),
        _UNIT_DELIMITER,
    ]
    text = "\n".join(header + lines) + "\n"
    if len(text.encode()) > USER_DATA_LIMIT:
        raise BakeError(f"user-data is {len(text.encode())} bytes; EC2 takes at most {USER_DATA_LIMIT}")
    return text


def _presign(settings: FleetSettings, bucket: str, key: str, expires_s: int) -> str:
    return client("s3", settings).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
    )


def build_wheel(dest: Path) -> Path:
    """This checkout's wheel (no dependencies), built into ``dest``."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dest), str(REPO_ROOT)],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise BakeError(f"building the specfleet wheel failed:\n{result.stderr[-2000:]}")
    return next(Path(dest).glob("specfleet-*.whl"))


def wheel_source(settings: FleetSettings, bucket: str | None = None, expires_s: int = 7200) -> str:
    """Build this checkout's wheel, upload it, return a presigned pip
    requirement whose ``#sha256=`` fragment pip checks on the builder."""
    with tempfile.TemporaryDirectory() as tmp:
        wheel = build_wheel(Path(tmp))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        bucket_name, key = upload_package(settings, wheel, bucket)
    return f"specfleet @ {_presign(settings, bucket_name, key, expires_s)}#sha256={digest}"


def lock_source(settings: FleetSettings, bucket: str | None = None, expires_s: int = 7200) -> str:
    """Upload ami/requirements.lock (too big for user-data); return a presigned URL."""
    bucket_name, key = upload_package(settings, LOCK_FILE, bucket)
    return _presign(settings, bucket_name, key, expires_s)


def bake(
    settings: FleetSettings,
    *,
    base_ami: str,
    source: str,
    lock: str | None = None,
    pipelines: list[str] | None = None,
    name: str | None = None,
    instance_type: str | None = None,
    copy_to: list[str] | None = None,
    timeout_s: float = 3600,
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """Provision ``base_ami`` with the wheel ``source`` and the hashed ``lock``
    (default: upload ami/requirements.lock) for ``pipelines`` (default: all)."""
    ec2 = client("ec2", settings)
    user_data = bake_user_data(source, lock or lock_source(settings), pipelines=pipelines,
                               agent_debs=settings.fleet_agent_debs)
    local = bool(settings.endpoint_url)
    delay = 1 if local else 15
    attempts = max(1, int(timeout_s / delay))
    name = name or f"specfleet-worker-{time.strftime('%Y%m%d-%H%M%S')}"
    kwargs: dict[str, Any] = {
        "ImageId": base_ami,
        "InstanceType": instance_type or settings.fleet_instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "UserData": user_data,
        "InstanceInitiatedShutdownBehavior": "stop",
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": [{"Key": TAG_ROLE, "Value": "ami-builder"}, {"Key": "Name", "Value": name}]}
        ],
    }
    if settings.fleet_subnet_id:
        kwargs["SubnetId"] = settings.fleet_subnet_id
    builder = ec2.run_instances(**kwargs)["Instances"][0]["InstanceId"]
    progress(f"builder {builder} launched from {base_ami}; provisioning (waits for it to power off)")
    try:
        ec2.get_waiter("instance_stopped").wait(
            InstanceIds=[builder], WaiterConfig={"Delay": delay, "MaxAttempts": attempts}
        )
        progress("builder powered off; creating the image")
        image = ec2.create_image(InstanceId=builder, Name=name, Description="specfleet worker")["ImageId"]
        ec2.get_waiter("image_available").wait(ImageIds=[image], WaiterConfig={"Delay": delay, "MaxAttempts": attempts})
        ec2.create_tags(
            Resources=[image], Tags=[{"Key": TAG_ROLE, "Value": "worker-ami"}, {"Key": "Name", "Value": name}]
        )
    finally:
        ec2.terminate_instances(InstanceIds=[builder])
    copies: dict[str, str] = {}
    for region in copy_to or []:
        progress(f"copying {image} to {region}")
        copies[region] = failover.ensure_ami(settings, settings.region, image, region, timeout_s)
    return {"image_id": image, "region": settings.region, "name": name, "builder": builder, "copies": copies}



