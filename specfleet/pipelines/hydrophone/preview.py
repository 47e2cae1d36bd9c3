"""A labelled spectrogram of one clip, the way a scientist looks at it.

The pipeline's images are ML inputs: no axes, no scale. ``preview_file``
draws one clip of a miniSEED file with matplotlib: time in seconds from the
clip start, frequency in kHz (0 to the pipeline's ``fmax_hz``, 11 kHz), a
colourbar in dB, and a title naming the source, the clip's start and the
parameters. Its colours span the same dB range as the pipeline's image of
that clip (``dsp.render_clip``: 50-95 % of the clip's span), in the same
units (the original's ``mlab.specgram`` PSD of ``counts / 1e-6``), so the
figure and the ML image show the same thing.

The figure computes frames every ``display_hop`` samples (about 1,200
frames for a 5 s clip) rather than the pipeline's 21: a figure has ~800
pixel columns, the full 15,000-frame array would be ~250 MB. The figure
carries the clip's parameters as PNG tEXt (``imagemeta``), like every
image the pipeline writes.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import dsp
from .clipper import ClipOptions, plan_clips
from .imagemeta import clip_metadata
from .naming import file_name
from .params import CLIP, SPECTROGRAM
from .settings import HydroSettings

#: Frames computed for a figure (its plot is ~800 px wide).
DISPLAY_FRAMES = 1200
#: Figure size in inches and dots per inch: 1000 x 560 px.
FIGSIZE = (10.0, 5.6)
DPI = 100

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class PreviewResult:
    path: Path
    clip: int
    clips: int
    clip_name: str
    clip_start: dt.datetime
    vmin: float
    vmax: float
    display_hop: int
    #: ``(width, height)`` of the PNG in pixels.
    size: tuple[int, int]
    #: Pixel boxes ``(left, top, right, bottom)`` (origin top-left) of the
    #: spectrogram's axes and of the colourbar in the PNG.
    axes_box: Box
    colorbar_box: Box
    metadata: dict[str, str]


def psd_frames(
    clip: np.ndarray, sample_rate: float, *, nfft: int, hop: int, fmax_hz: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(psd_db (frames, bins), frame centres in s, bin frequencies in Hz)``:
    the original's ``mlab.specgram(clip / 1e-6, NFFT=nfft)`` PSD in dB at
    frames ``0, hop, 2 hop, ...``, bins 1.. up to the first at or above
    ``fmax_hz`` (DC dropped, as the original did)."""
    x = np.asarray(clip, dtype=np.float64) / 1e-6
    if len(x) < nfft:
        raise ValueError(f"clip of {len(x)} samples is shorter than one {nfft}-sample window")
    window = np.hanning(nfft)  # mlab.window_hanning
    starts = np.arange(0, len(x) - nfft + 1, hop)
    top = min(nfft // 2, int(math.ceil(fmax_hz * nfft / sample_rate)))
    out = np.empty((len(starts), top), dtype=np.float64)
    chunk = 128  # frames per FFT batch: bounded memory
    views = np.lib.stride_tricks.sliding_window_view(x, nfft)
    for a in range(0, len(starts), chunk):
        spec = np.fft.rfft(views[starts[a : a + chunk]] * window, axis=1)[:, 1 : top + 1]
        power = np.square(spec.real) + np.square(spec.imag)
        power *= 2.0 / sample_rate / float(np.square(window).sum())  # one-sided, per Hz
        if top == nfft // 2:
            power[:, -1] /= 2.0  # the Nyquist bin has no mirror image (mlab doubles bins 1..nfft/2-1)
        out[a : a + chunk] = 10.0 * np.log10(np.maximum(power, 1e-300))
    centres = (starts + nfft / 2) / sample_rate
    freqs = np.arange(1, top + 1) * sample_rate / nfft
    return out, centres, freqs


def draw_preview(
    clip: np.ndarray,
    sample_rate: float,
    out: Path,
    *,
    params: dsp.SpectrogramParams = SPECTROGRAM,
    cmap: str = CLIP.cmap,
    clip_start: dt.datetime,
    source: str = "",
    title: str = "",
    display_frames: int = DISPLAY_FRAMES,
    missing: np.ndarray | None = None,
) -> tuple[dsp.RenderedClip, int, tuple[int, int], Box, Box, dict[str, str]]:
    """Draw one clip into ``out`` (PNG); returns the colour range, the
    display hop, the PNG size, the axes and colourbar boxes and the metadata.
    ``missing`` (bool per sample): a real break, drawn grey and left out of
    the colour range."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    original = params.model_copy(update={"render": "original"})  # the colour range in mlab's dB
    if missing is not None and not np.any(missing):
        missing = None
    rendered = dsp.render_clip(clip, sample_rate, original, missing)
    nfft = dsp.window_length(sample_rate, params.window_s)
    hop = dsp.hop_length(nfft, params.overlap)
    display_hop = max(hop, int(math.ceil((len(clip) - nfft) / max(display_frames, 1))) or hop)
    db, centres, freqs = psd_frames(clip, sample_rate, nfft=nfft, hop=display_hop, fmax_hz=params.fmax_hz)
    half_t = display_hop / sample_rate / 2
    half_f = sample_rate / nfft / 2
    extent = (centres[0] - half_t, centres[-1] + half_t, (freqs[0] - half_f) / 1e3, (freqs[-1] + half_f) / 1e3)
    missing_s = 0.0
    if missing is not None:
        starts = np.arange(len(centres), dtype=np.int64) * display_hop
        db[dsp.frames_touching(missing, starts, nfft)] = np.nan  # drawn as the axes' grey
        missing_s = float(np.count_nonzero(missing)) / sample_rate

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.set_facecolor("0.75")
    image = ax.imshow(np.ma.masked_invalid(db.T), origin="lower", aspect="auto", extent=extent, cmap=cmap, interpolation="nearest",
                      vmin=rendered.vmin, vmax=rendered.vmax)
    ax.set_xlim(0, len(clip) / sample_rate)
    ax.set_ylim(0, params.fmax_hz / 1e3)
    ax.set_xlabel("time from clip start (s)")
    ax.set_ylabel("frequency (kHz)")
    bar = fig.colorbar(image, ax=ax, pad=0.01)
    bar.set_label("PSD (dB re (10⁻⁶ count)²/Hz, uncalibrated)")  # the original's data / 1e-6
    ax.set_title(
        f"{title}\nHann {nfft} samples ({nfft / sample_rate * 1e3:.0f} ms), {params.overlap:.1%} overlap "
        f"(drawn every {display_hop} samples) · 0–{params.fmax_hz / 1e3:g} kHz · colour {rendered.vmin:.1f}–"
        f"{rendered.vmax:.1f} dB = {params.color_lo:.0%}–{params.color_hi:.0%} of the clip's span"
        + (f"\ngrey: {missing_s:.3f} s of a real break, no recording (left out of the colour range)"
           if missing_s else ""),
        fontsize=9,
    )
    fig.canvas.draw()
    width, height = (int(round(v)) for v in fig.canvas.get_width_height())

    def box(artist: Any) -> Box:
        b = artist.get_window_extent()  # display pixels, origin bottom-left
        return (int(math.floor(b.x0)), int(math.floor(height - b.y1)), int(math.ceil(b.x1)), int(math.ceil(height - b.y0)))

    meta = clip_metadata(rendered, original, sample_rate=sample_rate, n_samples=len(clip), clip_start=clip_start,
                         source=source, cmap=cmap, missing_samples=int(np.count_nonzero(missing)) if missing is not None else 0)
    meta.update({"figure": "preview", "display_hop_samples": str(display_hop), "Title": title})
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=DPI, metadata=meta)
    return rendered, display_hop, (width, height), box(ax), box(bar.ax), meta


def path_is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def preview_file(source: str, out: Path, *, clip: int = 0, config: HydroSettings | None = None) -> PreviewResult:
    """Preview clip number ``clip`` of a miniSEED file (path or URL) into ``out``.

    Clips are planned as the pipeline plans them (``config.align``), so clip
    k here is the k-th clip the pipeline writes. Bad input raises the
    pipeline's ``JobError`` (``Rejected``); a clip number past the end a
    ``ValueError`` naming how many clips there are."""
    from ...runtime.errors import Rejected
    from .worker import read_source

    config = config or HydroSettings()
    decoded = read_source(source, config)
    opts = ClipOptions.from_settings(config)
    plan = plan_clips(decoded, opts)
    if not plan.clips:
        raise Rejected(f"no clips: {decoded.seconds:.2f} s of data; {'; '.join(plan.notes) or 'no whole clip fits'}")
    if not 0 <= clip < len(plan.clips):
        raise ValueError(f"clip {clip} does not exist: the file has {len(plan.clips)} clips (0-{len(plan.clips) - 1})")
    chosen = plan.clips[clip]
    samples = decoded.data[chosen.start_sample : chosen.start_sample + chosen.n_samples]
    missing = (decoded.gap_mask[chosen.start_sample : chosen.start_sample + chosen.n_samples]
               if decoded.gap_mask is not None else None)
    shown = file_name(source) if path_is_url(source) else Path(source).name
    title = (f"{shown} · clip {clip} of {len(plan.clips)} · "
             f"{chosen.start:%Y-%m-%d %H:%M:%S}.{chosen.start.microsecond // 1000:03d} UTC")
    rendered, hop, size, axes_box, bar_box, meta = draw_preview(
        samples, decoded.sample_rate, out, params=opts.params, cmap=opts.cmap, clip_start=chosen.start,
        source=source, title=title, missing=missing,
    )
    return PreviewResult(
        path=out, clip=clip, clips=len(plan.clips), clip_name=chosen.name, clip_start=chosen.start,
        vmin=rendered.vmin, vmax=rendered.vmax, display_hop=hop, size=size, axes_box=axes_box,
        colorbar_box=bar_box, metadata=meta,
    )
