"""Laptop access to the private database, the AWS way: Session Manager port
forwarding through a fleet instance (no public RDS, no open port, no bastion).

``open_tunnel`` makes these calls, in order:

1. ``secretsmanager:GetSecretValue`` on ``SPECFLEET_DB_SECRET_ID``: the
   database's host, port, name and credentials (RDS-style JSON);
2. ``ec2:DescribeInstances`` (tag ``specfleet:prefix``, state ``running``):
   a fleet instance to forward through (or the one given);
3. ``ssm:StartSession`` with ``DocumentName=AWS-StartPortForwardingSessionToRemoteHost``
   and ``Parameters={host: [db host], portNumber: [db port],
   localPortNumber: [local port]}``;
4. runs AWS's ``session-manager-plugin`` with the StartSession response, as
   the AWS CLI does (``session-manager-plugin <response> <region>
   StartSession <profile> <request> <ssm endpoint>``); the plugin opens the
   session's websocket and listens on ``127.0.0.1:<local port>``;
5. on close, stops the plugin and calls ``ssm:TerminateSession``.

The caller gets settings whose DSN points at ``127.0.0.1:<local port>``
(TLS still required: ``rds.force_ssl``). The worker instance holds no
database credentials; the laptop reads the secret with its own identity.
The instance's security group may reach Postgres (the template admits it
for this), the SSM agent on it does the forwarding (``AmazonSSMManagedInstanceCore``).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..aws import client
from ..db import dsn_from_secret
from ..settings import Settings
from .instances import TAG_PREFIX, ec2
from .settings import FleetSettings

log = logging.getLogger("specfleet.fleet.tunnel")

DOCUMENT = "AWS-StartPortForwardingSessionToRemoteHost"


class TunnelError(RuntimeError):
    """The tunnel cannot be opened; the message says what is missing."""


@dataclass
class Tunnel:
    session_id: str
    instance_id: str
    local_port: int
    remote: tuple[str, int]
    settings: FleetSettings
    process: subprocess.Popen[bytes] | None = None
    #: The calls made, in order (what `db tunnel --json` prints).
    calls: list[str] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.session_id:
            try:
                _ssm(self.settings).terminate_session(SessionId=self.session_id)
                self.calls.append("ssm:TerminateSession")
            except Exception as err:  # the session also ends with the plugin
                log.warning("TerminateSession %s failed: %s", self.session_id, err)
            self.session_id = ""

    def __enter__(self) -> Tunnel:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _ssm(settings: FleetSettings) -> Any:
    # The SDKs' service-specific endpoint variable wins, as in the AWS CLI
    # (moto has no Session Manager: tests point SSM at a stand-in).
    override = os.environ.get("AWS_ENDPOINT_URL_SSM")
    if override:
        return client("ssm", settings.model_copy(update={"endpoint_url": override}))
    return client("ssm", settings)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_secret(settings: FleetSettings) -> dict[str, Any]:
    """The RDS-style secret (``GetSecretValue``)."""
    if not settings.db_secret_id:
        raise TunnelError("no SPECFLEET_DB_SECRET_ID: `specfleet infra deploy --env-file` writes it "
                          "(the stack output DatabaseSecretArn)")
    raw = client("secretsmanager", settings).get_secret_value(SecretId=settings.db_secret_id)[
        "SecretString"]
    try:
        secret = json.loads(raw)
    except json.JSONDecodeError:
        raise TunnelError("the database secret is not RDS-style JSON (host, port, username, password)") from None
    if not isinstance(secret, dict) or "host" not in secret:
        raise TunnelError("the database secret has no host yet (is the stack's RDS instance attached to it?)")
    return secret


def pick_instance(settings: FleetSettings, instance_id: str | None = None) -> str:
    """A running fleet instance of this deployment in the home region."""
    if instance_id:
        return instance_id
    found = ec2(settings).describe_instances(Filters=[
        {"Name": f"tag:{TAG_PREFIX}", "Values": [settings.queue_prefix or "-"]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ])
    ids = sorted(i["InstanceId"] for r in found["Reservations"] for i in r["Instances"])
    if not ids:
        raise TunnelError(
            f"no running fleet instance in {settings.region} to forward through: start one "
            "(`specfleet fleet launch --pipeline echo --count 1`) or pass --instance"
        )
    return ids[0]


def open_tunnel(
    settings: FleetSettings,
    *,
    instance_id: str | None = None,
    local_port: int = 0,
    ready_timeout_s: float = 60.0,
) -> Tunnel:
    """Start the session and the plugin; return once the local port accepts.
    Any AWS refusal on the way becomes a ``TunnelError`` naming the call."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return _open(settings, instance_id, local_port, ready_timeout_s)
    except ClientError as err:
        op = err.operation_name
        raise TunnelError(f"{op} was refused: {err.response.get('Error', {}).get('Message') or err}") from None
    except BotoCoreError as err:
        raise TunnelError(f"AWS could not be reached: {err}") from None


def _open(settings: FleetSettings, instance_id: str | None, local_port: int, ready_timeout_s: float) -> Tunnel:
    plugin = shutil.which(settings.fleet_session_manager_plugin)
    if plugin is None:
        raise TunnelError(f"{settings.fleet_session_manager_plugin!r} not found: install AWS's Session Manager "
                          "plugin (https://docs.aws.amazon.com/systems-manager/latest/userguide/"
                          "session-manager-working-with-install-plugin.html)")
    secret = database_secret(settings)
    calls = ["secretsmanager:GetSecretValue"]
    target = pick_instance(settings, instance_id)
    if not instance_id:
        calls.append("ec2:DescribeInstances")
    host, port = str(secret["host"]), int(secret.get("port", 5432))
    local = local_port or _free_port()
    request = {"Target": target, "DocumentName": DOCUMENT,
               "Parameters": {"host": [host], "portNumber": [str(port)], "localPortNumber": [str(local)]}}
    ssm = _ssm(settings)
    response = ssm.start_session(**request)
    calls.append("ssm:StartSession")
    tunnel = Tunnel(response["SessionId"], target, local, (host, port), settings, calls=calls)
    session = {k: response[k] for k in ("SessionId", "TokenValue", "StreamUrl")}
    argv = [plugin, json.dumps(session), settings.region, "StartSession", os.environ.get("AWS_PROFILE", ""),
            json.dumps(request), ssm.meta.endpoint_url]
    tunnel.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + ready_timeout_s
    while True:
        if not tunnel.alive:
            err = tunnel.process.stderr.read().decode(errors="replace")[-500:] if tunnel.process.stderr else ""
            tunnel.close()
            raise TunnelError(f"session-manager-plugin exited ({tunnel.process.returncode}): {err.strip()}")
        try:
            with socket.create_connection(("127.0.0.1", local), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                tunnel.close()
                raise TunnelError(f"the tunnel's local port {local} did not open in {ready_timeout_s:.0f}s") from None
            time.sleep(0.2)  # polling the plugin's listener, as it reports no readiness otherwise
    return tunnel


def tunnel_dsn(settings: FleetSettings, tunnel: Tunnel) -> str:
    """The database's DSN with the tunnel's local end as host and port."""
    secret = database_secret(settings)
    secret = {**secret, "host": "127.0.0.1", "port": tunnel.local_port}
    return dsn_from_secret(json.dumps(secret))


_process_tunnel: Tunnel | None = None


def through_tunnel(settings: FleetSettings) -> FleetSettings:
    """``settings`` reaching the database through one tunnel for this process
    (opened on first use, closed at exit): what the CLI does when
    ``SPECFLEET_FLEET_DB_TUNNEL`` is set."""
    global _process_tunnel
    if _process_tunnel is None or not _process_tunnel.alive:
        _process_tunnel = open_tunnel(settings, local_port=settings.fleet_db_tunnel_port)
        atexit.register(_process_tunnel.close)
    dsn = tunnel_dsn(settings, _process_tunnel)
    return settings.model_copy(update={"db_dsn": dsn, "db_secret_id": None})


def maybe_through_tunnel(settings: Settings) -> Settings:
    """``through_tunnel`` when ``SPECFLEET_FLEET_DB_TUNNEL`` asks for it."""
    fleet = FleetSettings.over(settings)
    return through_tunnel(fleet) if fleet.fleet_db_tunnel else settings


def redacted(dsn: str) -> str:
    """``dsn`` with its password replaced (for printing)."""
    scheme, sep, rest = dsn.partition("://")
    creds, at, location = rest.rpartition("@")
    if not at:
        return dsn
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{quote(user, safe='')}:***@{location}"
