"""`specfleet demo --json` from outside, as SPEC.md's CLI contract states:
every pipeline end to end on the embedded stack, one JSON object last."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KEYS = {"jobs", "ok", "failed", "skipped", "objects", "status_rows", "lost"}


@pytest.mark.slow
def test_demo_runs_every_pipeline_and_loses_nothing(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "SPECFLEET_"))}
    done = subprocess.run(
        [sys.executable, "-m", "specfleet.cli.main", "demo", "--json", "--dir", str(tmp_path / "demo")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
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
    assert report.exists() and report.stat().st_size > 10_000
    assert "<img" in report.read_text()
