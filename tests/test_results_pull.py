"""`specfleet results pull` (issue 26): a site's day from the bucket into a
folder, every object once, resumable after an interrupt; tracks by id."""

from __future__ import annotations

import datetime as dt
import os
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from specfleet.cli.main import app
from specfleet.local.stack import Namespace
from specfleet.results import day_prefixes, listing, pull
from specfleet.storage import Storage

CLASSIC, NEW = "CE02SHBP/LJ01D/11-HYDBBA106", "CE02SHBP/LJ01D/HYDBBA106"  # the site's two archive spellings


def _put(storage: Storage, key: str, rng: random.Random) -> bytes:
    body = rng.randbytes(rng.randint(1, 40_000))
    storage.put_bytes(key, body, "application/octet-stream")
    return body


def _cli(ns: Namespace, *args: str):
    return CliRunner().invoke(app, ["results", "pull", *args], env={**ns.env(), "COLUMNS": "200"})


def test_pull_a_day_every_object_once_and_resume_after_an_interrupt(namespace: Namespace, tmp_path: Path) -> None:
    storage, rng = Storage(namespace.settings), random.Random(7)
    day: dict[str, bytes] = {}
    for i in range(10):
        for ext in ("wav", "png"):
            key = f"hydrophone/{CLASSIC}/2017_10_09/OO_HYVM1__YDH_2017_10_09T00_{i:02d}_00.{ext}"
            day[key] = _put(storage, key, rng)
    for i in range(2):  # clips written under the 2025 spelling the same day
        key = f"hydrophone/{NEW}/2017_10_09/OO_HYVM1__YDH_2017_10_09T01_{i:02d}_00.wav"
        day[key] = _put(storage, key, rng)
    others = [f"hydrophone/{CLASSIC}/2017_10_10/x{i}.wav" for i in range(3)] + ["spec/t1__0__0__30.jpg"]
    for key in others:
        _put(storage, key, rng)
    out = tmp_path / "clips"

    # a first pull, interrupted (Ctrl-C) after 7 objects
    class Interrupted(KeyboardInterrupt):
        pass

    first: list[str] = []

    def stop_after_seven(key: str, size: int, fetched: bool) -> None:
        first.append(key)
        if len(first) == 7:
            raise Interrupted

    listed = listing(storage, day_prefixes("hydrophone", [CLASSIC, NEW], dt.date(2017, 10, 9), dt.date(2017, 10, 9)))
    assert sorted(k for k, _ in listed) == sorted(day)
    with pytest.raises(Interrupted):
        pull(storage, listed, out, on_object=stop_after_seven)
    # ... and one object cut off mid-download by a crash: only its .part is there
    cut = next(k for k in sorted(day) if k not in first)
    (out / cut).parent.mkdir(parents=True, exist_ok=True)
    (out / (cut + ".part")).write_bytes(day[cut][: len(day[cut]) // 2])
    kept = {k: (out / k).stat().st_mtime_ns for k in first}

    done = _cli(namespace, "--site", "oregon_shelf_base_seafloor", "--start", "2017-10-09", "--out", str(out))
    assert done.exit_code == 0, done.output
    assert f"pulled {len(day) - 7} object(s)" in done.output and "7 already there" in done.output, done.output
    pulled = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert pulled == day  # every object of the day, whole, nothing else (no .part, no other day)
    assert {k: (out / k).stat().st_mtime_ns for k in first} == kept  # the first pull's objects were not fetched again

    again = _cli(namespace, "--site", "LJ01D", "--start", "2017-10-09", "--end", "2017-10-09", "--out", str(out))
    assert again.exit_code == 0 and f"pulled 0 object(s) (0.0 MB) into {out}; {len(day)} already there" in again.output


def test_pull_tracks_by_id(namespace: Namespace, tmp_path: Path) -> None:
    storage, rng = Storage(namespace.settings), random.Random(3)
    wanted = {k: _put(storage, k, rng) for k in ("spec/a1__0__0__30.jpg", "spec/a1__1__30__60.jpg", "audio/a1.mp3",
                                                  "spec/b2__0__0__30.jpg")}
    for key in ("spec/a10__0__0__30.jpg", "audio/a10.mp3", "spec/c3__0__0__30.jpg"):  # a1's prefix, not a1's
        _put(storage, key, rng)
    ids = tmp_path / "ids.txt"
    ids.write_text("a1\nb2\n")
    done = _cli(namespace, "--tracks", f"@{ids}", "--out", str(tmp_path / "music"))
    assert done.exit_code == 0, done.output
    got = {str(p.relative_to(tmp_path / "music")): p.read_bytes() for p in (tmp_path / "music").rglob("*") if p.is_file()}
    assert got == wanted


def test_pull_says_what_it_needs(namespace: Namespace, tmp_path: Path) -> None:
    for args, word in ((["--out", str(tmp_path)], "--site/--tracks"), (["--site", "oregon_shelf"], "--start"),
                       (["--site", "nowhere_deep", "--start", "2017-10-09"], "unknown hydrophone site"),
                       (["--site", "LJ01D", "--start", "2017-10-09", "--end", "2017-10-01"], "before")):
        done = _cli(namespace, *args)
        assert done.exit_code == 2 and word in done.output, (args, done.output)
    assert not os.listdir(tmp_path)
