"""The spectrogram step of ``specfleet demo``: the tracks the download step
put under ``audio/`` (or a few generated ones) flow into mel windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..ffmpeg import encode_mp3
from ..pipelines.melwindows.settings import SpectroSettings
from ..pipelines.spectrogram.producer import produce
from ..storage import Storage
from . import DemoContext, PipelineSummary, count_status, keys_with_status, run_worker, wait_for_status_drain


def _synth_mp3(path: Path, seconds: float, sample_rate: int, channels: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * (180 + 30 * seed + 25 * t) * t) + 0.1 * np.sin(2 * np.pi * 2200 * t)
    sig = np.stack([tone + 0.05 * rng.standard_normal(t.size) for _ in range(channels)], axis=1)
    return encode_mp3(path, sig, sample_rate)


def _downloaded(ctx: DemoContext) -> list[str]:
    shared = ctx.shared.get("downloaded_tracks") or []
    return [t if isinstance(t, str) else str(t.get("track_id")) for t in shared]


def demo_step(ctx: DemoContext) -> PipelineSummary:
    storage = Storage(ctx.settings)
    config = SpectroSettings()  # resolved once: the producer and the worker see the same
    tracks = _downloaded(ctx)
    if not tracks:
        folder = ctx.workdir / "spectrogram"
        folder.mkdir(parents=True, exist_ok=True)
        for i, (seconds, sr, ch) in enumerate([(65.0, 44100, 2), (45.0, 22050, 1), (25.0, 48000, 2)]):
            track = f"demotrack{i}"
            storage.put_file(f"audio/{track}.mp3", _synth_mp3(folder / f"{track}.mp3", seconds, sr, ch, i))
            tracks.append(track)
    # One bad file: its job must end as a stat 0 row with a reason, not vanish.
    storage.put_bytes("audio/demobroken.mp3", b"this is not an mp3 at all " * 50)
    report = produce(ctx.settings, config)
    run_worker(ctx, "spectrogram", idle_exit_s=2, config=config)
    wait_for_status_drain(ctx, "spectrogram")
    counts = count_status(ctx, "spectrogram", job_column="track_id")
    with_rows = keys_with_status(ctx, "spectrogram", "track_id")
    prefix = config.output_prefix
    with_windows = {k[len(prefix):].split("__", 1)[0] for k, _ in storage.list(prefix)}
    jobs = [*tracks, "demobroken"]
    lost = [t for t in jobs if t not in with_rows and t not in with_windows]
    return PipelineSummary(
        jobs=report.enqueued, objects=storage.count(prefix), lost=len(lost), **counts
    )
