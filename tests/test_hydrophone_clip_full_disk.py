"""``specfleet hydrophone clip SOURCE --out DIR`` on a full disk: a clear
error, and no truncated WAV or image left in DIR (each file is written under
a temporary name and renamed once whole).

The full disk is real: a 2 MB tmpfs mounted in a private user and mount
namespace (``unshare -Urm``), so nothing outside the test's own process
tree sees it and no privilege is needed; it vanishes with the process."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys

import pytest

from specfleet.standins import mseed_synth as synth

T0 = dt.datetime(2017, 10, 9)

#: Run inside the namespace after the CLI: every file left in the folder, with
#: whether it reads back whole (a WAV's frames, an image's full decode).
INSPECT = """
import json, sys, pathlib
import soundfile as sf
from PIL import Image
out = {}
for p in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    entry = {"bytes": p.stat().st_size}
    try:
        if p.suffix == ".wav":
            entry["frames"] = sf.info(str(p)).frames
            entry["read"] = len(sf.read(str(p), dtype="int32")[0])
        elif p.suffix == ".png":
            with Image.open(p) as im:
                im.load()
                entry["size"] = list(im.size)
    except Exception as err:
        entry["error"] = type(err).__name__
    out[p.name] = entry
print(json.dumps(out))
"""


@pytest.mark.slow
def test_clip_on_a_full_disk_fails_clearly_and_leaves_no_partial_file(tmp_path):
    source = tmp_path / "OO-HYVM1--YDH-2017-10-09T00:00:00.000000.mseed"
    source.write_bytes(synth.mseed_bytes(synth.synthetic_signal(30.0, seed=4), T0))
    mount = tmp_path / "disk"
    mount.mkdir()
    script = (
        'mount -t tmpfs -o size=2m tmpfs "$1" || exit 90; '
        '"$2" -m specfleet.cli.main hydrophone clip "$3" --out "$1/clips" --processes 1 2>"$1.err"; '
        'echo "rc=$?"; cat "$1.err"; "$2" -c "$4" "$1/clips"'
    )
    done = subprocess.run([shutil.which("unshare") or "unshare", "-Urm", "sh", "-c", script, "sh", str(mount),
                           sys.executable, str(source), INSPECT],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    rc = next(line for line in lines if line.startswith("rc="))
    assert rc == "rc=1", done.stdout[-3000:]
    error = " ".join(lines[lines.index(rc) + 1 : -1])
    assert "could not write the clips into" in error and "No space left on device" in error, error
    assert "Traceback" not in done.stdout + done.stderr
    left = json.loads(lines[-1])
    # The disk filled part-way: some clips were written whole, the rest not at all.
    wavs = {n: e for n, e in left.items() if n.endswith(".wav")}
    pngs = {n: e for n, e in left.items() if n.endswith(".png")}
    assert 1 <= len(wavs) < 6, left
    assert all(e.get("frames") == e.get("read") == 320_001 for e in wavs.values()), left
    assert all(e.get("size") == [512, 512] for e in pngs.values()), left
    assert set(left) == set(wavs) | set(pngs), left  # no temporary files either
