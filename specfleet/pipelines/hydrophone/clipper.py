"""Cut a decoded file into clips and render each clip's WAV and image (PNG, or
JPEG for the whaledr output profile).

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
from typing import TYPE_CHECKING, get_args

import numpy as np

from . import dsp
from .imagemeta import clip_metadata
from .naming import clip_name
from .params import SPECTROGRAM, ClipParams, ImageFormat, SpectrogramParams, pick

if TYPE_CHECKING:  # pool processes import this module: keep it light
    from .repair import RepairedFile
    from .settings import HydroSettings
    from .source import Decoded


IMAGE_FORMATS = get_args(ImageFormat)


class ClipOptions(ClipParams):
    """How to cut and write one file's clips: the declared clip parameters
    (``params.ClipParams``) and image parameters (``params``), plus what
    is not a knob. Built from settings by name (``from_settings``)."""

    params: SpectrogramParams = SPECTROGRAM
    #: ``"png"`` (specfleet's layout) or ``"jpg"`` (the original's, whaledr profile).
    image_format: ImageFormat = "png"
    #: The colormap as a 768-byte PNG palette, resolved once in the parent
    #: (so pool processes never import matplotlib).
    palette: bytes = b""
    #: The source file's URL or path, written into each image's metadata.
    source: str = ""

    @classmethod
    def from_settings(cls, s: HydroSettings) -> ClipOptions:
        return cls(
            **pick(ClipParams, s).model_dump(),
            params=pick(SpectrogramParams, s),
            image_format="jpg" if s.output == "whaledr" else "png",
            palette=dsp.colormap_lut(s.cmap).tobytes(),
        )


@dataclass(frozen=True)
class Clip:
    name: str
    start: dt.datetime
    start_sample: int
    n_samples: int
    #: Samples of the clip inside a real break (masked in its image; 0 in its WAV).
    missing_samples: int = 0


@dataclass
class CutResult:
    clips: list[Clip] = field(default_factory=list)
    #: Human-readable notes for the status reason (gaps, skipped clips).
    notes: list[str] = field(default_factory=list)
    #: Seconds of real breaks inside the clips written (masked, never silent).
    masked_s: float = 0.0
    #: The source file's repair (pieces, breaks, missing seconds), if decoded.
    repaired: RepairedFile | None = None


def plan_clips(decoded: Decoded, opts: ClipOptions) -> CutResult:
    """Which clips to cut and their names; clips mostly inside a gap, and
    clips cut so short at the file's end that they hold fewer than two FFT
    frames (the original's image needs two), are skipped."""
    sr = decoded.sample_rate
    starts, lengths = dsp.clip_plan(decoded.data, sr, clip_s=opts.clip_s, align=opts.align, search_s=opts.ping_search_s)
    nfft = dsp.window_length(sr, opts.params.window_s)
    hop = dsp.hop_length(nfft, opts.params.overlap)
    result = CutResult(notes=list(decoded.notes), repaired=decoded.repaired)
    in_gaps: list[int] = []
    too_short: list[int] = []
    masked: list[str] = []
    seen: set[str] = set()
    for i, (s, n) in enumerate(zip(starts.tolist(), lengths.tolist(), strict=True)):
        if dsp.frame_count(n, nfft, hop) < 2:
            too_short.append(i)
            continue
        missing = 0
        if decoded.gap_mask is not None:
            missing = int(np.count_nonzero(decoded.gap_mask[s : s + n]))
            if missing / n > opts.max_gap_fraction:
                in_gaps.append(i)
                continue
        start = decoded.start + dt.timedelta(seconds=s / sr)
        name = clip_name(decoded.network, decoded.station, decoded.location, decoded.channel, start)
        if name in seen:  # two starts in one second (only after heavy clamping)
            in_gaps.append(i)
            continue
        seen.add(name)
        result.clips.append(Clip(name, start, int(s), int(n), missing))
        if missing:
            masked.append(f"#{i} {missing / sr:.3f} s")
    if masked:
        result.masked_s = sum(c.missing_samples for c in result.clips) / sr
        result.notes.append(
            f"{len(masked)} clip(s) cross a real break, {result.masked_s:.3f} s masked in their images "
            f"(zeros in their WAVs): {', '.join(masked)}"
        )
    if in_gaps:
        result.notes.append(
            f"skipped {len(in_gaps)} clip(s) more than {opts.max_gap_fraction:.0%} inside gaps: "
            f"#{', #'.join(map(str, in_gaps))}"
        )
    if too_short:
        result.notes.append(f"skipped {len(too_short)} clip(s) cut too short by the file's end: #{', #'.join(map(str, too_short))}")
    return result


def render_batch(
    samples_path: str,
    sample_rate: float,
    batch: list[tuple[str, int, int, str]],
    opts: ClipOptions,
    out_dir: str,
    mask_path: str = "",
) -> list[str]:
    """Pool task: write ``{name}.wav`` and ``{name}.png|.jpg`` for each
    ``(name, start sample, length, start time)``; each image carries its
    parameters (``imagemeta``). ``mask_path``: the ``.npy`` of the file's
    break mask, if any: a clip's samples in a break are masked in its image."""
    data = np.load(samples_path, mmap_mode="r")
    mask = np.load(mask_path, mmap_mode="r") if mask_path else None
    done = []
    for name, start, length, start_time in batch:
        clip = np.asarray(data[start : start + length])
        missing = np.asarray(mask[start : start + length]) if mask is not None else None
        rendered = dsp.render_clip(clip, sample_rate, opts.params, missing)
        meta = clip_metadata(rendered, opts.params, sample_rate=sample_rate, n_samples=length,
                             clip_start=start_time, source=opts.source, cmap=opts.cmap,
                             missing_samples=int(np.count_nonzero(missing)) if missing is not None else 0)
        index, background = rendered.index, rendered.background
        if opts.image_format == "jpg":
            image = dsp.encode_jpeg(index, opts.cmap, opts.jpeg_quality, background, metadata=meta)
        else:
            image = dsp.encode_png(
                index, opts.cmap, opts.png_compress_level, palette=opts.palette, background=background, metadata=meta
            )
        write_whole(Path(out_dir, f"{name}.{opts.image_format}"), image)
        write_whole(Path(out_dir, f"{name}.wav"), dsp.encode_wav(clip, sample_rate))
        done.append(name)
    return done


def write_whole(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: the bytes go to a hidden temporary
    name in the same folder, renamed over ``path`` once all are written (a
    rename within one file system is atomic). A full disk or any other error
    leaves no truncated file under the real name, and the temporary one is
    removed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def cut_file(decoded: Decoded, opts: ClipOptions, out_dir: Path, pool: Executor | None = None) -> CutResult:
    """Render every planned clip into ``out_dir`` (in ``pool`` if given)."""
    if opts.image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {opts.image_format!r}")
    plan = plan_clips(decoded, opts)
    if not plan.clips:
        return plan
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hydro-samples-") as tmp:
        samples = os.path.join(tmp, "samples.npy")
        np.save(samples, decoded.data)
        mask = ""
        if any(c.missing_samples for c in plan.clips) and decoded.gap_mask is not None:
            mask = os.path.join(tmp, "missing.npy")
            np.save(mask, decoded.gap_mask)
        pairs = [(c.name, c.start_sample, c.n_samples, f"{c.start:%Y-%m-%dT%H:%M:%S.%f}Z") for c in plan.clips]
        batches = [pairs[i : i + opts.clips_per_task] for i in range(0, len(pairs), opts.clips_per_task)]
        args = (samples, decoded.sample_rate)
        if pool is None:
            for b in batches:
                render_batch(*args, b, opts, str(out_dir), mask)
        else:
            futures = [pool.submit(render_batch, *args, b, opts, str(out_dir), mask) for b in batches]
            for f in futures:
                f.result()
    return plan
