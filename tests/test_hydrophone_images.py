"""Every hydrophone image carries its parameters (PNG tEXt / JPEG comment)
without a pixel changing, and `hydrophone preview` draws a labelled figure
a scientist can read: time in s, frequency in kHz, a dB colourbar."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from specfleet.pipelines.hydrophone import dsp
from specfleet.pipelines.hydrophone.clipper import ClipOptions, cut_file
from specfleet.pipelines.hydrophone.imagemeta import read_metadata
from specfleet.pipelines.hydrophone.source import decode_mseed
from specfleet.standins import mseed_synth as synth
from specfleet.standins.ooi_archive import file_name_for

SR = 64_000.0
T0 = dt.datetime(2017, 10, 9, 0, 5)
NAME = file_name_for(T0)
TONE_HZ, TONE_FROM_S = 6_000.0, 2.0


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


@pytest.fixture(scope="module")
def synth_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hydro-img") / NAME
    path.write_bytes(synth.mseed_bytes(synth.synthetic_signal(12.0, seed=3), T0))
    return path


@pytest.fixture(scope="module")
def tone_file(tmp_path_factory) -> Path:
    """Quiet noise with a loud 6 kHz tone from 2.0 s on: where it shows in the
    figure checks the figure's axes."""
    rng = np.random.default_rng(4)
    n = int(10 * SR)
    t = np.arange(n) / SR
    x = rng.standard_normal(n) * 300.0 + np.where(t >= TONE_FROM_S, 30_000.0 * np.sin(2 * np.pi * TONE_HZ * t), 0.0)
    path = tmp_path_factory.mktemp("hydro-tone") / NAME
    path.write_bytes(synth.mseed_bytes(np.round(x).astype(np.int32), T0))
    return path


# --- metadata ----------------------------------------------------------------------------------
@pytest.mark.parametrize("image_format", ["png", "jpg"])
def test_every_clip_image_names_its_source_start_frequency_range_db_span_and_window(synth_file, tmp_path, image_format):
    decoded = decode_mseed(synth_file, expected_rate=SR)
    opts = ClipOptions(image_format=image_format, source="https://archive.test/files/X/2017/10/09/" + NAME,
                       palette=dsp.colormap_lut("viridis").tobytes())
    result = cut_file(decoded, opts, tmp_path)
    assert len(result.clips) == 2
    for clip in result.clips:
        data = (tmp_path / f"{clip.name}.{image_format}").read_bytes()
        meta = read_metadata(data)
        assert meta["source"] == opts.source
        assert meta["clip_start"] == f"{clip.start:%Y-%m-%dT%H:%M:%S.%f}Z"
        assert (meta["freq_min_hz"], meta["freq_max_hz"]) == ("0", "11000")
        assert (meta["window"], meta["window_samples"], meta["hop_samples"], meta["overlap"]) == ("hann", "4096", "21", "0.995")
        assert (meta["width"], meta["height"], meta["cmap"], meta["render"]) == ("512", "512", "viridis", "original")
        assert float(meta["clip_seconds"]) == pytest.approx(clip.n_samples / SR, abs=1e-4)
        lo, hi, vmin, vmax = (float(meta[k]) for k in ("db_lo", "db_hi", "db_vmin", "db_vmax"))
        # The colour range is 50 %-95 % of the clip's span (SPEC.md section 1).
        assert vmin == pytest.approx(lo + 0.5 * (hi - lo), abs=2e-4) and vmax == pytest.approx(lo + 0.95 * (hi - lo), abs=2e-4)
        # And the pixels are the ones the pipeline renders without metadata.
        samples = decoded.data[clip.start_sample : clip.start_sample + clip.n_samples]
        index, background = dsp.render_index(samples, SR, opts.params)
        plain = (dsp.encode_jpeg(index, background=background) if image_format == "jpg"
                 else dsp.encode_png(index, background=background))
        assert read_metadata(plain) == {}
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")),
                              np.asarray(Image.open(io.BytesIO(plain)).convert("RGB")))


def test_the_recorded_db_range_is_the_originals_vmin_and_vmax():
    """The original's numbers, from matplotlib itself: mlab.specgram of
    data / 1e-6 over the whole clip, 10 log10, DC row dropped; vmin/vmax at
    50 %/95 % of its min..max (SPEC.md: "What the original tools did")."""
    from matplotlib import mlab

    clip = synth.realistic_signal(1.2, seed=6)[:76_801].astype(np.float64)
    pxx, _f, _t = mlab.specgram(clip / 1e-6, NFFT=4096, Fs=SR, noverlap=int(0.995 * 4096))
    db = 10 * np.log10(pxx[1:])
    lo, hi = float(db.min()), float(db.max())
    rendered = dsp.render_clip(clip, SR)
    assert rendered.db_hi == pytest.approx(hi, abs=1e-6)
    assert rendered.db_lo == pytest.approx(lo, abs=0.05)  # the faintest cell is ~240 dB down: round-off
    assert rendered.vmin == pytest.approx(lo + 0.5 * (hi - lo), abs=0.05)
    assert rendered.vmax == pytest.approx(lo + 0.95 * (hi - lo), abs=0.05)
    index, background = dsp.render_index(clip, SR)
    assert np.array_equal(rendered.index, index) and (rendered.background is None) == (background is None)
