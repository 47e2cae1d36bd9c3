"""specfleet's default hydrophone images against the ORIGINAL tool's own
rendering, computed in the test with matplotlib exactly as the original did
(benchmarks/hydro_original.py: obspy slice, mlab.specgram, imshow nearest,
savefig .jpg), on realistic 64 kHz data (synth.realistic_signal: DC offset,
1/f background, a ship, clicks, a quiet stretch, a steep anti-alias roll-off).
"""

from __future__ import annotations

import datetime as dt

import hydro_original
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from specfleet.pipelines.hydrophone import dsp
from specfleet.pipelines.hydrophone.clipper import ClipOptions, cut_file
from specfleet.pipelines.hydrophone.source import decode_mseed
from specfleet.standins import mseed_synth as synth

#: The original's matplotlib path is seconds per clip: the whole module is slow.
pytestmark = pytest.mark.slow

SR = 64_000.0
T0 = dt.datetime(2017, 10, 9, 0, 5)
LUT = dsp.colormap_lut("viridis")


def render_encoded(values: np.ndarray, n_samples: int) -> np.ndarray:
    """The original's figure code drawing ``values`` (flipped array layout)
    with 256 distinct colours, read back as colour numbers (-1 = background)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap, Normalize

    nfft, hop = 4096, 21
    t = np.arange(nfft / 2, n_samples - nfft / 2 + 1, hop) / SR
    freq = np.fft.fftfreq(nfft, 1 / SR)[: nfft // 2 + 1]
    freq[-1] *= -1
    freq = freq[1:] / 1e3
    hbt, hbf = (t[1] - t[0]) / 2.0, (freq[1] - freq[0]) / 2.0
    freq = np.concatenate((freq, [freq[-1] + 2 * hbf]))
    t = np.concatenate((t, [t[-1] + 2 * hbt]))
    extent = (t[0] - hbt, t[-1] + hbt, freq[0] - hbf, freq[-1] + hbf)
    colours = np.zeros((256, 4))
    colours[:, 0] = np.arange(256) / 255
    colours[:, 3] = 1
    fig = plt.figure(frameon=False, figsize=(8, 8))
    ax = plt.Axes(fig, [0.0, 0.0, 1.0, 1.0])
    ax.set_axis_off()
    fig.add_axes(ax)
    ax.imshow(values, interpolation="nearest", extent=extent, norm=Normalize(-0.5, 255.5), cmap=ListedColormap(colours))
    fig.set_size_inches(512 / fig.get_dpi(), 512 / fig.get_dpi())
    ax.axis("tight")
    ax.set_xlim(0, n_samples / SR)
    ax.set_ylim(0, 11)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    out = np.where(rgba[..., 3] == 0, -1, rgba[..., 0].astype(np.int64))
    plt.close(fig)
    return out


@pytest.mark.parametrize("n_samples", [320_001, 150_001])
def test_each_pixel_shows_the_cell_matplotlib_shows(n_samples):
    """original_pixel_cells against real matplotlib: the original's figure
    code drawing arrays that hold each cell's frame (then bin) number mod 256."""
    cells = dsp.original_pixel_cells(n_samples, SR, nfft=4096, hop=21)
    n_frames, n_bins = cells.n_frames, 2048
    frame_no = np.broadcast_to((np.arange(n_frames) % 256).astype(float)[None, :], (n_bins, n_frames))
    bin_no = np.broadcast_to((np.arange(1, n_bins + 1)[::-1] % 256).astype(float)[:, None], (n_bins, n_frames))
    shown_frames = render_encoded(frame_no, n_samples)
    shown_bins = render_encoded(bin_no, n_samples)
    background = shown_frames < 0
    # A few columns at each side show the figure background (the extent starts
    # at t0 - dt/2 = 0.032 s and ends 0.032 s before npts / rate).
    assert 2 <= (cells.frames[:20] < 0).sum() and 2 <= (cells.frames[-20:] < 0).sum()
    assert np.array_equal(background.any(axis=0), cells.frames < 0) and not background.all(axis=1).any()
    expect_frames = np.where(cells.frames < 0, -1, cells.frames % 256)[None, :].repeat(512, axis=0)
    expect_bins = np.where(cells.bins < 0, -1, cells.bins % 256)[:, None].repeat(512, axis=1)
    assert np.array_equal(shown_frames, expect_frames)
    assert np.array_equal(np.where(background, -1, shown_bins), np.where(background, -1, expect_bins))


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory):
    """A 13 s realistic file through the original tool and through specfleet
    (default settings): the original's 3 clips, the last cut short."""
    root = tmp_path_factory.mktemp("original")
    src = root / "OO-HYVM1--YDH-2017-10-09T00:05:00.000000.mseed"
    src.write_bytes(synth.mseed_bytes(synth.realistic_signal(13.0, seed=11), T0))
    (root / "orig").mkdir()
    original = hydro_original.original_file(src, root / "orig")
    opts = ClipOptions.from_settings(_settings(output="whaledr"))
    ours = cut_file(decode_mseed(src, expected_rate=SR), opts, root / "ours")
    return root, original, ours


def _settings(**update):
    from specfleet.pipelines.hydrophone.settings import HydroSettings

    return HydroSettings(**update)


def test_same_clips_and_wavs_as_the_original(side_by_side):
    root, original, ours = side_by_side
    assert [c.name for c in ours.clips] == [c.name for c in original]
    assert [c.n_samples for c in ours.clips] == [len(c.samples) for c in original]
    assert [c.n_samples for c in ours.clips][:2] == [320_001, 320_001] and ours.clips[2].n_samples < 320_001
    for clip in original:
        theirs, rate = sf.read(root / "orig" / f"{clip.name}.wav", dtype="int32")
        mine, my_rate = sf.read(root / "ours" / f"{clip.name}.wav", dtype="int32")
        assert rate == my_rate == 64_000
        assert np.array_equal(mine, theirs)


def test_images_match_the_original_rendering_cell_for_cell(side_by_side):
    root, original, _ours = side_by_side
    correlations, brightness = [], []
    # dB spans like real OOI recordings' (230-260 dB): the fixture is realistic.
    spans = [clip.db_span for clip in original]
    assert 225 <= float(np.median(spans)) <= 265 and 215 <= min(spans) and max(spans) <= 285, spans
    for clip in original:
        theirs, their_bg = hydro_original.pixels_to_index(clip.rgba, LUT)
        jpeg = Image.open(root / "ours" / f"{clip.name}.jpg")
        assert (jpeg.format, jpeg.size) == ("JPEG", (512, 512))
        # Read our JPEG back through its lossless twin: render again, compare pixels.
        index, background, span = dsp.original_index(clip.samples, SR)
        assert span.max_exact
        mine = hydro_original.canonical_index(index, LUT)
        assert np.array_equal(background, their_bg)
        inside = ~their_bg
        a, b = mine[inside].astype(float), theirs[inside].astype(float)
        correlations.append(hydro_original.pearson(a, b))
        brightness.append(float(np.abs(a - b).mean()))
        assert (mine[inside] == theirs[inside]).mean() >= 0.999
        # Colour statistics of the original: almost nothing at colour 0, mid-range mean.
        assert abs((a == 0).mean() - (b == 0).mean()) <= 0.002
        assert abs(a.mean() - b.mean()) <= 0.5
        assert 60 <= b.mean() <= 160 and (b == 0).mean() < 0.05
        # Our JPEG file and the original's decode to the same picture.
        ours_rgb = np.asarray(jpeg.convert("RGB"), dtype=float)
        theirs_rgb = np.asarray(Image.open(root / "orig" / f"{clip.name}.jpg").convert("RGB"), dtype=float)
        assert np.abs(ours_rgb - theirs_rgb).mean() <= 0.5
    assert float(np.median(correlations)) >= 0.90 and min(correlations) >= 0.90
    assert max(brightness) <= 8


def test_averaged_rendering_stays_available_and_is_darker(side_by_side):
    """render='mean' is the documented alternative: it must still run, and
    it does differ from the original the way the docs say (darker)."""
    _root, original, _ours = side_by_side
    clip = original[0]
    theirs, _bg = hydro_original.pixels_to_index(clip.rgba, LUT)
    mean_index, background = dsp.render_index(clip.samples, SR, dsp.SpectrogramParams(render="mean"))
    assert background is None and mean_index.shape == (512, 512)
    assert mean_index.astype(float).mean() < theirs.astype(float).mean() - 10


def test_span_methods_against_mlab_on_every_cell():
    """span='full' is the min/max over every cell, as mlab.specgram has them;
    'pruned' finds the same span and proves its max when the recording has a
    DC offset (its leakage into row 1 is the max, and Parseval then rules
    out every other frame); without one it still finds it here, unproven;
    'frames' is narrower."""
    from matplotlib import mlab

    scale = dsp.mlab_scale(SR, 4096)
    for dc in (-300_000, 0):
        clip = synth.realistic_signal(5.2, seed=5, dc_offset=dc)[:320_001].astype(np.float64)
        pxx, _f, _t = mlab.specgram(clip / 1e-6, NFFT=4096, Fs=SR, noverlap=4075)
        cells = pxx[1:]
        cells_lo, cells_hi = float(cells.min()), float(cells.max())
        full = dsp.span_power(clip, nfft=4096, hop=21, method="full")
        assert full.max_exact and full.min_exact
        assert full.hi * scale == pytest.approx(cells_hi, rel=1e-9)
        assert full.lo * scale == pytest.approx(cells_lo, rel=1e-2)  # the faintest cell is 250 dB down: round-off
        assert full.lo_frame == int(np.argmin(cells.min(axis=0)))
        pruned = dsp.span_power(clip, nfft=4096, hop=21, method="pruned")
        assert pruned.max_exact == (dc != 0)
        assert pruned.hi == pytest.approx(full.hi, rel=1e-9)
        assert pruned.lo == pytest.approx(full.lo, rel=1e-2) and pruned.lo_frame == full.lo_frame
        assert pruned.frames_transformed < full.n_frames // 10
        shown = np.arange(0, full.n_frames, 30)
        _, found = dsp.frame_power(clip, shown, nfft=4096, hop=21)
        frames = dsp.span_power(clip, nfft=4096, hop=21, method="frames", shown=(shown, found))
        assert 10 * np.log10(frames.lo / full.lo) > 10  # the sampled min misses the faint cells


def test_all_frames_rows_equal_per_frame_ffts():
    x = synth.realistic_signal(0.4, seed=2).astype(np.float64)
    values, energy = dsp.all_frames_rows(x, (0, 2048, 1, 2, 700), nfft=4096, hop=21)
    w = np.hanning(4096)
    for j in (0, 1, 97, values.shape[1] - 1):
        frame = x[j * 21 : j * 21 + 4096] * w
        spectrum = np.fft.rfft(frame)
        assert np.allclose(values[:, j], spectrum[[0, 2048, 1, 2, 700]], rtol=1e-6, atol=1e-6 * np.abs(spectrum).max())
        assert energy[j] == pytest.approx(float(frame @ frame), rel=1e-10)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="render"):
        dsp.SpectrogramParams(render="blurry")
    with pytest.raises(ValueError, match="span"):
        dsp.SpectrogramParams(span="guess")
    with pytest.raises(ValueError, match="frame"):
        dsp.original_pixel_cells(4100, SR, nfft=4096, hop=21)
