"""EC2 user-data: one bootstrap script per pipeline.

The script (cloud-init runs it once at first boot)

* reads the instance id from IMDSv2 and writes ``/etc/specfleet/<pipeline>.env``
  (the worker's settings; never credentials: the instance profile provides
  those, the DB secret is only named);
* adds a systemd drop-in that powers the instance off when the worker exits
  with ``EXIT_BANNED`` (75): the unit does not restart on 75, and with
  ``InstanceInitiatedShutdownBehavior=terminate`` the instance goes away so the
  fleet can move that capacity to another region;
* starts ``specfleet-worker@<pipeline>`` (see ``ami/specfleet-worker@.service``).

Two clearly delimited blocks make the script machine-readable: the env block
(``# --- specfleet:env ---``) and the command block
(``# --- specfleet:command ---``) that states what the unit runs. The local
fleet emulator executes exactly those instead of cloud-init + systemd.

The same renderer produces the launch templates' user-data in
``infra/template.yaml`` (with CloudFormation ``${...}`` references as values);
a test keeps the two in sync. The script therefore never uses ``${`` itself.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ..pipelines import UnknownPipeline, get_spec
from ..runtime.worker import EXIT_BANNED
from ..settings import Settings

ENV_BEGIN = "# --- specfleet:env ---"
ENV_END = "# --- end specfleet:env ---"
CMD_BEGIN = "# --- specfleet:command ---"
CMD_END = "# --- end specfleet:command ---"
#: The instance id line's value is filled in by the script (from IMDS) and by the emulator.
INSTANCE_ID_REF = "$INSTANCE_ID"
IMDS_URL = "http://169.254.169.254"

_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:/@,+=\-\[\]\"]*$")
_CFN_REF = re.compile(r"\$\{[A-Za-z0-9:]+\}")
_KEY = re.compile(r"^SPECFLEET_[A-Z0-9_]+$")

TEMPLATE = """#!/bin/bash
# specfleet worker bootstrap, pipeline @@PIPELINE@@ (rendered by specfleet.fleet.userdata)
set -euo pipefail
IMDS=@@IMDS@@
TOKEN=$(curl -sf -X PUT "$IMDS/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300")
INSTANCE_ID=$(curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/latest/meta-data/instance-id")
install -d -m 0755 /etc/specfleet
@@ENV_BEGIN@@
cat > /etc/specfleet/@@PIPELINE@@.env <<SPECFLEET_ENV
@@ENV@@
SPECFLEET_ENV
@@ENV_END@@
# Exit code @@BANNED@@ means "this IP looks banned": the unit does not restart on it,
# and this drop-in powers the instance off (terminate-on-shutdown) so the fleet
# can relaunch the capacity in another region.
install -d -m 0755 /etc/systemd/system/specfleet-worker@@@PIPELINE@@.service.d
cat > /etc/systemd/system/specfleet-worker@@@PIPELINE@@.service.d/ban.conf <<'SPECFLEET_UNIT'
[Service]
ExecStopPost=/bin/sh -c 'if [ "$EXIT_STATUS" = "@@BANNED@@" ]; then /usr/bin/systemctl --no-block poweroff; fi'
SPECFLEET_UNIT
systemctl daemon-reload
@@CMD_BEGIN@@
# @@COMMAND@@
@@CMD_END@@
systemctl enable --now specfleet-worker@@@PIPELINE@@.service
"""

#: Settings a worker needs, as env var -> Settings attribute. Never the DB DSN
#: (it may hold a password); workers get the secret's name at most.
WORKER_SETTINGS = {
    "SPECFLEET_REGION": "region",
    "SPECFLEET_ENDPOINT_URL": "endpoint_url",
    "SPECFLEET_QUEUE_PREFIX": "queue_prefix",
    "SPECFLEET_BUCKET": "bucket",
    "SPECFLEET_TOPIC_NAME": "topic_name",
    "SPECFLEET_VISIBILITY_TIMEOUT_S": "visibility_timeout_s",
    "SPECFLEET_WAIT_TIME_S": "wait_time_s",
    "SPECFLEET_MAX_RECEIVES": "max_receives",
    "SPECFLEET_DRAIN_S": "drain_s",
    "SPECFLEET_BAN_THRESHOLD": "ban_threshold",
    "SPECFLEET_DB_SECRET_ID": "db_secret_id",
    "SPECFLEET_IMDS_POLL_S": "imds_poll_s",
}


class UserDataError(ValueError):
    pass


def worker_env(settings: Settings, imds_url: str = IMDS_URL) -> dict[str, str]:
    """The env block for workers launched from ``settings`` (unset values left out)."""
    env: dict[str, str] = {}
    for key, attr in WORKER_SETTINGS.items():
        value = getattr(settings, attr)
        if value is None or value == "":
            continue
        env[key] = str(value)
    env["SPECFLEET_IMDS_URL"] = imds_url
    return env


def render(pipeline: str, env: dict[str, str], *, for_cloudformation: bool = False) -> str:
    """The user-data script for ``pipeline`` with ``env`` as the worker's settings.

    Values are restricted to a shell-safe alphabet (they sit in an unquoted
    heredoc); with ``for_cloudformation`` they may also be ``${Ref}``s.
    """
    try:
        get_spec(pipeline)
    except UnknownPipeline as err:
        raise UserDataError(str(err)) from None
    lines = [f"SPECFLEET_INSTANCE_ID={INSTANCE_ID_REF}", f"SPECFLEET_PIPELINE={pipeline}"]
    for key, value in env.items():
        if not _KEY.fullmatch(key):
            raise UserDataError(f"env name {key!r} must look like SPECFLEET_NAME")
        if key in ("SPECFLEET_INSTANCE_ID", "SPECFLEET_PIPELINE"):
            continue
        if "DSN" in key:
            raise UserDataError(f"{key} may hold a password; pass SPECFLEET_DB_SECRET_ID instead")
        checked = _CFN_REF.sub("", value) if for_cloudformation else value
        if not _SAFE_VALUE.fullmatch(checked):
            raise UserDataError(f"value of {key} has characters unsafe in user-data: {value!r}")
        lines.append(f"{key}={value}")
    command = shlex.join(["specfleet", "work", pipeline])
    text = TEMPLATE
    for marker, value in (
        ("@@ENV_BEGIN@@", ENV_BEGIN), ("@@ENV_END@@", ENV_END),
        ("@@CMD_BEGIN@@", CMD_BEGIN), ("@@CMD_END@@", CMD_END),
        ("@@ENV@@", "\n".join(lines)), ("@@COMMAND@@", command),
        ("@@IMDS@@", IMDS_URL), ("@@BANNED@@", str(EXIT_BANNED)), ("@@PIPELINE@@", pipeline),
    ):
        text = text.replace(marker, value)
    return text


@dataclass(frozen=True)
class ParsedUserData:
    """What the emulator runs: the command and the env it would get."""

    pipeline: str
    argv: list[str]
    env: dict[str, str]


def _block(text: str, begin: str, end: str) -> list[str]:
    try:
        start = text.index(begin) + len(begin)
        stop = text.index(end, start)
    except ValueError:
        raise UserDataError(f"user-data has no {begin!r} ... {end!r} block (not rendered by specfleet?)") from None
    return [line for line in text[start:stop].splitlines() if line.strip()]


def parse(text: str, instance_id: str) -> ParsedUserData:
    """Read the env and command blocks back out of a rendered script."""
    env: dict[str, str] = {}
    for line in _block(text, ENV_BEGIN, ENV_END):
        if line.startswith("cat >") or line == "SPECFLEET_ENV":
            continue
        key, sep, value = line.partition("=")
        if not sep or not _KEY.fullmatch(key):
            raise UserDataError(f"bad env line in user-data: {line!r}")
        env[key] = instance_id if value == INSTANCE_ID_REF else value
    commands = [line.lstrip("# ").strip() for line in _block(text, CMD_BEGIN, CMD_END)]
    if len(commands) != 1:
        raise UserDataError(f"user-data command block must hold one command, found {len(commands)}")
    argv = shlex.split(commands[0])
    if argv[:2] != ["specfleet", "work"] or len(argv) < 3:
        raise UserDataError(f"user-data command must be `specfleet work <pipeline>`, got {commands[0]!r}")
    return ParsedUserData(pipeline=argv[2], argv=argv, env=env)


def cloudformation_env() -> dict[str, str]:
    """The env block used for the launch templates in infra/template.yaml."""
    return {
        "SPECFLEET_REGION": "${AWS::Region}",
        "SPECFLEET_QUEUE_PREFIX": "${QueuePrefix}",
        "SPECFLEET_BUCKET": "${DataBucket}",
        "SPECFLEET_DRAIN_S": "60",
        "SPECFLEET_IMDS_URL": IMDS_URL,
    }
