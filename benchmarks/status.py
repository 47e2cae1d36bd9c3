"""`specfleet status` counting jobs instead of rows, at the seed's scale.

Issue 26's numbers: status tables holding 563,340 spectrogram windows
(56,334 tracks), 61,551 downloads, 83,957 searches and 8,640 hydrophone
files from 30 instances. This seeds that many rows (``--scale`` shrinks
it) into the embedded stack's PostgreSQL with COPY, then times, in the same
process and on the same data:

* the baseline: the per-pipeline row totals ``status`` used before
  (``SELECT * FROM v_pipeline_totals``);
* ``job_totals``: jobs by outcome (a job done if any row says so, else its
  latest row), the clips/windows the done jobs wrote, rows and instances;
* a whole ``summary()`` (queues, rate, alive and banned instances too).

Each is run ``--repeats`` times; the median wall time is reported (the work
happens in PostgreSQL, another process, so this process's CPU time says
little) with the ratio to the baseline and the load average before and after.
Loopback only.

Usage: python benchmarks/status.py [--json] [--scale 1.0] [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from specfleet.db import connect
from specfleet.local.stack import Namespace, destroy_data, start_detached, stop_detached
from specfleet.monitoring import job_totals, summary

SEED = {"windows": 563_340, "tracks": 56_334, "downloads": 61_551, "searches": 83_957, "hydro_files": 8_640,
        "instances": 30}


def _copy(conn: Any, table: str, columns: str, rows: Any) -> int:
    buf = io.StringIO()
    n = 0
    for row in rows:
        buf.write("\t".join(str(v) for v in row) + "\n")
        n += 1
    buf.seek(0)
    with conn, conn.cursor() as cur:
        cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buf)
    return n


def seed(settings: Any, scale: float) -> dict[str, int]:
    counts = {k: max(1, int(v * scale)) for k, v in SEED.items()}
    counts["instances"] = SEED["instances"]
    inst = [f"i-{i:02d}" for i in range(counts["instances"])]
    day = "2026-12-06 {h:02d}:{m:02d}:{s:02d}"

    def when(i: int) -> str:
        s = i % 86_400
        return day.format(h=s // 3600, m=s // 60 % 60, s=s % 60)

    conn = connect(settings)
    try:
        per_track = max(1, counts["windows"] // counts["tracks"])
        _copy(conn, "status_specto", "msg_key, instance_id, stat, track_id, win, ini, fin, rows, cols, date",
              ((f"w{i}", inst[i % len(inst)], 0 if i % 97 == 0 else 1, f"t{i // per_track}", i % per_track,
                30 * (i % per_track), 30 * (i % per_track) + 30, 128, 1292, when(i))
               for i in range(counts["windows"])))
        _copy(conn, "status", "msg_key, instance_id, stat, track_id, yt_url, date",
              ((f"d{i}", inst[i % len(inst)], 0 if i % 41 == 0 else 1, f"t{i}",
                f"https://www.youtube.com/watch?v={i:011d}", when(i)) for i in range(counts["downloads"])))
        _copy(conn, "status_search", "msg_key, instance_id, stat, track_id, yt_url, views, date",
              ((f"s{i}", inst[i % len(inst)], 2 if i % 13 == 0 else 1, f"t{i}",
                f"https://www.youtube.com/watch?v={i:011d}", i, when(i)) for i in range(counts["searches"])))
        base = "https://rawdata.oceanobservatories.org/files/CE02SHBP/LJ01D/11-HYDBBA106"
        _copy(conn, "status_hydro", "msg_key, instance_id, stat, file_url, clips, date",
              ((f"h{i}", inst[i % len(inst)], 1, f"{base}/2017/10/{1 + i // 288:02d}/OO-HYVM1--YDH-{i}.mseed", 60,
                when(i)) for i in range(counts["hydro_files"])))
        with conn, conn.cursor() as cur:
            cur.execute("ANALYZE")
    finally:
        conn.close()
    return counts


def timed(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="specfleet-bench-status-"))
    state = start_detached(root, poller=False)
    try:
        ns = Namespace(state, poller=False)
        s = ns.settings
        t0 = time.perf_counter()
        counts = seed(s, args.scale)
        seed_s = time.perf_counter() - t0
        conn = connect(s)
        try:
            def baseline() -> None:
                with conn.cursor() as cur:
                    cur.execute("SELECT * FROM v_pipeline_totals")
                    cur.fetchall()

            base_s = timed(baseline, args.repeats)
            jobs_s = timed(lambda: job_totals(conn), args.repeats)
            totals = job_totals(conn)
        finally:
            conn.close()
        summary_s = timed(lambda: summary(s), args.repeats)
        ns.close()
    finally:
        stop_detached(root)
        destroy_data(root)
    result = {
        "rows": counts, "seed_s": round(seed_s, 2),
        "baseline_row_totals_s": round(base_s, 3), "job_totals_s": round(jobs_s, 3),
        "ratio_job_totals_to_baseline": round(jobs_s / base_s, 2) if base_s else None,
        "summary_s": round(summary_s, 3),
        "spectrogram": {k: totals.get("spectrogram", {}).get(k) for k in ("jobs", "done", "failed", "rows", "items")},
        "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(result, default=str))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
