"""`specfleet demo --json` from outside, as SPEC.md's CLI contract states:
every pipeline end to end on the embedded stack, one JSON object last; and
what a person sees when they run it in a terminal (issue 18): a short
screen, no log records, the report small enough to open."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pyte
import pytest

KEYS = {"jobs", "ok", "failed", "skipped", "objects", "status_rows", "lost"}
README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- demo-output: written by tests/test_demo.py -->", "<!-- /demo-output -->"
COLUMNS = 100


def run_in_terminal(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run ``argv`` on a pseudo-terminal (as a person's shell would) and
    return its exit code and the screen's final lines (ANSI codes removed,
    spinner redraws resolved to what stays on screen)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, env={**env, "COLUMNS": str(COLUMNS), "TERM": "xterm"},
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    # A terminal emulator shows what stays on screen (spinners erase themselves).
    screen = pyte.Screen(4000, 1000)  # wider than any line: the JSON line stays one line
    pyte.Stream(screen).feed(b"".join(chunks).decode("utf-8", "replace").replace("\n", "\r\n"))
    return code, "\n".join(line.rstrip() for line in screen.display if line.strip())


def normalized(screen: str) -> str:
    """The screen without what changes from run to run (times, ports, paths, sizes)."""
    screen = re.sub(r"\d+\.\d+s\b", "N.Ns", screen)
    screen = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", screen)
    screen = re.sub(r":\d{4,5}\)", ":PORT)", screen)
    screen = re.sub(r"\(\d+\.\d MB\)", "(N.N MB)", screen)
    screen = re.sub(r"/\S*/(demo/)", r"\1", screen)
    return "\n".join(line for line in screen.splitlines() if not line.startswith('{"pipelines"'))


@pytest.mark.slow
def test_demo_runs_every_pipeline_and_loses_nothing(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "SPECFLEET_"))}
    code, screen = run_in_terminal(
        [sys.executable, "-m", "specfleet.cli.main", "demo", "--json", "--dir", str(tmp_path / "demo")],
        cwd=tmp_path, env=env, timeout=600,
    )
    assert code == 0, screen[-3000:]
    lines = screen.splitlines()
    result = json.loads(lines[-1])  # the contract: one JSON object last
    assert set(result["pipelines"]) == {"hydrophone", "search", "download", "spectrogram"}
    for name, p in result["pipelines"].items():
        assert set(p) == KEYS, name
        assert p["lost"] == 0, (name, p)
        assert p["jobs"] == p["ok"] + p["failed"] + p["skipped"], (name, p)  # every job accounted for
        assert p["ok"] > 0, (name, p)
    hydro, search, download, spectro = (result["pipelines"][k] for k in ("hydrophone", "search", "download", "spectrogram"))
    assert hydro["objects"] >= 120  # a clean 5-minute file gives 60 WAV + 60 PNG
    assert download["jobs"] == search["ok"]  # every URL found was downloaded
    assert download["objects"] == download["ok"]
    assert spectro["jobs"] >= download["ok"]  # downloaded tracks flowed on into spectrograms
    assert spectro["status_rows"] >= spectro["objects"] >= spectro["ok"]
    report = Path(result["report"])
    assert report.exists() and "<img" in report.read_text()
    assert 10_000 < report.stat().st_size <= 3_000_000  # small previews, not the WAVs

    # What a person sees: a short screen, no structured log records, a table.
    assert len(lines) <= 40, screen
    assert not [line for line in lines[:-1] if line.lstrip().startswith("{")], screen
    assert "Traceback" not in screen
    # nothing a library printed behind our back (libmpg123's "Note: Illegal Audio-MPEG-Header", warnings)
    assert not [line for line in lines if line.startswith(("Note:", "Warning:", "WARNING")) or "Warning:" in line], screen
    assert (tmp_path / "demo" / "logs" / "demo.log").stat().st_size > 0  # the details went to the log file
    for name in result["pipelines"]:
        assert any(line.startswith(f"✓ {name}") for line in lines), name  # its progress line
    assert not [line for line in lines if line.startswith(("┃", "│"))], screen  # --json: the JSON, not the table too

    # The README shows this very screen (run with SPECFLEET_UPDATE_README=1 to refresh it).
    shown = normalized(screen)
    text = README.read_text()
    if os.environ.get("SPECFLEET_UPDATE_README") == "1":
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        README.write_text(f"{head}{BEGIN}\n```text\n{shown}\n```\n{END}{tail}")
        text = README.read_text()
    block = text.partition(BEGIN)[2].partition(END)[0].strip().removeprefix("```text").removesuffix("```").strip()
    assert block == shown, "README's demo output is stale: rerun this test with SPECFLEET_UPDATE_README=1"
