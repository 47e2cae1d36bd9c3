"""`specfleet local ooi-archive` from outside: a real process serving the
stand-in in the foreground, its printed environment pointing the producer
at it, Ctrl-C stopping it with one line."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from specfleet.pipelines.hydrophone.listing import parse_listing

HYDRO = "CE02SHBP/LJ01D/11-HYDBBA106"
#: Each test starts specfleet processes (~7 s here): not for the fast lane.
pytestmark = pytest.mark.slow


def read_lines(proc: subprocess.Popen[bytes], n: int, timeout: float) -> list[str]:
    """``n`` lines of the process's stdout, failing after ``timeout`` seconds.
    Reads the pipe's file descriptor directly: a buffered reader could hold
    lines the selector no longer reports."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    data = b""
    deadline = time.monotonic() + timeout
    while data.count(b"\n") < n:
        left = deadline - time.monotonic()
        assert left > 0, f"no {n} lines within {timeout}s (got {data!r}); exit {proc.poll()}"
        if sel.select(left):
            chunk = os.read(fd, 4096)
            assert chunk, f"stdout closed after {data!r}; exit {proc.poll()}"
            data += chunk
    return data.decode().splitlines()[:n]


def test_local_ooi_archive_serves_days_prints_its_env_and_stops_on_ctrl_c(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECFLEET_HYDRO_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "specfleet.cli.main", "local", "ooi-archive", "--dir", str(tmp_path / "ooi"),
         "--port", "0", "--days", "2017-10-09..2017-10-10", "--site", "oregon_shelf_base_seafloor",
         "--files", "1", "--seconds", "6"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
    )
    try:
        base_line, hosts_line = read_lines(proc, 2, timeout=120)
        assert base_line.startswith("export SPECFLEET_HYDRO_BASE_URL=http://127.0.0.1:")
        base_url = base_line.split("=", 1)[1]
        assert hosts_line.startswith("export SPECFLEET_HYDRO_ALLOWED_HOSTS='")
        hosts = json.loads(hosts_line.split("=", 1)[1].strip("'"))
        assert hosts == [base_url.removeprefix("http://").split("/", 1)[0]]

        # Both days are there: one clean file, a real break, a truncated one, a short one,
        # one holding more than its slot, and an addendum/ folder (write_day).
        for day in ("2017/10/09", "2017/10/10"):
            url = f"{base_url}{HYDRO}/{day}/"
            listing = parse_listing(httpx.get(url, timeout=10).text, url)
            assert len(listing.files) == 5 and len(listing.sizes) == 5
            assert listing.addendum == url + "addendum/"  # followed by the producer, one level down
        assert httpx.get(f"{base_url}{HYDRO}/2017/10/11/", timeout=10).status_code == 404

        # The printed lines are all the producer needs. A dry run with --force
        # reads no S3 manifests; the endpoint still points at loopback so that
        # nothing could leave the machine (the test's socket guard does not
        # reach a child process).
        dry_env = {**env, "SPECFLEET_HYDRO_BASE_URL": base_url, "SPECFLEET_HYDRO_ALLOWED_HOSTS": json.dumps(hosts),
                   "SPECFLEET_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
        dry = subprocess.run(
            [sys.executable, "-m", "specfleet.cli.main", "produce", "hydrophone", "--site", "LJ01D",
             "--start", "2017-10-09", "--end", "2017-10-10", "--dry-run", "--force", "--json"],
            env=dry_env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )
        assert dry.returncode == 0, dry.stderr
        report = json.loads(dry.stdout)
        # five in the day folder and one in its addendum/
        assert [d["listed"] for d in report["days"]] == [6, 6] and report["bytes"] > 0
        assert report["files"] == 12 and report["plan"]["jobs"] == 12 and not report["notes"]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err_bytes = proc.communicate(timeout=30)
    err = err_bytes.decode()
    assert proc.returncode == 0, err
    assert "OOI archive stand-in stopped" in err and "Traceback" not in err


def test_local_ooi_archive_refuses_bad_days_and_a_taken_port_in_one_line(tmp_path: Path):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "specfleet.cli.main", "local", "ooi-archive",
                               "--dir", str(tmp_path / "ooi"), "--files", "0", *args],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "COLUMNS": "300"})  # one error line, unwrapped

    bad = run("--days", "2017-10-32")
    assert bad.returncode == 2 and "not YYYY-MM-DD" in bad.stderr and "Traceback" not in bad.stderr
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run("--days", "2017-10-09", "--port", str(port))
    assert busy.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert "Traceback" not in busy.stderr and len(busy.stderr.strip().splitlines()) == 1
