"""The private database from a laptop: `specfleet db tunnel` and commands that
use it transparently (SSM port forwarding through a fleet instance; the
Session Manager service and AWS's plugin are local stand-ins, the secret,
the instance and the database are real), and `status` without a database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from specfleet.aws import client
from specfleet.fleet import instances
from specfleet.fleet.settings import FleetSettings
from specfleet.local.stack import Namespace
from specfleet.pipelines import job_queue
from specfleet.settings import Settings
from ssm_standin import SsmStandIn

PLUGIN = Path(__file__).resolve().parent / "standin_bin" / "session-manager-plugin"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SPECFLEET_")}
    return subprocess.run([sys.executable, "-m", "specfleet.cli.main", *args], env={**base, **env},
                          capture_output=True, text=True, timeout=timeout)


def _env(ns: Namespace) -> dict[str, str]:
    return {"SPECFLEET_ENDPOINT_URL": ns.settings.endpoint_url or "", "SPECFLEET_QUEUE_PREFIX": ns.prefix,
            "SPECFLEET_BUCKET": ns.settings.bucket}


def test_status_without_a_database_shows_queue_depths_and_says_so_once(namespace: Namespace) -> None:
    job_queue(namespace.settings, "echo").send_json({"job_id": f"q{i}"} for i in range(3))
    env = {**_env(namespace), "SPECFLEET_DB_DSN": f"postgresql://nobody@127.0.0.1:{_closed_port()}/none",
           "SPECFLEET_DB_CONNECT_TIMEOUT_S": "2"}
    shown = _run(env, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr
    notes = [line for line in shown.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and notes[0].startswith("database unreachable") and "queue depths only" in notes[0]
    data = json.loads(shown.stdout)
    assert data["database"].startswith("unreachable")
    assert data["queues"]["echo"] == {"visible": 3, "in_flight": 0, "delayed": 0, "dlq": 0}
    table = _run(env, "status")
    assert table.returncode == 0 and "echo" in table.stdout and "queue depths (no database)" in table.stdout
    # nothing configured at all: the same, naming the missing setting
    unset = _run(_env(namespace), "status", "--json")
    assert unset.returncode == 0 and "SPECFLEET_DB_DSN or SPECFLEET_DB_SECRET_ID" in unset.stderr


@pytest.fixture
def ssm() -> Iterator[SsmStandIn]:
    standin = SsmStandIn().start()
    try:
        yield standin
    finally:
        standin.close()


def _tunnel_env(ns: Namespace, ssm: SsmStandIn, secret_arn: str, record: Path) -> dict[str, str]:
    return {**_env(ns), "SPECFLEET_DB_SECRET_ID": secret_arn, "AWS_ENDPOINT_URL_SSM": ssm.url,
            "SPECFLEET_FLEET_SESSION_MANAGER_PLUGIN": str(PLUGIN), "STANDIN_PLUGIN_RECORD": str(record)}


def _secret(ns: Namespace, settings: Settings) -> str:
    """The RDS-style secret the stack's attachment writes, for the test database
    (no TLS on the embedded Postgres, so sslmode=disable here)."""
    return client("secretsmanager", settings).create_secret(
        Name=f"{ns.prefix}db", SecretString=json.dumps({
            "username": "postgres", "password": "", "host": "127.0.0.1", "port": ns.state.pg_port,
            "dbname": ns.dbname, "sslmode": "disable"}))["ARN"]


def test_status_reaches_the_private_database_through_an_ssm_tunnel(
    namespace: Namespace, ssm: SsmStandIn, tmp_path: Path
) -> None:
    s = FleetSettings.over(namespace.settings, fleet_spot=False)
    [instance] = instances.launch(s, "echo", 1)  # the fleet instance to forward through
    arn = _secret(namespace, s)
    record = tmp_path / "plugin.jsonl"
    env = {**_tunnel_env(namespace, ssm, arn, record), "SPECFLEET_FLEET_DB_TUNNEL": "true"}
    shown = _run(env, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert "database" not in data and set(data["pipelines"]) >= {"echo", "download"}  # the full, database view
    # the AWS calls: StartSession for port forwarding through that instance to the secret's host and port ...
    [start] = ssm.calls("StartSession")
    assert start["Target"] == instance
    assert start["DocumentName"] == "AWS-StartPortForwardingSessionToRemoteHost"
    assert start["Parameters"]["host"] == ["127.0.0.1"]
    assert start["Parameters"]["portNumber"] == [str(namespace.state.pg_port)]
    # ... the plugin run as the AWS CLI runs it, carrying status's connection ...
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines[0]["argv"][1:4] == [s.region, "StartSession", ""] and lines[0]["endpoint"] == ssm.url
    session_id = json.loads(lines[0]["argv"][0])["SessionId"]
    assert session_id.startswith("standin-")
    assert {"connection": f"127.0.0.1:{namespace.state.pg_port}"} in lines[1:]
    # ... and the session ended when the command did
    assert [t["SessionId"] for t in ssm.calls("TerminateSession")] == [session_id]


def test_db_tunnel_command_says_what_it_did(namespace: Namespace, ssm: SsmStandIn, tmp_path: Path) -> None:
    s = FleetSettings.over(namespace.settings, fleet_spot=False)
    [instance] = instances.launch(s, "echo", 1)
    arn = _secret(namespace, s)
    env = _tunnel_env(namespace, ssm, arn, tmp_path / "plugin.jsonl")
    opened = _run(env, "db", "tunnel", "--local-port", "0", "--for", "1", "--json")
    assert opened.returncode == 0, opened.stderr
    info = json.loads(opened.stdout)
    assert info["instance"] == instance and info["remote"] == f"127.0.0.1:{namespace.state.pg_port}"
    assert info["calls"] == ["secretsmanager:GetSecretValue", "ec2:DescribeInstances", "ssm:StartSession"]
    assert "***@127.0.0.1" in opened.stderr and '"password"' not in opened.stderr  # no password printed
    assert [t["SessionId"] for t in ssm.calls("TerminateSession")] == [info["session_id"]]
    # no fleet instance running: one clear line, no traceback
    instances.stop(s, "echo")
    refused = _run(env, "db", "tunnel", "--for", "1")
    assert refused.returncode == 1 and "no running fleet instance" in refused.stderr
    assert "Traceback" not in refused.stderr
