"""Pure DSP functions of the hydrophone pipeline."""

from __future__ import annotations

import io

import hydro_original
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from specfleet.pipelines.hydrophone import dsp
from specfleet.standins import mseed_synth as synth

SR = 64_000.0


def test_window_rounds_to_nearest_power_of_two():
    assert dsp.window_length(64_000, 0.056) == 4096  # 3584 samples -> 4096
    assert dsp.window_length(48_000, 0.056) == 2048  # 2688 -> 2048 (nearer than 4096)
    assert dsp.window_length(1000, 0.003) == 4
    assert dsp.hop_length(4096, 0.995) == 21  # mlab: noverlap = int(0.995 * 4096) = 4075
    # The original computed ~15,000 frames per 5-second clip.
    assert dsp.frame_count(320_000, 4096, 21) == 15_044
    from matplotlib import mlab

    _, _, t = mlab.specgram(np.zeros(20_000), NFFT=4096, Fs=SR, noverlap=4075)
    assert len(t) == dsp.frame_count(20_000, 4096, 21)
    with pytest.raises(ValueError):
        dsp.window_length(0, 0.056)


def test_grid_clips_start_every_five_seconds():
    data = np.zeros(int(17.5 * SR), dtype=np.int32)
    assert dsp.clip_starts(data, SR, align="grid").tolist() == [0, 320_000, 640_000]


def test_ping_abs_alignment_finds_the_largest_swing_of_each_first_second():
    data = np.random.default_rng(0).integers(-100, 100, int(15 * SR)).astype(np.int32)
    pings = [int(0.25 * SR), int(5.9 * SR), int(10.5 * SR)]
    for p in pings:
        data[p] = -30_000  # a negative swing counts for ping_abs
    data[int(7 * SR)] = 50_000  # loud, but not in a first second: must not win
    starts = dsp.clip_starts(data, SR, align="ping_abs")
    # The last start is pulled back so a whole clip still fits.
    assert starts.tolist() == [pings[0], pings[1], len(data) - 320_000]
    with pytest.raises(ValueError):
        dsp.clip_starts(data, SR, align="zigzag")


def test_original_plan_takes_the_signed_max_of_seconds_0_5_10_and_inclusive_clips():
    """SPEC: np.argmax(data[second]) (signed) per second of the file, clip k at
    the one found in second 5k, stream.slice(t, t + 5 s) -> 320,001 samples,
    the last clip cut short at the file's end."""
    n = int(13 * SR) + 1  # obspy duration 13 s: int(13) - 1 = 12 seconds scanned
    data = np.random.default_rng(1).integers(-100, 100, n).astype(np.int32)
    data[int(0.3 * SR)] = -40_000  # largest |x| of second 0, but negative: the original ignores it
    data[int(0.7 * SR)] = 20_000
    data[int(5.2 * SR)] = 21_000
    data[int(6.5 * SR)] = 90_000  # second 6 is never looked at
    data[int(10.9 * SR)] = 22_000
    starts, lengths = dsp.clip_plan(data, SR, align="ping")
    assert starts.tolist() == [int(0.7 * SR), int(5.2 * SR), int(10.9 * SR)]
    assert lengths.tolist() == [320_001, 320_001, n - int(10.9 * SR)]
    # The same rule read off the original code's loop, on an obspy Trace.

    from obspy import Stream, Trace, UTCDateTime


    t0 = UTCDateTime(2017, 10, 9)
    stream = Stream([Trace(data, header={"sampling_rate": SR, "starttime": t0})])
    pings = hydro_original.ping_times(stream)
    want = []
    for i in range(0, len(pings), hydro_original.TIMESTEP):
        st = stream.slice(pings[i], pings[i] + hydro_original.STEP_SIZE)
        want.append((int(round((pings[i] - t0) * SR)), st[0].stats.npts))
    assert list(zip(starts.tolist(), lengths.tolist(), strict=True)) == want
    # The original needs int(duration) - 1 > 0: a file under 2 s gives no clip.
    assert len(dsp.clip_plan(data[: int(2 * SR)], SR)[0]) == 0
    assert dsp.clip_plan(data[: int(2 * SR) + 1], SR)[1].tolist() == [int(2 * SR) + 1 - int(0.7 * SR)]


def test_int32_normalisation_matches_obspy_rescale(tmp_path):
    from obspy import Trace

    clip = synth.synthetic_signal(0.5, seed=4)
    ours = dsp.normalize_int32(clip)
    Trace(clip.copy(), header={"sampling_rate": SR}).write(str(tmp_path / "o.wav"), format="WAV", framerate=int(SR), rescale=True, width=4)
    theirs, rate = sf.read(tmp_path / "o.wav", dtype="int32")
    assert rate == SR
    assert np.array_equal(ours, theirs)
    assert np.abs(ours).max() == dsp.INT32_FULL_SCALE
    assert not dsp.normalize_int32(np.zeros(10, dtype=np.int32)).any()


def test_wav_is_int32_at_native_rate():
    clip = synth.synthetic_signal(5.0, seed=2)
    info = sf.info(io.BytesIO(dsp.encode_wav(clip, SR)))
    assert (info.samplerate, info.frames, info.subtype, info.channels) == (64_000, 320_000, "PCM_32", 1)


@pytest.mark.slow
def test_image_matches_the_full_resolution_reference():
    """Our few-frames-per-column image vs every-frame mlab.specgram averaged
    to the same grid (1.5 s clip keeps the reference quick)."""
    clip = synth.synthetic_signal(1.5, seed=7)
    params = dsp.SpectrogramParams()
    ours, lo, hi = dsp.spectrogram_db(clip, SR, params)
    ref, rlo, rhi = hydro_original.reference_grid_db(clip, SR, params)
    assert ours.shape == ref.shape == (512, 512)
    assert hydro_original.pearson(ours, ref) >= 0.99
    # After each side's own 50-95 % colour range the match is looser: the
    # original's range hangs on the single lowest of ~6M noise bins.
    ours_img = dsp.color_index(ours, *dsp.color_range(lo, hi))
    ref_img = dsp.color_index(ref, *dsp.color_range(rlo, rhi))
    assert hydro_original.pearson(ours_img, ref_img) >= 0.90
    # One frame per column is measurably worse than the default (params.py: 4).
    one, _, _ = dsp.spectrogram_db(clip, SR, dsp.SpectrogramParams(frames_per_column=1))
    assert hydro_original.pearson(one, ref) < hydro_original.pearson(ours, ref)


def test_whale_call_lands_on_its_frequency_rows():
    n = int(5 * SR)
    t = np.arange(n) / SR
    tone = (np.sin(2 * np.pi * 2_750.0 * t) * 1e4).astype(np.float32)  # exactly a quarter of 11 kHz
    noise = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    index = dsp.spectrogram_index(tone + noise, SR)
    assert index.shape == (512, 512) and index.dtype == np.uint8
    loudest_row = int(np.argmax(index.astype(int).sum(axis=1)))
    # Row 0 is the top (11 kHz); 2.75 kHz is a quarter up from the bottom.
    assert abs(loudest_row - 384) <= 2


def test_png_is_a_512px_palette_image_with_the_colormap():
    index = np.tile(np.arange(256, dtype=np.uint8), (512, 2))
    png = dsp.encode_png(index, "viridis")
    img = Image.open(io.BytesIO(png))
    assert img.size == (512, 512) and img.mode == "P"
    rgb = np.asarray(img.convert("RGB"))
    assert np.array_equal(rgb[0, :256], dsp.colormap_lut("viridis"))
