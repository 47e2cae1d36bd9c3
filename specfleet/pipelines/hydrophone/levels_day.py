"""A day of sound levels: per-file minute results -> one NetCDF per site and day.

The fleet computes levels file by file (``file_minutes``: the minutes a
5-minute file covers, hybrid millidecade band PSDs in counts²/Hz, stored
in S3 as ``.npz``, see ``minutes_key``). Once a day's files are in, a small
reduce step (``reduce_day``, ``specfleet hydrophone levels-day``) puts the
day's 1,440 minutes together (``assemble_day``), applies the calibration
there, and writes one NetCDF (``write_day_netcdf``) in pbp's layout
(``time``, ``frequency``, ``psd`` in dB re 1 µPa²/Hz, ``effort`` in
seconds, ``sensitivity``), with the SoundCoop global attributes pbp writes
plus the provenance: calibration file and deployment, code version,
parameters and their hash, source files, coverage. A minute without audio
is NaN with effort 0 and ``missing = 1``.

Calibration is applied in the reduce, not per file: a corrected
calibration re-runs the reduce over the stored minutes, not the audio.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ... import __version__
from .levels import (
    Calibration,
    LevelParams,
    StretchLike,
    hmb_bands,
    minute_psd,
    to_db,
)

CODE_VERSION = f"specfleet {__version__}"
MINUTES_PER_DAY = 1440

#: SoundCoop's global attributes as pbp writes them (pbp's
#: ``globalAttributes`` YAML, ooi-hyd-tools ``metadata/attributes/
#: globalAttributes.yaml``): the generic ones. An operator adds its own
#: (creator, institution, license, platform...) with ``attrs``.
SOUNDCOOP_ATTRS = {
    "title": "Hybrid Millidecade Band Sound Pressure Levels Computed at 1 Minute Resolution "
    "from Oceanic Passive Acoustic Monitoring Recordings",
    "summary": "Hybrid millidecade band (HMB) spectra of sound levels derived from calibrated passive "
    "acoustic monitoring data, following Martin et al. (2021a,b).",
    "Conventions": "COARDS, CF-1.6, ACDD-1.3",
    "keywords": "oceans, ocean acoustics, ambient noise, intensity, marine environment monitoring, "
    "marine habitat, sound_intensity_level_in_water, soundscapes",
    "keywords_vocabulary": "GCMD Science Keywords",
    "standard_name_vocabulary": "CF Standard Name Table v80",
    "cdm_data_type": "TimeSeries",
    "time_coverage_duration": "P1D",
    "time_coverage_resolution": "P60S",
    "references": "Computation of single-sided mean-square sound pressure spectral density with 1 Hz "
    "resolution followed ISO 18405 3.1.3.13 (ISO 18405:2017(E), Underwater Acoustics - Terminology). "
    "Hybrid millidecade band processing followed Martin et al. (2021a,b: https://doi.org/10.1121/10.0003324; "
    "https://doi.org/10.1121/10.0005818)",
}

#: pbp's variable attributes (ooi-hyd-tools ``variableAttributes.yaml``).
VARIABLE_ATTRS: dict[str, dict[str, str]] = {
    "time": {"standard_name": "time", "long_name": "UTC time beginning each 1-minute temporal bin",
             "units": "seconds since 1970-01-01T00:00:00Z", "coverage_content_type": "coordinate"},
    "effort": {"long_name": "Duration of input data available for each 1-minute bin",
               "coverage_content_type": "qualityInformation", "units": "seconds"},
    "frequency": {"standard_name": "sound_frequency", "long_name": "Center frequency of hybrid millidecade spectral bands",
                  "units": "Hz", "coverage_content_type": "coordinate"},
    "psd": {"standard_name": "sound_intensity_in_water",
            "long_name": "Single-sided mean-square sound pressure spectral density (dB re 1 µPa^2/Hz)",
            "units": "dB", "coverage_content_type": "physicalMeasurement",
            "comment": "Computation followed ISO 18405 3.1.3.13."},
    "sensitivity": {"long_name": "Hydrophone sensitivity (dB re 1 volt / µPa)", "units": "dB",
                    "coverage_content_type": "physicalMeasurement"},
    "missing": {"long_name": "1 where the minute has no complete audio (psd is NaN, effort 0)",
                "flag_values": "0, 1", "flag_meanings": "audio missing",
                "coverage_content_type": "qualityInformation"},
}


# ------------------------------------------------------------- per file


@dataclass
class MinuteResult:
    """One source file's minutes: band PSDs in counts²/Hz, NaN where missing."""

    source: str
    #: Segment starts, epoch seconds.
    times: np.ndarray
    effort_s: np.ndarray
    frequency: np.ndarray
    #: (minutes, bands) float32 counts²/Hz.
    bands: np.ndarray
    sample_rate: float
    params: LevelParams = field(default_factory=LevelParams)
    code_version: str = CODE_VERSION
    #: CPU seconds (this thread's) spent making the result: what the day's cost counts.
    cpu_s: float = 0.0


def file_minutes(stretches: Sequence[StretchLike], source: str, *, params: LevelParams = LevelParams()) -> MinuteResult:
    """The minutes ``stretches`` (one file's repaired audio) reach into, banded."""
    import time

    cpu0 = time.thread_time()
    spectra = minute_psd(stretches, params=params)
    freq, bands = hmb_bands(spectra.psd, spectra.sample_rate, params.nfft(spectra.sample_rate))
    times = spectra.times.astype("datetime64[s]").astype(np.int64)
    return MinuteResult(source, times, spectra.effort_s, freq, np.atleast_2d(bands).astype(np.float32),
                        spectra.sample_rate, params, cpu_s=time.thread_time() - cpu0)


def encode_minutes(result: MinuteResult) -> bytes:
    meta = {"source": result.source, "sample_rate": result.sample_rate, "params": asdict(result.params),
            "code_version": result.code_version, "cpu_s": result.cpu_s}
    buf = io.BytesIO()
    np.savez_compressed(buf, times=result.times, effort_s=result.effort_s, frequency=result.frequency,
                        bands=result.bands, meta=np.array(json.dumps(meta)))
    return buf.getvalue()


def decode_minutes(data: bytes) -> MinuteResult:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return MinuteResult(meta["source"], z["times"], z["effort_s"], z["frequency"], z["bands"],
                                float(meta["sample_rate"]), LevelParams(**meta["params"]), meta["code_version"],
                                float(meta.get("cpu_s", 0.0)))
    except (ValueError, KeyError, TypeError, OSError) as err:
        raise ValueError(f"not a minute-levels file: {err}") from None


def minutes_key(prefix: str, hydrophone: str, day: dt.date, file_name: str) -> str:
    """``{prefix}/{hydrophone}/{YYYY_MM_DD}/minutes/{file name}.npz``."""
    return f"{prefix}/{hydrophone.strip('/')}/{day:%Y_%m_%d}/minutes/{file_name}.npz"


def day_key(prefix: str, hydrophone: str, day: dt.date) -> str:
    """``{prefix}/{hydrophone}/{YYYY_MM_DD}/{instrument}_{YYYYMMDD}.nc`` (pbp names its files ``{prefix}{YYYYMMDD}.nc``)."""
    instrument = hydrophone.strip("/").rsplit("/", 1)[-1]
    return f"{prefix}/{hydrophone.strip('/')}/{day:%Y_%m_%d}/{instrument}_{day:%Y%m%d}.nc"


# --------------------------------------------------------------- the day


@dataclass
class DayLevels:
    """A day (or any run of whole minutes) of calibrated band levels."""

    times: np.ndarray  # epoch seconds of each minute
    frequency: np.ndarray
    #: (minutes, bands) float32 dB; NaN where missing.
    psd_db: np.ndarray
    effort_s: np.ndarray
    units: str
    calibrated: bool
    sample_rate: float
    params: LevelParams
    sources: list[str]
    code_versions: list[str]
    calibration: Calibration | None = None
    sensitivity_db: np.ndarray | None = None  # dB re 1 V/µPa at each band centre
    #: CPU seconds the files' results took (their workers measured them).
    compute_cpu_s: float = 0.0

    @property
    def audio_hours(self) -> float:
        return float(self.effort_s.sum()) / 3600.0

    @property
    def missing(self) -> np.ndarray:
        return ~(self.effort_s > 0) | ~np.isfinite(self.psd_db).any(axis=1)

    @property
    def coverage(self) -> float:
        return float((~self.missing).mean()) if len(self.times) else 0.0


def assemble_day(
    results: Iterable[MinuteResult],
    day: dt.date,
    *,
    calibration: Calibration | None = None,
) -> DayLevels:
    """The day's 1,440 minutes from per-file results; a minute no file has
    whole is missing. Files must agree on rate, bands and parameters."""
    results = sorted(results, key=lambda r: r.source)
    if not results:
        raise ValueError(f"no minute results for {day}")
    first = results[0]
    for r in results[1:]:
        if r.sample_rate != first.sample_rate or r.params != first.params or r.frequency.shape != first.frequency.shape:
            raise ValueError(f"{r.source} was computed differently from {first.source} "
                             f"(rate {r.sample_rate:g} vs {first.sample_rate:g}, params {r.params.digest()} vs "
                             f"{first.params.digest()}): reprocess the day's files with one setting")
    seg = first.params.segment_s
    day0 = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
    n = int(round(86_400 / seg))
    times = (day0 + np.arange(n) * seg).astype(np.int64)
    bands = np.full((n, len(first.frequency)), np.nan, dtype=np.float32)
    effort = np.zeros(n, dtype=np.float32)
    for r in results:
        rows = np.round((r.times - day0) / seg).astype(np.int64)
        for i, row in enumerate(rows):
            if 0 <= row < n and r.effort_s[i] > 0 and effort[row] == 0:
                bands[row] = r.bands[i]
                effort[row] = r.effort_s[i]
    levels = to_db(bands, first.frequency, calibration)
    sens = None
    if calibration is not None:
        sens = np.interp(first.frequency, calibration.frequency, calibration.sensitivity_db, left=np.nan,
                         right=np.nan).astype(np.float32)
    return DayLevels(times, first.frequency, levels.db, effort, levels.units, levels.calibrated, first.sample_rate,
                     first.params, [r.source for r in results], sorted({r.code_version for r in results}),
                     calibration, sens, float(sum(r.cpu_s for r in results)))


def concat_days(days: Sequence[DayLevels]) -> DayLevels:
    """Days one after another (for a range's pictures); they must share bands."""
    if not days:
        raise ValueError("no days")
    f = days[0]
    for d in days[1:]:
        if d.frequency.shape != f.frequency.shape or not np.allclose(d.frequency, f.frequency):
            raise ValueError("days with different frequency bands cannot be stitched")
    return DayLevels(np.concatenate([d.times for d in days]), f.frequency,
                     np.concatenate([d.psd_db for d in days]), np.concatenate([d.effort_s for d in days]),
                     f.units, all(d.calibrated for d in days), f.sample_rate, f.params,
                     [s for d in days for s in d.sources], sorted({v for d in days for v in d.code_versions}),
                     f.calibration, f.sensitivity_db)


def window(levels: DayLevels, start: float, end: float) -> DayLevels:
    """The minutes starting in ``[start, end)`` (epoch seconds)."""
    keep = (levels.times >= start) & (levels.times < end)
    if not keep.any():
        raise ValueError("no minutes in that time window")
    return replace(levels, times=levels.times[keep], psd_db=levels.psd_db[keep], effort_s=levels.effort_s[keep])


def day_attributes(day: DayLevels, *, hydrophone: str, attrs: dict[str, str] | None = None) -> dict[str, Any]:
    """Global attributes: SoundCoop's (as pbp writes them) + provenance."""
    t0 = dt.datetime.fromtimestamp(int(day.times[0]), dt.UTC)
    t1 = dt.datetime.fromtimestamp(int(day.times[-1]), dt.UTC)
    cal = day.calibration
    out: dict[str, Any] = dict(SOUNDCOOP_ATTRS)
    out.update({
        "time_coverage_start": f"{t0:%Y-%m-%d %H:%M:%S}Z",
        "time_coverage_end": f"{t1:%Y-%m-%d %H:%M:%S}Z",
        "date_created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "source": "specfleet hydrophone levels: PSD per 1-minute segment by Welch's method (FFT length = sample "
        "rate, Hann window, 50% overlap, 1 Hz resolution, as MBARI pbp / PyPAM), averaged and summed into "
        "hybrid millidecade bands; samples are 24-bit ADC counts (2^23 counts per 3 V).",
        "hydrophone": hydrophone,
        "psd_units": day.units,
        "calibrated": int(day.calibrated),
        "calibration_file": cal.source if cal else "none (uncalibrated: dB re 1 count^2/Hz)",
        "calibration_deployment": cal.deployment if cal else "",
        "calibration_attributes": json.dumps(cal.attrs if cal else {}, sort_keys=True),
        "counts_per_volt": float(cal.counts_per_volt) if cal else float("nan"),
        "code_version": ", ".join(day.code_versions),
        "parameters": json.dumps(asdict(day.params), sort_keys=True),
        "parameters_hash": day.params.digest(),
        "sample_rate": float(day.sample_rate),
        "source_files": json.dumps(day.sources),
        "coverage": round(day.coverage, 6),
        "minutes_with_audio": int((~day.missing).sum()),
        "minutes_missing": int(day.missing.sum()),
    })
    out.update(attrs or {})
    return out


def write_day_netcdf(day: DayLevels, path: str | Path, *, hydrophone: str, attrs: dict[str, str] | None = None) -> Path:
    """pbp's NetCDF-4 layout (h5netcdf, as pbp writes it), compressed."""
    import h5netcdf

    path = Path(path)
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"time": len(day.times), "frequency": len(day.frequency)}
        var = f.create_variable("time", ("time",), data=day.times.astype(np.int64))
        var.attrs.update(VARIABLE_ATTRS["time"])
        var = f.create_variable("frequency", ("frequency",), data=day.frequency.astype(np.float32))
        var.attrs.update(VARIABLE_ATTRS["frequency"])
        var = f.create_variable("psd", ("time", "frequency"), data=day.psd_db.astype(np.float32),
                                compression="gzip", compression_opts=3, fletcher32=True, fillvalue=np.float32(np.nan))
        var.attrs.update({**VARIABLE_ATTRS["psd"], "units": "dB", "long_name": f"Single-sided mean-square "
                          f"sound pressure spectral density ({day.units})"})
        var = f.create_variable("effort", ("time",), data=day.effort_s.astype(np.float32))
        var.attrs.update(VARIABLE_ATTRS["effort"])
        var = f.create_variable("missing", ("time",), data=day.missing.astype(np.int8))
        var.attrs.update(VARIABLE_ATTRS["missing"])
        if day.sensitivity_db is not None:
            var = f.create_variable("sensitivity", ("frequency",), data=day.sensitivity_db.astype(np.float32))
            var.attrs.update(VARIABLE_ATTRS["sensitivity"])
        f.attrs.update(day_attributes(day, hydrophone=hydrophone, attrs=attrs))
    return path


def read_day_netcdf(path: str | Path) -> DayLevels:
    """A NetCDF ``write_day_netcdf`` wrote (calibration details stay in its attributes)."""
    import h5netcdf

    with h5netcdf.File(path, "r") as f:
        a = dict(f.attrs)
        params = LevelParams(**json.loads(str(a["parameters"])))
        sens = np.asarray(f.variables["sensitivity"][...]) if "sensitivity" in f.variables else None
        return DayLevels(
            np.asarray(f.variables["time"][...], dtype=np.int64), np.asarray(f.variables["frequency"][...], np.float64),
            np.asarray(f.variables["psd"][...], np.float32), np.asarray(f.variables["effort"][...], np.float32),
            str(a["psd_units"]), bool(int(a["calibrated"])), float(a["sample_rate"]), params,
            list(json.loads(str(a["source_files"]))), [str(a["code_version"])], None, sens,
        )


def empty_day(day: dt.date, like: DayLevels) -> DayLevels:
    """A day with no data at all, on ``like``'s bands (a blank stretch in a range's pictures)."""
    seg = like.params.segment_s
    day0 = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
    n = int(round(86_400 / seg))
    return DayLevels((day0 + np.arange(n) * seg).astype(np.int64), like.frequency,
                     np.full((n, len(like.frequency)), np.nan, np.float32), np.zeros(n, np.float32), like.units,
                     like.calibrated, like.sample_rate, like.params, [], like.code_versions, None, like.sensitivity_db)


# ------------------------------------------------------------- reduce


@dataclass
class ReduceResult:
    key: str
    day: DayLevels
    files: int
    skipped: list[str]
    #: S3 requests behind the day: each file's result PUT by its worker, and
    #: the reduce's LIST pages, GETs and the NetCDF's PUT.
    s3_put_requests: int = 0
    s3_get_requests: int = 0


def reduce_day(
    storage: Any,
    *,
    prefix: str,
    hydrophone: str,
    day: dt.date,
    calibration: Calibration | None = None,
    attrs: dict[str, str] | None = None,
) -> ReduceResult:
    """Read the day's per-file minute results from ``storage`` (``Storage``),
    assemble the day, write its NetCDF next to them. A damaged result is
    skipped and named (its minutes count as missing), not fatal."""
    import tempfile

    folder = minutes_key(prefix, hydrophone, day, "x").rsplit("/", 1)[0] + "/"
    results: list[MinuteResult] = []
    skipped: list[str] = []
    listed = 0
    for key, _size in storage.list(folder):
        listed += 1
        if not key.endswith(".npz"):
            continue
        try:
            results.append(decode_minutes(storage.get_bytes(key)))
        except ValueError as err:
            skipped.append(f"{key}: {err}")
    if not results:
        raise ValueError(f"no minute results under {folder}" + (f" ({len(skipped)} unreadable)" if skipped else ""))
    levels = assemble_day(results, day, calibration=calibration)
    key = day_key(prefix, hydrophone, day)
    with tempfile.TemporaryDirectory(prefix="levels-day-") as tmp:
        path = write_day_netcdf(levels, Path(tmp) / "day.nc", hydrophone=hydrophone, attrs=attrs)
        storage.put_file(key, path, "application/x-netcdf")
    gets = len(results) + len(skipped) + max(1, -(-listed // 1000))  # LIST pages of 1000 count as requests too
    return ReduceResult(key, levels, len(results), skipped, s3_put_requests=len(results) + 1, s3_get_requests=gets)
