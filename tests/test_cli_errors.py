"""Every command a user can meet in a broken environment ends in one clear
line, no traceback, and a non-zero exit code (issue 18): the stack down,
the database unreachable, a misspelt pipeline. Through the real entry point
(``python -m specfleet.cli.main``), as a shell would run it. Every address
is a closed port on 127.0.0.1: nothing leaves the machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from specfleet.local.postgres import free_port

#: A process per command (~3 s each): the full suite, not the fast lane.
pytestmark = pytest.mark.slow

CLOSED = f"127.0.0.1:{free_port()}"  # nothing listens here

#: Commands that need the AWS endpoint (the local stack) to do anything.
NEEDS_AWS = [
    ["status"],
    ["status", "--json"],
    ["report", "report.html"],
    ["dlq", "list"],
    ["dlq", "show", "echo"],
    ["dlq", "redrive", "echo", "--yes"],
    ["dlq", "purge", "echo", "--yes"],
    ["produce", "echo", "--count", "2"],
    ["produce", "spectrogram", "--dry-run"],
    ["produce", "search", "--queries", "queries.csv"],
    ["produce", "download", "--csv", "download.csv"],
    ["produce", "hydrophone", "--day", "2017-10-09", "--base-url", f"http://{CLOSED}/files/"],
    ["logs", "echo"],
    ["fleet", "ls"],
    ["fleet", "stop", "--pipeline", "echo"],
    ["fleet", "launch", "--pipeline", "echo", "--count", "1", "--yes"],
    ["fleet", "autoscale", "--pipeline", "hydrophone"],
    ["local", "env"],
    ["local", "init"],
    ["catalog", "build", "--limit", "1"],
    ["hydrophone", "days"],
]

MISSPELT = [
    ["work", "hydrofone"],
    ["dlq", "show", "hydrofone"],
    ["dlq", "redrive", "hydrofone", "--yes"],
    ["logs", "hydrofone"],
    ["fleet", "plan", "--pipeline", "hydrofone", "--jobs", "5"],
    ["fleet", "launch", "--pipeline", "hydrofone"],
    ["produce", "hydrofone"],
    ["status", "--no-such-flag"],
    ["demo", "--pipelines", "hydrofone"],
]


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPECFLEET_"))}
    base.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                 "COLUMNS": "200", **env})
    return subprocess.run([sys.executable, "-m", "specfleet.cli.main", *args], cwd=cwd, env=base,
                          capture_output=True, text=True, timeout=120)


def assert_one_clear_line(done: subprocess.CompletedProcess[str], args: list[str]) -> str:
    out = (done.stdout + done.stderr).strip()
    assert done.returncode != 0, (args, out)
    assert "Traceback" not in out, (args, out)
    lines = [line for line in out.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, (args, out)
    assert len(lines) <= 2, (args, out)  # the error line, at most a 'using the local stack' banner
    return errors[0]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "queries.csv").write_text("track_id,query\nt1,some song\n")
    (tmp_path / "download.csv").write_text("track_id,yt_url\nt1,https://www.youtube.com/watch?v=x\n")
    return tmp_path


@pytest.mark.slow
def _id(args: list[str]) -> str:
    """Test ids must match across xdist workers, whose closed ports differ."""
    return " ".join(args).replace(CLOSED, "CLOSED")


@pytest.mark.parametrize("args", NEEDS_AWS, ids=_id)
def test_with_the_stack_down(workdir: Path, args: list[str]) -> None:
    done = run(args, workdir, AWS_ENDPOINT_URL=f"http://{CLOSED}",
               SPECFLEET_DB_DSN=f"postgresql://nobody@{CLOSED}/none",
               SPECFLEET_HYDRO_ALLOWED_HOSTS=f'["{CLOSED}"]',
               SPECFLEET_CATALOG_CHART_URL=f"http://{CLOSED}/", SPECFLEET_SPOTIFY_API_URL=f"http://{CLOSED}/v1",
               SPECFLEET_SPOTIFY_AUTH_URL=f"http://{CLOSED}/token", SPOTIFY_CLIENT_ID="x", SPOTIFY_CLIENT_SECRET="y")
    line = assert_one_clear_line(done, args)
    assert "nothing answers" in line or "no local stack" in line or "unreachable" in line or "cannot" in line, line


@pytest.mark.slow
@pytest.mark.parametrize("args", MISSPELT, ids=" ".join)
def test_a_misspelt_pipeline_or_flag(workdir: Path, args: list[str]) -> None:
    line = assert_one_clear_line(run(args, workdir), args)
    assert "hydrofone" in line or "no-such-flag" in line or "No such command" in line, line


@pytest.mark.slow
def test_status_with_the_database_unreachable_shows_the_queues(stack, workdir: Path) -> None:
    """The normal case from a laptop on AWS (RDS is private): one line, then queue depths."""
    done = run(["status"], workdir, AWS_ENDPOINT_URL=stack.endpoint_url,
               SPECFLEET_DB_DSN=f"postgresql://nobody@{CLOSED}/none", SPECFLEET_DB_CONNECT_TIMEOUT_S="2")
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "Traceback" not in out, out
    assert "database unreachable" in out and "queue depths" in out
    report = run(["report", "r.html"], workdir, AWS_ENDPOINT_URL=stack.endpoint_url,
                 SPECFLEET_DB_DSN=f"postgresql://nobody@{CLOSED}/none", SPECFLEET_DB_CONNECT_TIMEOUT_S="2")
    assert "database is unreachable" in assert_one_clear_line(report, ["report"])


#: Settings outside the bounds the service itself sets (SQS's long poll is
#: 0-20 s, its visibility timeout 0-43,200 s) or the declared ones.
OUT_OF_BOUNDS = [
    (["work", "echo"], "SPECFLEET_WAIT_TIME_S", "30"),
    (["work", "echo"], "SPECFLEET_VISIBILITY_TIMEOUT_S", "43201"),
    (["hydrophone", "clip", "x.mseed", "--out", "clips"], "SPECFLEET_HYDRO_WIDTH", "-3"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("args", "variable", "value"), OUT_OF_BOUNDS, ids=lambda v: v if isinstance(v, str) else "")
def test_a_setting_out_of_bounds_is_a_configuration_error(workdir: Path, args: list[str], variable: str,
                                                           value: str) -> None:
    """A configuration mistake stops the command before it touches a job:
    one line naming the variable, exit 78 (EX_CONFIG, which systemd does not
    restart), never a data error."""
    done = run(args, workdir, AWS_ENDPOINT_URL=f"http://{CLOSED}", **{variable: value})
    line = assert_one_clear_line(done, args)
    assert done.returncode == 78, (done.returncode, line)
    assert variable in line and repr(value) in line, line
