"""Hydrophone benchmark: the original tool's real per-clip path vs specfleet, same file, same run.

Input: a 5-minute realistic 64 kHz file (``synth.realistic_signal``: DC
offset, 1/f background, a passing ship, clicks, a quiet stretch, a steep
anti-alias roll-off; its clips span 230-260 dB like real OOI recordings),
written as Steim2 miniSEED.

Baseline: the original's ``data_push`` (``hydro_original.py``): obspy
``read``, the signed-argmax ping plan, and per clip ``stream.slice``,
``mlab.specgram`` (~15,000 frames), ``10*log10``, ``flipud``,
``imshow(interpolation="nearest")`` with the original's extent and
``Normalize`` over the whole array, ``savefig`` JPEG (q95) at 512x512, and
the WAV. It costs seconds per clip, so ``--baseline-clips`` clips are timed
and scaled to the file's 60.

Ours: decode + plan + render all clips (WAV + JPEG, the whaledr profile) in
one process, for the default (``render=original, span=pruned``) and each
alternative (``span=full``, ``span=frames``, ``render=mean``).

``pieces_cost_ratio``: CPU seconds of the same samples written as a
1,200-piece file (packets of 16,000 samples, labels off by up to +-40 ms,
as OOI's archive holds them) over the one-piece file, decode + repair +
all clips, alternating, least of two runs each (goal <= 1.2);
``pieces_decode_ratio`` the same for decode + repair alone.

``fidelity``: the fraction of drawn pixels whose colour is the one the
original's figure has there (cell for cell, read back from the figure's
pixels), over the timed clips. Also: Pearson correlation of colour indices
(``pixel_correlation``, median), ``brightness_diff`` (mean |colour index
difference|, of 255), colour statistics of both sides. ``speedup``: CPU
seconds, baseline / ours, single process.

    python benchmarks/hydrophone.py --json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import hydro_original  # noqa: E402

from specfleet.pipelines.hydrophone import dsp  # noqa: E402
from specfleet.pipelines.hydrophone.clipper import ClipOptions, cut_file  # noqa: E402
from specfleet.pipelines.hydrophone.settings import HydroSettings  # noqa: E402
from specfleet.pipelines.hydrophone.source import decode_mseed  # noqa: E402
from specfleet.standins import mseed_synth as synth  # noqa: E402

FILES_PER_DAY = 288
VCPUS = 16
T0 = dt.datetime(2017, 10, 9)
LUT = dsp.colormap_lut("viridis")

OPTIONS = {
    "original_pruned": {"render": "original", "span": "pruned"},
    "original_full": {"render": "original", "span": "full"},
    "original_frames": {"render": "original", "span": "frames"},
    "mean": {"render": "mean"},
}


def compare(index: np.ndarray, clip: hydro_original.OriginalClip) -> dict[str, float]:
    """Our colour indices vs the pixels of the original's figure (drawn pixels only)."""
    theirs, background = hydro_original.pixels_to_index(clip.rgba, LUT)
    mine = hydro_original.canonical_index(index, LUT)
    a, b = mine[~background].astype(np.float64), theirs[~background].astype(np.float64)
    return {
        "agree": float((a == b).mean()),
        "corr": hydro_original.pearson(a, b),
        "brightness": float(np.abs(a - b).mean()),
        "mean_ours": float(a.mean()),
        "mean_orig": float(b.mean()),
        "zero_ours": float((a == 0).mean()),
        "zero_orig": float((b == 0).mean()),
    }


def run_ours(src: Path, opts: ClipOptions, out: Path) -> tuple[float, float, int]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    decoded = decode_mseed(src, expected_rate=synth.SAMPLE_RATE, nominal_start=T0)
    result = cut_file(decoded, opts, out, pool=None)
    return time.process_time() - cpu0, time.perf_counter() - wall0, len(result.clips)


def decode_cpu(src: Path, repeats: int = 3) -> float:
    """Least CPU seconds of ``repeats`` decodes + repairs of ``src``."""
    best = float("inf")
    for _ in range(repeats):
        cpu0 = time.process_time()
        decode_mseed(src, expected_rate=synth.SAMPLE_RATE, nominal_start=T0)
        best = min(best, time.process_time() - cpu0)
    return best


def pieces_cost(one: Path, many: Path, opts: ClipOptions, out: Path, repeats: int = 2) -> dict[str, float]:
    """CPU of the one-piece file and of the same samples in 1,200 pieces,
    each decoded, repaired and cut whole; alternating, the least of
    ``repeats`` runs each (a shared machine's load shifts between runs)."""
    cpu_one = cpu_many = float("inf")
    for i in range(repeats):
        c, _, n_one = run_ours(one, opts, out / f"one{i}")
        cpu_one = min(cpu_one, c)
        c, _, n_many = run_ours(many, opts, out / f"many{i}")
        cpu_many = min(cpu_many, c)
        if n_one != n_many:
            raise SystemExit(f"pieces file gave {n_many} clips, the one-piece file {n_one}")
    dec_one, dec_many = decode_cpu(one), decode_cpu(many)
    return {
        "pieces_cost_ratio": round(cpu_many / cpu_one, 3),
        "pieces_core_seconds": [round(cpu_one, 3), round(cpu_many, 3)],
        "pieces_decode_ratio": round(dec_many / dec_one, 3),
        "pieces_decode_seconds": [round(dec_one, 3), round(dec_many, 3)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    ap.add_argument("--baseline-clips", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=300.0, help="length of the test file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pieces", type=int, default=1200, help="pieces of the pieces_cost_ratio file")
    ap.add_argument("--options", default=",".join(OPTIONS), help="comma-separated subset of " + ",".join(OPTIONS))
    args = ap.parse_args()
    base_opts = ClipOptions.from_settings(HydroSettings(output="whaledr"))
    sr = synth.SAMPLE_RATE
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="hydro-bench-") as tmp:
        tmpdir = Path(tmp)
        src = tmpdir / "OO-HYVM1--YDH-2017-10-09T00:00:00.000000.mseed"
        signal = synth.realistic_signal(args.seconds, seed=args.seed)
        src.write_bytes(synth.mseed_bytes(signal, T0))
        pieces_src = tmpdir / "pieces" / src.name
        pieces_src.parent.mkdir()
        piece = max(1, int(round(len(signal) / args.pieces)))
        pieces_src.write_bytes(synth.pieces_mseed_bytes(signal, T0, piece_samples=piece, label_noise_s=0.04, seed=args.seed))
        del signal

        # --- warm-up outside the timing: imports, numba kernels, caches ----------
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
        from obspy import read

        warm = synth.realistic_signal(5.5, seed=99)[:320_001]
        for name, upd in OPTIONS.items():
            if name != "original_full":
                dsp.render_index(warm, sr, dsp.SpectrogramParams(**upd))
        dsp.encode_jpeg(np.zeros((512, 512), np.uint8))

        # --- baseline: the original path, a few clips timed, scaled --------------
        cpu0, wall0 = time.process_time(), time.perf_counter()
        stream = read(str(src))
        pingtimes = hydro_original.ping_times(stream)
        read_cpu, read_wall = time.process_time() - cpu0, time.perf_counter() - wall0
        starts = pingtimes[:: hydro_original.TIMESTEP]
        (tmpdir / "base").mkdir()
        per_clip_cpu, per_clip_wall, originals = [], [], []
        for t in starts[: args.baseline_clips]:
            c, w = time.process_time(), time.perf_counter()
            originals.append(hydro_original.original_clip(stream, t, tmpdir / "base"))
            per_clip_cpu.append(time.process_time() - c)
            per_clip_wall.append(time.perf_counter() - w)
        n_clips_orig = len(starts)
        baseline_cpu = read_cpu + float(np.mean(per_clip_cpu)) * n_clips_orig
        baseline_wall = read_wall + float(np.mean(per_clip_wall)) * n_clips_orig

        # --- ours: each option on the whole file --------------------------------
        results = {}
        for name in [o for o in args.options.split(",") if o]:
            if name not in OPTIONS:
                raise SystemExit(f"unknown option {name!r}; choose from {', '.join(OPTIONS)}")
            params = dsp.SpectrogramParams(**{**base_opts.params.model_dump(), **OPTIONS[name]})
            opts = base_opts.model_copy(update={"params": params})
            cpu, wall, n_clips = run_ours(src, opts, tmpdir / name)
            rows = [compare(dsp.render_index(c.samples, sr, params)[0], c) for c in originals]
            spans = [dsp.original_index(c.samples, sr, params)[2] for c in originals] if params.render == "original" else []
            results[name] = {
                "clips": n_clips,
                "core_seconds_per_file": round(cpu, 3),
                "wall_seconds_per_file": round(wall, 3),
                "ms_per_clip": round(1e3 * cpu / max(n_clips, 1), 1),
                "speedup": round(baseline_cpu / cpu, 1),
                "fidelity": round(float(np.mean([r["agree"] for r in rows])), 5),
                "pixel_correlation": round(float(np.median([r["corr"] for r in rows])), 4),
                "brightness_diff": round(float(np.mean([r["brightness"] for r in rows])), 3),
                "mean_index": round(float(np.mean([r["mean_ours"] for r in rows])), 2),
                "zero_fraction": round(float(np.mean([r["zero_ours"] for r in rows])), 4),
                "span_max_proven": [s.max_exact for s in spans],
                "frames_transformed_per_clip": [s.frames_transformed for s in spans],
            }
        pieces = pieces_cost(src, pieces_src, base_opts, tmpdir / "pieces-out")
    default = results.get("original_pruned") or next(iter(results.values()))
    out = {
        "fixture": f"synth.realistic_signal({args.seconds:g} s, seed={args.seed}), Steim2 miniSEED",
        "file_seconds": args.seconds,
        "clips_per_file": n_clips_orig,
        "baseline": "the original data_push per clip (obspy slice, mlab.specgram, imshow nearest, savefig .jpg q95, WAV)",
        "baseline_clips_timed": len(per_clip_cpu),
        "baseline_s_per_clip": round(float(np.mean(per_clip_cpu)), 3),
        "baseline_core_seconds_per_file": round(baseline_cpu, 1),
        "baseline_wall_seconds_per_file": round(baseline_wall, 1),
        "original_db_span": [round(c.db_span, 1) for c in originals],
        "original_mean_index": round(float(np.mean([compare(np.zeros((512, 512), np.uint8), c)["mean_orig"] for c in originals])), 2),
        "original_zero_fraction": round(float(np.mean([compare(np.zeros((512, 512), np.uint8), c)["zero_orig"] for c in originals])), 4),
        # The default (render=original, span=pruned, whaledr JPEG) at the top level:
        "speedup": default["speedup"],
        "speedup_wall": round(baseline_wall / default["wall_seconds_per_file"], 1),
        "fidelity": default["fidelity"],
        "pixel_correlation": default["pixel_correlation"],
        "brightness_diff": default["brightness_diff"],
        "core_seconds_per_file": default["core_seconds_per_file"],
        "pieces": args.pieces,
        **pieces,
        "projected_hours_per_day_16vcpu": round(FILES_PER_DAY * default["core_seconds_per_file"] / VCPUS / 3600, 3),
        "baseline_projected_hours_per_day_16vcpu": round(FILES_PER_DAY * baseline_cpu / VCPUS / 3600, 2),
        "options": results,
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "notes": "speedup = CPU seconds, single process, same file, same run, on a shared machine; "
        "fidelity = share of drawn pixels with the original's colour; brightness_diff = mean |colour index "
        "difference| (0-255); projection assumes 16 busy cores and excludes download/upload",
    }
    if not args.json:
        for k, v in out.items():
            print(f"{k:>42}: {v}", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
