"""The fused download path (``MusicSettings.fused``): the download worker
computes the track's spectrogram windows from the audio it has on hand, so
the mp3 makes no round trip through S3 and no spectrogram job is needed.

It writes what the two-stage path writes, where users look for it: the
same ``spec/{track_id}__{win}__{ini}__{fin}.jpg`` keys, one
``status_specto`` row per window (stat 1, the worker's ``instance_id``; the
original's monitoring SQL -- windows per track per instance, tracks done --
reads the same), and the usual one row per job in the download table
``status``. A spectrogram refusal (too short, too long, undecodable) is a
``status_specto`` row with stat 0 or 2 and the reason, as the spectrogram
worker writes it; the download itself still counts as done (stat 1) when
the audio was fetched and the mp3 written. The mp3 is uploaded last, so an
mp3 in S3 means its windows are there too (the skip check relies on it).

Which audio the windows show (``MusicSettings.fused_source``):

* ``mp3`` (default): the mp3 as encoded (uploaded or not, ``write_mp3``),
  decoded locally with the spectrogram worker's own guards and code
  (``mp3_windows``). These are the samples the two-stage path reads back
  from S3 and the samples the original analysed, so the images are the
  same, byte for byte. It costs the mp3 decode (libmpg123 at half rate,
  ~0.1 s per 3-minute track), little next to the mp3 encode.
* ``source``: ffmpeg decodes the downloaded file once (``decode_source``);
  with ``write_mp3=false`` nothing is encoded but the JPEGs, the cheapest
  path by far (the mp3 encode is most of a download's CPU). These images
  show the audio without the mp3's coding loss, and after the original's
  median floor that is a visible difference: pixel correlation ~0.8-0.9
  with the two-stage images (``benchmarks/download.py --cost`` measures
  it), while against the original's own computation run on the same source
  audio they agree to >= 0.99 (tests/test_download_fused.py).

The spectrogram parameters are the spectrogram pipeline's settings
(``SPECFLEET_SPECTRO_*``), read once per worker: both paths make the same
windows from the same settings.
"""

from __future__ import annotations

import math
import os
import struct
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from ...runtime import JobContext, Rejected, Skipped, StatusSender, Transient
from ...settings import Settings
from ...status import Stat
from ...storage import Storage
from ..melwindows import dsp
from ..melwindows.compute import (
    TrackResult,
    check_size,
    compute_decoded,
    mp3_windows,
    no_windows,
    params_from_settings,
    put_windows,
    warm_up_dsp,
    window_status,
)
from ..melwindows.models import SPECTO_STATUS, SpectoJob
from ..melwindows.models import failure_status as spectrogram_failure
from ..melwindows.settings import SpectroSettings

#: (decoded rate, stream rate) pairs a fused worker warms up for: the mp3
#: decodes of 44.1/48 kHz streams (half rate) and sources at their own rate.
_WARM_RATES = ((22050, 44100), (24000, 48000), (44100, 44100), (48000, 48000), (22050, 22050))
#: Bytes read from ffmpeg per call while decoding a source.
_CHUNK_BYTES = 1 << 20


@dataclass
class FusedSpectrogram:
    """What a fused download worker holds for the spectrogram part."""

    config: SpectroSettings
    params: dsp.SpectroParams
    #: The spectrogram pipeline's status queue (``status_specto``).
    sender: StatusSender
    #: Spectrogram computations at once (``SpectroSettings.processes``, 0 =
    #: one per CPU): their arrays are tens of MB each.
    slots: threading.BoundedSemaphore


def make_fused(settings: Settings, config: SpectroSettings | None = None, *, warm: bool = True) -> FusedSpectrogram:
    """Per worker: the spectrogram settings (``config`` or the environment),
    its status sender, and (``warm``) every first-call cost paid now."""
    config = config or SpectroSettings()
    params = params_from_settings(config)
    if warm:
        warm_up_dsp(params, _WARM_RATES)
    return FusedSpectrogram(
        config=config,
        params=params,
        sender=StatusSender(settings, SPECTO_STATUS),
        slots=threading.BoundedSemaphore(config.processes or os.cpu_count() or 1),
    )


def windows_done(storage: Storage, track_id: str, prefix: str) -> bool:
    """Whether any window of ``track_id`` is in S3 (the spectrogram
    producer's rule for a done track)."""
    return next(iter(storage.list(f"{prefix}{track_id}__")), None) is not None


def spectrogram_stage(
    fused: FusedSpectrogram, storage: Storage, ctx: JobContext, track_id: str, audio: Path, *, is_mp3: bool,
    ffmpeg: str = "",
) -> TrackResult | None:
    """Compute ``audio``'s windows, upload them and send their
    ``status_specto`` rows; or, when the spectrogram refuses the track, send
    its stat 0/2 row and return None. ``Transient`` propagates (the whole job
    is retried; keys and dedupe keys repeat, so nothing doubles). ``ffmpeg``:
    the configured binary (``MusicSettings.ffmpeg``) for a source decode."""
    config = fused.config
    message_id = ctx.message.message_id
    try:
        with fused.slots:
            if is_mp3:
                key = f"{config.audio_prefix}{track_id}.mp3"  # what the reasons of the two-stage path name
                check_size(audio.stat().st_size, key, config.max_mp3_bytes)
                _, result = mp3_windows(audio, key, config, ctx.cancelled, track_id=track_id)
            else:
                result = source_windows(audio, f"{track_id}'s source audio ({audio.suffix.lstrip('.')})",
                                        fused.params, ffmpeg=ffmpeg, cancelled=ctx.cancelled, track_id=track_id)
    except (Rejected, Skipped) as err:
        stat, kind = (Stat.SKIPPED, "skipped") if isinstance(err, Skipped) else (Stat.FAILED, "rejected")
        record = spectrogram_failure(SpectoJob(track_id=track_id), ctx, stat)
        fused.sender.send_many(
            [fused.sender.message(record, dedupe_key=f"{message_id}/specto/{kind}", reason=err.reason)]
        )
        return None
    put_windows(storage, track_id, result, config.output_prefix, ctx.cancelled)
    fused.sender.send_many([
        fused.sender.message(window_status(ctx.instance_id, track_id, w), dedupe_key=f"{message_id}/specto/win{w.window.win}")
        for w in result.windows
    ])
    return result


def source_windows(
    path: Path, what: str, params: dsp.SpectroParams, *, ffmpeg: str = "", cancelled: threading.Event | None = None,
    track_id: str = "",
) -> TrackResult:
    """The windows of a downloaded source file (any container ffmpeg reads),
    decoded once at its own rate; their metadata names ``what`` as the
    source. Raises ``Rejected``/``Skipped``."""
    from ...ffmpeg import ffmpeg_path

    try:
        samples, rate = decode_source(path, ffmpeg=ffmpeg_path(ffmpeg), max_duration_s=params.max_duration_s)
    except dsp.TooLongError as err:
        raise Skipped(f"{what}: {err} (SPECFLEET_SPECTRO_MAX_DURATION_S)") from None
    except dsp.AudioError as err:
        raise Rejected(f"{what}: {err}") from None
    if cancelled is not None and cancelled.is_set():
        raise Transient("worker shutting down")
    try:
        result = compute_decoded(samples, rate, rate, params, decoder="ffmpeg", source=what, track_id=track_id)
    except dsp.AudioError as err:
        raise Rejected(f"{what}: {err}") from None
    if not result.windows:
        raise no_windows(what, result.duration_s, params.min_duration_s)
    return result


# --- decoding a source with ffmpeg ----------------------------------------------------------
def decode_source(path: Path, *, ffmpeg: str, max_duration_s: float | None = None) -> tuple[np.ndarray, int]:
    """The first audio stream of ``path`` as mono float32 (the mean of its
    channels, as ``librosa.load`` mixes) at its own rate, and that rate.

    ffmpeg decodes and streams float WAV through a pipe; channels are mixed
    chunk by chunk, so memory holds the mono samples only, and never more
    than ``max_duration_s`` of them plus one (``TooLongError`` then, whatever
    the container claimed). ``AudioError`` when ffmpeg cannot decode it."""
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", f"file:{path}",
           "-map", "0:a:0", "-vn", "-c:a", "pcm_f32le", "-f", "wav", "-fflags", "+bitexact", "-map_metadata", "-1",
           "pipe:1"]
    with tempfile.TemporaryFile() as errors, \
            subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors) as proc:
        assert proc.stdout is not None
        try:
            samples, rate = _read_wav_stream(proc.stdout, path.name, max_duration_s)
        except dsp.AudioError:
            proc.kill()
            proc.wait()
            errors.seek(0)
            detail = errors.read().decode(errors="replace").strip().splitlines()
            if proc.returncode not in (0, -9) and detail:
                raise dsp.AudioError(f"{path.name} could not be decoded: {detail[-1][:300]}") from None
            raise
        if proc.wait() != 0:
            errors.seek(0)
            detail = errors.read().decode(errors="replace").strip().splitlines()
            raise dsp.AudioError(f"{path.name} could not be decoded: {(detail or ['ffmpeg failed'])[-1][:300]}")
    return samples, rate


_WAVE_FORMAT_IEEE_FLOAT, _WAVE_FORMAT_EXTENSIBLE = 3, 0xFFFE


def _read_exactly(stream: IO[bytes], n: int, name: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise dsp.AudioError(f"{name} decoded to no audio")
    return data


def _read_wav_stream(stream: IO[bytes], name: str, max_duration_s: float | None) -> tuple[np.ndarray, int]:
    """Mono float32 samples and the rate of ffmpeg's float WAV on ``stream``
    (a pipe: the sizes in its header are placeholders, the data runs to EOF)."""
    riff = _read_exactly(stream, 12, name)
    if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise dsp.AudioError(f"{name}: ffmpeg did not produce WAV")
    channels = rate = 0
    while True:  # chunks up to "data": "fmt " and whatever else ffmpeg adds
        chunk_id, size = struct.unpack("<4sI", _read_exactly(stream, 8, name))
        if chunk_id == b"data":
            break
        if size > 1 << 16:
            raise dsp.AudioError(f"{name}: unexpected {size}-byte WAV header chunk {chunk_id!r}")
        body = _read_exactly(stream, size + (size & 1), name)
        if chunk_id == b"fmt ":
            tag, channels, rate, _byte_rate, _align, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _WAVE_FORMAT_EXTENSIBLE and size >= 26:
                tag = struct.unpack("<H", body[24:26])[0]
            if tag != _WAVE_FORMAT_IEEE_FLOAT or bits != 32 or channels < 1 or rate < 1:
                raise dsp.AudioError(f"{name}: ffmpeg produced WAV format {tag}/{bits} bit, not 32-bit float")
    if not channels:
        raise dsp.AudioError(f"{name}: WAV without a format chunk")
    limit = None if max_duration_s is None else int(math.floor(max_duration_s * rate))
    frame_bytes = 4 * channels
    out = np.empty(1 << 20, dtype=np.float32)
    filled = 0
    pending = b""
    while True:
        chunk = stream.read(_CHUNK_BYTES)
        if not chunk:
            break
        data = pending + chunk if pending else chunk
        usable = len(data) - len(data) % frame_bytes
        pending = data[usable:]
        mono = dsp.channel_mean(np.frombuffer(data, dtype="<f4", count=usable // 4).reshape(-1, channels))
        if filled + mono.size > out.size:
            out = np.concatenate([out[:filled], np.empty(max(out.size, mono.size), dtype=np.float32)])
        out[filled:filled + mono.size] = mono
        filled += mono.size
        if limit is not None and filled > limit:
            raise dsp.TooLongError(f"{name} holds more than {max_duration_s:g} s of audio (decoding stopped there)")
    if filled == 0:
        raise dsp.AudioError(f"{name} decoded to no samples")
    return out[:filled], int(rate)
