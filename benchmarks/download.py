"""Download worker benchmark against the local video site.

Measures, on this machine:

* ``raw_transfer_s``       mean time to GET one song's media file straight from
                           the site (the floor: pure transfer);
* ``worker_per_song_s``    mean wall time per song through the download worker
                           with one download at a time (SQS receive, yt-dlp
                           metadata + download, ffmpeg mp3 conversion, S3
                           upload, status message, delete);
* ``overhead_per_song_s``  the difference: what the worker adds beyond the transfer;
* ``songs_per_min_c1`` / ``songs_per_min_c4`` and ``speedup_c4_vs_c1`` with 1
  vs 4 concurrent downloads on the same machine and site;
* ``videos_per_hour_cap``: a run of the same songs with 4 concurrent
  downloads under a per-instance budget (``--cap`` videos/hour, scaled down
  from YouTube's ~300 so the run is short; ``production_videos_per_hour``
  is the setting's default): ``paced_videos_per_hour`` is the rate the site
  saw (watch pages), ``paced_min_gap_s`` the shortest gap between two
  videos against the budget's ``paced_gap_floor_s``, and ``cap_respected``
  says the worker never exceeded the budget.

The site paces each connection (``--rate`` bytes/s) to stand in for a real
network, where a download is transfer-bound (the original took ~9 s/song).
Runs on the embedded stack (moto + PostgreSQL). Usage:
``python benchmarks/download.py [--songs 8] [--seconds 30] [--rate 150000] --json``

``--cost`` instead measures what one track costs end to end (download + mp3
+ spectrogram windows) on four paths, with the real workers, in this one
process (``benchmarks/download_cost.py``):
``python benchmarks/download.py --cost [--tracks 3] [--rounds 3] [--track-seconds 180] --json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console

from specfleet.local.stack import Namespace, start_detached, stop_detached
from specfleet.pipelines import job_queue
from specfleet.pipelines.download import SPEC as PIPELINE
from specfleet.pipelines.music.settings import MusicSettings
from specfleet.runtime import Worker
from specfleet.standins.video_site import VideoSite
from specfleet.storage import Storage

console = Console(stderr=True)


def run_batch(settings, config: MusicSettings, site: VideoSite, prefix: str, n: int, concurrency: int) -> float:
    """Enqueue ``n`` jobs, run a worker until it took them all; wall seconds."""
    s = settings
    config = config.model_copy(update={"concurrent_downloads": concurrency})
    job_queue(s, "download").send_json(
        {"track_id": f"{prefix}{i}", "yt_url": site.watch_url(f"song{i}")} for i in range(n)
    )
    worker = Worker(s, PIPELINE, concurrency=concurrency, max_jobs=n, config=config)
    started = time.perf_counter()
    worker.run()
    wall = time.perf_counter() - started
    done = worker.metrics().get("done", 0)
    if done != n:
        raise RuntimeError(f"only {done} of {n} songs downloaded ({worker.metrics()})")
    keys = {k for k, _ in Storage(s).list(f"audio/{prefix}")}
    if len(keys) != n:
        raise RuntimeError(f"expected {n} mp3s under audio/{prefix}, found {len(keys)}")
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30.0, help="Length of each song.")
    ap.add_argument("--rate", type=int, default=150_000, help="Bytes/s per connection (0 = unpaced loopback).")
    ap.add_argument("--cap", type=float, default=1800.0, help="Videos/hour budget of the paced run.")
    ap.add_argument("--json", action="store_true", help="Print the result as one JSON object (last line).")
    ap.add_argument("--cost", action="store_true", help="Cost per track of the original, two-stage and fused paths.")
    ap.add_argument("--tracks", type=int, default=3, help="--cost: tracks per path per round.")
    ap.add_argument("--rounds", type=int, default=3, help="--cost: measured rounds (after one warm-up round).")
    ap.add_argument("--track-seconds", type=float, default=180.0, help="--cost: length of the track.")
    args = ap.parse_args()
    if args.cost:
        from download_cost import main as cost_main

        result = cost_main(tracks=args.tracks, rounds=args.rounds, seconds=args.track_seconds)
        console.print(result)
        if args.json:
            print(json.dumps(result))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-download-") as tmp:
        root = Path(tmp)
        with console.status("starting the embedded stack"):
            state = start_detached(root / "stack", poller=False)
        ns = Namespace(state, name="benchdl", poller=False, wait_time_s=1)
        site = VideoSite(root / "site", throttle_bytes_per_s=args.rate).start()
        try:
            (root / "dl").mkdir()
            settings = ns.settings
            config = MusicSettings(extra_hosts=[site.host], tmp_dir=str(root / "dl"))
            with console.status(f"making {args.songs} songs of {args.seconds:.0f} s"):
                for i in range(args.songs):
                    site.add_video(f"song{i}", f"Bench Artist - Song {i}", seconds=args.seconds)
                site.add_video("warm", "Warm up - Song", seconds=2)
            media_bytes = site.media_path("song0").stat().st_size

            # Warm-up: yt-dlp's extractor import and boto3 clients, once per process.
            started = time.perf_counter()
            job_queue(settings, "download").send_json([{"track_id": "warm", "yt_url": site.watch_url("warm")}])
            Worker(settings, PIPELINE, concurrency=1, max_jobs=1, config=config).run()
            cold_start_s = time.perf_counter() - started

            raw = []
            with httpx.Client() as client:
                for i in range(args.songs):
                    t0 = time.perf_counter()
                    r = client.get(site.media_url(f"song{i}"))
                    r.raise_for_status()
                    raw.append(time.perf_counter() - t0)
            raw_s = statistics.mean(raw)

            console.print("1 concurrent download ...")
            wall_c1 = run_batch(settings, config, site, "c1_", args.songs, 1)
            console.print("4 concurrent downloads ...")
            wall_c4 = run_batch(settings, config, site, "c4_", args.songs, 4)

            console.print(f"4 concurrent downloads under a budget of {args.cap:g} videos/hour ...")
            paced = config.model_copy(update={"videos_per_hour": args.cap, "pace_local_sites": True,
                                              "pace_state_file": str(root / "pace")})
            mark = len(site.watch_times)
            wall_paced = run_batch(settings, paced, site, "cap_", args.songs, 4)
            times = sorted(site.watch_times[mark:])
        finally:
            site.close()
            ns.close()
            stop_detached(root / "stack")

    per_song = wall_c1 / args.songs
    result = {
        "benchmark": "download",
        "songs": args.songs,
        "song_seconds": args.seconds,
        "media_bytes": media_bytes,
        "rate_bytes_per_s": args.rate,
        "cold_start_s": round(cold_start_s, 3),
        "raw_transfer_s": round(raw_s, 3),
        "worker_per_song_s": round(per_song, 3),
        "overhead_per_song_s": round(per_song - raw_s, 3),
        "overhead_ratio": round(per_song / raw_s, 3),
        "songs_per_min_c1": round(args.songs / wall_c1 * 60, 2),
        "songs_per_min_c4": round(args.songs / wall_c4 * 60, 2),
        "speedup_c4_vs_c1": round(wall_c1 / wall_c4, 3),
        "videos_per_hour_cap": args.cap,
        "production_videos_per_hour": MusicSettings().videos_per_hour,
        "paced_songs": len(times),
        "paced_wall_s": round(wall_paced, 3),
        "paced_videos_per_hour": round((len(times) - 1) / (times[-1] - times[0]) * 3600, 1),
        "paced_min_gap_s": round(min(b - a for a, b in zip(times, times[1:], strict=False)), 3),
        "paced_gap_floor_s": round(3600 / args.cap, 3),
        "cap_respected": (len(times) - 1) / (times[-1] - times[0]) * 3600 <= args.cap,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    console.print(result)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
