"""Synthetic but realistic broadband hydrophone data, written by obspy.

Used by the local OOI stand-in, the tests and the benchmark: coloured
ocean noise, sonar-ping-like tone bursts every few seconds, and whale-like
frequency sweeps, as int32 counts at 64 kHz, encoded as Steim2 miniSEED.
"""

from __future__ import annotations

import datetime as dt
import io

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


def gap_mseed_bytes(
    seconds: float,
    start: dt.datetime,
    *,
    gap_from_s: float,
    gap_s: float,
    sample_rate: float = SAMPLE_RATE,
    seed: int = 1,
    overlap_s: float = 0.0,
) -> bytes:
    """A file with a data gap (two traces with missing time between them) and,
    optionally, a second trace overlapping the first by ``overlap_s``."""
    from obspy import Stream, Trace, UTCDateTime

    data = synthetic_signal(seconds, sample_rate=sample_rate, seed=seed)
    cut_a = int(gap_from_s * sample_rate)
    cut_b = int((gap_from_s + gap_s) * sample_rate)
    header = {"network": "OO", "station": "HYVM1", "location": "", "channel": "YDH", "sampling_rate": sample_rate}
    first = Trace(data[:cut_a].copy(), header={**header, "starttime": UTCDateTime(start)})
    second = Trace(data[cut_b:].copy(), header={**header, "starttime": UTCDateTime(start) + cut_b / sample_rate})
    traces = [first, second]
    if overlap_s > 0:
        k = int(overlap_s * sample_rate)
        # Same samples again (as a re-sent record would be): a harmless overlap.
        third = Trace(data[cut_b : cut_b + k].copy(), header={**header, "starttime": UTCDateTime(start) + cut_b / sample_rate})
        traces.append(third)
    return stream_bytes(Stream(traces))
