"""The archive-grade copy of a hydrophone day (``HydroSettings.archive``),
beside the clips: what OOI's own processing delivers (ooi-data/ooi-hyd-tools,
README "What gets written" and docs/data-access.md, docs/24-bit-counts.md).

- Each stretch of a repaired file (``repair.Stretch``: a file's recording
  between real breaks, usually the whole 5 minutes) as one FLAC holding the
  true 24-bit ADC counts. OOI's miniSEED carries them right-justified in
  int32; libsndfile's int32 API is left-justified (full scale 2^31) and keeps
  the top 24 bits for ``PCM_24``, so the counts are shifted left by 8 before
  writing (``flac_bytes``) and right by 8 after reading as int32
  (``read_counts``). Both rails fit: ``(2^23 - 1) << 8`` and ``-2^23 << 8``
  are inside int32.
- Named ``{instrument}_{YYYYMMDD}_{HHMMSS}`` at whole seconds (what
  mbari-pbp parses); the exact sub-second start is in the FLAC's ``date``
  tag, and ``comment`` carries the provenance (source URL, pieces, label
  noise, breaks, missing seconds, code version).
- Per source file a small record (``records/{file}.json``) after its FLACs;
  the day's ``{instrument}_{YYYYMMDD}_manifest.json`` (files, seconds
  written, coverage %, breaks, pieces) is written LAST, by the job whose
  record completes the day's listing, so its presence means the day finished.

Keys: ``{archive_prefix}/{YYYY}/{instrument}/{YYYY_MM_DD}/...``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import __version__
from .repair import RepairedFile, Stretch

INT24_MIN, INT24_MAX = -(2**23), 2**23 - 1
#: libsndfile's int32 word holds a 24-bit sample in its top 24 bits.
INT24_SHIFT = 8
COUNTS = "int24 ADC counts (the FLAC's 24-bit words are the miniSEED's int32 counts)"
SOFTWARE = f"specfleet {__version__}"
DAY_SECONDS = 86_400.0


def instrument_of(hydrophone: str) -> str:
    """``HYDBBA106`` of ``CE02SHBP/LJ01D/11-HYDBBA106`` (OOI's ``refdes[-9:]``):
    the last folder's part after its port number."""
    last = hydrophone.rstrip("/").rsplit("/", 1)[-1]
    return last.split("-", 1)[1] if "-" in last else last


def stretch_name(instrument: str, start: dt.datetime) -> str:
    return f"{instrument}_{start:%Y%m%d_%H%M%S}"


def day_prefix(prefix: str, instrument: str, day: dt.date) -> str:
    return f"{prefix.strip('/')}/{day:%Y}/{instrument}/{day:%Y_%m_%d}/"


def record_key(prefix: str, instrument: str, day: dt.date, source_name: str) -> str:
    return f"{day_prefix(prefix, instrument, day)}records/{source_name}.json"


def day_manifest_key(prefix: str, instrument: str, day: dt.date) -> str:
    return f"{day_prefix(prefix, instrument, day)}{instrument}_{day:%Y%m%d}_manifest.json"


def iso(t: Any) -> str:
    """``2017-10-09T00:00:00.014000Z`` of an obspy ``UTCDateTime`` or a naive UTC datetime."""
    d = t.datetime if hasattr(t, "datetime") else t
    return f"{d:%Y-%m-%dT%H:%M:%S.%f}Z"


def check_counts(samples: np.ndarray) -> None:
    """``ValueError`` unless ``samples`` are integers inside the 24-bit range."""
    if not np.issubdtype(samples.dtype, np.integer):
        raise ValueError(f"samples are {samples.dtype}, not integer ADC counts: no 24-bit FLAC")
    if len(samples) and (int(samples.min()) < INT24_MIN or int(samples.max()) > INT24_MAX):
        raise ValueError(f"samples run {int(samples.min())}..{int(samples.max())}, outside 24-bit counts")


def flac_bytes(samples: np.ndarray, sample_rate: float, tags: Mapping[str, str] | None = None) -> bytes:
    """24-bit FLAC of int32 counts (right-justified, as obspy reads them);
    ``tags``: libsndfile strings (``date``, ``software``, ``comment``, ...)."""
    import soundfile as sf

    check_counts(samples)
    words = np.left_shift(np.asarray(samples, dtype=np.int32), INT24_SHIFT)
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=int(round(sample_rate)), channels=1, subtype="PCM_24", format="FLAC") as f:
        for key, value in (tags or {}).items():
            setattr(f, key, value)  # strings go in before the first frame
        f.write(words)
    return buf.getvalue()


def read_counts(data: bytes) -> tuple[np.ndarray, int, dict[str, str]]:
    """``(counts int32, sample rate, tags)`` of a FLAC written by ``flac_bytes``."""
    import soundfile as sf

    with sf.SoundFile(io.BytesIO(data)) as f:
        words = f.read(dtype="int32")
        tags = {k: v for k, v in f.copy_metadata().items() if v}
        rate = f.samplerate
    return np.right_shift(words, INT24_SHIFT), rate, tags


@dataclass(frozen=True)
class ArchivedStretch:
    name: str
    start: str
    npts: int
    flac: bytes


def stretch_tags(stretch: Stretch, *, hydrophone: str, source: str, repaired: RepairedFile) -> dict[str, str]:
    """The FLAC's tags: the exact start in ``date``, provenance in ``comment``."""
    breaks = ",".join(f"{iso(b.start)}+{b.seconds:.6f}s" for b in repaired.breaks) or "none"
    comment = (
        f"refdes={hydrophone.replace('/', '-')} start={iso(stretch.start)} npts={len(stretch.samples)} "
        f"sampling_rate={stretch.sample_rate:g} counts=int24 source={source} pieces={repaired.pieces} "
        f"label_noise_s={repaired.label_noise_s:.6f} breaks={breaks} missing_s={repaired.missing_s:.6f} "
        f"too_long={str(repaired.too_long).lower()}"
    )
    return {"date": iso(stretch.start), "software": SOFTWARE, "comment": comment, "title": source.rsplit("/", 1)[-1]}


def archive_stretches(repaired: RepairedFile, *, hydrophone: str, source: str) -> tuple[list[ArchivedStretch], list[dict[str, Any]]]:
    """FLAC of every stretch of ``repaired``, and the collisions: two
    stretches whose starts round to one second share a name; the longer is
    kept and the other recorded (OOI's guard), never written silently over."""
    instrument = instrument_of(hydrophone)
    by_name: dict[str, Stretch] = {}
    collisions: list[dict[str, Any]] = []
    for s in repaired.stretches:
        name = stretch_name(instrument, s.start.datetime)
        other = by_name.get(name)
        if other is not None:
            keep, drop = (s, other) if len(s.samples) > len(other.samples) else (other, s)
            collisions.append({"stamp": name, "kept_s": keep.seconds, "dropped_s": drop.seconds,
                               "dropped_start": iso(drop.start)})
            by_name[name] = keep
        else:
            by_name[name] = s
    out = [
        ArchivedStretch(f"{name}.flac", iso(s.start), len(s.samples),
                        flac_bytes(s.samples, s.sample_rate, stretch_tags(s, hydrophone=hydrophone, source=source, repaired=repaired)))
        for name, s in sorted(by_name.items())
    ]
    return out, collisions


def file_record(
    repaired: RepairedFile, stretches: list[ArchivedStretch], collisions: list[dict[str, Any]], *, source: str
) -> dict[str, Any]:
    """What one source file contributed to its day (``records/{file}.json``)."""
    return {
        "source": source,
        "pieces": repaired.pieces,
        "label_noise_s": round(repaired.label_noise_s, 6),
        "expected_samples": repaired.expected_samples,
        "total_samples": repaired.total_samples,
        "missing_s": round(repaired.missing_s, 6),
        "too_long": repaired.too_long,
        "breaks": [{"start": iso(b.start), "seconds": round(b.seconds, 6)} for b in repaired.breaks],
        "collisions": collisions,
        "files": [{"name": s.name, "start": s.start, "npts": s.npts} for s in stretches],
        "sampling_rate": repaired.sample_rate,
        "written_by": SOFTWARE,
    }


def day_manifest(
    records: Iterable[Mapping[str, Any]], *, hydrophone: str, day: dt.date, source_files: int, gap_threshold_s: float
) -> dict[str, Any]:
    """The day's manifest from its files' records."""
    recs = sorted(records, key=lambda r: str(r["source"]))
    files = sorted((f for r in recs for f in r["files"]), key=lambda f: (f["start"], f["name"]))
    rates = sorted({float(r["sampling_rate"]) for r in recs if r["files"]})
    seconds = sum(f["npts"] / float(r["sampling_rate"]) for r in recs for f in r["files"])
    return {
        "refdes": hydrophone.replace("/", "-"),
        "date": f"{day:%Y-%m-%d}",
        "written_by": SOFTWARE,
        "counts": "int24",
        "sampling_rate": rates[0] if len(rates) == 1 else rates,
        "rejected": [{"source": r["source"], "reason": r["rejected"]} for r in recs if r.get("rejected")],
        "gap_threshold_s": gap_threshold_s,
        "source_mseed_files": source_files,
        "files_written": len(files),
        "seconds_written": round(seconds, 6),
        "day_coverage_pct": round(100.0 * seconds / DAY_SECONDS, 2),
        "missing_s": round(sum(float(r["missing_s"]) for r in recs), 6),
        "pieces": sum(int(r["pieces"]) for r in recs),
        "label_noise_s_max": max((float(r["label_noise_s"]) for r in recs), default=0.0),
        "too_long": [r["source"] for r in recs if r["too_long"]],
        "breaks": [{**b, "source": r["source"]} for r in recs for b in r["breaks"]],
        "collisions": [c for r in recs for c in r["collisions"]],
        "files": files,
    }


def write_archive(
    storage: Any, repaired: RepairedFile, *, prefix: str, hydrophone: str, day: dt.date, source: str,
    source_name: str, day_files: int, gap_threshold_s: float,
) -> tuple[list[str], bool]:
    """Upload the FLACs of one source file, then its record, then (when the
    records now cover the ``day_files`` the day's listing held) the day's
    manifest, last. Returns the keys written and whether the manifest was.
    Every write is idempotent: a redelivered job writes the same objects."""
    from ...storage import Put

    instrument = instrument_of(hydrophone)
    stretches, collisions = archive_stretches(repaired, hydrophone=hydrophone, source=source)
    keys = [day_prefix(prefix, instrument, day) + s.name for s in stretches]
    storage.put_many(Put(k, s.flac, "audio/flac") for k, s in zip(keys, stretches, strict=True))
    record = file_record(repaired, stretches, collisions, source=source)
    more, finished = record_file(storage, record, prefix=prefix, hydrophone=hydrophone, day=day,
                                 source_name=source_name, day_files=day_files, gap_threshold_s=gap_threshold_s)
    return keys + more, finished


def rejected_record(source: str, reason: str) -> dict[str, Any]:
    """The record of a file that gave nothing (bad input): the day still finishes, and says so."""
    return {"source": source, "rejected": reason, "pieces": 0, "label_noise_s": 0.0, "missing_s": 0.0,
            "too_long": False, "breaks": [], "collisions": [], "files": [], "sampling_rate": 0.0,
            "written_by": SOFTWARE}


def merge_names(storage: Any, key: str, name: str, *, attempts: int = 30) -> list[str]:
    """Add ``name`` to the JSON list at ``key`` (``Storage.merge_json_list``:
    conditional writes, read again on a lost race); returns the list. A
    day's files reach it one at a time over the day: contention is small."""
    from ...runtime.errors import Transient
    from ...storage import PreconditionFailed

    try:
        return storage.merge_json_list(key, [name], attempts=attempts)
    except PreconditionFailed as err:
        raise Transient(str(err)) from None


def record_file(
    storage: Any, record: Mapping[str, Any], *, prefix: str, hydrophone: str, day: dt.date, source_name: str,
    day_files: int, gap_threshold_s: float,
) -> tuple[list[str], bool]:
    """Write one file's record; then, if the day's records number
    ``day_files``, the day's manifest (last). Returns keys and whether it was."""
    instrument = instrument_of(hydrophone)
    rkey = record_key(prefix, instrument, day, source_name)
    storage.put_bytes(rkey, json.dumps(record).encode(), "application/json")
    if day_files <= 0:
        return [rkey], False
    # The day's files that have records, kept in one small object (no bucket
    # listing: the worker's role needs only Get/PutObject under archive/).
    done = merge_names(storage, f"{day_prefix(prefix, instrument, day)}records/_done.json", source_name)
    if len(done) < day_files:
        return [rkey], False
    # Whoever sees the day complete writes the manifest; a second writer writes the same.
    records = [json.loads(storage.get_bytes(record_key(prefix, instrument, day, n))) for n in sorted(done)]
    manifest = day_manifest(records, hydrophone=hydrophone, day=day, source_files=day_files,
                            gap_threshold_s=gap_threshold_s)
    mkey = day_manifest_key(prefix, instrument, day)
    storage.put_bytes(mkey, json.dumps(manifest, indent=1).encode(), "application/json")
    return [rkey, mkey], True


@dataclass(frozen=True)
class DayCoverage:
    """What a finished day's manifest says, for ``hydrophone days``."""

    coverage_pct: float
    seconds_written: float
    files_written: int
    missing_s: float
    breaks: int
    pieces: int


def read_coverage(storage: Any, prefix: str, hydrophone: str, day: dt.date) -> DayCoverage | None:
    """The day manifest's figures, or ``None`` when the day has none (not finished)."""
    got = storage.get_with_etag(day_manifest_key(prefix, instrument_of(hydrophone), day))
    if got is None:
        return None
    m = json.loads(got[0])
    return DayCoverage(float(m["day_coverage_pct"]), float(m["seconds_written"]), int(m["files_written"]),
                       float(m.get("missing_s", 0.0)), len(m.get("breaks", [])), int(m.get("pieces", 0)))
