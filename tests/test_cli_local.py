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
        assert produced.returncode == 0 and "enqueued 7 echo jobs" in produced.stdout, produced.stderr
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
    assert down.returncode == 0 and down.stdout.startswith("stopped")
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


def _running(pid: int) -> bool:
    """A live process (a zombie waiting for a parent that is not us is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
def test_one_stack_per_user_found_from_any_folder(tmp_path: Path):
    """Issue 26: `local up` in one folder, `local env` and `local down` in
    another find the same stack (a state folder under the user's home), and
    no folder gets a `.specfleet` of its own: one log for the user."""
    home = tmp_path / "home"
    here, there = tmp_path / "project", tmp_path / "elsewhere"
    for folder in (home, here, there):
        folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPECFLEET_"))}
    env["HOME"] = str(home)
    up = specfleet("local", "up", env=env, cwd=here)
    assert up.returncode == 0, up.stderr
    state = json.loads((home / ".specfleet" / "local" / "state.json").read_text())
    try:
        exported = specfleet("local", "env", env=env, cwd=there)
        assert exported.returncode == 0, exported.stderr
        pairs = dict(line.removeprefix("export ").split("=", 1) for line in exported.stdout.splitlines())
        assert pairs["AWS_ENDPOINT_URL"] == state["endpoint_url"]
        again = specfleet("local", "up", env=env, cwd=there)  # a second `up` elsewhere finds it too
        assert again.returncode == 0 and f"already running (pid {state['pid']}" in again.stderr, again.stderr
        # any command in any folder uses it without being pointed at it
        produced = specfleet("produce", "echo", "--count", "2", env=env, cwd=there)
        assert produced.returncode == 0 and "enqueued 2 echo jobs" in produced.stdout, produced.stderr
    finally:
        down = specfleet("local", "down", env=env, cwd=there)
    assert down.returncode == 0 and down.stdout.startswith("stopped"), down.stderr
    assert not _running(state["pid"])  # the process `up` started, stopped
    gone = specfleet("local", "down", env=env, cwd=here)
    assert "no local stack was running" in gone.stdout, gone.stderr
    # one log folder, the user's; no folder got a .specfleet of its own
    assert (home / ".specfleet" / "logs" / "specfleet.log").is_file()
    assert not (here / ".specfleet").exists() and not (there / ".specfleet").exists()
    # SPECFLEET_HOME moves all of it
    moved = specfleet("local", "env", env={**env, "SPECFLEET_HOME": str(tmp_path / "other")}, cwd=here)
    assert moved.returncode == 1 and str(tmp_path / "other" / "local") in moved.stderr, moved.stderr
    destroy_data(home / ".specfleet" / "local")
