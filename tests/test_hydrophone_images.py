"""Every hydrophone image carries its parameters (PNG tEXt / JPEG comment)
without a pixel changing, and `hydrophone preview` draws a labelled figure
a scientist can read: time in s, frequency in kHz, a dB colourbar."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from specfleet.imagemeta import read_metadata
from specfleet.pipelines.hydrophone import dsp
from specfleet.pipelines.hydrophone.clipper import ClipOptions, cut_file
from specfleet.pipelines.hydrophone.preview import preview_file, psd_frames
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.pipelines.hydrophone.source import decode_mseed
from specfleet.runtime.errors import Misconfigured
from specfleet.standins import mseed_synth as synth
from specfleet.standins.ooi_archive import OOIServer, day_dir, file_name_for

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


@pytest.mark.slow  # fast lane: over ~2 s (the full suite runs it)
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


def test_the_figures_power_is_the_originals_mlab_specgram():
    from matplotlib import mlab

    clip = synth.realistic_signal(0.3, seed=7).astype(np.float64)
    pxx, freqs, _t = mlab.specgram(clip / 1e-6, NFFT=4096, Fs=SR, noverlap=4096 - 21)
    db, centres, ours = psd_frames(clip, SR, nfft=4096, hop=21, fmax_hz=11_000)
    top = db.shape[1]
    assert ours[-1] >= 11_000 > ours[-2] and np.allclose(ours, freqs[1 : top + 1])
    assert np.allclose(db, 10 * np.log10(pxx[1 : top + 1].T), atol=1e-6)
    assert centres[0] == pytest.approx(2048 / SR)


# --- the preview figure --------------------------------------------------------------------------
@pytest.mark.slow  # fast lane: over ~2 s (the full suite runs it)
def test_preview_figure_has_axes_in_seconds_and_khz_a_db_colourbar_and_a_title(tone_file, tmp_path, monkeypatch, artifacts_dir):
    from specfleet.cli.main import app

    monkeypatch.setenv("SPECFLEET_HYDRO_ALIGN", "grid")  # clip 0 starts at the file's start
    out = tmp_path / "preview.png"
    run = CliRunner().invoke(app, ["hydrophone", "preview", str(tone_file), "--clip", "0", "--out", str(out), "--json"])
    assert run.exit_code == 0, run.output
    reported = json.loads(run.stdout)
    shutil.copy(out, artifacts_dir / "hydrophone-preview.png")

    result = preview_file(str(tone_file), tmp_path / "again.png", clip=0, config=HydroSettings(align="grid"))
    png = Image.open(out)
    assert png.format == "PNG" and png.size == result.size == tuple(reported["size"]) == (1000, 560)
    rgb = np.asarray(png.convert("RGB")).astype(float)
    lum = luminance(rgb)
    left, top, right, bottom = result.axes_box
    plot = rgb[top + 2 : bottom - 2, left + 2 : right - 2]
    assert (plot.min(axis=-1) > 245).mean() < 0.01  # the plot is painted, not blank

    # The tone sits at 6 kHz on the frequency axis (0 at the bottom, 11 kHz at the top)...
    t_at = lambda x: (x - left) / (right - left) * 5.0  # noqa: E731 (s across the axes)
    late = lum[top:bottom, left + int(0.6 * (right - left)) : right - 2].mean(axis=1)
    row = top + int(np.argmax(late))
    assert (bottom - row) / (bottom - top) * 11.0 == pytest.approx(TONE_HZ / 1e3, abs=0.15)
    # ...and starts at 2.0 s on the time axis: the first yellow pixel of its row
    # (the strip left of the first window's centre, 32 ms, is the white background).
    along = rgb[row, left + 2 : right - 2]
    yellow = (along[:, 0] > 180) & (along[:, 2] < 120)
    assert yellow[int(0.6 * len(yellow)) :].mean() > 0.9
    onset = left + 2 + int(np.argmax(yellow))
    assert t_at(onset) == pytest.approx(TONE_FROM_S, abs=0.1)

    # The colourbar runs from viridis' first colour at the bottom to its last at the top.
    bl, bt, br, bb = result.colorbar_box
    assert bl > right and br - bl > 10 and bb - bt > 300
    column = rgb[bt + 3 : bb - 3, (bl + br) // 2]
    lut = dsp.colormap_lut("viridis").astype(float)
    assert np.abs(column[:5].mean(axis=0) - lut[-1]).max() < 25
    assert np.abs(column[-5:].mean(axis=0) - lut[0]).max() < 25
    assert np.all(np.diff(luminance(column)) <= 3)  # brighter upwards, all the way

    # Tick labels and axis labels left of and below the plot, a title above, bar labels right of it.
    dark = lum < 110
    assert dark[top:bottom, : left - 3].sum() > 300  # kHz ticks + "frequency (kHz)"
    assert dark[bottom + 3 :, left:right].sum() > 300  # s ticks + "time from clip start (s)"
    assert dark[: top - 2, left:right].sum() > 300  # two title lines
    assert dark[bt:bb, br + 2 :].sum() > 300  # dB ticks + label

    meta = read_metadata(out.read_bytes())
    assert meta["figure"] == "preview" and meta["source"] == str(tone_file)
    assert (meta["freq_max_hz"], meta["window_samples"]) == ("11000", "4096")
    assert float(meta["db_vmin"]) == pytest.approx(reported["vmin_db"], abs=1e-3)
    assert meta["clip_start"] == "2017-10-09T00:05:00.000000Z" and "clip 0 of 2" in meta["Title"]


def test_preview_reads_urls_through_the_host_policy_and_says_what_is_wrong(tone_file, tmp_path, monkeypatch):
    folder = day_dir(tmp_path / "ooi", "CE02SHBP/LJ01D/11-HYDBBA106", T0.date())
    shutil.copy(tone_file, folder / NAME)
    with OOIServer(tmp_path / "ooi") as server:
        url = f"{server.base_url}CE02SHBP/LJ01D/11-HYDBBA106/2017/10/09/{NAME}"
        got = preview_file(url, tmp_path / "url.png", clip=1, config=HydroSettings(allowed_hosts=[server.netloc]))
        assert got.clip == 1 and got.clip_name.startswith("OO_HYVM1__YDH_2017_10_09T00_05_0")
        assert read_metadata((tmp_path / "url.png").read_bytes())["source"] == url
        # a host the settings do not allow is the settings' mistake, named with the fix
        with pytest.raises(Misconfigured, match="not allowed.*SPECFLEET_HYDRO_ALLOWED_HOSTS"):
            preview_file(url, tmp_path / "no.png", config=HydroSettings())

    from specfleet.cli.main import app

    runner = CliRunner(env={"COLUMNS": "300"})  # one error line, unwrapped
    past = runner.invoke(app, ["hydrophone", "preview", str(tone_file), "--clip", "7", "--out", str(tmp_path / "x.png")])
    assert past.exit_code == 2 and "clip 7 does not exist: the file has 2 clips (0-1)" in past.output
    not_png = runner.invoke(app, ["hydrophone", "preview", str(tone_file), "--out", str(tmp_path / "x.jpg")])
    assert not_png.exit_code == 2 and "must name a .png" in not_png.output
    missing = runner.invoke(app, ["hydrophone", "preview", str(tmp_path / "nope.mseed"), "--out", str(tmp_path / "x.png")])
    assert missing.exit_code == 1 and "no such file" in missing.output and "Traceback" not in missing.output
