"""EC2 user-data: one bootstrap script per pipeline.

The script (cloud-init runs it once at first boot)

* reads the instance id from IMDSv2 and writes ``/etc/specfleet/<pipeline>.env``
  (the worker's settings; never credentials: the instance profile provides
  those, the DB secret is only named);
* adds a systemd drop-in that powers the instance off when the worker exits
  with ``EXIT_BANNED`` (75): the unit does not restart on 75, and with
  ``InstanceInitiatedShutdownBehavior=terminate`` the instance goes away so the
  fleet can move that capacity to another region;
* sends the worker's output to ``/var/log/specfleet/<pipeline>.log`` (a
  drop-in; logrotate keeps it small) and starts the CloudWatch agent (which
  the AMI installs) with ``cloudwatch-agent.json`` filled in: that file into
  the pipeline's log group, one stream per instance (``specfleet logs``);
* starts ``specfleet-worker@<pipeline>`` (see ``ami/specfleet-worker@.service``).

Three clearly delimited blocks make the script machine-readable: the env
block (``# --- specfleet:env ---``), the command block
(``# --- specfleet:command ---``) that states what the unit runs, and the
CloudWatch agent's configuration. The local fleet emulator executes the
first two instead of cloud-init + systemd and ships the log as the third says.

The same renderer produces the launch templates' user-data in
``infra/template.yaml`` (with CloudFormation ``${...}`` references as values);
a test keeps the two in sync. The script therefore never uses ``${`` itself.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..pipelines import UnknownPipeline, get_spec
from ..runtime.worker import EXIT_BANNED
from ..settings import Settings

ENV_BEGIN = "# --- specfleet:env ---"
ENV_END = "# --- end specfleet:env ---"
CMD_BEGIN = "# --- specfleet:command ---"
CMD_END = "# --- end specfleet:command ---"
AGENT_BEGIN = "# --- specfleet:cloudwatch-agent ---"
AGENT_END = "# --- end specfleet:cloudwatch-agent ---"
#: Where the worker's output goes on an instance (the agent tails it).
LOG_DIR = "/var/log/specfleet"
AGENT_CONFIG = "/etc/specfleet/cloudwatch-agent.json"
AGENT_CTL = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
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
# Logs: the worker's output goes to a file the CloudWatch agent ships to the
# pipeline's log group (`specfleet logs`); logrotate keeps the file small.
install -d -m 0755 @@LOG_DIR@@
cat > /etc/systemd/system/specfleet-worker@@@PIPELINE@@.service.d/log.conf <<'SPECFLEET_UNIT'
[Service]
StandardOutput=append:@@LOG_FILE@@
StandardError=append:@@LOG_FILE@@
SPECFLEET_UNIT
cat > /etc/logrotate.d/specfleet <<'SPECFLEET_LOGROTATE'
@@LOG_DIR@@/*.log {
  daily
  maxsize 100M
  rotate 3
  compress
  missingok
  notifempty
  copytruncate
}
SPECFLEET_LOGROTATE
@@AGENT_BEGIN@@
cat > @@AGENT_CONFIG@@ <<'SPECFLEET_AGENT'
@@AGENT_JSON@@
SPECFLEET_AGENT
@@AGENT_END@@
if [ -x @@AGENT_CTL@@ ]; then
  @@AGENT_CTL@@ -a fetch-config -m ec2 -s -c file:@@AGENT_CONFIG@@
else
  echo "no CloudWatch agent in this image: logs stay in @@LOG_FILE@@" >&2
fi
systemctl daemon-reload
@@CMD_BEGIN@@
# @@COMMAND@@
@@CMD_END@@
systemctl enable --now specfleet-worker@@@PIPELINE@@.service
"""

#: Settings a worker needs, as env var -> Settings attribute.
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
    "SPECFLEET_IMDS_POLL_S": "imds_poll_s",
}
#: Workers never touch the database (the status writer writes every table),
#: so no database setting -- not even the secret's name -- reaches them.
FORBIDDEN_KEYS = ("DSN", "DB_")


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


def stack_setting_env(pipeline: str, environ: Mapping[str, str]) -> dict[str, str]:
    """``pipeline``'s stack settings (``FleetProfile.stack_settings``: the
    cookies secret's ARN, the overrides CSV) that ``environ`` sets: what
    ``fleet launch`` passes on, as the stack's launch templates do."""
    try:
        spec = get_spec(pipeline)
    except UnknownPipeline as err:
        raise UserDataError(str(err)) from None
    return {s.env: environ[s.env] for s in spec.fleet.stack_settings if environ.get(s.env)}


def agent_config(log_group: str, log_file: str) -> dict[str, Any]:
    """``cloudwatch-agent.json`` for one pipeline: ``log_file`` into ``log_group``."""
    text = resources.files("specfleet.fleet").joinpath("cloudwatch-agent.json").read_text()
    for marker, value in (("@@LOG_GROUP@@", log_group), ("@@LOG_FILE@@", log_file)):
        text = text.replace(marker, value)
    config: dict[str, Any] = json.loads(text)
    return config


#: Log groups: /specfleet/<stack>/<pipeline>, one stream per instance.
LOG_GROUP_PREFIX = "/specfleet"


def log_group_name(stack_name: str, pipeline: str) -> str:
    """The CloudWatch log group of ``pipeline``'s workers in stack ``stack_name``."""
    return f"{LOG_GROUP_PREFIX}/{stack_name}/{pipeline}"


def log_file(pipeline: str) -> str:
    return f"{LOG_DIR}/{pipeline}.log"


def render(pipeline: str, env: dict[str, str], *, log_group: str, for_cloudformation: bool = False) -> str:
    """The user-data script for ``pipeline`` with ``env`` as the worker's
    settings, shipping its log to ``log_group``.

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
        if any(word in key for word in FORBIDDEN_KEYS):
            raise UserDataError(f"{key}: workers hold no database settings or credentials (the status writer "
                                "writes every table)")
        checked = _CFN_REF.sub("", value) if for_cloudformation else value
        if not _SAFE_VALUE.fullmatch(checked):
            raise UserDataError(f"value of {key} has characters unsafe in user-data: {value!r}")
        lines.append(f"{key}={value}")
    checked_group = _CFN_REF.sub("", log_group) if for_cloudformation else log_group
    if not re.fullmatch(r"[A-Za-z0-9_./#-]{1,512}", checked_group):
        raise UserDataError(f"log group name {log_group!r} has characters CloudWatch Logs does not allow")
    command = shlex.join(["specfleet", "work", pipeline])
    agent = json.dumps(agent_config(log_group, log_file(pipeline)), indent=2, sort_keys=False)
    text = TEMPLATE
    for marker, value in (
        ("@@ENV_BEGIN@@", ENV_BEGIN), ("@@ENV_END@@", ENV_END),
        ("@@CMD_BEGIN@@", CMD_BEGIN), ("@@CMD_END@@", CMD_END),
        ("@@AGENT_BEGIN@@", AGENT_BEGIN), ("@@AGENT_END@@", AGENT_END), ("@@AGENT_JSON@@", agent),
        ("@@AGENT_CONFIG@@", AGENT_CONFIG), ("@@AGENT_CTL@@", AGENT_CTL),
        ("@@LOG_DIR@@", LOG_DIR), ("@@LOG_FILE@@", log_file(pipeline)),
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
    #: The CloudWatch agent's configuration (None in scripts without one).
    agent: dict[str, Any] | None = None

    def log_target(self) -> tuple[str, str] | None:
        """``(log file, log group)`` the agent ships, or None."""
        if not self.agent:
            return None
        entry = self.agent["logs"]["logs_collected"]["files"]["collect_list"][0]
        return str(entry["file_path"]), str(entry["log_group_name"])


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
    agent = None
    if AGENT_BEGIN in text:
        body = [line for line in _block(text, AGENT_BEGIN, AGENT_END) if not line.startswith("cat >")
                and line != "SPECFLEET_AGENT"]
        try:
            agent = json.loads("\n".join(body))
        except json.JSONDecodeError as err:
            raise UserDataError(f"user-data's CloudWatch agent block is not JSON: {err}") from None
    return ParsedUserData(pipeline=argv[2], argv=argv, env=env, agent=agent)


def cloudformation_env(pipeline: str = "") -> dict[str, str]:
    """The env block used for the launch templates in infra/template.yaml;
    with ``pipeline``, also its stack settings (``FleetProfile.stack_settings``),
    each set to its template parameter: an empty parameter leaves the
    setting empty, i.e. unset. (A secret is only named, by its ARN.)"""
    env = {
        "SPECFLEET_REGION": "${AWS::Region}",
        "SPECFLEET_QUEUE_PREFIX": "${QueuePrefix}",
        "SPECFLEET_BUCKET": "${DataBucket}",
        "SPECFLEET_DRAIN_S": "60",
        "SPECFLEET_IMDS_URL": IMDS_URL,
    }
    if pipeline:
        try:
            spec = get_spec(pipeline)
        except UnknownPipeline as err:
            raise UserDataError(str(err)) from None
        env.update({s.env: f"${{{s.parameter}}}" for s in spec.fleet.stack_settings})
    return env
