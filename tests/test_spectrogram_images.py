"""Every mel-spectrogram window JPEG carries its parameters (a JSON JPEG
comment) without a pixel changing (issue 18).

No stack: the worker's one-job path (``spectrogram_file``, what
``specfleet spectrogram AUDIO`` runs, through ``compute_track`` as a worker
job does) on real mp3s made by ffmpeg/LAME. The worker's S3 key in the
metadata is checked in test_spectrogram_worker.py."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import specfleet
from specfleet.pipelines.spectrogram import dsp, imagemeta, mpg123
from specfleet.pipelines.spectrogram.imagemeta import read_metadata
from specfleet.pipelines.spectrogram.worker import compute_track, spectrogram_file
from specfleet.settings import Settings
from test_spectrogram_dsp import make_mp3


def original_windows(path: Path) -> list[np.ndarray]:
    """The original worker's blocks (SPEC.md, section 2): librosa.load at
    16 kHz, melspectrogram(n_mels=256, fmax=8000, n_fft=1024, hop=512),
    power_to_db(ref=np.max), the median floor in place, window after window."""
    import librosa

    y, sr = librosa.load(str(path), sr=16000)
    ref = librosa.power_to_db(
        librosa.feature.melspectrogram(y=y, sr=sr, n_mels=256, fmax=8000, n_fft=1024, hop_length=512), ref=np.max
    )
    blocks = []
    for w in dsp.window_plan(int(np.floor(len(y) / sr))):
        a, b = int(w.ini / (512 / 16000)), int(w.fin / (512 / 16000))
        sample = ref[:, a:b]
        sample[np.where(sample < np.median(sample.ravel()))] = np.min(sample.ravel())
        blocks.append(sample.copy())
    return blocks


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    return make_mp3(tmp_path_factory.mktemp("song") / "song.mp3", 50.2, 44100, 2, seed=8)


# --- metadata on the pipeline's images --------------------------------------------------------------
def test_every_window_jpeg_names_its_source_window_parameters_and_db_span(song, tmp_path):
    summary = spectrogram_file(song, "t1", tmp_path, Settings())
    assert [(w["win"], w["ini"], w["fin"]) for w in summary["windows"]] == [(0, 0, 30), (1, 20, 50)]
    originals = original_windows(song)
    for w, original in zip(summary["windows"], originals, strict=True):
        meta = read_metadata(Path(w["path"]).read_bytes())
        assert (meta["source"], meta["track_id"], meta["Software"]) == (str(song), "t1", imagemeta.SOFTWARE)
        assert meta["specfleet_version"] == specfleet.__version__
        assert (meta["win"], meta["window_start_s"], meta["window_end_s"]) == (str(w["win"]), str(w["ini"]), str(w["fin"]))
        assert (meta["width"], meta["height"]) == (str(w["cols"]), "256")
        assert int(meta["frame_first"]) == int(w["ini"] / (512 / 16000))  # the original's column arithmetic
        assert int(meta["frame_end"]) - int(meta["frame_first"]) == w["cols"]
        # The original's parameters (SPEC.md section 2), as the worker ran them.
        assert {k: meta[k] for k in ("sample_rate_hz", "n_fft", "hop_length", "n_mels", "fmin_hz", "fmax_hz",
                                     "top_db", "cmap", "mode", "jpeg_quality", "mel_scale", "window")} == {
            "sample_rate_hz": "16000", "n_fft": "1024", "hop_length": "512", "n_mels": "256", "fmin_hz": "0",
            "fmax_hz": "8000", "top_db": "80", "cmap": "gray_r", "mode": "L", "jpeg_quality": "75",
            "mel_scale": "slaney", "window": "hann"}
        # A 44.1 kHz stream: libmpg123's half-rate synthesis on the 22 kHz grid.
        assert (meta["render"], meta["source_sample_rate_hz"], meta["decoded_rate_hz"]) == ("half-rate-grid", "44100", "22050")
        # The dB span is the one the original painted white..black for this window.
        lo, hi = float(meta["db_lo"]), float(meta["db_hi"])
        assert lo == pytest.approx(float(original.min()), abs=0.2)
        assert hi == pytest.approx(float(original.max()), abs=0.2)
        assert float(meta["db_span"]) == pytest.approx(hi - lo, abs=2e-4) and -80 <= lo < hi <= 0


def test_the_comment_leaves_the_pixels_alone_and_is_the_same_every_run(song):
    params = dsp.SpectroParams()
    first = compute_track(str(song), params, source="audio/t1.mp3", track_id="t1")
    again = compute_track(str(song), params, source="audio/t1.mp3", track_id="t1")
    assert [w.jpeg for w in first.windows] == [w.jpeg for w in again.windows]  # idempotent: no dates, no hosts
    db, duration = dsp.track_mel_db(song, params)
    for result, img in zip(first.windows, dsp.db_window_images(db, duration, params), strict=True):
        plain = dsp.encode_jpeg(img.pixels, quality=params.jpeg_quality)  # the worker's JPEG before this change
        assert read_metadata(plain) == {} and read_metadata(result.jpeg)["track_id"] == "t1"
        with_comment = np.asarray(Image.open(io.BytesIO(result.jpeg)))
        assert np.array_equal(with_comment, np.asarray(Image.open(io.BytesIO(plain))))
        assert with_comment.shape == (256, result.cols)
        assert len(result.jpeg) - len(plain) < 2000  # a comment, ~1.3 kB


@pytest.mark.parametrize(
    "rate, render, decoded",
    [(44100, "half-rate-grid", 22050), (48000, "half-rate-grid", 24000), (32000, "grid", 32000),
     (16000, "native", 16000), (8000, "resampled", 8000)],
)
def test_render_path_names_what_the_decoder_does(tmp_path, rate, render, decoded):
    path = make_mp3(tmp_path / "t.mp3", 3, rate, 1)
    found = imagemeta.render_path_of_file(path)
    actual = mpg123.decode(path, half_rate_from=dsp.half_rate_from(dsp.SpectroParams()))  # what track_mel_db runs
    assert (found.name, found.decoded_rate, found.source_rate, found.decoder) == (render, decoded, rate, "libmpg123")
    assert (actual.rate, actual.source_rate) == (found.decoded_rate, found.source_rate)
