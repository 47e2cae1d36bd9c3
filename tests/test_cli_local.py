"""The CLI from outside, as a user runs it: local up/env/down, produce,
work, status, then the stack is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from specfleet.local.stack import destroy_data


def specfleet(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "specfleet.cli.main", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )


@pytest.mark.slow
def test_local_stack_lifecycle_and_echo_round_trip(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "SPECFLEET_"))}
    stack_dir = tmp_path / "stack"
    up = specfleet("local", "up", "--dir", str(stack_dir), env=env, cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    try:
        exported = specfleet("local", "env", "--dir", str(stack_dir), env=env, cwd=tmp_path)
        assert exported.returncode == 0, exported.stderr
        pairs = dict(line.removeprefix("export ").split("=", 1) for line in exported.stdout.splitlines())
        assert pairs["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert pairs["SPECFLEET_DB_DSN"].startswith("postgresql://postgres@127.0.0.1:")
        env.update(pairs)
        env["SPECFLEET_WAIT_TIME_S"] = "1"

        produced = specfleet("produce", "echo", "--count", "7", env=env, cwd=tmp_path)
        assert produced.returncode == 0 and "enqueued 7" in produced.stderr, produced.stderr
        worked = specfleet("work", "echo", "--idle-exit", "2", env=env, cwd=tmp_path)
        assert worked.returncode == 0, worked.stderr
        assert "worker stopped: 7 done" in worked.stderr
        job_lines = sorted(line.split()[1] for line in worked.stderr.splitlines() if line.split()[:1] == ["done"])
        assert job_lines == [f"echo-{i}" for i in range(7)], worked.stderr

        # The stack's own poller writes the rows; `status --json` reports them.
        deadline = time.monotonic() + 30
        while True:
            status = specfleet("status", "--json", env=env, cwd=tmp_path)
            assert status.returncode == 0, status.stderr
            echo = json.loads(status.stdout)["pipelines"]["echo"]
            if echo["done"] == 7 or time.monotonic() > deadline:
                break
        assert echo["done"] == 7 and echo["failed"] == 0
        assert echo["queue"]["visible"] == 0
    finally:
        down = specfleet("local", "down", "--dir", str(stack_dir), env=env, cwd=tmp_path)
    assert down.returncode == 0 and "stopped" in down.stderr
    gone = specfleet("local", "env", "--dir", str(stack_dir), env=env, cwd=tmp_path)
    assert gone.returncode == 1 and "no local stack" in gone.stderr
    # S3 and SQS lived in moto's memory; the tables went with them: a new stack starts empty
    base = {k: v for k, v in env.items() if not k.startswith(("AWS_ENDPOINT", "SPECFLEET_"))}
    again = specfleet("local", "up", "--dir", str(stack_dir), env=base, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    try:
        fresh = dict(line.removeprefix("export ").split("=", 1) for line in specfleet(
            "local", "env", "--dir", str(stack_dir), env=base, cwd=tmp_path).stdout.splitlines())
        status = specfleet("status", "--json", env={**base, **fresh}, cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["pipelines"]["echo"]["done"] == 0
    finally:
        specfleet("local", "down", "--dir", str(stack_dir), env=base, cwd=tmp_path)
    destroy_data(stack_dir)
