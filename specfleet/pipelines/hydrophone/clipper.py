"""Cut a decoded file into clips and render each clip's WAV and PNG.

The parent plans the clips (cheap); rendering runs in a process pool in
batches of clips, each worker process reading the samples from one
memory-mapped ``.npy`` file instead of receiving them by pickle.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import dsp
from .naming import clip_name

if TYPE_CHECKING:  # pool processes import this module: keep it light
    from ...settings import Settings
    from .source import Decoded


@dataclass(frozen=True)
class ClipOptions:
    params: dsp.SpectrogramParams = dsp.SpectrogramParams()
    cmap: str = "viridis"
    png_level: int = 1
    clip_s: float = 5.0
    align: str = "ping"
    ping_search_s: float = 1.0
    max_gap_fraction: float = 0.5
    clips_per_task: int = 10
    #: The colormap as a 768-byte PNG palette, resolved once in the parent
    #: (so pool processes never import matplotlib).
    palette: bytes = b""

    @classmethod
    def from_settings(cls, s: Settings) -> ClipOptions:
        params = dsp.SpectrogramParams(
            window_s=s.hydro_window_s,
            overlap=s.hydro_overlap,
            width=s.hydro_image_width,
            height=s.hydro_image_height,
            fmax_hz=s.hydro_fmax_hz,
            color_lo=s.hydro_color_lo,
            color_hi=s.hydro_color_hi,
            frames_per_column=s.hydro_frames_per_column,
        )
        return cls(
            params=params,
            cmap=s.hydro_cmap,
            png_level=s.hydro_png_compress_level,
            clip_s=s.hydro_clip_s,
            align=s.hydro_align,
            ping_search_s=s.hydro_ping_search_s,
            max_gap_fraction=s.hydro_max_gap_fraction,
            clips_per_task=max(1, s.hydro_clips_per_task),
            palette=dsp.colormap_lut(s.hydro_cmap).tobytes(),
        )


@dataclass(frozen=True)
class Clip:
    name: str
    start: dt.datetime
    start_sample: int


@dataclass
class CutResult:
    clips: list[Clip] = field(default_factory=list)
    #: Human-readable notes for the status reason (gaps, skipped clips).
    notes: list[str] = field(default_factory=list)


def plan_clips(decoded: Decoded, opts: ClipOptions) -> CutResult:
    """Which clips to cut and their names; clips mostly inside a gap are skipped."""
    sr = decoded.sample_rate
    clip_n = int(round(opts.clip_s * sr))
    starts = dsp.clip_starts(decoded.data, sr, clip_s=opts.clip_s, align=opts.align, search_s=opts.ping_search_s)
    result = CutResult(notes=list(decoded.notes))
    skipped: list[int] = []
    seen: set[str] = set()
    for i, s in enumerate(starts.tolist()):
        if decoded.gap_mask is not None:
            fraction = float(decoded.gap_mask[s : s + clip_n].mean())
            if fraction > opts.max_gap_fraction:
                skipped.append(i)
                continue
        start = decoded.start + dt.timedelta(seconds=s / sr)
        name = clip_name(decoded.network, decoded.station, decoded.location, decoded.channel, start)
        if name in seen:  # two starts in one second (only after heavy clamping)
            skipped.append(i)
            continue
        seen.add(name)
        result.clips.append(Clip(name, start, int(s)))
    if skipped:
        result.notes.append(
            f"skipped {len(skipped)} clip(s) more than {opts.max_gap_fraction:.0%} inside gaps: "
            f"#{', #'.join(map(str, skipped))}"
        )
    return result


def render_batch(
    samples_path: str,
    sample_rate: float,
    batch: list[tuple[str, int]],
    clip_n: int,
    opts: ClipOptions,
    out_dir: str,
) -> list[str]:
    """Pool task: write ``{name}.wav`` and ``{name}.png`` for each ``(name, start)``."""
    data = np.load(samples_path, mmap_mode="r")
    done = []
    for name, start in batch:
        clip = np.asarray(data[start : start + clip_n])
        index = dsp.spectrogram_index(clip, sample_rate, opts.params)
        Path(out_dir, f"{name}.png").write_bytes(dsp.encode_png(index, opts.cmap, opts.png_level, palette=opts.palette))
        Path(out_dir, f"{name}.wav").write_bytes(dsp.encode_wav(clip, sample_rate))
        done.append(name)
    return done


def cut_file(decoded: Decoded, opts: ClipOptions, out_dir: Path, pool: Executor | None = None) -> CutResult:
    """Render every planned clip into ``out_dir`` (in ``pool`` if given)."""
    plan = plan_clips(decoded, opts)
    if not plan.clips:
        return plan
    clip_n = int(round(opts.clip_s * decoded.sample_rate))
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hydro-samples-") as tmp:
        samples = os.path.join(tmp, "samples.npy")
        np.save(samples, decoded.data)
        pairs = [(c.name, c.start_sample) for c in plan.clips]
        batches = [pairs[i : i + opts.clips_per_task] for i in range(0, len(pairs), opts.clips_per_task)]
        args = (samples, decoded.sample_rate)
        if pool is None:
            for b in batches:
                render_batch(*args, b, clip_n, opts, str(out_dir))
        else:
            futures = [pool.submit(render_batch, *args, b, clip_n, opts, str(out_dir)) for b in batches]
            for f in futures:
                f.result()
    return plan
