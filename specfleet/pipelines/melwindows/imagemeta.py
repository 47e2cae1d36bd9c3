"""The parameters a mel-spectrogram window image was made with, carried by the image.

Every window JPEG the pipeline writes holds one JSON object in a JPEG
comment (COM) segment, as the hydrophone pipeline's JPEGs do; the preview
PNG holds the same items as tEXt chunks. Neither touches the pixels (a COM
segment sits outside the entropy-coded data). ``exiftool``,
``identify -verbose`` and ``PIL.Image.open(f).info["comment"]`` show it;
``specfleet.imagemeta.read_metadata`` parses it. All values are strings, like the hydrophone's,
so one reader serves PNG and JPEG.

Keys:

* what: ``Software``, ``specfleet_version``, ``source`` (S3 key, path or
  URL of the mp3), ``track_id``;
* where: ``win``, ``window_start_s``/``window_end_s`` (the window's whole
  seconds, as in its name), ``frame_first``/``frame_end`` (its STFT frame
  columns in the track), ``width``/``height`` (= frames x mel bands);
* how: ``sample_rate_hz`` (the analysis rate, 16 kHz), ``source_sample_rate_hz``,
  ``decoded_rate_hz``, ``decoder``, ``render`` (``half-rate-grid``, ``grid``,
  ``resampled`` or ``native``: see ``render_path``) and ``render_detail``,
  ``n_fft``, ``hop_length``, ``window`` (``hann``), ``center``, ``n_mels``,
  ``mel_scale`` (``slaney``), ``fmin_hz``/``fmax_hz`` (the filterbank's range);
* the values: ``db_units``, ``db_ref``, ``amin``, ``top_db``, ``db_lo``/``db_hi``
  (the window's faintest and loudest cell after the median floor: the dB
  drawn white and black), ``db_span``, ``floor``, ``cmap`` (``gray_r``),
  ``encoding``, ``mode`` (``L``), ``jpeg_quality``.

Nothing here depends on when or where the image was made, so a job run twice
writes the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...imagemeta import comment, declared_items, number
from . import dsp
from .params import SPECTRO

SOFTWARE = "specfleet spectrogram pipeline"
CMAP = "gray_r"
DB_UNITS = "dB re the track's loudest mel cell: power_to_db(mel power, ref=max, amin, top_db)"
FLOOR = "cells below the window's median set to its minimum (db_lo), in place: a window overlapping the previous one sees that window's floor"
ENCODING = "min-max per window: db_lo -> 255 (white), db_hi -> 0 (black); low frequencies at the bottom"



@dataclass(frozen=True)
class RenderPath:
    """How a track's samples reached the mel filterbank (``dsp.track_mel_db``)."""

    decoder: str  # "libmpg123" or "libsndfile"
    source_rate: int  # the stream's rate
    decoded_rate: int  # the rate of the decoded samples
    #: ``half-rate-grid``: libmpg123's 2:1 synthesis, STFT on an ``AnalysisGrid``;
    #: ``grid``: STFT on a grid at the stream's own rate; ``resampled``: soxr HQ
    #: to the analysis rate, as ``librosa.load`` (the reference path); ``native``:
    #: the stream is at the analysis rate already.
    name: str
    detail: str


def render_path(
    source_rate: int, params: dsp.SpectroParams = SPECTRO, *, mpeg: bool = True, decoder: str = ""
) -> RenderPath:
    """The path ``dsp.track_mel_db`` takes for a stream at ``source_rate``
    (``mpeg``: decoded by libmpg123), from the same rules it applies:
    ``dsp.half_rate_from`` picks the 2:1 synthesis, ``dsp.analysis_grid``
    the grid (pure; no file is read). ``decoder`` names another decoder that
    gave samples at the stream's own rate (the fused path's ffmpeg)."""
    decoder = decoder or ("libmpg123" if mpeg else "libsndfile")
    half = mpeg and source_rate >= dsp.half_rate_from(params)
    rate = source_rate // 2 if half else source_rate
    grid = dsp.analysis_grid(rate, params)
    analysis = params.sample_rate
    if grid is not None:
        how = (f"{grid.n_fft}-point STFT, hop {grid.hop_length}, at {number(float(grid.rate))} Hz on the "
               f"{analysis} Hz reference's frames and bins, soxr HQ's response in the mel weights")
        if grid.stretch_up:
            how += f"; stretched {grid.stretch_up + 1}/{grid.stretch_up} first"
        if half:
            return RenderPath(decoder, source_rate, rate, "half-rate-grid",
                              f"{decoder} 2:1 synthesis of the {source_rate} Hz stream to {rate} Hz; {how}")
        return RenderPath(decoder, source_rate, rate, "grid", f"{decoder} at {rate} Hz; {how}")
    if rate == analysis:
        return RenderPath(decoder, source_rate, rate, "native", f"{decoder} at {rate} Hz, the analysis rate (no resampling)")
    return RenderPath(decoder, source_rate, rate, "resampled",
                      f"{decoder} at {rate} Hz, resampled to {analysis} Hz with soxr HQ (as librosa.load)")


def render_path_of_file(path: str | Path, params: dsp.SpectroParams = SPECTRO) -> RenderPath:
    """``render_path`` for a file, from its header (``dsp.probe``: no decoding)."""
    from . import mpg123

    info = dsp.probe(path)
    return render_path(info.sample_rate, params, mpeg=dsp._looks_like_mpeg(path) and mpg123.available())


def track_metadata(
    params: dsp.SpectroParams, render: RenderPath, *, source: str = "", track_id: str = ""
) -> dict[str, str]:
    """The items every window of one track shares (all strings)."""
    from ... import __version__

    return {
        "Software": SOFTWARE,
        "specfleet_version": __version__,
        "source": source,
        "track_id": track_id,
        # the parameters params.py marks image("key"), under their keys
        **declared_items(params),
        "source_sample_rate_hz": str(render.source_rate),
        "decoded_rate_hz": str(render.decoded_rate),
        "decoder": render.decoder,
        "render": render.name,
        "render_detail": render.detail,
        "window": "hann",
        "center": "true",
        "mel_scale": "slaney",
        "db_units": DB_UNITS,
        "db_ref": "track max",
        "floor": FLOOR,
        "cmap": CMAP,
        "encoding": ENCODING,
        "mode": "L",
    }


def window_span_db(db: np.ndarray) -> tuple[float, float]:
    """The faintest and loudest cell of a floored window block (the dB the
    image paints white and black); ``(nan, nan)`` for an empty block."""
    if db.size == 0:
        return math.nan, math.nan
    return float(db.min()), float(db.max())


def window_metadata(track: dict[str, str], img: dsp.WindowImage, params: dsp.SpectroParams) -> dict[str, str]:
    """``track``'s items plus this window's."""
    lo, hi = window_span_db(img.db)
    first, _ = dsp.frame_span(img.window.ini, img.window.fin, sample_rate=params.sample_rate,
                                hop_length=params.hop_length)
    return {
        **track,
        "win": str(img.window.win),
        "window_start_s": str(img.window.ini),
        "window_end_s": str(img.window.fin),
        "frame_first": str(first),
        "frame_end": str(first + img.cols),
        "width": str(img.cols),
        "height": str(img.rows),
        "db_lo": number(lo),
        "db_hi": number(hi),
        "db_span": number(hi - lo),
    }


def encode_window(img: dsp.WindowImage, params: dsp.SpectroParams, track: dict[str, str]) -> bytes:
    """The window's JPEG (``dsp.encode_jpeg``: the same pixels) with its
    parameters in a comment; ``track`` from ``track_metadata``."""
    return dsp.encode_jpeg(img.pixels, quality=params.jpeg_quality, comment=comment(window_metadata(track, img, params)))
