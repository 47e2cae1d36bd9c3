"""Synthetic broadband hydrophone data, written by obspy.

Two generators, both int32 counts at 64 kHz, encoded as Steim2 miniSEED:

- ``synthetic_signal``: coloured noise, sonar-ping-like tone bursts every
  few seconds and whale-like sweeps. Cheap; the local OOI stand-in and most
  tests use it. Its spectrum is flat up to Nyquist, so its dB span is small.
- ``realistic_signal``: built to have the spectral shape and dynamic range
  of real OOI broadband recordings (no pip package ships real 64 kHz
  hydrophone data): a DC offset, a 1/f background with a steeper rise below
  ~30 Hz, a passing ship (noise band + blade-rate tonals), broadband clicks,
  a long quiet stretch, and the recorder's steep anti-alias roll-off near
  Nyquist, below which only the integer rounding of the samples is left.
  Its clips span ~230-245 dB from the loudest to the faintest spectrogram
  cell, as real recordings do (230-260 dB); the fidelity tests and the
  benchmark use it.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable

import numpy as np
import scipy.signal

SAMPLE_RATE = 64_000.0


def synthetic_signal(
    seconds: float,
    *,
    sample_rate: float = SAMPLE_RATE,
    seed: int = 0,
    ping_every_s: float = 5.0,
    ping_hz: float = 3_500.0,
) -> np.ndarray:
    """int32 counts: noise + pings (one per ``ping_every_s``, placed in the first
    second of each period) + a few whale-like up-sweeps."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    white = rng.standard_normal(n, dtype=np.float32)
    # Ocean noise falls off with frequency: a one-pole low-pass mixed with white.
    noise = scipy.signal.lfilter([0.05], [1.0, -0.95], white).astype(np.float32) * 4.0 + white * 0.3
    x = noise * 300.0
    t_ping = np.arange(int(0.02 * sample_rate), dtype=np.float32) / sample_rate
    burst = np.sin(2 * np.pi * ping_hz * t_ping) * np.hanning(len(t_ping)).astype(np.float32) * 20_000.0
    for start in np.arange(0.0, seconds, ping_every_s):
        at = int((start + rng.uniform(0.1, 0.9)) * sample_rate)
        if at + len(burst) <= n:
            x[at : at + len(burst)] += burst
    # Whale-like calls: 1.5 s sweeps from ~300 Hz up to ~1.2 kHz every ~20 s.
    call_n = int(1.5 * sample_rate)
    t_call = np.arange(call_n, dtype=np.float64) / sample_rate
    call = (scipy.signal.chirp(t_call, f0=300, t1=1.5, f1=1200, method="quadratic") * np.hanning(call_n) * 3_000.0)
    for start in np.arange(2.0, seconds - 1.5, 20.0):
        at = int((start + rng.uniform(0, 3)) * sample_rate)
        if at + call_n <= n:
            x[at : at + call_n] += call.astype(np.float32)
    return np.round(x).astype(np.int32)


def _rolloff_gain(freqs: np.ndarray, nyquist: float, pass_frac: float, stop_frac: float, stop_db: float) -> np.ndarray:
    """Amplitude gain of a steep anti-alias filter: 1 up to ``pass_frac`` of
    Nyquist, down ``stop_db`` (raised cosine in dB) at ``stop_frac``, flat after."""
    f0, f1 = pass_frac * nyquist, stop_frac * nyquist
    u = np.clip((freqs - f0) / (f1 - f0), 0.0, 1.0)
    return 10.0 ** (-stop_db * (1.0 - np.cos(np.pi * u)) / 2.0 / 20.0)


def _shaped_noise(
    rng: np.random.Generator, n: int, sample_rate: float, shape: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """float32 Gaussian noise of length ``n`` with amplitude spectrum
    ``shape(freqs)``, made in the frequency domain (one inverse FFT), unit RMS.
    float32 is enough: its rounding noise is ~40 dB below the integer
    rounding of the final counts."""
    import scipy.fft

    m = n // 2 + 1
    freqs = np.arange(m, dtype=np.float64) * (sample_rate / n)
    spec = np.empty(m, dtype=np.complex64)
    spec.real = rng.standard_normal(m, dtype=np.float32)
    spec.imag = rng.standard_normal(m, dtype=np.float32)
    spec *= shape(freqs).astype(np.float32)
    spec[0] = 0.0
    x = scipy.fft.irfft(spec, n)
    x /= max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), 1e-30)
    return x


def _quiet_gain(n: int, start: int, stop: int, ramp: int, floor: float) -> np.ndarray:
    """1 outside ``[start, stop)``, ``floor`` inside, raised-cosine ramps of
    ``ramp`` samples just outside both ends."""
    gain = np.ones(n, dtype=np.float32)
    gain[max(start, 0) : max(stop, 0)] = floor
    edge = ((1.0 + np.cos(np.pi * np.arange(ramp) / ramp)) / 2.0).astype(np.float32)  # 1 -> 0
    down = slice(max(start - ramp, 0), max(start, 0))
    gain[down] = floor + (1.0 - floor) * edge[ramp - (down.stop - down.start) :]
    up = slice(min(stop, n), min(stop + ramp, n))
    gain[up] = floor + (1.0 - floor) * edge[::-1][: up.stop - up.start]
    return gain


def realistic_signal(
    seconds: float,
    *,
    sample_rate: float = SAMPLE_RATE,
    seed: int = 0,
    dc_offset: int = -300_000,
    level: float = 2.0e4,
    quiet: tuple[float, float] = (0.55, 0.85),
    clicks_per_s: float = 3.0,
    pass_frac: float = 0.80,
    stop_frac: float = 0.90,
    stop_db: float = 130.0,
) -> np.ndarray:
    """int32 counts shaped like a real OOI broadband recording (see module doc).

    ``level`` is the background RMS in counts; between the fractions
    ``quiet`` of the file the background drops 12 dB and ship and clicks
    stop. The roll-off passes ``pass_frac`` of Nyquist and is ``stop_db``
    down from ``stop_frac`` on. Whatever reaches the roll-off band is made in
    the frequency domain (the background) or has no energy there by
    construction (Gaussian-enveloped clicks, a band-limited ship, tonals with
    float64 phase), so a 5-minute file takes a few seconds.
    """
    if seconds <= 0 or sample_rate <= 0:
        raise ValueError("seconds and sample_rate must be positive")
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    nyquist = sample_rate / 2.0

    def background_shape(f: np.ndarray) -> np.ndarray:
        fe = np.maximum(f, 0.5)
        # 1/f power, plus flow noise rising as 1/f^2 below ~30 Hz.
        return np.sqrt(1.0 / fe + 30.0 / fe**2) * _rolloff_gain(f, nyquist, pass_frac, stop_frac, stop_db)

    def ship_shape(f: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 * (np.log(np.maximum(f, 1.0) / 250.0) / 0.8) ** 2)  # ~60-1000 Hz

    ramp = int(2.0 * sample_rate)
    q0, q1 = int(quiet[0] * n), int(quiet[1] * n)
    x = _shaped_noise(rng, n, sample_rate, background_shape)
    x *= _quiet_gain(n, q0, q1, ramp, 0.25) * np.float32(level)

    # A passing ship, closest at 30 % of the file: noise band + blade-rate tonals.
    ship = _shaped_noise(rng, n, sample_rate, ship_shape)
    for h, f in enumerate((48.0, 96.0, 144.0, 192.0, 355.0)):
        # float64 phase: float32 time would jitter it into broadband spurs.
        phase = np.arange(n, dtype=np.float64) * (2 * np.pi * f / sample_rate) + rng.uniform(0, 2 * np.pi)
        ship += np.sin(phase).astype(np.float32) * np.float32(0.6 / (h + 1))
    t_s = np.arange(n, dtype=np.float32) / np.float32(sample_rate)
    ship_env = 3.0 * level / (1.0 + ((t_s - 0.3 * seconds) / (0.12 * seconds + 1.0)) ** 2)
    ship *= ship_env * _quiet_gain(n, q0, q1, ramp, 0.0)
    x += ship

    # Clicks: Gaussian-enveloped tone bursts (8-18 kHz, sigma 0.1 ms): their
    # spectrum is ~170 dB down by the roll-off band, like filtered real clicks.
    sigma = 1e-4 * sample_rate
    half = int(6 * sigma)
    k = np.arange(-half, half + 1, dtype=np.float64)
    envelope = np.exp(-0.5 * (k / sigma) ** 2)
    n_clicks = int(rng.poisson(clicks_per_s * seconds))
    if n > 2 * half + 2:
        for at in np.sort(rng.integers(half, n - half - 1, n_clicks)):
            if q0 - ramp <= at < q1 + ramp:
                continue
            f0 = rng.uniform(8e3, 18e3)
            amp = level * rng.uniform(2.0, 15.0)
            burst = amp * envelope * np.sin(2 * np.pi * f0 * k / sample_rate + rng.uniform(0, 2 * np.pi))
            x[at - half : at + half + 1] += burst.astype(np.float32)
    # Integer counts: the rounding is the white floor the roll-off sinks to.
    return np.round(x).astype(np.int32) + np.int32(dc_offset)


def mseed_bytes(
    data: np.ndarray,
    start: dt.datetime,
    *,
    sample_rate: float = SAMPLE_RATE,
    network: str = "OO",
    station: str = "HYVM1",
    location: str = "",
    channel: str = "YDH",
    reclen: int = 4096,
) -> bytes:
    """One trace as Steim2 miniSEED bytes (obspy's writer)."""
    from obspy import Stream, Trace, UTCDateTime

    trace = Trace(
        np.ascontiguousarray(data, dtype=np.int32),
        header={
            "network": network, "station": station, "location": location, "channel": channel,
            "sampling_rate": sample_rate, "starttime": UTCDateTime(start),
        },
    )
    return stream_bytes(Stream([trace]), reclen=reclen)


def stream_bytes(stream: object, reclen: int = 4096) -> bytes:
    buf = io.BytesIO()
    stream.write(buf, format="MSEED", encoding="STEIM2", reclen=reclen)  # type: ignore[attr-defined]
    return buf.getvalue()


#: Samples per packet of the OOI broadband recorder (40 ms at 64 kHz): one
#: piece of a file per packet (ooi-data/ooi-hyd-tools, docs/upstream-repair.md).
PACKET_SAMPLES = 2560


def pieces_stream(
    data: np.ndarray,
    start: dt.datetime,
    *,
    sample_rate: float = SAMPLE_RATE,
    piece_samples: int = PACKET_SAMPLES,
    label_noise_s: float = 0.0,
    breaks: tuple[tuple[float, float], ...] = (),
    seed: int = 0,
    network: str = "OO",
    station: str = "HYVM1",
    location: str = "",
    channel: str = "YDH",
) -> object:
    """An obspy ``Stream`` holding ``data`` the way the OOI archive does: one
    trace per ``piece_samples`` packet, each labelled with its true start
    plus a uniform error of up to +-``label_noise_s`` (the recorder's
    mislabelled arrival times; OOI sees 10-250 ms). ``breaks`` are
    ``(at_s, seconds)`` of real breaks: the recording of those seconds is
    gone (their samples are left out, the clock runs on). Samples are
    never dropped or duplicated otherwise; pieces never straddle a break."""
    from obspy import Stream, Trace, UTCDateTime

    rng = np.random.default_rng(seed)
    n = len(data)
    keep = np.ones(n, dtype=bool)
    for at_s, gap_s in breaks:
        keep[int(round(at_s * sample_rate)) : int(round((at_s + gap_s) * sample_rate))] = False
    # Runs of kept samples, then packets within each run.
    edges = np.flatnonzero(np.diff(np.concatenate(([0], keep.astype(np.int8), [0]))))
    header = {"network": network, "station": station, "location": location, "channel": channel,
              "sampling_rate": sample_rate}
    t0 = UTCDateTime(start)
    traces = []
    for a, b in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        for p in range(a, b, piece_samples):
            q = min(p + piece_samples, b)
            label = t0 + p / sample_rate + (rng.uniform(-label_noise_s, label_noise_s) if label_noise_s else 0.0)
            traces.append(Trace(np.ascontiguousarray(data[p:q], dtype=np.int32), header={**header, "starttime": label}))
    return Stream(traces)


def pieces_mseed_bytes(data: np.ndarray, start: dt.datetime, **kwargs: object) -> bytes:
    """``pieces_stream`` as Steim2 miniSEED bytes (obspy's writer)."""
    return stream_bytes(pieces_stream(data, start, **kwargs))  # type: ignore[arg-type]


def gap_mseed_bytes(
    seconds: float,
    start: dt.datetime,
    *,
    gap_from_s: float,
    gap_s: float,
    sample_rate: float = SAMPLE_RATE,
    seed: int = 1,
    label_noise_s: float = 0.0,
) -> bytes:
    """A file with one real break: ``gap_s`` seconds of recording gone from
    ``gap_from_s`` on, in packets labelled with up to +-``label_noise_s``."""
    data = synthetic_signal(seconds, sample_rate=sample_rate, seed=seed)
    return pieces_mseed_bytes(data, start, sample_rate=sample_rate, label_noise_s=label_noise_s,
                              breaks=((gap_from_s, gap_s),), seed=seed)
