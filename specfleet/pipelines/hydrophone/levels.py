"""Calibrated sound levels: per-minute PSD at 1 Hz and hybrid millidecade bands.

Pure functions, arrays in, arrays out. They compute what MBARI's ``pbp``
(``mbari-pbp``, the tool NOAA/SoundCoop and OOI's ``ooi-hyd-tools`` use)
computes, and agree with it (``benchmarks/levels.py``, ``tests/test_hydrophone_levels.py``):

- **PSD per minute** (pbp's default segment: 60 s at the top of each
  minute): Welch's method as pbp runs it through PyPAM
  (``pypam.signal.Signal._spectrum``: ``scipy.signal.welch`` with a periodic
  Hann window of ``nfft = fs`` samples, i.e. 1 Hz bins, 50 % overlap, no
  detrending, density scaling, mean of the segments).
- **Hybrid millidecade bands** (Martin et al. 2021, doi:10.1121/10.0003324;
  ISO 18405 millidecade centres ``10^(1 + (2n-1)/2000)`` Hz): 1 Hz bands up
  to the frequency where a millidecade becomes wider than an FFT bin
  (~435 Hz at 1 Hz bins), millidecades above. Band edges and the split of an
  FFT bin that straddles two bands are PyPAM's
  (``pypam.utils.get_bands_limits`` / ``spectra_ds_to_bands``), the mean PSD
  over the band in counts^2/Hz.
- **Calibration.** OOI broadband samples are 24-bit ADC counts,
  right-justified in int32, full scale 2^23 counts = 3 V
  (``ooi-hyd-tools``: ``audio_to_spec.py`` and ``notebooks/03_PARSE_CAL_TO_NC``:
  "8388608 / 3 = 2796202 counts per volt which is equivalent to 128.9 dB").
  OOI's per-deployment calibration files (``metadata/cals/{refdes}_{deployment}.nc``)
  hold the hydrophone sensitivity S(f) in dB re 1 V/µPa; its
  ``metadata/rca_correction_cals/`` copies add those 128.9 dB, i.e. they are
  in dB re 1 count/µPa, and ``ooi-hyd-tools`` hands them to pbp with a
  voltage multiplier of 1 (pbp subtracts the sensitivity, interpolated
  linearly at each band centre, from ``10 log10`` of the band PSD). So::

      p [µPa] = counts / (2^23 / 3 V) / 10^(S/20)
      L [dB re 1 µPa²/Hz] = 10 log10(PSD [counts²/Hz]) - 20 log10(2^23/3) - S

  Without a calibration the levels stay in dB re 1 count²/Hz and say so
  (``Levels.units``, ``Levels.calibrated``).

Input is contiguous stretches of real samples (duck-typed: ``.start`` an
``obspy.UTCDateTime``, ``.samples`` int32 counts, ``.sample_rate``; the
sample-count repair's ``Stretch``). A minute is computed only from one
stretch that covers all of it; any other minute is missing (NaN, effort 0),
never averaged over zeros or across a gap.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

#: OOI broadband hydrophones: 24-bit ADC, 2^23 counts at its 3 V full scale.
ADC_FULL_SCALE_COUNTS = 2**23
ADC_FULL_SCALE_VOLTS = 3.0
COUNTS_PER_VOLT = ADC_FULL_SCALE_COUNTS / ADC_FULL_SCALE_VOLTS
#: 20 log10(2^23 / 3) = 128.93 dB: what ooi-hyd-tools' ``rca_correction_cals`` add (rounded to 128.9).
COUNTS_PER_VOLT_DB = 20.0 * math.log10(COUNTS_PER_VOLT)

UNITS_CALIBRATED = "dB re 1 uPa^2/Hz"
UNITS_UNCALIBRATED = "dB re 1 count^2/Hz (uncalibrated)"


class StretchLike(Protocol):
    """What the levels need of a stretch of contiguous samples."""

    @property
    def start(self) -> Any: ...  # obspy.UTCDateTime (or anything with .timestamp)

    @property
    def samples(self) -> np.ndarray: ...

    @property
    def sample_rate(self) -> float: ...


@dataclass(frozen=True)
class Run:
    """A stretch of contiguous real samples (what the sample-count repair's ``Stretch`` carries)."""

    start: Any
    samples: np.ndarray
    sample_rate: float


def runs_of(data: np.ndarray, gap_mask: np.ndarray | None, start: Any, sample_rate: float) -> list[Run]:
    """The stretches of real samples in a decoded trace whose gaps were filled
    (``gap_mask`` True where filled): each run starts ``i / rate`` after ``start``."""
    if gap_mask is None or not gap_mask.any():
        return [Run(start, data, sample_rate)] if len(data) else []
    real = ~np.asarray(gap_mask, dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate(([False], real, [False])).astype(np.int8)))
    return [Run(start + float(a) / sample_rate, data[a:b], sample_rate) for a, b in zip(edges[::2], edges[1::2], strict=True)]


@dataclass(frozen=True)
class LevelParams:
    """What a level product depends on besides the audio and the calibration.

    The defaults are pbp's: 60 s segments, 1 Hz bins, 50 % overlap, Hann.
    """

    #: Length of one level sample (pbp's segment); minutes start on the UTC minute grid.
    segment_s: float = 60.0
    #: FFT bin width: ``nfft = sample_rate / resolution_hz``.
    resolution_hz: float = 1.0
    overlap: float = 0.5
    #: How far a stretch may start after a minute begins (or end before it
    #: ends) and still count as covering it. The archive's time labels are
    #: off by 10-250 ms (the sample-count repair keeps samples, not labels),
    #: so a whole minute of samples placed within this of the grid is that minute.
    grid_tolerance_s: float = 0.25
    #: Band definition, recorded with the product.
    bands: str = "hybrid millidecade (Martin et al. 2021; pypam get_hybrid_millidecade_limits)"

    def nfft(self, sample_rate: float) -> int:
        n = int(round(sample_rate / self.resolution_hz))
        if n < 16:
            raise ValueError(f"{sample_rate:g} Hz at {self.resolution_hz:g} Hz resolution gives {n} FFT samples")
        return n

    def digest(self) -> str:
        """A short hash of the parameters (the product's provenance)."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- PSD


def hann(nfft: int) -> np.ndarray:
    """Periodic Hann window (``scipy.signal.get_window("hann", nfft)``, what PyPAM uses)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(nfft) / nfft)


def welch_psd(samples: np.ndarray, sample_rate: float, *, nfft: int, overlap: float = 0.5) -> np.ndarray:
    """One-sided PSD (units of ``samples``²/Hz) of one contiguous array,
    bins ``k * sample_rate / nfft`` for ``k = 0..nfft//2``.

    The result of ``scipy.signal.welch(x, fs, window=hann(nfft),
    noverlap=nfft*overlap, detrend=False, scaling="density")`` (what pbp
    runs), in about a third of its CPU time: the frames are a strided view,
    windowed into one reused buffer and transformed a few at a time (they
    stay in cache), and each bin's power is squared in place and summed into
    one accumulator (scipy multiplies complex conjugates and keeps every
    frame's spectrum). The FFTs are most of what is left. Double precision
    throughout: single precision was barely faster here and moved the
    faintest bands (a recorder's anti-alias floor, ~110 dB below the
    loudest) by up to 0.05 dB.
    """
    import scipy.fft

    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError("samples must be one-dimensional")
    n = len(x)
    step = nfft - int(nfft * overlap)
    if n < nfft or step <= 0:
        raise ValueError(f"need at least {nfft} samples and an overlap below 1 (got {n}, {overlap:g})")
    nseg = (n - nfft) // step + 1
    win = hann(nfft)
    frames = np.lib.stride_tricks.sliding_window_view(x, nfft)[::step][:nseg]
    acc = np.zeros(2 * (nfft // 2 + 1), dtype=np.float64)  # re², im² interleaved
    block = max(1, (1 << 18) // nfft)  # ~2 MB of frames at a time: they stay in cache through the FFT
    buf = np.empty((block, nfft), dtype=np.float64)
    for b in range(0, nseg, block):
        k = min(block, nseg - b)
        seg = np.multiply(frames[b : b + k], win, out=buf[:k])  # float64 (int32 counts are exact in it)
        spec = scipy.fft.rfft(seg, axis=-1).view(np.float64)
        np.square(spec, out=spec)
        acc += spec.sum(axis=0)
    acc = acc[0::2] + acc[1::2]
    psd = acc / (nseg * sample_rate * float(np.sum(win * win)))
    last = None if nfft % 2 else -1  # an even nfft's Nyquist bin is not doubled
    psd[1:last] *= 2.0
    return psd


# ------------------------------------------------------------------ minutes


@dataclass
class MinuteSpectra:
    """PSD per segment (minute) at ``frequency``; missing minutes are NaN rows."""

    #: Segment starts, ``datetime64[s]`` UTC.
    times: np.ndarray
    sample_rate: float
    frequency: np.ndarray
    #: (minutes, bins) float32, counts²/Hz; NaN where the minute is missing.
    psd: np.ndarray
    #: Seconds of audio behind each minute (0 where missing).
    effort_s: np.ndarray
    params: LevelParams = field(default_factory=LevelParams)

    @property
    def missing(self) -> np.ndarray:
        return self.effort_s <= 0


def _epoch(t: Any) -> float:
    """Seconds since 1970 of an obspy UTCDateTime, a datetime or a number."""
    if isinstance(t, int | float):
        return float(t)
    if isinstance(t, dt.datetime):
        return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()
    return float(t.timestamp)  # obspy.UTCDateTime


def minutes_touched(stretches: Iterable[StretchLike], params: LevelParams = LevelParams()) -> np.ndarray:
    """The segment starts (epoch seconds) on the grid that any stretch reaches into."""
    seg = params.segment_s
    found: set[int] = set()
    for s in stretches:
        t0 = _epoch(s.start)
        t1 = t0 + len(s.samples) / float(s.sample_rate)
        if t1 <= t0:
            continue
        first = math.floor((t0 + params.grid_tolerance_s) / seg)
        last = math.ceil((t1 - params.grid_tolerance_s) / seg)
        found.update(range(first, max(first + 1, last)))
    return np.array([k * seg for k in sorted(found)], dtype=np.float64)


def _covering(stretches: Sequence[StretchLike], t0: float, params: LevelParams) -> tuple[StretchLike, int] | None:
    """The stretch holding a whole segment from ``t0`` and the index of its
    first sample, or None."""
    for s in stretches:
        fs = float(s.sample_rate)
        need = int(round(params.segment_s * fs))
        offset = (t0 - _epoch(s.start)) * fs  # samples from the stretch's start to the minute's
        tol = params.grid_tolerance_s * fs
        if offset < -tol or len(s.samples) < need:
            continue
        i0 = max(0, int(round(offset)))
        if i0 + need > len(s.samples):
            if offset + need <= len(s.samples) + tol:
                i0 = len(s.samples) - need  # ends within the tolerance of the minute's end
            else:
                continue
        return s, i0
    return None


def minute_psd(
    stretches: Sequence[StretchLike],
    *,
    params: LevelParams = LevelParams(),
    minutes: np.ndarray | None = None,
) -> MinuteSpectra:
    """PSD of every segment in ``minutes`` (epoch seconds of segment starts;
    default: every minute the stretches reach into). A segment is computed
    from the one stretch that holds all of it, else marked missing."""
    if not stretches:
        raise ValueError("no stretches of samples")
    rates = {float(s.sample_rate) for s in stretches}
    if len(rates) != 1:
        raise ValueError(f"stretches at different sampling rates: {sorted(rates)}")
    fs = rates.pop()
    nfft = params.nfft(fs)
    grid = minutes_touched(stretches, params) if minutes is None else np.asarray(minutes)
    nbins = nfft // 2 + 1
    psd = np.full((len(grid), nbins), np.nan, dtype=np.float32)
    effort = np.zeros(len(grid), dtype=np.float32)
    need = int(round(params.segment_s * fs))
    for row, t0 in enumerate(grid):
        hit = _covering(stretches, float(t0), params)
        if hit is None:
            continue
        s, i0 = hit
        psd[row] = welch_psd(s.samples[i0 : i0 + need], fs, nfft=nfft, overlap=params.overlap)
        effort[row] = need / fs
    times = (np.asarray(grid, dtype=np.float64) * 1e6).astype("datetime64[us]").astype("datetime64[s]")
    return MinuteSpectra(times, fs, np.arange(nbins) * (fs / nfft), psd, effort, params)


# ------------------------------------------------------------------- bands


def _center_freq(n: int) -> float:
    """PyPAM's ``get_center_freq`` for 1000 bands per decade (an even count):
    ``10 * G^((2(n-1)+1)/(2*300))`` with ``G = 10^0.3``, i.e. ``10^(1 + (2n-1)/2000)``."""
    g = 10.0 ** (3.0 / 10.0)
    return 10.0 * g ** ((2 * (n - 1) + 1) / (2 * 1000 * 0.3))


@lru_cache(maxsize=16)
def hmb_limits(sample_rate: float, nfft: int) -> tuple[np.ndarray, np.ndarray]:
    """Hybrid millidecade band edges (``len(centres) + 1``) and centres over
    ``[0, sample_rate/2]``: PyPAM's ``get_bands_limits(band=[0, fs/2], nfft,
    base=10, bands_per_division=1000, hybrid_mode=True, fs)``, step for step."""
    band = (0.0, sample_rate / 2.0)
    width = sample_rate / nfft
    low, high = 10.0 ** (-1 / 2000), 10.0 ** (1 / 2000)
    limits: list[float] = []
    centres: list[float] = []
    count, centre, bin_width = 0, 0.0, 0.0
    while bin_width < width:
        count += 1
        centre = _center_freq(count)
        bin_width = high * centre - low * centre
    centre = _center_freq(count)
    linear = round(centre / width)
    dc = abs(linear * width - centre) + 0.1
    while abs(linear * width - centre) < dc:
        dc = abs(linear * width - centre)
        count += 1
        linear += 1
        centre = _center_freq(count)
    linear -= 1
    count -= 1
    n_linear: float = linear
    if width * linear > band[1]:
        n_linear = sample_rate / 2 / width + 1
    for i in np.arange(n_linear):
        fc = float(i) * width
        if fc >= band[0]:
            centres.append(fc)
            limits.append(fc - width / 2)
    ls_freq = centre * high
    fc = centre
    while ls_freq < band[1]:
        fc = _center_freq(count)
        ls_freq = fc * high
        if fc >= band[0]:
            centres.append(fc)
            limits.append(fc * low)
        count += 1
    if ls_freq > band[1]:
        ls_freq = band[1]
        if fc > band[1]:
            centres[-1] = band[1]
    limits.append(ls_freq)
    return np.array(limits), np.array(centres)


@lru_cache(maxsize=16)
def band_matrix(sample_rate: float, nfft: int) -> Any:
    """(bands, bins) sparse weights: ``psd @ band_matrix.T`` is the mean PSD
    per band. A bin inside a band counts whole; a bin a band edge falls in is
    split between the two bands in proportion to its width on each side
    (PyPAM ``spectra_ds_to_bands``, including its clamping of the last edge)."""
    import scipy.sparse

    limits, centres = hmb_limits(sample_rate, nfft)
    width = sample_rate / nfft
    nbins = nfft // 2 + 1
    freqs = np.arange(nbins) * width
    idx = np.floor((limits + width / 2) / width).astype(int)
    idx[-1] = min(idx[-1], nbins - 1)
    lower, upper = idx[:-1], idx[1:]
    lower_factor = lower * width + width / 2 - limits[:-1]
    upper_factor = limits[1:] - (upper * width - width / 2)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    # Interior bins: every bin that is no band's edge bin, in [limit_j, limit_j+1).
    interior = np.ones(nbins, dtype=bool)
    interior[idx] = False
    band_of = np.searchsorted(limits, freqs, side="right") - 1
    ok = interior & (band_of >= 0) & (band_of < len(centres))
    rows.append(band_of[ok])
    cols.append(np.flatnonzero(ok))
    vals.append(np.ones(int(ok.sum())))
    b = np.arange(len(centres))
    rows += [b, b]
    cols += [lower, upper]
    vals += [lower_factor / width, upper_factor / width]
    bandwidth = limits[1:] - limits[:-1]
    r = np.concatenate(rows)
    data = np.concatenate(vals) / bandwidth[r]
    return scipy.sparse.csr_matrix((data, (r, np.concatenate(cols))), shape=(len(centres), nbins))


def hmb_bands(psd: np.ndarray, sample_rate: float, nfft: int) -> tuple[np.ndarray, np.ndarray]:
    """Band centres and the mean PSD per hybrid millidecade band, per row of
    ``psd`` (rows of NaN stay NaN)."""
    matrix = band_matrix(float(sample_rate), int(nfft))
    rows = np.atleast_2d(np.asarray(psd, dtype=np.float64))
    out = np.asarray(matrix @ np.nan_to_num(rows, nan=0.0).T).T
    out[np.isnan(rows).any(axis=1)] = np.nan
    return hmb_limits(float(sample_rate), int(nfft))[1], out if np.ndim(psd) > 1 else out[0]


# ------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibration:
    """A hydrophone's sensitivity vs frequency, in dB re 1 V/µPa, and where it came from."""

    frequency: np.ndarray
    sensitivity_db: np.ndarray
    source: str
    deployment: str = ""
    attrs: dict[str, str] = field(default_factory=dict)
    counts_per_volt: float = COUNTS_PER_VOLT

    def counts_db(self, frequency: np.ndarray) -> np.ndarray:
        """dB re 1 count/µPa at ``frequency`` (linear interpolation between
        calibrated points, NaN outside them, as pbp's ``xarray.interp``)."""
        f = np.asarray(frequency, dtype=np.float64)
        s = np.interp(f, self.frequency, self.sensitivity_db, left=np.nan, right=np.nan)
        return s + 20.0 * math.log10(self.counts_per_volt)


#: Plausible sensitivities: a hydrophone is ~-150..-220 dB re 1 V/µPa; the
#: same in dB re 1 count/µPa (ooi-hyd-tools' rca_correction_cals) is ~129 dB higher.
_VOLT_RANGE = (-260.0, -110.0)


def _check_reference(sens: np.ndarray, reference: str, source: str) -> np.ndarray:
    if reference not in ("volt", "count"):
        raise ValueError(f"reference must be 'volt' or 'count', not {reference!r}")
    volts = sens if reference == "volt" else sens - COUNTS_PER_VOLT_DB
    med = float(np.median(volts))
    if not _VOLT_RANGE[0] <= med <= _VOLT_RANGE[1]:
        hint = ("it looks like dB re 1 count/uPa (ooi-hyd-tools' rca_correction_cals): pass reference='count'"
                if reference == "volt" and _VOLT_RANGE[0] <= med - COUNTS_PER_VOLT_DB <= _VOLT_RANGE[1]
                else "expected dB re 1 V/uPa between -260 and -110")
        raise ValueError(f"{source}: median sensitivity {float(np.median(sens)):.1f} dB; {hint}")
    return volts


def load_calibration(path: str | Path, *, reference: str = "volt") -> Calibration:
    """A sensitivity curve from OOI's netCDF (``ooi-hyd-tools`` ``metadata/cals/
    {refdes}_{deployment}.nc``, read as published: ``frequency`` in Hz and
    ``sensitivity`` in dB re 1 V/µPa, or, where a file has only
    ``sensitivity_0``/``sensitivity_90``, their mean as ooi-hyd-tools takes
    it) or from a CSV with ``frequency`` and ``sensitivity`` columns.
    ``reference="count"`` reads a file in dB re 1 count/µPa
    (``rca_correction_cals``)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"no such calibration file: {p}")
    attrs: dict[str, str] = {}
    if p.suffix.lower() == ".csv":
        freq, sens = _read_csv(p)
    else:
        freq, sens, attrs = _read_netcdf(p)
    order = np.argsort(freq)
    freq, sens = freq[order], sens[order]
    if len(freq) < 2 or not np.all(np.isfinite(freq)) or not np.all(np.isfinite(sens)):
        raise ValueError(f"{p}: need at least two finite (frequency, sensitivity) points")
    sens = _check_reference(sens, reference, str(p))
    m = re.search(r"_(\d+)$", p.stem)
    return Calibration(freq, sens, source=p.name, deployment=m.group(1) if m else "", attrs=attrs)


def _read_csv(p: Path) -> tuple[np.ndarray, np.ndarray]:
    with p.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{p}: empty calibration CSV")
    head = [h.strip().lower() for h in rows[0]]
    try:
        fi = next(i for i, h in enumerate(head) if h.startswith("freq"))
        si = next(i for i, h in enumerate(head) if h.startswith("sens"))
    except StopIteration:
        raise ValueError(f"{p}: the CSV needs 'frequency' and 'sensitivity' columns, has {rows[0]}") from None
    try:
        data = np.array([[float(r[fi]), float(r[si])] for r in rows[1:] if r], dtype=np.float64)
    except (ValueError, IndexError) as err:
        raise ValueError(f"{p}: not a number in the calibration CSV: {err}") from None
    return data[:, 0], data[:, 1]


def _read_netcdf(p: Path) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    import h5py

    try:
        with h5py.File(p, "r") as f:
            if "frequency" not in f:
                raise ValueError(f"{p}: no 'frequency' variable (has {sorted(f)})")
            freq = np.asarray(f["frequency"][...], dtype=np.float64)
            if "sensitivity" in f:
                sens = np.asarray(f["sensitivity"][...], dtype=np.float64)
            elif "sensitivity_0" in f and "sensitivity_90" in f:
                sens = (np.asarray(f["sensitivity_0"][...], np.float64) + np.asarray(f["sensitivity_90"][...], np.float64)) / 2
            else:
                raise ValueError(f"{p}: no 'sensitivity' variable (has {sorted(f)})")
            attrs = {k: _attr_text(v) for k, v in f.attrs.items() if not k.startswith("_")}
    except OSError as err:
        raise ValueError(f"{p}: not a netCDF-4/HDF5 file: {err}") from None
    return freq, sens, attrs


def _attr_text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, np.ndarray) and v.size == 1:
        return str(v.item())
    return str(v)


# ------------------------------------------------------------------ levels


@dataclass
class Levels:
    """Band levels in dB, with their units."""

    frequency: np.ndarray
    db: np.ndarray
    units: str
    calibrated: bool


def to_db(bands: np.ndarray, frequency: np.ndarray, calibration: Calibration | None = None) -> Levels:
    """``10 log10`` of band PSDs in counts²/Hz; minus the sensitivity in dB re
    1 count/µPa at each band centre when a calibration is given (then dB re
    1 µPa²/Hz), else labelled uncalibrated."""
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10.0 * np.log10(np.asarray(bands, dtype=np.float64))
    if calibration is None:
        return Levels(np.asarray(frequency), db.astype(np.float32), UNITS_UNCALIBRATED, False)
    db = db - calibration.counts_db(np.asarray(frequency))
    return Levels(np.asarray(frequency), db.astype(np.float32), UNITS_CALIBRATED, True)
