"""A labelled mel spectrogram of one window, the way a scientist looks at it.

The pipeline's window JPEGs are ML inputs: no axes, no scale. ``preview``
draws one window of a track with matplotlib: time in seconds from the
track's start, the mel axis labelled in Hz/kHz at round frequencies placed
on the mel scale (Slaney, as the filterbank), a colourbar in dB, and a title
naming the source, the window and the parameters.

**One window, not the whole track.** The pipeline's images are per window:
each is painted min-max over its own dB after its own median floor, and a
window overlapping the previous one sees that window's floor. Those colours
exist only per window, so the figure shows one (``window`` by number, or
the one starting nearest ``start_s``; window 0 by default). A whole-track
picture would need another colour rule and would not be what the pipeline
wrote.

**The pipeline's numbers.** The figure runs the worker's own DSP
(``dsp.track_mel_db``, ``dsp.db_window_images`` in window order, with the
worker's parameters) and draws the very dB block the worker painted, with
the colour range of its image (``db_lo`` white ... ``db_hi`` black in
``gray_r``, the pipeline's map; ``cmap`` may change the map, never the
range). The PNG carries the same items as the window's JPEG (``imagemeta``)
as tEXt chunks.

Sources: a local file, or an http(s) URL whose host is on
``SPECFLEET_SPECTRO_ALLOWED_HOSTS`` (``specfleet.outbound``: host list,
connect-time address check, redirects checked, size and time bounds).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np

from ..melwindows import dsp, imagemeta
from ..melwindows.settings import SpectroSettings

#: Figure size in inches and dots per inch: 1000 x 560 px.
FIGSIZE = (10.0, 5.6)
DPI = 100
#: Round frequencies the mel axis may label; the ones too close on the mel
#: scale to the tick below are left out (``mel_ticks``).
NICE_HZ = (0, 250, 500, 750, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000, 16000, 24000)

Box = tuple[int, int, int, int]


class PreviewError(ValueError):
    """Bad input for a preview (a missing or broken file, a refused URL); one line."""


class WindowChoiceError(PreviewError):
    """A window that the track does not have."""



@dataclass(frozen=True)
class PreviewResult:
    path: Path
    window: dsp.Window
    windows: int
    duration_s: int
    #: The dB block drawn (n_mels, frames): the one the pipeline painted.
    db: np.ndarray
    #: The colour range: the window's faintest and loudest cell.
    vmin: float
    vmax: float
    render: imagemeta.RenderPath
    #: ``(width, height)`` of the PNG in pixels.
    size: tuple[int, int]
    #: Pixel boxes ``(left, top, right, bottom)`` (origin top-left) of the
    #: spectrogram's axes and of the colourbar in the PNG.
    axes_box: Box
    colorbar_box: Box
    #: The frequency ticks: ``(Hz, pixel row of the tick in the PNG)``.
    ticks: list[tuple[float, float]]
    metadata: dict[str, str]


# --- the axes ------------------------------------------------------------------------------
def hz_to_mel(hz: float | np.ndarray) -> Any:
    """Slaney mel (librosa's default, the filterbank's scale)."""
    import librosa

    return librosa.hz_to_mel(hz, htk=False)


def mel_ticks(fmin: float, fmax: float, *, min_gap: float = 0.06) -> list[float]:
    """Round frequencies to label, bottom to top: ``NICE_HZ`` within the
    range plus its ends, none closer than ``min_gap`` of the axis (on the mel
    scale) to the one below; ``fmax`` always labelled."""
    lo, hi = float(hz_to_mel(fmin)), float(hz_to_mel(fmax))

    def at(f: float) -> float:
        return (float(hz_to_mel(f)) - lo) / (hi - lo)

    kept: list[float] = []
    for f in sorted({float(f) for f in NICE_HZ if fmin <= f < fmax} | {float(fmin)}):
        if not kept or at(f) - at(kept[-1]) >= min_gap:
            kept.append(f)
    if kept and at(fmax) - at(kept[-1]) < min_gap and len(kept) > 1:
        kept.pop()
    return [*kept, float(fmax)]


def hz_label(hz: float) -> str:
    return f"{hz:g}" if hz < 1000 else f"{hz / 1000:g}k"


def db_text(db: float) -> str:
    """One decimal, and no "-0.0" for the loudest cell a hair below 0 dB."""
    return f"{round(db, 1) + 0.0:.1f}"


def band_extent(params: dsp.SpectroParams) -> tuple[float, float, float]:
    """``(mel of fmin, mel of fmax, mel step)``: band m of the filterbank
    peaks at ``mel(fmin) + (m + 1) * step`` (``librosa.mel_frequencies``)."""
    lo, hi = float(hz_to_mel(params.fmin)), float(hz_to_mel(params.fmax))
    return lo, hi, (hi - lo) / (params.n_mels + 1)


# --- choosing the window ------------------------------------------------------------------
def choose_window(plan: list[dsp.Window], duration_s: int, *, window: int | None, start_s: float | None) -> dsp.Window:
    """Window number ``window``, or the one starting nearest ``start_s``
    (the earlier on a tie), or window 0."""
    if window is not None and start_s is not None:
        raise WindowChoiceError("give --window or --start, not both")
    if not plan:
        raise WindowChoiceError(f"the track is {duration_s} s long: no windows")
    if start_s is not None:
        if not 0 <= start_s < duration_s:
            raise WindowChoiceError(f"--start {start_s:g} is outside the track (0-{duration_s} s)")
        return min(plan, key=lambda w: (abs(w.ini - start_s), w.ini))
    number = 0 if window is None else window
    if not 0 <= number < len(plan):
        raise WindowChoiceError(
            f"window {number} does not exist: the track has {len(plan)} window(s) "
            f"(0-{len(plan) - 1}: {', '.join(f'{w.ini}-{w.fin} s' for w in plan[:4])}{', ...' if len(plan) > 4 else ''})"
        )
    return plan[number]


# --- the source ---------------------------------------------------------------------------
def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def shown_name(source: str) -> str:
    if is_url(source):
        return unquote(urlsplit(source).path.rsplit("/", 1)[-1]) or source
    return Path(source).name


def fetch(url: str, dest: Path, *, config: SpectroSettings, max_bytes: int) -> int:
    """Download ``url`` to ``dest`` through the outbound policy (one try:
    a person is waiting). Raises ``PreviewError`` saying what went wrong."""
    import time

    import httpx

    from ...outbound import (
        FetchLimits,
        FetchTooLarge,
        FetchTooSlow,
        HostPolicy,
        OutboundRefused,
        guarded_client,
        stream_to_file,
    )

    policy = HostPolicy.of(config.allowed_hosts, what="mp3")
    limits = FetchLimits(max_bytes=max_bytes, connect_timeout_s=config.connect_timeout_s,
                         read_timeout_s=config.read_timeout_s, budget_s=config.fetch_budget_s)
    try:
        policy.check_url(url)
        started = time.monotonic()
        with guarded_client(policy, connect_timeout_s=limits.connect_timeout_s,
                            read_timeout_s=min(limits.read_timeout_s, limits.budget_s)) as client, \
                client.stream("GET", url) as resp:
            if resp.status_code >= 400:
                raise PreviewError(f"{url} answered HTTP {resp.status_code}")
            ctype = resp.headers.get("content-type", "")
            if ctype.startswith("text/html"):
                raise PreviewError(f"{url} is an HTML page (Content-Type {ctype}), not an mp3")
            return stream_to_file(resp, dest, limits, started)
    except OutboundRefused as err:
        hint = "; allow its host with SPECFLEET_SPECTRO_ALLOWED_HOSTS" if "not allowed" in str(err) else ""
        raise PreviewError(f"{err}{hint}") from None
    except FetchTooLarge as err:
        raise PreviewError(f"{url}: {err} (SPECFLEET_SPECTRO_MAX_MP3_BYTES)") from None
    except (FetchTooSlow, httpx.HTTPError) as err:
        raise PreviewError(f"download of {url} failed: {type(err).__name__}: {err}") from None


def local_file(source: str) -> Path:
    path = Path(source)
    if not path.exists():
        raise PreviewError(f"no such file: {source}")
    if not path.is_file():
        raise PreviewError(f"{source} is not a file")
    if path.stat().st_size == 0:
        raise PreviewError(f"{path.name} is empty (0 bytes)")
    return path


# --- the figure ---------------------------------------------------------------------------
def draw(
    img: dsp.WindowImage,
    params: dsp.SpectroParams,
    out: Path,
    *,
    title: str,
    metadata: dict[str, str],
    cmap: str = imagemeta.CMAP,
) -> tuple[tuple[int, int], Box, Box, list[tuple[float, float]]]:
    """Draw one window's floored dB block into ``out`` (PNG, ``metadata`` as
    tEXt); returns the PNG size, the axes and colourbar boxes and the ticks."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    lo, hi = imagemeta.window_span_db(img.db)
    first, _ = dsp.frame_span(img.window.ini, img.window.fin, sample_rate=params.sample_rate, hop_length=params.hop_length)
    step_s = params.hop_length / params.sample_rate  # frame f is centred at f * step_s (centred frames)
    x0, x1 = (first - 0.5) * step_s, (first + img.cols - 0.5) * step_s
    mel_lo, mel_hi, mel_step = band_extent(params)

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    # The same range as the pipeline's image; a silent window (lo == hi) is
    # all white there, and all the lowest colour here.
    image = ax.imshow(img.db, origin="lower", aspect="auto", interpolation="nearest", cmap=cmap, vmin=lo,
                      vmax=hi if hi > lo else lo + 1e-6,
                      extent=(x0, x1, mel_lo + 0.5 * mel_step, mel_lo + (params.n_mels + 0.5) * mel_step))
    ax.set_xlim(x0, x1)
    ax.set_ylim(mel_lo, mel_hi)
    ticks = mel_ticks(params.fmin, params.fmax)
    ax.set_yticks([float(hz_to_mel(f)) for f in ticks], labels=[hz_label(f) for f in ticks])
    ax.set_xlabel("time in the track (s)")
    ax.set_ylabel("frequency (Hz, mel scale)")
    bar = fig.colorbar(image, ax=ax, pad=0.01)
    bar.set_label(f"dB re the track's loudest cell (top_db {params.top_db:g}; below-median cells floored)")
    ax.set_title(title, fontsize=9)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=DPI, metadata=metadata)
    # Measured after saving: the constrained layout places the axes while the
    # figure is drawn (a bare Figure's canvas.draw() does not draw).
    width, height = (int(round(v)) for v in fig.canvas.get_width_height())

    def box(artist: Any) -> Box:
        b = artist.get_window_extent()  # display pixels, origin bottom-left
        return (int(math.floor(b.x0)), int(math.floor(height - b.y1)), int(math.ceil(b.x1)), int(math.ceil(height - b.y0)))

    tick_rows = [(f, float(height - ax.transData.transform((x0, float(hz_to_mel(f))))[1])) for f in ticks]
    return (width, height), box(ax), box(bar.ax), tick_rows


def preview(
    source: str,
    out: Path,
    *,
    params: dsp.SpectroParams = dsp.SpectroParams(),
    window: int | None = None,
    start_s: float | None = None,
    cmap: str = imagemeta.CMAP,
    max_url_bytes: int = 10_000_000,
    config: SpectroSettings | None = None,
) -> PreviewResult:
    """Draw one window of ``source`` (an mp3 path or an allowed URL) into
    ``out`` (PNG). Raises ``PreviewError`` (``WindowChoiceError`` for a
    window the track does not have) and ``dsp.AudioError`` for audio that
    does not decode."""
    import matplotlib

    if cmap not in matplotlib.colormaps:
        raise WindowChoiceError(f"unknown colour map {cmap!r} (e.g. gray_r, magma, viridis)")
    config = config or SpectroSettings()
    with tempfile.TemporaryDirectory(prefix="specto-preview-") as tmp:
        if is_url(source):
            path = Path(tmp) / "source.mp3"
            fetch(source, path, config=config, max_bytes=max_url_bytes)
        else:
            path = local_file(source)
        render = imagemeta.render_path_of_file(path, params)  # the header: a broken file fails here, in one line
        db, duration = dsp.track_mel_db(path, params)
    plan = dsp.window_plan(duration, window_s=params.window_s, step_s=params.step_s, min_duration_s=params.min_duration_s)
    chosen = choose_window(plan, duration, window=window, start_s=start_s)
    # In window order up to the chosen one: each window floors the dB it shares with the next (the pipeline's rule).
    img = next(i for i in dsp.db_window_images(db, duration, params) if i.window == chosen)
    meta = imagemeta.window_metadata(imagemeta.track_metadata(params, render, source=source), img, params)
    lo, hi = imagemeta.window_span_db(img.db)
    title = (f"{shown_name(source)} · window {chosen.win} of {len(plan)}: {chosen.ini}–{chosen.fin} s of {duration} s\n"
             f"{params.n_mels} mel bands {params.fmin:g}–{params.fmax:g} Hz · Hann {params.n_fft}, hop {params.hop_length} "
             f"at {params.sample_rate} Hz · colour {db_text(lo)} to {db_text(hi)} dB ({cmap}) · {render.name}")
    meta.pop("mode")
    meta.pop("jpeg_quality")
    meta.update({"figure": "preview", "Title": title, "cmap": cmap,
                 "encoding": "matplotlib imshow, nearest; colour range db_lo..db_hi, the pipeline image's white..black"})
    size, axes_box, bar_box, ticks = draw(img, params, out, title=title, metadata=meta, cmap=cmap)
    return PreviewResult(path=out, window=chosen, windows=len(plan), duration_s=duration, db=img.db, vmin=lo, vmax=hi,
                         render=render, size=size, axes_box=axes_box, colorbar_box=bar_box, ticks=ticks, metadata=meta)
