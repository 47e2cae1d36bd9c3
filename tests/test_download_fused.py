"""The fused download path (issue 19): the download worker writes the
spectrogram windows itself. Real yt-dlp against the local video site, real
ffmpeg/libmpg123, moto S3/SQS, Postgres through the status poller; the
images are compared with the two-stage path's and with the original's
librosa path (SPEC.md: ``ffmpeg -i song.mp3 song.wav``, ``librosa.load(wav,
sr=16000)``, melspectrogram, power_to_db, the in-place median floor,
``gray_r``)."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from specto_original import original_window_samples

from helpers import count, query, wait_for
from specfleet.ffmpeg import ffmpeg_path
from specfleet.pipelines import get_spec, job_queue, status_queue
from specfleet.pipelines.download.fused import decode_source
from specfleet.pipelines.download.worker import audio_key
from specfleet.pipelines.melwindows import dsp
from specfleet.pipelines.melwindows.settings import SpectroSettings
from specfleet.pipelines.music.settings import MusicSettings
from specfleet.runtime import EXIT_OK, Worker
from specfleet.standins.video_site import VideoSite
from specfleet.storage import Storage

#: 65 s: windows 0-30, 20-50 and the end-anchored 35-65 (the original's rule).
SECONDS = 65.0
WINDOWS = [(0, 0, 30), (1, 20, 50), (2, 35, 65)]


def music(site: VideoSite, tmp_path: Path, **overrides: object) -> MusicSettings:
    (tmp_path / "dl").mkdir(exist_ok=True)
    return MusicSettings(**{"extra_hosts": [site.host], "socket_timeout_s": 5, "ytdlp_retries": 0,
                            "tmp_dir": str(tmp_path / "dl"), **overrides})


def download(settings, config: MusicSettings, *jobs: tuple[str, str]) -> Worker:
    job_queue(settings, "download").send_json({"track_id": t, "yt_url": url} for t, url in jobs)
    worker = Worker(settings, get_spec("download"), concurrency=2, idle_exit_s=1.5, config=config)
    assert worker.run() == EXIT_OK
    return worker


def windows(storage: Storage, track_id: str) -> dict[tuple[int, int, int], np.ndarray]:
    """``(win, ini, fin) -> grey pixels`` of a track's JPEGs under ``spec/``."""
    out = {}
    for key, _ in storage.list(f"spec/{track_id}__"):
        win, ini, fin = (int(x) for x in key[:-4].split("__")[1:])
        out[(win, ini, fin)] = np.asarray(Image.open(io.BytesIO(storage.get_bytes(key))), dtype=np.float64)
    return out


def specto_rows(settings, track_id: str) -> list[tuple]:
    return query(settings, "SELECT stat, win, ini, fin, rows, cols, instance_id FROM status_specto"
                           " WHERE track_id = %s ORDER BY win", (track_id,))


def original_windows(audio: Path, workdir: Path) -> dict[tuple[int, int], np.ndarray]:
    """The original worker on ``audio``: its ffmpeg -> WAV step, then librosa
    and its window loop verbatim; ``(ini, fin) -> painted grey levels``."""
    import librosa
    from matplotlib import colorizer

    wav = workdir / "song.wav"
    subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(audio), str(wav), "-y"], check=True)
    y, sr = librosa.load(str(wav), sr=16000)
    S = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=256, fmax=8000, n_fft=1024, hop_length=512)
    S_dB = librosa.power_to_db(S, ref=np.max)
    out = {}
    for ini, end, sample in original_window_samples(S_dB, len(y), sr):
        out[(ini, end)] = colorizer.Colorizer(cmap="gray_r").to_rgba(sample, bytes=True)[::-1, :, 0].astype(float)
    return out


def corr(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_fused_download_writes_what_the_two_stage_path_writes(settings, site, tmp_path):
    s = settings
    site.add_video("v1", "Artist - Song", seconds=SECONDS)
    url = site.watch_url("v1")
    # Two-stage: download, then the spectrogram worker reads the mp3 back from S3.
    download(s, music(site, tmp_path), ("two1", url))
    job_queue(s, "spectrogram").send_json([{"track_id": "two1"}])
    spectro = Worker(s, get_spec("spectrogram"), concurrency=1, idle_exit_s=1.5, config=SpectroSettings(processes=1))
    assert spectro.run() == EXIT_OK and spectro.metrics()["done"] == 1
    # Fused: one job, no spectrogram job; with the mp3 written, and without
    # (the windows still show the mp3, as the two-stage path's do).
    fused = download(s, music(site, tmp_path, fused=True), ("fus1", url))
    assert fused.metrics()["done"] == 1
    assert download(s, music(site, tmp_path, fused=True, write_mp3=False), ("nomp3", url)).metrics()["done"] == 1
    assert sum(job_queue(s, "spectrogram").depth().values()) == 0

    storage = Storage(s)
    assert storage.exists(audio_key("fus1")) and not storage.exists(audio_key("nomp3"))
    two, fus, nomp3 = windows(storage, "two1"), windows(storage, "fus1"), windows(storage, "nomp3")
    assert sorted(fus) == sorted(two) == sorted(nomp3) == WINDOWS
    for w in WINDOWS:
        assert corr(fus[w], two[w]) >= 0.99 and corr(nomp3[w], two[w]) >= 0.99, w
        assert np.array_equal(fus[w], two[w]), f"{w}: the same mp3 through the same code must give the same JPEG"
        assert np.array_equal(nomp3[w], two[w]), w

    # The same rows in the same tables: one per window in status_specto (the
    # fused worker's instance id), one per job in the download table.
    wait_for(lambda: count(s, "status_specto") == 3 * len(WINDOWS), what="the window rows of every path")
    wait_for(lambda: count(s, "status") == 3, what="the download rows")
    assert [r[:6] for r in specto_rows(s, "fus1")] == [r[:6] for r in specto_rows(s, "two1")] == [
        (1, win, ini, fin, 256, 937 + (fin == 65)) for win, ini, fin in WINDOWS
    ]
    assert {r[6] for r in specto_rows(s, "fus1")} == {s.instance_id}
    assert query(s, "SELECT track_id, stat FROM status ORDER BY track_id") == [("fus1", 1), ("nomp3", 1), ("two1", 1)]

    # ...and the images are the original's, computed from the mp3 in S3.
    mp3 = tmp_path / "fus1.mp3"
    storage.download(audio_key("fus1"), mp3)
    original = original_windows(mp3, tmp_path)
    assert sorted(original) == [(ini, fin) for _, ini, fin in WINDOWS]
    for win, ini, fin in WINDOWS:
        assert corr(fus[(win, ini, fin)], original[(ini, fin)]) >= 0.99, (win, ini, fin)

    # Redelivered: the mp3 (written last) says it is all done: skipped, not fetched again, no new rows.
    fetched = site.count("watch:v1")
    download(s, music(site, tmp_path, fused=True), ("fus1", url))
    wait_for(lambda: count(s, "status", "stat = 2") == 1, what="the skip row")
    assert site.count("watch:v1") == fetched
    assert count(s, "status_specto") == 3 * len(WINDOWS)
    assert list((tmp_path / "dl").iterdir()) == [], "temp folders must be cleaned"


def test_fused_from_the_source_writes_windows_of_the_source_audio(settings, site, tmp_path):
    s = settings
    site.add_video("v2", "Band - Tune", seconds=SECONDS)
    config = music(site, tmp_path, fused=True, write_mp3=False, fused_source="source")
    assert download(s, config, ("src1", site.watch_url("v2"))).metrics()["done"] == 1
    storage = Storage(s)
    assert storage.count("audio/") == 0, "no mp3 asked for, none written"
    fus = windows(storage, "src1")
    assert sorted(fus) == WINDOWS
    wait_for(lambda: count(s, "status_specto", "stat = 1") == len(WINDOWS), what="the window rows")
    assert query(s, "SELECT stat FROM status WHERE track_id = 'src1'") == [(1,)]
    # Computed from the source (no mp3 coding loss): the original's path run on the same source.
    original = original_windows(site.media_path("v2"), tmp_path)
    for win, ini, fin in WINDOWS:
        assert corr(fus[(win, ini, fin)], original[(ini, fin)]) >= 0.99, (win, ini, fin)
    # Redelivered: its windows are there, so it is skipped without a fetch.
    fetched = site.count("watch:v2")
    download(s, config, ("src1", site.watch_url("v2")))
    wait_for(lambda: count(s, "status", "stat = 2") == 1, what="the skip row")
    assert site.count("watch:v2") == fetched


@pytest.mark.parametrize("write_mp3, source", [(True, "mp3"), (False, "source"), (True, "source")])
def test_a_track_the_spectrogram_refuses_is_a_reasoned_status_specto_row(settings, site, tmp_path, write_mp3, source):
    s = settings
    site.add_video("short", "Intro - Jingle", seconds=0.6)  # under min_duration_s (1 s): no window
    config = music(site, tmp_path, fused=True, write_mp3=write_mp3, fused_source=source)
    download(s, config, ("short1", site.watch_url("short")))
    wait_for(lambda: count(s, "status_specto") == 1, what="the spectrogram's refusal row")
    ((stat, win, _ini, _fin, rows, cols, _instance),) = specto_rows(s, "short1")
    assert (stat, win, rows, cols) == (0, -1, 0, 0)
    (reason,) = query(s, "SELECT reason FROM status_specto WHERE track_id = 'short1'")[0]
    assert "0 s long, shorter than 1 s: no windows" in reason
    # The download itself is done: its row says so, and the mp3 is there if asked for.
    wait_for(lambda: count(s, "status") == 1, what="the download row")
    assert query(s, "SELECT stat FROM status") == [(1,)]
    assert Storage(s).exists(audio_key("short1")) is write_mp3
    assert sum(status_queue(s, "spectrogram").depth().values()) == 0
    assert list((tmp_path / "dl").iterdir()) == [], "temp folders must be cleaned"


def test_fused_settings_come_from_the_environment_and_write_mp3_false_needs_fused(monkeypatch):
    monkeypatch.setenv("SPECFLEET_MUSIC_FUSED", "true")
    monkeypatch.setenv("SPECFLEET_MUSIC_WRITE_MP3", "false")
    monkeypatch.setenv("SPECFLEET_MUSIC_FUSED_SOURCE", "source")
    config = get_spec("download").config()
    assert isinstance(config, MusicSettings)
    assert (config.fused, config.write_mp3, config.fused_source) == (True, False, "source")
    monkeypatch.setenv("SPECFLEET_MUSIC_FUSED_SOURCE", "wav")
    with pytest.raises(ValueError, match="fused_source"):
        MusicSettings()
    monkeypatch.delenv("SPECFLEET_MUSIC_FUSED")
    monkeypatch.delenv("SPECFLEET_MUSIC_FUSED_SOURCE")
    with pytest.raises(ValueError, match="write_mp3=false needs fused=true"):
        MusicSettings()


# --- decoding the source ------------------------------------------------------------------
def encode(path: Path, samples: np.ndarray, rate: int, codec: list[str]) -> Path:
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-f", "f32le", "-ar", str(rate), "-ac", str(channels),
                    "-i", "-", *codec, str(path)], input=samples.astype(np.float32).tobytes(), check=True)
    return path


def ffmpeg_channels(path: Path) -> np.ndarray:
    """ffmpeg's own decode of every channel, (frames, channels) float32."""
    probe = subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(path), "-f", "wav", "-c:a", "pcm_f32le", "-"],
                           capture_output=True, check=True).stdout
    channels = int.from_bytes(probe[22:24], "little")
    data_at = probe.index(b"data") + 8
    return np.frombuffer(probe[data_at:], dtype="<f4").reshape(-1, channels)


@pytest.mark.parametrize("rate, channels, codec, suffix", [
    (48000, 2, ["-c:a", "libopus", "-b:a", "48k"], ".webm"),
    (44100, 2, ["-c:a", "aac", "-b:a", "96k"], ".m4a"),
    (22050, 1, ["-c:a", "aac", "-b:a", "64k"], ".m4a"),
])
def test_decode_source_is_the_channel_mean_at_the_source_rate(tmp_path, rate, channels, codec, suffix):
    rng = np.random.default_rng(rate)
    t = np.arange(int(7.3 * rate)) / rate
    left = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    sig = np.stack([left, 0.2 * np.sin(2 * np.pi * 1000 * t)], axis=1)[:, :channels]
    path = encode(tmp_path / f"src{suffix}", sig if channels > 1 else sig[:, 0], rate, codec)
    samples, got_rate = decode_source(path, ffmpeg=ffmpeg_path(), max_duration_s=60)
    reference = ffmpeg_channels(path).mean(axis=1, dtype=np.float32)
    assert got_rate == rate
    assert samples.dtype == np.float32 and samples.shape == reference.shape
    assert np.abs(samples - reference).max() < 1e-6
    assert abs(samples.size / rate - 7.3) < 0.05


def test_decode_source_stops_at_the_duration_limit_and_names_bad_files(tmp_path):
    rate = 22050
    path = encode(tmp_path / "long.m4a", 0.1 * np.ones(30 * rate), rate, ["-c:a", "aac"])
    with pytest.raises(dsp.TooLongError, match="more than 10 s"):
        decode_source(path, ffmpeg=ffmpeg_path(), max_duration_s=10)
    bad = tmp_path / "bad.m4a"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(dsp.AudioError, match="bad.m4a could not be decoded"):
        decode_source(bad, ffmpeg=ffmpeg_path(), max_duration_s=10)
    text = tmp_path / "notes.m4a"
    text.write_text(json.dumps({"not": "audio"}))
    with pytest.raises(dsp.AudioError, match="notes.m4a"):
        decode_source(text, ffmpeg=ffmpeg_path(), max_duration_s=10)
