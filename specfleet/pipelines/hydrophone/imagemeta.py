"""The parameters a spectrogram image was made with, carried by the image.

PNG: one tEXt chunk per item (``exiftool``, ``identify -verbose`` and
``PIL.Image.open(f).text`` show them); JPEG: the same items as one JSON
object in a comment (COM) segment. Neither touches the pixels.

Keys: ``source`` (the file's URL or path), ``clip_start`` (UTC, ISO 8601),
``clip_seconds``, ``sample_rate_hz``, ``freq_min_hz``/``freq_max_hz`` (the
image's frequency axis), ``db_vmin``/``db_vmax`` (dB drawn as the first and
the last colour), ``db_lo``/``db_hi`` (the clip's faintest and loudest
cell), ``color_lo``/``color_hi`` (vmin/vmax as fractions of that span),
``db_units``, ``window`` (``hann``), ``window_samples``, ``window_s``,
``overlap``, ``hop_samples``, ``cmap``, ``render``, ``span``, ``width``,
``height`` (the parameters ``params.py`` marks ``image``, under their own
names), and ``Software``; ``frames_per_column`` with ``render=mean``;
``missing_seconds`` on a clip across a real
break (those columns are masked, the clip's WAV holds zeros there).
"""

from __future__ import annotations

import datetime as dt

from ...imagemeta import declared_items, number, text
from . import dsp
from .params import CLIP

SOFTWARE = "specfleet hydrophone pipeline"
DB_UNITS = {
    "original": "10*log10 of mlab.specgram PSD of counts/1e-6 (the original tool's)",
    "mean": "10*log10 of |FFT|^2 of Hann-windowed counts, averaged per pixel",
}



def clip_metadata(
    rendered: dsp.RenderedClip,
    params: dsp.SpectrogramParams,
    *,
    sample_rate: float,
    n_samples: int,
    clip_start: dt.datetime | str,
    source: str = "",
    cmap: str = CLIP.cmap,
    missing_samples: int = 0,
) -> dict[str, str]:
    """The items an image of one clip carries (all strings)."""
    nfft = dsp.window_length(sample_rate, params.window_s)
    hop = dsp.hop_length(nfft, params.overlap)
    start = clip_start if isinstance(clip_start, str) else f"{clip_start:%Y-%m-%dT%H:%M:%S.%f}Z"
    meta = {
        "Software": SOFTWARE,
        "source": source,
        "clip_start": start,
        "clip_seconds": number(n_samples / sample_rate),
        "sample_rate_hz": number(sample_rate),
        # the parameters params.py marks image("key"), under their keys
        **declared_items(params),
        "cmap": text(cmap),
        "freq_min_hz": "0",
        "db_vmin": number(rendered.vmin),
        "db_vmax": number(rendered.vmax),
        "db_lo": number(rendered.db_lo),
        "db_hi": number(rendered.db_hi),
        "db_units": DB_UNITS.get(params.render, params.render),
        "window": "hann",
        "window_samples": str(nfft),
        # the window used: window_s rounded to a power of two of samples
        "window_s": number(nfft / sample_rate),
        "hop_samples": str(hop),
    }
    if params.render != "original":  # the span is then over the computed frames
        meta["span"] = "frames"
        meta["frames_per_column"] = str(params.frames_per_column)
    if missing_samples:  # a clip across a real break says so (its image masks the part)
        meta["missing_seconds"] = number(missing_samples / sample_rate)
    return meta
