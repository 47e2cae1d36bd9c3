"""Producers for the music pipelines (above them: search and download are
independent pipelines, and these read and feed both).

``produce_search``   queries.csv -> ``jobs_search``, skipping tracks that
                     already have a ``track_url`` row (found or NOTFOUND: they
                     were searched). Columns: ``track_id`` and ``query``, plus
                     optional ``track_name`` and ``artist_name`` (the split the
                     title matcher's artist rule uses); the original's
                     ``;``-separated file (``index;...;track_id;track_name;
                     artist_name``, no ``query``) is read too, with query =
                     track_name + " " + artist_name as the original built it.
``produce_download`` found ``track_url`` rows (or a CSV ``track_id,yt_url``) ->
                     ``jobs_download``, skipping tracks whose mp3 is in S3.

A CSV is validated in full before anything is enqueued; the first bad row
stops the run with an error naming the file, line and field. Jobs go out in
batches of 10 (one SQS call each) and ``on_progress`` hears about each batch.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from ..db import connect
from ..jobs import Job
from ..pipelines.download import SPEC as DOWNLOAD
from ..pipelines.download.models import DownloadJob
from ..pipelines.download.worker import audio_key
from ..pipelines.music.settings import MusicSettings
from ..pipelines.music.urls import UrlPolicyError, check_video_url
from ..pipelines.search import SPEC as SEARCH
from ..pipelines.search.models import SearchJob
from ..runtime.spec import PipelineSpec
from ..settings import Settings
from ..storage import Storage

MAX_CSV_BYTES = 200 * 1024 * 1024
T = TypeVar("T", bound=Job)
Progress = Callable[[int], None]


class CsvError(ValueError):
    """A CSV is unusable; the message names the file, line and problem."""


@dataclass
class ProduceReport:
    total: int = 0
    enqueued: int = 0
    skipped: int = 0
    #: Rows left out with the reason (only for rows read from ``track_url``;
    #: a bad CSV row is an error).
    invalid: list[str] = field(default_factory=list)


def _read_rows(
    path: Path, required: Sequence[str], alternative: Sequence[str] = ()
) -> Iterable[tuple[int, dict[str, str]]]:
    """Rows of a ``,``- or ``;``-separated CSV (the delimiter the header line
    uses most) whose header holds ``required``, or the required columns
    but the last with ``alternative`` in its place."""
    path = Path(path)
    if not path.is_file():
        raise CsvError(f"{path}: no such file")
    if path.stat().st_size > MAX_CSV_BYTES:
        raise CsvError(f"{path}: larger than {MAX_CSV_BYTES} bytes")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        try:
            first = fh.readline()
        except UnicodeDecodeError as err:
            raise CsvError(f"{path}: not UTF-8 text ({err.reason}); save it as UTF-8") from None
        fh.seek(0)
        # strict: an unterminated quote is an error, not a field that runs to the end of the file
        reader = csv.DictReader(fh, delimiter=";" if first.count(";") > first.count(",") else ",", strict=True)
        try:
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in required if c not in header]
            if missing and alternative and not [c for c in [*required[:-1], *alternative] if c not in header]:
                missing = []
            if missing:
                also = f" (or {', '.join(required[:-1])}, {', '.join(alternative)})" if alternative else ""
                raise CsvError(
                    f"{path}: header must include {', '.join(required)}{also}; missing {', '.join(missing)} (got {header})"
                )
            reader.fieldnames = header
            for row in reader:
                if None in row:
                    raise CsvError(f"{path} line {reader.line_num}: more fields than the header has")
                yield reader.line_num, {k: (v or "").strip() for k, v in row.items()}
        except csv.Error as err:
            raise CsvError(f"{path} line {reader.line_num}: {err}") from None
        except UnicodeDecodeError as err:
            raise CsvError(f"{path}: not UTF-8 text ({err.reason}); save it as UTF-8") from None


def _validate(model: type[T], path: Path, line: int, values: dict[str, str]) -> T:
    try:
        return model.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "row"
        value = values.get(where, "")
        raise CsvError(f"{path} line {line}: {where} {value[:60]!r}: {first['msg']}") from None


def read_search_csv(path: Path) -> list[SearchJob]:
    jobs: list[SearchJob] = []
    seen: dict[str, int] = {}
    for line, row in _read_rows(path, ("track_id", "query"), ("track_name", "artist_name")):
        values = {"track_id": row["track_id"]}
        if row.get("track_name") or row.get("artist_name"):
            values |= {"track_name": row.get("track_name", ""), "artist_name": row.get("artist_name", "")}
        values["query"] = row.get("query") or f"{row.get('track_name', '')} {row.get('artist_name', '')}".strip()
        job = _validate(SearchJob, path, line, values)
        if job.track_id in seen:
            raise CsvError(f"{path} line {line}: track_id {job.track_id!r} repeats line {seen[job.track_id]}")
        seen[job.track_id] = line
        jobs.append(job)
    return jobs


def read_download_csv(path: Path, config: MusicSettings) -> list[DownloadJob]:
    jobs: list[DownloadJob] = []
    for line, row in _read_rows(path, ("track_id", "yt_url")):
        job = _validate(DownloadJob, path, line, {"track_id": row["track_id"], "yt_url": row["yt_url"]})
        try:
            check_video_url(job.yt_url, config)
        except UrlPolicyError as err:
            raise CsvError(f"{path} line {line}: yt_url: {err}") from None
        jobs.append(job)
    return jobs


def tracks_with_url(
    settings: Settings, track_ids: Sequence[str] | None = None, *, found_only: bool = False
) -> dict[str, str]:
    """``track_id -> href`` from ``track_url`` (all, or just ``track_ids``);
    with ``found_only`` the NOTFOUND rows are left out."""
    found = " AND is_found" if found_only else ""
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            if track_ids is None:
                cur.execute(f"SELECT track_id, href FROM track_url WHERE true{found} ORDER BY track_id")
            else:
                cur.execute(
                    f"SELECT track_id, href FROM track_url WHERE track_id = ANY(%s){found}", (list(track_ids),)
                )
            return dict(cur.fetchall())
    finally:
        conn.close()


def _enqueue(settings: Settings, spec: PipelineSpec, jobs: Sequence[Job], on_progress: Progress | None) -> int:
    return spec.jobs(settings).send((j.body() for j in jobs), on_sent=on_progress)


def produce_search(
    settings: Settings, queries_csv: Path, *, skip_existing: bool = True, on_progress: Progress | None = None
) -> ProduceReport:
    jobs = read_search_csv(queries_csv)
    report = ProduceReport(total=len(jobs))
    if skip_existing and jobs:
        done = tracks_with_url(settings, [j.track_id for j in jobs])
        jobs = [j for j in jobs if j.track_id not in done]
        report.skipped = report.total - len(jobs)
    report.enqueued = _enqueue(settings, SEARCH, jobs, on_progress)
    return report


def produce_download(
    settings: Settings,
    csv_path: Path | None = None,
    *,
    config: MusicSettings | None = None,
    skip_existing: bool = True,
    on_progress: Progress | None = None,
) -> ProduceReport:
    """Download jobs for the found ``track_url`` rows (or ``csv_path``'s rows);
    ``config``: the music settings whose host policy the URLs must pass
    (default: from the environment)."""
    config = config or MusicSettings()
    report = ProduceReport()
    if csv_path is not None:
        jobs = read_download_csv(csv_path, config)
    else:
        jobs = []
        for track_id, href in tracks_with_url(settings, found_only=True).items():
            try:
                job = DownloadJob(track_id=track_id, yt_url=href)
                check_video_url(job.yt_url, config)
            except (ValidationError, UrlPolicyError) as err:
                report.invalid.append(f"track_url row {track_id[:64]!r}: {_short(err)}")
                continue
            jobs.append(job)
    report.total = len(jobs) + len(report.invalid)
    if skip_existing and jobs:
        in_s3 = {key for key, _size in Storage(settings).list("audio/")}
        kept = [j for j in jobs if audio_key(j.track_id) not in in_s3]
        report.skipped = len(jobs) - len(kept)
        jobs = kept
    report.enqueued = _enqueue(settings, DOWNLOAD, jobs, on_progress)
    return report


def _short(err: Exception) -> str:
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(err)
