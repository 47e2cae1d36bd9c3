"""Shared fixtures: one embedded stack (moto server + PostgreSQL) per test
process, and a fresh namespace (queue prefix, bucket, database, status
poller) per test. A socket guard makes any non-loopback connection fail."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from specfleet.local.postgres import free_port
from specfleet.local.stack import (
    EMULATOR_CREDENTIALS,
    Namespace,
    StackState,
    destroy_data,
    start_detached,
    stop_detached,
)
from specfleet.settings import Settings

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(address: object) -> None:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            if host not in ("localhost",):
                raise OSError(f"test tried to reach {host!r}: only loopback is allowed in tests") from None
            return
        if not ip.is_loopback:
            raise OSError(f"test tried to reach {host!r}: only loopback is allowed in tests")


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check_address(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _check_address(address)
    return _real_connect_ex(self, address)


#: Fixtures that need the embedded stack (moto's server + PostgreSQL).
STACK_FIXTURES = {"stack", "namespace", "settings"}

#: The files whose stack tests exercise what specfleet asks of AWS -- SQS
#: (batches, visibility, redrive, purge), S3, SNS, the worker and the status
#: path into PostgreSQL -- and not moto's own internals, EC2, CloudFormation
#: or IAM. Their stack tests get the ``localstack`` marker: ``./dev test
#: --localstack`` runs them (``-m localstack``) against LocalStack instead of
#: moto's server (``SPECFLEET_LOCAL_AWS_ENDPOINT``, specfleet/local/stack.py).
#: test_sqs_limits.py is left out: LocalStack takes some requests AWS refuses.
LOCALSTACK_FILES = frozenset({
    "test_bad_input.py",
    "test_echo_smoke.py",
    "test_monitoring_cli.py",
    "test_moto_sqs.py",
    "test_original_bodies.py",
    "test_outages.py",
    "test_results_pull.py",
    "test_runtime.py",
    "test_runtime_overlap.py",
    "test_sqs_characters.py",
    "test_status_guard.py",
    "test_status_jobs.py",
    "test_status_writer.py",
    "test_worker_interrupt.py",
    "test_worker_shutdown.py",
})
#: The longest test files, longest first (a 60 s stall in a 3-minute job,
#: two 60 s outages, a whole Debian root file system, ...). The full lane
#: hands them out first (``--no-loadscope-reorder`` keeps this order), so
#: its last minutes are short files spread over every worker instead of one
#: long file while the others idle. Re-measure with ``--junitxml`` when a
#: file grows.
LONGEST_FIRST = (
    "test_heartbeat_stall.py",
    "test_outages.py",
    "test_ami_recipe.py",
    "test_runtime.py",
    "test_music_youtube.py",
    "test_hydrophone_original.py",
    "test_fleet_iam.py",
    "test_download_fused.py",
    "test_cli_output.py",
    "test_music_download.py",
    "test_demo.py",
    "test_fleet_iam_cookies.py",
    "test_queues_scale.py",
    "test_fleet_autoscaling.py",
    "test_fleet_infra.py",
    "test_cli_local.py",
    "test_music_search.py",
    "test_fleet_emulator.py",
)
#: Tests of those files that check the embedded stack itself where LocalStack
#: answers differently, with why (``file::test``).
NOT_ON_LOCALSTACK = {
    "test_sqs_characters.py::test_embedded_stack_refuses_like_aws_and_fails_the_whole_batch":
        "LocalStack 4.14 reports a refused character in one entry of a SendMessageBatch as that entry's "
        "failure (SenderFault false) and takes the others; the embedded stack fails the whole request",
}


@pytest.hookimpl(tryfirst=True)  # before -m selects on the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses the embedded stack, for the fast lane
    (``./dev test --fast`` runs ``-m "not stack and not slow"``), and those
    of ``LOCALSTACK_FILES`` for the LocalStack lane."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
    for item in items:
        if STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)
            test = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
            if item.path.name in LOCALSTACK_FILES and test not in NOT_ON_LOCALSTACK:
                item.add_marker(pytest.mark.localstack)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "localstack: a stack test that ./dev test --localstack also runs against "
                            "LocalStack; set by conftest from LOCALSTACK_FILES")
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    # Nothing in a test may fall back to real AWS endpoints or credentials.
    os.environ.update(EMULATOR_CREDENTIALS)
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackState]:
    root = tmp_path_factory.mktemp("stack")
    state = start_detached(root, poller=False)
    os.environ["AWS_ENDPOINT_URL"] = state.endpoint_url
    try:
        yield state
    finally:
        stop_detached(root)
        destroy_data(root)


@pytest.fixture
def namespace(stack: StackState) -> Iterator[Namespace]:
    """A fresh slice of the stack with the status poller running."""
    ns = Namespace(stack, wait_time_s=1, visibility_timeout_s=30)
    try:
        yield ns
    finally:
        ns.close()


@pytest.fixture
def settings(namespace: Namespace) -> Settings:
    return namespace.settings


@pytest.fixture
def artifacts_dir() -> Path:
    """Where tests keep files worth looking at after a run (screenshots)."""
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def enforcing_moto() -> Iterator[str]:
    """moto's server evaluating IAM the way AWS does (tests/iam_moto_server.py); its URL."""
    port = free_port()
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    launcher = Path(__file__).resolve().parent / "iam_moto_server.py"
    proc = subprocess.Popen([sys.executable, str(launcher), str(port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        assert proc.stdout is not None and "ready" in proc.stdout.readline()
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    """The OOI archive stand-in serving ``tmp_path / "ooi"``: ``(server, root)``."""
    from specfleet.standins.ooi_archive import OOIServer

    root = tmp_path / "ooi"
    with OOIServer(root) as server:
        yield server, root


@pytest.fixture
def site() -> Iterator[Any]:
    """The local video site, its stalling video after 20 s (tests that need other videos define their own)."""
    from specfleet.standins.video_site import VideoSite

    with VideoSite(stall_s=20) as s:
        yield s
