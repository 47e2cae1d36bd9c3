"""The original whaledr tool's per-clip path, for the benchmark and the fidelity tests.

A faithful copy of ``data_push`` of ``whaledr_data_push_parallel.py`` (the
5 s / viridis / 0-11 kHz version, SPEC.md "What the original tools did,
exactly"), with only its I/O changed: it reads a local miniSEED file instead
of a URL and writes JPEG and WAV files instead of uploading them. Every
number and call that shapes an image is the original's: obspy ``read`` and
``stream.slice``, ``mlab.specgram(data / 1e-6, NFFT, noverlap)``,
``10 * log10``, DC row dropped, ``flipud``, the original's ``extent``,
``imshow(interpolation="nearest", cmap="viridis")`` on a 512x512 figure,
``Normalize`` at 50 %/95 % of the min..max, ``savefig(".jpg")``. The one
addition: matplotlib >= 3.3 no longer applies ``savefig.jpeg_quality``, so
quality 95 (the original's matplotlib default) is passed explicitly.

``render_clip`` also returns the figure's pixels as drawn (before JPEG), so
tests can read back which colour each pixel got.
"""

from __future__ import annotations

import math as M
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specfleet.pipelines.hydrophone import dsp

STEP_SIZE = 5  # seconds per clip
TIMESTEP = 5  # a clip every this many detected seconds
WLEN = 0.056
PER_LAP = 0.995


def _nearest_pow_2(x: float) -> float:
    a = M.pow(2, M.ceil(np.log2(x)))
    b = M.pow(2, M.floor(np.log2(x)))
    return a if abs(a - x) < abs(b - x) else b


@dataclass
class OriginalClip:
    name: str
    #: Clip start as a POSIX timestamp (the ping time the original found).
    start: float
    samples: np.ndarray
    #: (512, 512, 4) uint8 pixels of the figure as drawn (alpha 0 = background).
    rgba: np.ndarray
    #: The original's colour range and span of the clip (dB).
    vmin: float
    vmax: float
    db_span: float


def ping_times(stream) -> list:  # noqa: ANN001  (an obspy Stream)
    """The original's per-second signed-argmax ping detection."""
    samp_rate = stream[0].stats.sampling_rate
    t_start = stream[0].stats.starttime
    duration = stream[0].stats.endtime - t_start
    duration_check = int(duration) - 1
    pingtimes = []
    for stratpoint in range(max(duration_check, 0)):
        pingindex = np.argmax(stream[0].data[int(stratpoint * samp_rate) : int((stratpoint + 1) * samp_rate)])
        pingtimes.append(t_start + stratpoint + pingindex * stream[0].stats.delta)
    return pingtimes


def render_clip(trace_data: np.ndarray, samp_rate: float, jpg_path: Path | None = None) -> tuple[np.ndarray, float, float, float]:
    """One clip's figure, exactly as the original drew it. Returns
    ``(rgba, vmin, vmax, span)`` and writes ``jpg_path`` if given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import mlab
    from matplotlib.colors import Normalize

    nfft = int(_nearest_pow_2(WLEN * samp_rate))
    nlap = int(nfft * float(PER_LAP))
    npts = len(trace_data)
    end = npts / samp_rate
    specgram, freq, time = mlab.specgram(trace_data / 1e-6, NFFT=nfft, Fs=samp_rate, noverlap=nlap, pad_to=None)
    specgram = 10 * np.log10(specgram[1:, :])
    specgram = np.flipud(specgram)
    freq = freq[1:] / 1e3  # Convert Frequency to kHz
    halfbin_time = (time[1] - time[0]) / 2.0
    halfbin_freq = (freq[1] - freq[0]) / 2.0
    freq = np.concatenate((freq, [freq[-1] + 2 * halfbin_freq]))
    time = np.concatenate((time, [time[-1] + 2 * halfbin_time]))
    extent = (time[0] - halfbin_time, time[-1] + halfbin_time, freq[0] - halfbin_freq, freq[-1] + halfbin_freq)
    vmin = 0.50
    vmax = 0.95
    _range = float(specgram.max() - specgram.min())
    vmin = specgram.min() + vmin * _range
    vmax = specgram.min() + vmax * _range
    norm = Normalize(vmin, vmax)

    fig = plt.figure(frameon=False, figsize=(8, 8))
    ax = plt.Axes(fig, [0.0, 0.0, 1.0, 1.0])
    ax.set_axis_off()
    fig.add_axes(ax)
    ax.imshow(specgram, interpolation="nearest", extent=extent, norm=norm, cmap="viridis")
    dpi = fig.get_dpi()
    fig.set_size_inches(512 / float(dpi), 512 / float(dpi))
    ax.axis("tight")
    ax.set_xlim(0, end)
    ax.set_ylim(0, 11)
    ax.grid(False)
    ax.set_xlabel("Time [s]")
    ax.set_ylabel("Frequency [kHz]")
    if jpg_path is not None:
        plt.savefig(jpg_path, pil_kwargs={"quality": 95})
    else:
        fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba()).copy()
    plt.cla()
    plt.clf()
    plt.close("all")
    return rgba, float(vmin), float(vmax), _range


def save_wav(trace, path: Path, samp_rate: float) -> None:  # noqa: ANN001  (an obspy Trace)
    """The original's ``Save2Wav``."""
    sound = trace.copy()
    sound.normalize()
    sound.data = (sound.data * (2**31 - 1)).astype("int32")
    sound.write(str(path), format="WAV", framerate=samp_rate)


def original_clip(stream, ping_time, out_dir: Path | None, keep_pixels: bool = True) -> OriginalClip:  # noqa: ANN001
    """One iteration of the original's clip loop: slice, draw, save JPEG and WAV."""
    from obspy import UTCDateTime

    samp_rate = stream[0].stats.sampling_rate
    st = stream.slice(UTCDateTime(ping_time), UTCDateTime(ping_time) + STEP_SIZE)
    trace = st[0].copy()
    filename = (
        st[0].stats.network + "_" + st[0].stats.station + "_" + st[0].stats.location + "_"
        + st[0].stats.channel + "_" + str(UTCDateTime(ping_time)).replace("-", "_").replace(":", "_")
    )
    name = filename[:-8]
    jpg = out_dir / f"{name}.jpg" if out_dir is not None else None
    rgba, vmin, vmax, span = render_clip(trace.data, samp_rate, jpg)
    if out_dir is not None:
        save_wav(st[0], out_dir / f"{name}.wav", samp_rate)
    return OriginalClip(name, float(ping_time.timestamp), trace.data.copy(), rgba if keep_pixels else rgba[:0], vmin, vmax, span)


def original_file(path: Path, out_dir: Path | None, *, max_clips: int | None = None) -> list[OriginalClip]:
    """``data_push`` on a local file: every clip's JPEG + WAV into ``out_dir``
    (when given), the first ``max_clips`` clips only if given."""
    from obspy import read

    stream = read(str(path))
    pingtimes = ping_times(stream)
    starts = pingtimes[::TIMESTEP]
    return [original_clip(stream, t, out_dir) for t in starts[:max_clips]]


def canonical_index(index: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Colour indices with colormap entries of the same byte colour merged to
    the lowest (viridis truncated to bytes has two such pairs: 104/105 and
    137/138), so indices read back from pixels compare equal to computed ones."""
    codes = (lut[:, 0].astype(np.int64) << 16) | (lut[:, 1].astype(np.int64) << 8) | lut[:, 2]
    first = {}
    canon = np.empty(len(lut), dtype=np.uint8)
    for i, c in enumerate(codes.tolist()):
        canon[i] = first.setdefault(c, i)
    return canon[index]


def pixels_to_index(rgba: np.ndarray, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Colour index per pixel of a drawn figure (exact colormap colours; the
    lowest of equal-coloured entries, see ``canonical_index``) and the
    background mask (alpha 0). Raises if a drawn pixel has a colour the
    colormap does not hold."""
    code = lambda rgb: (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]  # noqa: E731
    keys = code(lut)
    order = np.argsort(keys, kind="stable")
    pix = code(rgba[..., :3])
    pos = np.clip(np.searchsorted(keys[order], pix), 0, len(keys) - 1)
    index = order[pos]
    background = rgba[..., 3] == 0
    wrong = (keys[index] != pix) & ~background
    if wrong.any():
        raise ValueError(f"{int(wrong.sum())} drawn pixels are not colormap colours, e.g. {rgba[wrong][0]}")
    return index.astype(np.uint8), background


# --- references for the averaged rendering's tests and the benchmark --------------
def reference_grid_db(
    clip: np.ndarray, sample_rate: float, params: dsp.SpectrogramParams = dsp.SpectrogramParams()
) -> tuple[np.ndarray, float, float]:
    """The original's full-resolution spectrogram (``mlab.specgram``, every
    frame) in dB, averaged down to the same pixel grid; plus its min/max dB."""
    from matplotlib import mlab

    nfft = dsp.window_length(sample_rate, params.window_s)
    noverlap = int(params.overlap * nfft)
    pxx, _freqs, _t = mlab.specgram(np.asarray(clip, dtype=np.float64), NFFT=nfft, Fs=sample_rate, noverlap=noverlap)
    pxx = pxx[1:]  # DC row dropped, as in the original
    floor = max(float(pxx.max()) * params.floor_rel, np.finfo(np.float32).tiny)
    db = 10.0 * np.log10(np.maximum(pxx, floor))
    weights = dsp.frequency_weights(nfft, float(sample_rate), params.fmax_hz, params.height)
    low = weights @ db[: weights.shape[1]].astype(np.float32)  # (height, frames)
    total = low.shape[1]
    edges = (np.arange(params.width + 1) * total / params.width).astype(np.int64)
    grid = np.add.reduceat(low, edges[:-1], axis=1) / np.diff(edges)[None, :]
    return grid.astype(np.float32), float(db.min()), float(db.max())


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    denom = M.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / denom) if denom else 0.0
