"""Ctrl-C on a worker in a terminal: SIGINT reaches the whole foreground
process group (the worker and its pool's processes). The worker prints one
line, hands the jobs in hand back, and exits 0; no process prints a
traceback (issue 18)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import wait_for
from specfleet.local.stack import Namespace
from specfleet.pipelines import job_queue


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _start(namespace: Namespace, pipeline: str, tmp_path: Path, **extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, **namespace.env(), "COLUMNS": "200", "SPECFLEET_WAIT_TIME_S": "1", **extra}
    return subprocess.Popen(
        [sys.executable, "-m", "specfleet.cli.main", "work", pipeline], env=env, cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,  # its own group, like a terminal's job
    )


def _interrupt(proc: subprocess.Popen[str]) -> tuple[int, str]:
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, err


@pytest.mark.slow
def test_ctrl_c_on_an_idle_worker_with_a_process_pool(namespace: Namespace, tmp_path: Path) -> None:
    proc = _start(namespace, "spectrogram", tmp_path, SPECFLEET_SPECTRO_PROCESSES="2")
    # the pool is up: two processes beyond the worker (spawn's resource tracker may add one)
    wait_for(lambda: len(_children(proc.pid)) >= 2 or proc.poll() is not None, timeout=120, what="the pool")
    assert proc.poll() is None
    code, err = _interrupt(proc)
    assert code == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    lines = err.strip().splitlines()
    assert lines[-1] == "worker stopped (Ctrl-C): no jobs", err
    assert len(lines) == 2, err  # the banner and that line


@pytest.mark.slow
def test_ctrl_c_hands_the_job_in_hand_back(namespace: Namespace, tmp_path: Path) -> None:
    jobs = job_queue(namespace.settings, "echo")
    jobs.send_json([{"job_id": "long", "sleep_s": 120}])
    proc = _start(namespace, "echo", tmp_path, SPECFLEET_VISIBILITY_TIMEOUT_S="600")
    wait_for(lambda: jobs.depth()["in_flight"] == 1, timeout=60, what="the job taken")
    code, err = _interrupt(proc)
    assert code == 0 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    # the job handed back unfinished gets no line of its own (it is not a retry:
    # no attempt is spent); the closing line, last, counts it (issue 26)
    assert lines[-1] == "worker stopped (Ctrl-C): 1 handed back to the queue", err
    assert len(lines) == 2, err
    # handed back now, not after the 10-minute visibility timeout
    wait_for(lambda: jobs.depth()["visible"] == 1, timeout=15, what="the job visible again")
