"""Provenance of the hydrophone level products in Postgres, and choosing
what to reprocess by it.

The daily reduce records each day's NetCDF in ``hydro_levels_day``
(migrations 080, 090): code version, parameters and their hash, calibration file,
deployment and content hash, source files, coverage. ``select_days`` reads
the rows a ``--where`` expression picks; ``reprocess_jobs`` turns them into
the file jobs that recompute them.

``--where`` takes ``FIELD OP 'VALUE'`` terms joined by ``and``: fields
``calibration``, ``calibration_deployment``, ``code_version``,
``params_hash``, ``hydrophone``, ``day``; operators ``= != < <= > >=``.
``code_version`` compares as a version (``specfleet 0.9.0 < specfleet 0.10.0``),
``day`` as a date. Values are parameters, never SQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import operator
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ...jobs import JobValidationError, parse_job
from ...settings import Settings
from .levels_day import ReduceResult
from .models import HydroJob

FIELDS = ("calibration", "calibration_deployment", "code_version", "params_hash", "hydrophone", "day")
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
_TERM = re.compile(r"\s*(\w+)\s*(!=|<=|>=|=|<|>)\s*'([^']*)'\s*")


class WhereError(ValueError):
    """A ``--where`` expression that cannot be read (the message says why)."""


@dataclass(frozen=True)
class Term:
    field: str
    op: str
    value: str


def parse_where(text: str) -> list[Term]:
    """``calibration = 'X.nc' and day >= '2017-10-01'`` -> terms."""
    parts = re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE)
    terms: list[Term] = []
    for part in parts:
        m = _TERM.fullmatch(part)
        if not m:
            raise WhereError(f"cannot read {part!r}: write FIELD OP 'VALUE' (fields: {', '.join(FIELDS)}; "
                             f"operators: {' '.join(OPS)}), terms joined by 'and'")
        field, op, value = m.groups()
        if field not in FIELDS:
            raise WhereError(f"unknown field {field!r}; fields: {', '.join(FIELDS)}")
        if field == "day":
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                raise WhereError(f"day must be YYYY-MM-DD, got {value!r}") from None
        terms.append(Term(field, op, value))
    return terms


def version_key(text: str) -> tuple[int | str, ...]:
    """``"specfleet 0.10.2"`` -> ``(0, 10, 2)``: numbers compare as numbers."""
    nums = re.findall(r"\d+|[A-Za-z]+", text.split(" ", 1)[-1])
    return tuple(int(n) if n.isdigit() else n for n in nums)


def matches(row: dict[str, Any], terms: list[Term]) -> bool:
    for t in terms:
        have: Any = row[t.field]
        want: Any = t.value
        if t.field == "code_version":
            have, want = version_key(str(have)), version_key(want)
        elif t.field == "day":
            want = dt.date.fromisoformat(want)
        try:
            if not OPS[t.op](have, want):
                return False
        except TypeError:
            return False
    return True


COLUMNS = ("hydrophone", "day", "product_key", "code_version", "params_hash", "calibration",
           "calibration_deployment", "calibration_sha256", "units", "source_files", "minutes_with_audio",
           "minutes_missing", "coverage")


def select_days(settings: Settings, where: str) -> list[dict[str, Any]]:
    """The product rows ``where`` picks, oldest day first."""
    from ...db import connect, fetch_all

    terms = parse_where(where)
    conn = connect(settings)
    try:
        rows = fetch_all(conn, f"SELECT {', '.join(COLUMNS)} FROM hydro_levels_day ORDER BY day, hydrophone")
    finally:
        conn.close()
    # Few rows (one per site and day): filtering here keeps versions comparing as versions.
    return [r for r in (dict(zip(COLUMNS, row, strict=True)) for row in rows) if matches(r, terms)]


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class DayCost:
    """What a day of levels cost, priced (``cli`` prices it with the fleet's table)."""

    sqs_requests: int
    usd: float
    basis: str

    @staticmethod
    def of(result: ReduceResult, *, reduce_cpu_s: float, vcpu_hour_usd: float, s3_put_per_1000: float,
           s3_get_per_1000: float, sqs_per_million: float, sqs_per_job: float, basis: str) -> DayCost:
        cpu = result.day.compute_cpu_s + reduce_cpu_s
        sqs = int(round(result.files * sqs_per_job))
        usd = (cpu / 3600.0 * vcpu_hour_usd + result.s3_put_requests / 1000 * s3_put_per_1000
               + result.s3_get_requests / 1000 * s3_get_per_1000 + sqs / 1e6 * sqs_per_million)
        return DayCost(sqs, usd, basis)


def record_day(settings: Settings, hydrophone: str, result: ReduceResult, *, calibration_sha256: str = "",
               reduce_cpu_s: float | None = None, cost: DayCost | None = None,
               estimate_usd: float | None = None, estimate_basis: str = "") -> None:
    """Upsert the day's product row (a re-run replaces it). ``estimate_usd``:
    what the fleet plan priced the day's files at before the run (``cli``
    asks the plan; ``estimate_basis`` says how, or why there is none)."""
    from ...db import connect

    day = result.day
    cal = day.calibration
    day0 = dt.datetime.fromtimestamp(int(day.times[0]), dt.UTC).date()
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO hydro_levels_day (hydrophone, day, product_key, code_version, params_hash, params, "
                "calibration, calibration_deployment, calibration_sha256, units, source_files, minutes_with_audio, "
                "minutes_missing, coverage, reduce_cpu_s, compute_cpu_s, audio_hours, s3_put_requests, "
                "s3_get_requests, sqs_requests, cost_usd, cost_basis, estimate_usd, estimate_basis) VALUES (%s, %s, %s, "
                "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (hydrophone, day) DO UPDATE SET product_key = EXCLUDED.product_key, "
                "code_version = EXCLUDED.code_version, params_hash = EXCLUDED.params_hash, params = EXCLUDED.params, "
                "calibration = EXCLUDED.calibration, calibration_deployment = EXCLUDED.calibration_deployment, "
                "calibration_sha256 = EXCLUDED.calibration_sha256, units = EXCLUDED.units, "
                "source_files = EXCLUDED.source_files, minutes_with_audio = EXCLUDED.minutes_with_audio, "
                "minutes_missing = EXCLUDED.minutes_missing, coverage = EXCLUDED.coverage, "
                "reduce_cpu_s = EXCLUDED.reduce_cpu_s, compute_cpu_s = EXCLUDED.compute_cpu_s, "
                "audio_hours = EXCLUDED.audio_hours, s3_put_requests = EXCLUDED.s3_put_requests, "
                "s3_get_requests = EXCLUDED.s3_get_requests, sqs_requests = EXCLUDED.sqs_requests, "
                "cost_usd = EXCLUDED.cost_usd, cost_basis = EXCLUDED.cost_basis, estimate_usd = EXCLUDED.estimate_usd, "
                "estimate_basis = EXCLUDED.estimate_basis, created_at = now()",
                (hydrophone, day0, result.key, ", ".join(day.code_versions), day.params.digest(),
                 json.dumps(asdict(day.params)), cal.source if cal else "", cal.deployment if cal else "",
                 calibration_sha256, day.units, list(day.sources), int((~day.missing).sum()),
                 int(day.missing.sum()), round(day.coverage, 6), reduce_cpu_s, day.compute_cpu_s, day.audio_hours,
                 result.s3_put_requests, result.s3_get_requests, cost.sqs_requests if cost else 0,
                 cost.usd if cost else None, cost.basis if cost else "", estimate_usd, estimate_basis),
            )
    finally:
        conn.close()


def reprocess_jobs(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The file jobs (``HydroJob`` bodies) that recompute the days in ``rows``, each file once."""
    seen: set[str] = set()
    jobs: list[dict[str, str]] = []
    for r in rows:
        for url in r["source_files"]:
            if url not in seen:
                seen.add(url)
                jobs.append({"file_url": url, "hydrophone": r["hydrophone"]})
    return jobs


def valid_reprocess_jobs(rows: list[dict[str, Any]]) -> tuple[list[HydroJob], list[str]]:
    """``reprocess_jobs`` validated as workers validate them: the jobs, and
    ``"url: why"`` for each body that is not one (a product row whose source
    URL the job model now refuses)."""
    jobs: list[HydroJob] = []
    ignored: list[str] = []
    for body in reprocess_jobs(rows):
        try:
            job = parse_job(HydroJob, body)
        except JobValidationError as err:
            ignored.append(f"{body['file_url']}: {err}")
            continue
        assert isinstance(job, HydroJob)
        jobs.append(job)
    return jobs, ignored
