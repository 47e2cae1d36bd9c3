"""Spectrogram maths and decoding on real mp3s (encoded by ffmpeg/LAME)."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from specfleet.ffmpeg import encode_mp3, ffmpeg_path
from specfleet.pipelines.melwindows import dsp


def make_mp3(path: Path, seconds: float, sample_rate: int = 44100, channels: int = 2, seed: int = 0) -> Path:
    """A music-like mp3 (two sweeping tones + noise) of the given length."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * (200 + 40 * t) * t) + 0.2 * np.sin(2 * np.pi * 1500 * t * (1 + 0.1 * np.sin(t)))
    sig = np.stack([tone + 0.05 * rng.standard_normal(t.size) for _ in range(channels)], axis=1).astype(np.float32)
    return encode_mp3(path, sig, sample_rate, extra_args=("-compression_level", "9"))


def make_long_silent_mp3(path: Path, minutes: float) -> Path:
    """An hour-long mp3 in a fraction of a second: one 10 s silent CBR
    segment (no Xing header) repeated; decoders read it as one stream."""
    seg = path.with_suffix(".seg.mp3")
    subprocess.run(
        [ffmpeg_path(), "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
         "-t", "10", "-b:a", "8k", "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3", str(seg)],
        check=True,
    )
    data = seg.read_bytes()
    seg.unlink()
    seg_seconds = 10.152  # LAME pads the 10 s segment to whole frames
    path.write_bytes(data * int(np.ceil(minutes * 60 / seg_seconds)))
    return path


def make_lying_mp3(path: Path, *, claimed_s: int, holds_s: int, sample_rate: int = 24000) -> Path:
    """An mp3 whose header lies: a ``claimed_s`` LAME file with its Xing/Info
    tag (frame count and length of that file only) followed by more frames of
    a 440 Hz tone, ``holds_s`` seconds in all. The extra frames are one 10 s
    segment (no tag) repeated: decoders read one continuous stream, header
    readers (libsndfile, ``mpg123_length``) believe the tag."""
    ff = ffmpeg_path()
    head, seg = path.with_suffix(".head.mp3"), path.with_suffix(".seg.mp3")
    common = ["-b:a", "8k", "-ac", "1", "-f", "mp3"]
    tone = ["-f", "lavfi", "-i", f"sine=f=440:r={sample_rate}"]
    subprocess.run([ff, "-v", "error", "-y", *tone, "-t", str(claimed_s), *common, str(head)], check=True)
    subprocess.run([ff, "-v", "error", "-y", *tone, "-t", "10", "-write_xing", "0", "-id3v2_version", "0",
                    *common, str(seg)], check=True)
    segment = seg.read_bytes()
    path.write_bytes(head.read_bytes() + segment * int(np.ceil((holds_s - claimed_s) / 10)))
    head.unlink()
    seg.unlink()
    return path


def stream_seconds_by_ffmpeg(path: Path) -> float:
    """The length of every MPEG frame in ``path`` as ffmpeg counts them when
    it copies the stream (no decoding; ffmpeg ignores a Xing tag that
    disagrees with the file)."""
    import re

    run = subprocess.run([ffmpeg_path(), "-hide_banner", "-nostdin", "-i", str(path), "-c", "copy", "-f", "null", "-"],
                         capture_output=True, text=True, check=True)
    h, m, s = re.findall(r"time=(\d+):(\d+):([\d.]+)", run.stderr)[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)


# --- window rules ------------------------------------------------------------------
@pytest.mark.parametrize(
    "duration, expected",
    [
        (0, []),
        (29, [(0, 0, 29)]),
        (30, [(0, 0, 30)]),  # the original emitted 0-30 twice
        (40, [(0, 0, 30), (1, 10, 40)]),
        (50, [(0, 0, 30), (1, 20, 50)]),  # the original emitted 20-50 twice
        (60, [(0, 0, 30), (1, 20, 50), (2, 30, 60)]),
        (180, [(i, 20 * i, 20 * i + 30) for i in range(8)] + [(8, 150, 180)]),
    ],
)
def test_window_plan(duration, expected):
    assert [(w.win, w.ini, w.fin) for w in dsp.window_plan(duration)] == expected


def test_frame_span_matches_original_arithmetic():
    # int(seconds / (512 / 16000)): 30 s windows are 937 or 938 columns.
    assert dsp.frame_span(0, 30) == (0, 937)
    assert dsp.frame_span(20, 50) == (625, 1562)
    assert dsp.frame_span(150, 180) == (4687, 5625)


# --- decoding + windows on real mp3s ---------------------------------------------------
@pytest.mark.slow  # fast lane: over ~2 s (the full suite runs it)
@pytest.mark.parametrize(
    "seconds, sample_rate, channels, windows, last_cols",
    [
        (29.5, 44100, 2, [(0, 0, 29)], 906),
        (30.4, 8000, 1, [(0, 0, 30)], 937),
        (50.2, 48000, 2, [(0, 0, 30), (1, 20, 50)], 937),
        (180.3, 22050, 1, [(i, 20 * i, 20 * i + 30) for i in range(8)] + [(8, 150, 180)], 938),
    ],
)
def test_track_windows(tmp_path, seconds, sample_rate, channels, windows, last_cols):
    path = make_mp3(tmp_path / "t.mp3", seconds, sample_rate, channels)
    info = dsp.probe(path)
    assert (info.format, info.sample_rate, info.channels) == ("MP3", sample_rate, channels)
    y = dsp.decode(path)
    assert y.ndim == 1 and y.dtype == np.float32
    assert abs(len(y) / 16000 - info.duration_s) < 0.1
    images = list(dsp.window_images(y))
    assert [(i.window.win, i.window.ini, i.window.fin) for i in images] == windows
    assert all(i.rows == 256 and i.pixels.shape == (256, i.cols) for i in images)
    assert images[-1].cols == last_cols
    jpeg = dsp.encode_jpeg(images[0].pixels)
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(jpeg))
    assert (img.mode, img.size) == ("L", (images[0].cols, 256))


@pytest.mark.slow
def test_matches_librosa_and_matplotlib_reference(tmp_path):
    import librosa
    from matplotlib import colorizer

    y = dsp.decode(make_mp3(tmp_path / "t.mp3", 41, 44100, 2))
    S = librosa.feature.melspectrogram(y=y, sr=16000, n_mels=256, fmax=8000, n_fft=1024, hop_length=512)
    ref = librosa.power_to_db(S, ref=np.max)
    ours = dsp.mel_db(y)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 0.01
    for img in dsp.window_images(y):  # the original's loop, in place on ref
        a, b = dsp.frame_span(img.window.ini, img.window.fin)
        sample = ref[:, a:b]
        sample[np.where(sample < np.median(sample.ravel()))] = np.min(sample.ravel())
        assert np.abs(img.db - sample).max() < 0.01
        painted = colorizer.Colorizer(cmap="gray_r").to_rgba(sample[::-1], bytes=True)[..., 0]
        assert np.mean(painted == img.pixels) > 0.999


def test_gray_r_lut_is_matplotlibs():
    import matplotlib

    lut = matplotlib.colormaps["gray_r"](np.arange(256), bytes=True)[:, 0]
    assert np.array_equal(lut, dsp._GRAY_R)
    block = np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32)
    # median 1.5: 1 is floored to 0; low row (index 0) ends up at the bottom; loud is dark
    assert dsp.floor_and_paint(block).tolist() == [[lut[170], lut[255]], [lut[0], lut[0]]]
    constant = np.full((3, 4), -7.0, dtype=np.float32)  # matplotlib paints it all white
    assert (dsp.floor_and_paint(constant) == lut[0]).all()


def test_painting_equals_matplotlib_colormap_exactly():
    from matplotlib import colorizer

    rng = np.random.default_rng(5)
    db = (rng.standard_normal((256, 938)) * 12 - 40).astype(np.float32)
    np.maximum(db, db.max() - 80, out=db)
    expected_block = db.copy()
    expected_block[expected_block < np.median(expected_block)] = expected_block.min()
    pixels = dsp.floor_and_paint(db)
    assert np.array_equal(db, expected_block)
    painted = colorizer.Colorizer(cmap="gray_r").to_rgba(expected_block[::-1], bytes=True)[..., 0]
    # matplotlib normalises in float64; we do it in float32 like the JPEGs
    # already produced: a value sitting on a grey-level boundary may round
    # the other way, never by more than one level.
    assert np.abs(painted.astype(int) - pixels).max() <= 1
    assert np.mean(painted == pixels) > 0.999


def test_median_floor_is_in_place_like_the_original():
    db = np.arange(12, dtype=np.float32).reshape(2, 6)
    first = db[:, 0:4]
    dsp.floor_and_paint(first)
    assert first.tolist() == [[0, 0, 0, 0], [6, 7, 8, 9]]  # median 4.5
    assert db.tolist() == [[0, 0, 0, 0, 4, 5], [6, 7, 8, 9, 10, 11]]  # the shared array changed too


@pytest.mark.parametrize(
    "read, content, message",
    [
        ("probe", b"", "empty"),
        ("probe", bytes(range(256)) * 40, "not a decodable audio file"),
        # MPEG look-alikes (an ID3 tag, a frame sync) reach libmpg123, which finds no frame.
        ("decode", b"ID3" + b"\x04\x00\x00\x00\x00\x00\x10" + bytes(16) + bytes(range(256)) * 4, "could not be decoded"),
        ("decode", b"\xff\xfb" + bytes(3000), "could not be decoded"),
    ],
)
def test_bad_files_are_refused_with_a_reason(tmp_path, read, content, message):
    path = tmp_path / "bad.mp3"
    path.write_bytes(content)
    with pytest.raises(dsp.AudioError, match=message):
        getattr(dsp, read)(path)


def test_hour_long_header_probe_is_instant(tmp_path):
    import time

    path = make_long_silent_mp3(tmp_path / "long.mp3", 61)
    started = time.monotonic()
    info = dsp.probe(path)
    assert time.monotonic() - started < 1.0
    assert 61 * 60 <= info.duration_s < 62 * 60


@pytest.mark.parametrize("shape", [(256, 937), (256, 938), (3, 5), (2, 3), (1, 1)])
@pytest.mark.parametrize("ties", ["none", "row", "many"])
def test_median_floor_equals_numpy_median_rule(shape, ties):
    from specfleet.pipelines.melwindows import kernels

    rng = np.random.default_rng(3)
    block = rng.standard_normal(shape).astype(np.float32)
    if ties == "row":
        block[0, :] = block[0, 0]  # ties at one value
    elif ties == "many":
        block = np.round(block * 2) / 2  # a handful of distinct values, many ties at the median
    hist = np.empty(kernels.MEDIAN_BUCKETS, dtype=np.int64)
    assert kernels.median(block, hist) == np.median(block)  # exactly, float32 mean of the middle pair
    expected = block.copy()
    expected[expected < np.median(expected)] = expected.min()
    big = np.zeros((shape[0], shape[1] + 4), dtype=np.float32)
    big[:, 2:-2] = block
    contiguous = block.copy()
    dsp.floor_and_paint(contiguous)
    assert np.array_equal(contiguous, expected)
    view = big[:, 2:-2]  # a strided view, as in window_images
    dsp.floor_and_paint(view)
    assert np.array_equal(view, expected)
    assert (big[:, :2] == 0).all() and (big[:, -2:] == 0).all()  # nothing outside the view touched


def test_mel_power_windows_in_frequency_like_librosa_in_time():
    rng = np.random.default_rng(11)
    y = (rng.standard_normal(16000 * 5) * 0.1).astype(np.float32)
    y[:4000] = 0  # silence next to signal: the 3-tap window must not smear it
    params = dsp.SpectroParams()
    bands = dsp.mel_filterbank()
    reference = bands.weights @ dsp.power_spectrogram(y)  # time-domain Hann
    ours = dsp.mel_power(y, params)
    assert ours.shape == reference.shape
    assert np.allclose(ours, reference, rtol=1e-4, atol=1e-6 * reference.max())


@pytest.mark.parametrize("sample_rate, channels", [(44100, 2), (48000, 1), (8000, 1), (22050, 2)])
def test_mpg123_mono_mix_equals_soundfile_channel_mean(tmp_path, sample_rate, channels):
    import soundfile as sf

    from specfleet.pipelines.melwindows import mpg123

    assert mpg123.available(), mpg123.unavailable_reason()
    path = make_mp3(tmp_path / "t.mp3", 7.3, sample_rate, channels)
    ours, rate = mpg123.decode_mono(path)
    theirs, their_rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert rate == their_rate == sample_rate
    assert ours.shape == (theirs.shape[0],)  # same gapless trimming
    assert np.abs(ours - theirs.mean(axis=1)).max() < 1e-5


def test_decode_falls_back_to_soundfile_without_libmpg123(tmp_path, monkeypatch):
    from specfleet.pipelines.melwindows import mpg123

    path = make_mp3(tmp_path / "t.mp3", 6, 44100, 2)
    fast = dsp.decode(path)
    monkeypatch.setattr(mpg123, "available", lambda: False)
    slow = dsp.decode(path)
    assert fast.shape == slow.shape
    assert np.abs(fast - slow).max() < 1e-4


def test_truncated_mp3_decodes_what_is_there_like_libsndfile(tmp_path):
    import soundfile as sf

    from specfleet.pipelines.melwindows import mpg123

    whole = make_mp3(tmp_path / "whole.mp3", 12, 44100, 2).read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole[: len(whole) // 2 + 333])  # ends mid-frame
    ours, _ = mpg123.decode_mono(cut)
    theirs, _ = sf.read(str(cut), dtype="float32", always_2d=True)
    assert 5 * 44100 < len(ours) == len(theirs) < 7 * 44100
    assert np.abs(ours - theirs.mean(axis=1)).max() < 1e-5


@pytest.mark.parametrize("decoder", ["libmpg123", "libsndfile"])
def test_decoding_stops_at_the_duration_limit(tmp_path, monkeypatch, decoder):
    from specfleet.pipelines.melwindows import mpg123

    path = make_mp3(tmp_path / "t.mp3", 7.3, 44100, 2)
    if decoder == "libsndfile":
        monkeypatch.setattr(mpg123, "available", lambda: False)
    whole = dsp.decode(path, max_duration_s=8)
    assert abs(len(whole) / 16000 - 7.3) < 0.05
    with pytest.raises(dsp.TooLongError, match="t.mp3 holds more than 5 s of audio"):
        dsp.decode(path, max_duration_s=5)
    with pytest.raises(dsp.TooLongError):  # 50 ms over the limit is over it
        dsp.decode(path, max_duration_s=7.25)


def test_mpg123_never_decodes_past_the_limit(tmp_path):
    from specfleet.pipelines.melwindows import mpg123

    path = make_lying_mp3(tmp_path / "lying.mp3", claimed_s=20, holds_s=600)
    limit_s = 60
    sizes: list[int] = []
    real_concatenate = np.concatenate

    def recording_concatenate(parts, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = real_concatenate(parts, *args, **kwargs)
        sizes.append(out.size)
        return out

    import unittest.mock

    with unittest.mock.patch.object(mpg123.np, "concatenate", recording_concatenate):
        with pytest.raises(mpg123.TooLong, match="more than 60 s"):
            mpg123.decode_mono(path, max_seconds=limit_s)
    assert sizes and max(sizes) == limit_s * 24000 + 1  # grew past the header's 20 s, stopped at the limit


@pytest.mark.slow  # fast lane: over ~2 s (the full suite runs it)
def test_lying_header_is_skipped_with_memory_bounded_by_the_limit(tmp_path):
    """Issue 14 item 5: the header claims 20 s, the frames hold 40 min. The
    worker's path (probe, header guard, ``compute_track``, as
    ``specfleet spectrogram`` runs it) must end in Skipped once decoding
    passes the limit, and its peak memory must follow the limit."""
    import json
    import os
    import sys

    path = make_lying_mp3(tmp_path / "lying.mp3", claimed_s=20, holds_s=40 * 60)
    assert 19.5 < dsp.probe(path).duration_s < 20.5  # what the header claims...
    assert stream_seconds_by_ffmpeg(path) > 39.9 * 60  # ...and what the frames hold
    limit_s, rate = 60, 24000
    script = f"""
import json, resource
from specfleet.pipelines.melwindows import dsp, kernels, mpg123
from specfleet.pipelines.spectrogram import worker
from specfleet.runtime import Skipped
from specfleet.pipelines.melwindows.settings import SpectroSettings
import numpy, PIL.Image, soundfile, soxr
assert mpg123.available()
settings = SpectroSettings(max_duration_s={limit_s})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    summary = worker.spectrogram_file({str(path)!r}, "lying", {str(tmp_path / "out")!r}, settings)
    outcome, reason = "done", f"{{len(summary['windows'])}} windows"
except Skipped as err:
    outcome, reason = "skipped", str(err)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"outcome": outcome, "reason": reason, "grown_kib": after - before}}))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "skipped", result
    assert "lying.mp3 holds over 1 min of audio" in result["reason"]
    assert "header claims 0.3 min" in result["reason"]
    # At most the limit's worth of decoded float32 samples, twice over while
    # the array grows, plus allocator slack: ~12 MB + 24 MiB here. Decoding
    # all 40 min would take 230 MB for the samples alone.
    bound_bytes = 2 * (limit_s * rate + 1) * 4 + (24 << 20)
    assert result["grown_kib"] * 1024 <= bound_bytes, result
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --- the analysis at the decoded rate (no resampler) against the original path ------------
@pytest.mark.slow  # fast lane: over ~2 s (the full suite runs it)
@pytest.mark.parametrize(
    "sample_rate, channels", [(44100, 2), (48000, 2), (32000, 1), (22050, 1), (24000, 2), (11025, 1)]
)
def test_track_mel_db_matches_the_original_librosa_path(tmp_path, sample_rate, channels):
    """What the worker computes from the file vs the original's
    ``librosa.load(mp3, sr=16000)`` -> melspectrogram -> power_to_db -> the
    median floor -> gray_r, on real mp3s of every common rate."""
    import librosa
    from matplotlib import colorizer

    path = make_mp3(tmp_path / "t.mp3", 41.3, sample_rate, channels, seed=sample_rate)
    y, sr = librosa.load(str(path), sr=16000)
    S = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=256, fmax=8000, n_fft=1024, hop_length=512)
    ref = librosa.power_to_db(S, ref=np.max)
    ours, duration = dsp.track_mel_db(path)
    assert ours.shape == ref.shape and duration == int(np.floor(len(y) / sr))
    diff = np.abs(ours - ref)
    assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] > 0.9999
    assert np.quantile(diff, 0.99) < 0.2  # dB; the 16 kHz-native path is exact (< 0.01 dB, tested above)
    for img in dsp.db_window_images(ours, duration):  # the original's loop, in place on ref
        a, b = dsp.frame_span(img.window.ini, img.window.fin)
        sample = ref[:, a:b]
        sample[np.where(sample < np.median(sample.ravel()))] = np.min(sample.ravel())
        painted = colorizer.Colorizer(cmap="gray_r").to_rgba(sample[::-1], bytes=True)[..., 0].astype(int)
        assert painted.shape == img.pixels.shape
        assert np.corrcoef(painted.ravel(), img.pixels.ravel())[0, 1] > 0.995
        assert np.mean(np.abs(painted - img.pixels) <= 1) > 0.98


def test_analysis_grids_fall_on_the_reference_bins():
    params = dsp.SpectroParams()
    grid = dsp.analysis_grid(22050, params)
    assert (grid.rate, grid.n_fft, grid.hop_length, grid.stretch_up) == (22000, 1408, 704, 440)
    for rate, n_fft in ((24000, 1536), (32000, 2048), (44000, 2816)):
        grid = dsp.analysis_grid(rate, params)
        assert (grid.rate, grid.n_fft, grid.hop_length, grid.stretch_up) == (rate, n_fft, n_fft // 2, 0)
    for rate in (16000, 11025, 8000):  # the original's own rate, and rates below the filterbank's band
        assert dsp.analysis_grid(rate, params) is None
    for rate in (22050, 24000, 32000):  # the same bins as the reference: 15.625 Hz apart
        grid = dsp.analysis_grid(rate, params)
        assert grid.rate / grid.n_fft == Fraction(16000, 1024) and grid.hop_length / grid.rate == Fraction(512, 16000)


@pytest.mark.parametrize("source_rate", [44100, 48000, 22050])
def test_resampler_gain_is_soxrs_response_to_sines(source_rate):
    """The impulse-response measurement against soxr's output for pure tones."""
    import soxr

    gain = dsp.resampler_gain(source_rate)
    t = np.arange(source_rate * 2) / source_rate
    for k in (64, 300, 480, 486, 492, 498):  # 1 kHz ... 7.78 kHz, through soxr's roll-off
        tone = np.sin(2 * np.pi * k * 15.625 * t)
        out = soxr.resample(tone, source_rate, 16000, quality="HQ")[8000:-8000]
        power = 2 * np.mean(out**2)  # a unit sine's mean square is 1/2
        assert 10 * np.log10(power) == pytest.approx(10 * np.log10(gain[k]), abs=0.05)


def test_stretch_interpolates_like_a_long_polyphase_filter():
    import scipy.signal

    rng = np.random.default_rng(4)
    # Band-limited noise below 8 kHz at 22.05 kHz.
    x = scipy.signal.lfilter(*scipy.signal.butter(8, 8000, fs=22050), rng.standard_normal(22050 * 4)).astype(np.float32)
    n_out = len(x) * 440 // 441
    ours = dsp.stretch(x, 440, n_out)
    reference = scipy.signal.resample_poly(x.astype(np.float64), 440, 441, window=("kaiser", 12.0))[:n_out]
    inner = slice(100, -100)
    error = np.mean((ours[inner] - reference[inner]) ** 2) / np.mean(reference[inner] ** 2)
    assert 10 * np.log10(error) < -40


def test_mpg123_half_rate_keeps_the_band_below_a_quarter_of_the_rate(tmp_path):
    import scipy.signal

    from specfleet.pipelines.melwindows import mpg123

    path = make_mp3(tmp_path / "t.mp3", 6, 44100, 2)
    full = mpg123.decode(path)
    half = mpg123.decode(path, half_rate_from=40000)
    assert (full.rate, full.source_rate, half.rate, half.source_rate) == (44100, 44100, 22050, 44100)
    assert abs(len(half.samples) * 2 - len(full.samples)) <= 2
    # Below 8 kHz the half-rate samples are the full-rate ones (decimated with a
    # long filter), half a full-rate sample (11 us) earlier: the gapless trim
    # of 1105 samples is rounded at the half rate. An STFT frame moves by as
    # much, which no power spectrum shows.
    upsampled = scipy.signal.resample_poly(full.samples.astype(np.float64), 2, 1)  # 88.2 kHz
    band = scipy.signal.butter(8, 8000, fs=22050, output="sos")
    b = scipy.signal.sosfilt(band, half.samples.astype(np.float64))[2000:-2000]

    def error_db(shift_quarter_samples: int) -> float:
        a = scipy.signal.resample_poly(np.roll(upsampled, shift_quarter_samples), 1, 4)[: len(half.samples)]
        a = scipy.signal.sosfilt(band, a)[2000:-2000]
        return float(10 * np.log10(np.mean((a - b) ** 2) / np.mean(a**2)))

    assert error_db(2) < -50  # aligned: the same band-limited signal
    assert error_db(0) > -30  # the half-sample offset is real
    # A 32 kHz stream stays at its rate (its quarter, 8 kHz, is the filterbank's top).
    assert mpg123.decode(make_mp3(tmp_path / "l.mp3", 3, 32000, 1), half_rate_from=40000).rate == 32000


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (48000, 1), (22050, 2), (16000, 1)])
def test_probe_reads_what_libsndfile_reads(tmp_path: Path, rate: int, channels: int) -> None:
    """The probe (libmpg123, quiet) sees the same rate, channels and frames
    as the original's reader (libsndfile, through which librosa loads)."""
    import soundfile as sf

    path = make_mp3(tmp_path / "t.mp3", 3.3, sample_rate=rate, channels=channels)
    info, ours = sf.info(str(path)), dsp.probe(path)
    assert (ours.sample_rate, ours.channels, ours.frames) == (info.samplerate, info.channels, info.frames)


def test_probe_of_a_broken_mp3_is_a_clear_error_and_prints_nothing(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"\0" * 2000 + b"not audio" * 300)
    with pytest.raises(dsp.AudioError, match=r"broken\.mp3 \(\d+ bytes\) is not a decodable audio file"):
        dsp.probe(broken)
    out, err = capfd.readouterr()  # the file descriptors, where C libraries write
    assert (out, err) == ("", "")
