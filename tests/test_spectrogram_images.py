"""Every mel-spectrogram window JPEG carries its parameters (a JSON JPEG
comment) without a pixel changing, and `spectrogram preview` draws a window
a scientist can read: time in s, a mel axis labelled in Hz, a dB colourbar,
in the colours of the pipeline's image of that window (issue 18).

No stack: the worker's one-job path (``spectrogram_file``, what
``specfleet spectrogram AUDIO`` runs, through ``compute_track`` as a worker
job does) on real mp3s made by ffmpeg/LAME. The worker's S3 key in the
metadata is checked in test_spectrogram_worker.py."""

from __future__ import annotations

import functools
import io
import json
import math
import shutil
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import specfleet
from specfleet.ffmpeg import encode_mp3
from specfleet.imagemeta import read_metadata
from specfleet.pipelines.melwindows import dsp, imagemeta, mpg123
from specfleet.pipelines.melwindows.compute import compute_track
from specfleet.pipelines.melwindows.settings import SpectroSettings
from specfleet.pipelines.spectrogram.preview import PreviewError, preview
from specfleet.pipelines.spectrogram.worker import spectrogram_file
from specfleet.standins.http import BackgroundServer
from test_spectrogram_dsp import make_mp3

TONE_HZ, TONE_FROM_S = 2000.0, 10.0


def slaney_mel(hz: float) -> float:
    """Slaney's mel scale written out (linear to 1 kHz, then logarithmic),
    independent of the code under test."""
    return 3 * hz / 200 if hz < 1000 else 15 + 27 * math.log(hz / 1000) / math.log(6.4)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


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


@pytest.fixture(scope="module")
def tone(tmp_path_factory) -> Path:
    """Quiet noise with a loud 2 kHz tone from 10 s on, 70 s (windows 0-30,
    20-50, 40-70): where it shows in the figure checks the figure's axes."""
    sr = 44100
    t = np.arange(70 * sr) / sr
    x = 0.01 * np.random.default_rng(2).standard_normal(t.size) + np.where(
        t >= TONE_FROM_S, 0.3 * np.sin(2 * np.pi * TONE_HZ * t), 0.0
    )
    return encode_mp3(tmp_path_factory.mktemp("tone") / "tone.mp3", x.astype(np.float32), sr)


# --- metadata on the pipeline's images --------------------------------------------------------------
@pytest.mark.slow  # fast lane: over ~2 s (the full suite runs it)
def test_every_window_jpeg_names_its_source_window_parameters_and_db_span(song, tmp_path):
    summary = spectrogram_file(song, "t1", tmp_path, SpectroSettings())
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


# --- the preview figure ---------------------------------------------------------------------------------
@pytest.mark.slow  # fast lane: over ~2 s (the full suite runs it)
def test_preview_has_seconds_a_mel_axis_in_hz_a_db_colourbar_and_the_pipelines_colours(tone, tmp_path, artifacts_dir):
    from matplotlib import colorizer
    from matplotlib.colors import Normalize

    from specfleet.cli.main import app

    out = tmp_path / "preview.png"
    run = CliRunner().invoke(app, ["spectrogram", "preview", str(tone), "--out", str(out), "--json"])
    assert run.exit_code == 0, run.output
    reported = json.loads(run.stdout)
    assert (reported["win"], reported["ini"], reported["fin"], reported["windows"]) == (0, 0, 30, 3)
    shutil.copy(out, artifacts_dir / "spectrogram-preview.png")

    result = preview(str(tone), tmp_path / "again.png")
    png = Image.open(out)
    assert png.format == "PNG" and png.size == result.size == tuple(reported["size"]) == (1000, 560)
    rgb = np.asarray(png.convert("RGB")).astype(float)
    lum = luminance(rgb)
    left, top, right, bottom = result.axes_box

    # The tone is the darkest row after 10 s (gray_r: loud is dark), on the
    # 2 kHz tick, where Slaney's mel scale puts 2 kHz between 0 and 8 kHz.
    late = lum[top + 2 : bottom - 2, left + int(0.5 * (right - left)) : right - 2].mean(axis=1)
    row = top + 2 + int(np.argmin(late))
    tick_rows = dict(result.ticks)
    assert [f for f, _ in result.ticks] == [0, 250, 500, 750, 1000, 1500, 2000, 3000, 4000, 6000, 8000]
    assert abs(row - tick_rows[TONE_HZ]) <= 3
    expected = bottom - slaney_mel(TONE_HZ) / slaney_mel(8000) * (bottom - top)
    assert abs(row - expected) <= 3
    assert abs(tick_rows[1000] - (bottom - 15 / slaney_mel(8000) * (bottom - top))) <= 1.5  # 1 kHz = 15 mel
    # ...and it starts at 10 s on the time axis (frames centred every 32 ms; the axes run -16 ms to 29.968 s).
    along = lum[row, left + 2 : right - 2]
    onset = left + 2 + int(np.argmax(along < 60))
    seconds = -0.016 + (onset - left) / (right - left) * (29.968 + 0.016)
    assert seconds == pytest.approx(TONE_FROM_S, abs=0.15)

    # The colourbar: gray_r from white (db_lo) at the bottom to black (db_hi) at the top.
    bl, bt, br, bb = result.colorbar_box
    assert bl > right and br - bl > 10 and bb - bt > 300
    column = lum[bt + 3 : bb - 3, (bl + br) // 2]
    assert column[:5].mean() < 15 and column[-5:].mean() > 240
    assert np.all(np.diff(column) >= -1)  # lighter downwards, all the way
    # Labels: frequency ticks left, time ticks below, the title above, dB ticks right of the bar.
    dark = lum < 110
    assert dark[top:bottom, : left - 3].sum() > 300
    assert dark[bottom + 3 :, left:right].sum() > 300
    assert dark[: top - 2, left:right].sum() > 300
    assert dark[bt:bb, br + 2 :].sum() > 300

    # The colours are the pipeline's: the dB block drawn is the one the worker
    # painted, in the range its JPEG records, with the same grey for each cell.
    windows = compute_track(str(tone), dsp.SpectroParams(), source=str(tone)).windows
    jpeg_meta = read_metadata(windows[0].jpeg)
    assert (jpeg_meta["db_lo"], jpeg_meta["db_hi"]) == (result.metadata["db_lo"], result.metadata["db_hi"])
    assert float(jpeg_meta["db_lo"]) == pytest.approx(reported["db_lo"], abs=1e-4)
    db, duration = dsp.track_mel_db(tone)
    pipeline = next(dsp.db_window_images(db, duration))
    assert np.array_equal(result.db, pipeline.db)
    painted = colorizer.Colorizer(cmap="gray_r", norm=Normalize(result.vmin, result.vmax))
    greys = painted.to_rgba(result.db[::-1], bytes=True)[..., 0].astype(int)
    assert np.abs(greys - pipeline.pixels).max() <= 1
    plot = lum[top + 3 : bottom - 3, left + 3 : right - 3]
    assert plot.mean() == pytest.approx(pipeline.pixels.mean(), abs=4)  # the figure shows those greys

    meta = read_metadata(out.read_bytes())
    assert meta["figure"] == "preview" and meta["source"] == str(tone) and meta["win"] == "0"
    assert (meta["fmax_hz"], meta["n_mels"], meta["render"]) == ("8000", "256", "half-rate-grid")
    assert "window 0 of 3: 0–30 s of 70 s" in meta["Title"]


def test_a_later_window_is_the_pipelines_after_the_earlier_floors(tone, tmp_path):
    """--start picks the window starting nearest that second; window 2
    (40-70 s) shares 10 s with window 1, which floored them first."""
    result = preview(str(tone), tmp_path / "w2.png", start_s=45)
    assert (result.window.win, result.window.ini, result.window.fin, result.windows) == (2, 40, 70, 3)
    db, duration = dsp.track_mel_db(tone)
    assert np.array_equal(result.db, list(dsp.db_window_images(db, duration))[2].db)
    assert preview(str(tone), tmp_path / "w1.png", start_s=29).window.win == 1  # 20 is nearer than 40


class _Files(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # type: ignore[no-untyped-def]  # quiet
        pass


def test_preview_reads_urls_through_the_host_policy_and_says_what_is_wrong(tone, tmp_path):
    (tmp_path / "site").mkdir()
    shutil.copy(tone, tmp_path / "site" / "tone.mp3")
    server = BackgroundServer(functools.partial(_Files, directory=str(tmp_path / "site"))).start()  # type: ignore[arg-type]
    try:
        url = f"{server.base_url}/tone.mp3"
        allowed = SpectroSettings(allowed_hosts=[server.netloc])
        got = preview(url, tmp_path / "url.png", window=1, config=allowed)
        assert got.window.win == 1 and read_metadata((tmp_path / "url.png").read_bytes())["source"] == url
        with pytest.raises(PreviewError, match="not allowed .*SPECFLEET_SPECTRO_ALLOWED_HOSTS"):
            preview(url, tmp_path / "no.png", config=SpectroSettings(allowed_hosts=[]))
        with pytest.raises(PreviewError, match="answered HTTP 404"):
            preview(f"{server.base_url}/gone.mp3", tmp_path / "no.png", config=allowed)
        with pytest.raises(PreviewError, match="over the 1000-byte limit"):
            preview(url, tmp_path / "no.png", config=allowed, max_url_bytes=1000)
    finally:
        server.close()
    assert not (tmp_path / "no.png").exists()


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["{missing}"], 1, "no such file: {missing}"),
        (["{broken}"], 1, "broken.mp3 ("),
        (["{tone}", "--window", "3"], 2, "window 3 does not exist: the track has 3 window(s) (0-2: 0-30 s, 20-50 s, 40-70 s)"),
        (["{tone}", "--window", "1", "--start", "20"], 2, "give --window or --start, not both"),
        (["{tone}", "--start", "70"], 2, "--start 70 is outside the track (0-70 s)"),
        (["{tone}", "--cmap", "no_such_map"], 2, "unknown colour map 'no_such_map'"),
        (["http://127.0.0.1:9/x.mp3"], 1, "mp3 host '127.0.0.1:9' is not allowed (allowed: none)"),
        (["{tone}", "--out", "{tmp}/x.jpg"], 2, "--out must name a .png file"),
    ],
)
def test_preview_errors_are_one_line(tone, tmp_path, args, code, message):
    from specfleet.cli.main import app

    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"\0" * 2000 + b"not audio" * 300)
    names = {"missing": str(tmp_path / "nope.mp3"), "broken": str(broken), "tone": str(tone), "tmp": str(tmp_path)}
    argv = [a.format(**names) for a in args]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "x.png")]
    run = CliRunner(env={"COLUMNS": "300"}).invoke(app, ["spectrogram", "preview", *argv])
    lines = [line for line in run.output.splitlines() if line.strip()]
    assert run.exit_code == code, run.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in run.output, run.output
    assert message.format(**names) in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_the_cli_contract_still_runs_one_track(song, tmp_path):
    """`specfleet spectrogram AUDIO --track-id ID --out DIR` (SPEC.md) beside `spectrogram preview`."""
    from specfleet.cli.main import app

    run = CliRunner().invoke(app, ["spectrogram", str(song), "--track-id", "t1", "--out", str(tmp_path), "--json"])
    assert run.exit_code == 0, run.output
    assert [w["win"] for w in json.loads(run.stdout)["windows"]] == [0, 1]
    assert read_metadata((tmp_path / "t1__1__20__50.jpg").read_bytes())["window_start_s"] == "20"
    helped = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["spectrogram", "--help"])
    assert helped.exit_code == 0 and "preview" in helped.output and "run" in helped.output
