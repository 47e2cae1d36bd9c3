"""What the window JPEGs' metadata comment costs (issue 18), against the
JPEG encode it rides on, on a 3-minute 44.1 kHz stereo mp3.

    python benchmarks/spectrogram_metadata.py --json [--reps 30]

Per window (9 windows of 938 x 256): ``metadata_ms`` = building the items
and their JSON (``window_metadata`` + ``comment``), ``encode_ms`` = the
worker's JPEG before the change (``dsp.encode_jpeg``), ``encode_with_comment_ms``
= the JPEG the worker writes now; medians over ``--reps`` interleaved rounds.
Per track: ``render_path_ms`` = the header probe that names the render path
(once per track), against ``track_s``, the whole ``compute_track``.
``extra_bytes`` = JPEG size with the comment minus without. The last stdout
line is one JSON object; the load average is in it (2 shared cores here).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_track(path: Path, seconds: float = 180.0, sample_rate: int = 44100) -> Path:
    from specfleet.ffmpeg import encode_mp3

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * (200 + 40 * t) * t) + 0.2 * np.sin(2 * np.pi * 1500 * t * (1 + 0.1 * np.sin(t)))
    sig = np.stack([tone + 0.05 * rng.standard_normal(t.size) for _ in range(2)], axis=1).astype(np.float32)
    return encode_mp3(path, sig, sample_rate)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()

    from specfleet.pipelines.melwindows import dsp, imagemeta
    from specfleet.pipelines.melwindows.compute import compute_track

    params = dsp.SpectroParams()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_track(Path(tmp) / "track.mp3")
        compute_track(str(path), params, source="audio/t.mp3", track_id="t")  # warm: imports, numba, filterbanks
        started = time.perf_counter()
        compute_track(str(path), params, source="audio/t.mp3", track_id="t")
        track_s = time.perf_counter() - started
        db, duration = dsp.track_mel_db(path, params)
        images = list(dsp.db_window_images(db, duration, params))
        probe_ms = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            render = imagemeta.render_path_of_file(path, params)
            probe_ms.append((time.perf_counter() - t0) * 1e3)
    track = imagemeta.track_metadata(params, render, source="audio/t.mp3", track_id="t")

    meta_ms, plain_ms, full_ms, extra = [], [], [], []
    for _ in range(args.reps):
        for img in images:
            t0 = time.perf_counter()
            text = imagemeta.comment(imagemeta.window_metadata(track, img, params))
            t1 = time.perf_counter()
            plain = dsp.encode_jpeg(img.pixels, quality=params.jpeg_quality)
            t2 = time.perf_counter()
            full = dsp.encode_jpeg(img.pixels, quality=params.jpeg_quality, comment=text)
            t3 = time.perf_counter()
            meta_ms.append((t1 - t0) * 1e3)
            plain_ms.append((t2 - t1) * 1e3)
            full_ms.append((t3 - t2) * 1e3)
            extra.append(len(full) - len(plain))

    result = {
        "windows": len(images),
        "reps": args.reps,
        "metadata_ms": round(statistics.median(meta_ms), 4),
        "encode_ms": round(statistics.median(plain_ms), 4),
        "encode_with_comment_ms": round(statistics.median(full_ms), 4),
        "metadata_over_encode": round(statistics.median(meta_ms) / statistics.median(plain_ms), 4),
        "render_path_ms": round(statistics.median(probe_ms), 4),
        "track_s": round(track_s, 3),
        "per_track_overhead_fraction": round(
            (statistics.median(probe_ms) + len(images) * (statistics.median(full_ms) - statistics.median(plain_ms)
                                                           + statistics.median(meta_ms))) / 1e3 / track_s, 5),
        "extra_bytes": int(statistics.median(extra)),
        "jpeg_bytes": len(plain),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None,
    }
    if not args.json:
        for k, v in result.items():
            print(f"{k}: {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
