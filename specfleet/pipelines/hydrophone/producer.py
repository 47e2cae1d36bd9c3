"""The hydrophone producer: one job per ``.mseed`` file in the day listings
of a date/time range.

Every day's listing is read first (``list_range``), so a dry run and a real
run see the same files, and a listing that fails half-way through a range
enqueues nothing. A site's day is asked in the archive folder in use at
its date, then in the other spelling (``sites.ARCHIVE_LAYOUT``). Days the
archive does not have are gaps, not errors, unless every day of the range
is missing. Files whose manifest already
exists (every clip written) are skipped unless ``force``. What was listed is
recorded for ``hydrophone days`` (best effort, see ``days.record_listings``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ...jobs import JobValidationError, parse_job
from ...outbound import HostPolicy, OutboundRefused
from ...settings import Settings
from ...storage import Storage
from . import SPEC
from .listing import DayNotInArchive, Listing, ListingError, fetch_listing
from .models import HydroJob
from .naming import day_folder, day_url, file_name, file_time, normalize_hydrophone
from .settings import HydroSettings
from .sites import archive_paths
from .timerange import RangeError, TimeRange


@dataclass
class DayListing:
    """What one day's listing holds inside the range."""

    day: dt.date
    url: str
    listing: Listing | None = None
    #: Why the day has no files (the archive does not have it), else "".
    missing: str = ""
    #: Listing URLs asked, in order (the day's folder in each spelling until one answers).
    tried: list[str] = field(default_factory=list)
    #: File URLs inside the range, sorted.
    files: list[str] = field(default_factory=list)
    #: Listed files left out by the range's times.
    outside_range: int = 0
    #: ``(href or url, reason)`` of links not taken.
    ignored: list[tuple[str, str]] = field(default_factory=list)

    @property
    def listed(self) -> int:
        return len(self.listing.files) if self.listing else 0

    def bytes(self) -> int | None:
        """Bytes of the files in range from the listing's sizes, ``None`` if unknown."""
        if self.listing is None:
            return 0
        sizes = self.listing.sizes
        if any(f not in sizes for f in self.files):
            return None
        return sum(sizes[f] for f in self.files)


@dataclass
class ProduceResult:
    day_url: str
    enqueued: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    #: ``(href or url, reason)`` of links and URLs not turned into jobs.
    ignored: list[tuple[str, str]] = field(default_factory=list)
    day: dt.date | None = None
    #: Files the day's listing holds (all of them, in range or not).
    listed: int = 0
    outside_range: int = 0
    #: Why the day has no files, else "".
    missing: str = ""


@dataclass
class RangeResult:
    hydrophone: str
    window: TimeRange
    days: list[ProduceResult] = field(default_factory=list)
    #: Things the user should know that did not stop the run (database unreachable...).
    notes: list[str] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(len(getattr(d, name)) for d in self.days)

    def summary(self) -> RangeSummary:
        """What was enqueued, as the caller shows it (a table or JSON)."""
        ignored = [i for d in self.days for i in d.ignored]
        return RangeSummary(
            hydrophone=self.hydrophone, start=f"{self.window.start:%Y-%m-%dT%H:%M}",
            end=f"{self.window.end:%Y-%m-%dT%H:%M}", range=self.window.describe(), day_url=self.days[0].day_url,
            enqueued=self.total("enqueued"), already_done=self.total("already_done"), ignored=len(ignored),
            # Every Apache index has column-sorting links and a parent link: not worth a line each.
            odd_links=[(href, why) for href, why in ignored if why not in ROUTINE_IGNORED],
            missing_days=[str(d.day) for d in self.days if d.missing],
            days=[DaySummary(day=str(d.day), day_url=d.day_url, listed=d.listed, enqueued=len(d.enqueued),
                             already_done=len(d.already_done), outside_range=d.outside_range,
                             missing=bool(d.missing)) for d in self.days],
            notes=list(dict.fromkeys(self.notes)),
        )


#: Links every Apache index has: never worth a line each.
ROUTINE_IGNORED = ("a column-sort link", "a folder, not a file")


class DaySummary(BaseModel):
    day: str
    day_url: str
    listed: int
    enqueued: int
    already_done: int
    outside_range: int
    missing: bool


class RangeSummary(BaseModel):
    """``produce hydrophone``: what one range enqueued."""

    hydrophone: str
    start: str
    end: str
    #: The range as a person reads it ("2017-10-09 to 2017-10-11").
    range: str
    day_url: str
    enqueued: int
    already_done: int
    ignored: int
    #: ``(href, why)`` of the ignored links that are not an index's routine ones.
    odd_links: list[tuple[str, str]]
    missing_days: list[str]
    days: list[DaySummary]
    notes: list[str]


class DryRunDay(BaseModel):
    day: str
    day_url: str
    tried: list[str]
    missing: bool
    listed: int
    in_range: int
    already_done: int
    to_do: int
    #: From the listing's size column (None: some file has no size there).
    bytes: int | None
    bytes_approximate: bool


class DryRun(BaseModel):
    """``produce hydrophone --dry-run``: files and bytes per day, the files
    already done, and (the caller's) fleet plan for the rest."""

    dry_run: bool = True
    hydrophone: str
    start: str
    end: str
    range: str
    days: list[DryRunDay]
    #: Files to do (in range, not done).
    files: int
    bytes: int | None
    bytes_approximate: bool
    sizes_from: str = "listing"
    #: The fleet plan for ``files`` (a ``fleet.plan.Plan`` dump), filled by the caller.
    plan: dict[str, Any] | None = None
    plan_error: str = ""
    notes: list[str]

    def total(self, name: str) -> int:
        return sum(getattr(d, name) for d in self.days)


def dry_run(settings: Settings, listings: list[DayListing], window: TimeRange, *, hydrophone: str,
            config: HydroSettings, force: bool = False) -> DryRun:
    """Files and bytes per day (sizes from the listing's size column: Apache
    rounds them, so they are approximate; no file is fetched) and the files
    already done (S3 manifests). A dry run must not need the stack: when S3
    cannot be read, a note says so and every file counts as to do."""
    hydro = normalize_hydrophone(hydrophone)
    notes: list[str] = []
    rows: list[DryRunDay] = []
    for d in listings:
        notes.extend(d.listing.notes if d.listing else [])
        done: set[str] = set()
        if not force and not d.missing:
            try:
                done = done_files(settings, config, hydro, d.day)
            except Exception as err:  # noqa: BLE001 - say what was not checked, go on
                notes.append(f"could not check S3 for files already done ({type(err).__name__}): counted as to do")
                force = True
        todo = sum(1 for f in d.files if file_name(f) not in done)
        rows.append(DryRunDay(
            day=str(d.day), day_url=d.url, tried=d.tried, missing=bool(d.missing), listed=d.listed,
            in_range=len(d.files), already_done=len(d.files) - todo, to_do=todo, bytes=d.bytes(),
            bytes_approximate=bool(d.listing and d.listing.sizes_approximate),
        ))
    known = [r.bytes for r in rows if not r.missing]
    return DryRun(
        hydrophone=hydro, start=f"{window.start:%Y-%m-%dT%H:%M}", end=f"{window.end:%Y-%m-%dT%H:%M}",
        range=window.describe(), days=rows, files=sum(r.to_do for r in rows),
        bytes=None if any(b is None for b in known) else sum(b for b in known if b is not None),
        bytes_approximate=any(r.bytes_approximate for r in rows), notes=list(dict.fromkeys(notes)),
    )


def parse_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"day {text!r} is not YYYY-MM-DD") from None


def done_files(settings: Settings, config: HydroSettings, hydrophone: str, day: dt.date) -> set[str]:
    """File names of ``day`` whose manifest exists (one S3 list call per 1000);
    for the ``levels`` profile, whose minutes are stored."""
    if config.output == "levels":
        from .levels_day import minutes_key

        prefix = minutes_key(config.levels_prefix, hydrophone, day, "").rsplit("/", 1)[0] + "/"
        return {key[len(prefix):].removesuffix(".npz") for key, _ in Storage(settings).list(prefix)}
    prefix = f"{config.manifest_prefix.strip('/')}/{hydrophone}/{day_folder(day)}/"
    return {key[len(prefix):].removesuffix(".json") for key, _ in Storage(settings).list(prefix)}


def archive_policy(config: HydroSettings, url: str) -> HostPolicy:
    """The host policy of listings and files; refuses ``url`` up front when
    workers would refuse every file of this archive."""
    policy = HostPolicy.of(config.allowed_hosts, what="hydrophone archive")
    try:
        policy.check_url(url)
    except OutboundRefused as err:
        raise ListingError(f"{err}; add it to SPECFLEET_HYDRO_ALLOWED_HOSTS (a JSON list)") from None
    return policy


def _select(listing: Listing, window: TimeRange, day: dt.date) -> tuple[list[str], int, list[tuple[str, str]]]:
    """Files of ``listing`` in ``window``: all of them when the day is whole
    in the range; else those whose start time (from the name) is in range."""
    if window.covers_day(day):
        return list(listing.files), 0, []
    taken, outside, ignored = [], 0, []
    for url in listing.files:
        start = file_time(file_name(url))
        if start is None:
            ignored.append((url, "no start time in its name, and the range is not whole days"))
        elif window.takes_file(start):
            taken.append(url)
        else:
            outside += 1
    return taken, outside, ignored


def list_range(
    window: TimeRange,
    *,
    base_url: str | None = None,
    hydrophone: str | None = None,
    config: HydroSettings | None = None,
    on_day: Callable[[DayListing], None] | None = None,
) -> list[DayListing]:
    """Read the listing of every day in ``window`` (nothing is enqueued).

    A hydrophone that is a site's folder is asked at each day in the
    spelling in use at that date, then in the other one when the first has
    no such day (``sites.archive_paths``: OOI moves old days to the new
    folder names on its own timeline); within a range, a day asks first the
    folder that answered for the day before it. Raises ``ListingError`` for
    a refused host or an unreadable listing, and ``DayNotInArchive`` when no
    day of the range has files."""
    config = config or HydroSettings()
    hydro = normalize_hydrophone(hydrophone or config.hydrophone)
    root = base_url or config.base_url
    days = window.days()
    policy = archive_policy(config, day_url(root, hydro, days[0]))
    out: list[DayListing] = []
    #: The folder that answered last for each set of candidates: the next
    #: day of the same period asks it first (OOI moves old days in bulk, so
    #: a range of moved days costs one 404, not one per day).
    answered: dict[tuple[str, ...], str] = {}
    for day in days:
        paths = archive_paths(hydro, day)
        if paths in answered:
            paths_now = (answered[paths], *(p for p in paths if p != answered[paths]))
        else:
            paths_now = paths
        entry = _list_day(day, [day_url(root, path, day) for path in paths_now], policy, config)
        if entry.listing is not None:
            answered[paths] = paths_now[len(entry.tried) - 1]
        if entry.listing is not None and len(entry.listing.files) > config.max_day_files:
            raise ListingError(
                f"day listing {entry.listing.url} links {len(entry.listing.files)} .mseed files, more than "
                f"SPECFLEET_HYDRO_MAX_DAY_FILES={config.max_day_files} (a day holds 288 5-minute files and "
                "perhaps an addendum/): nothing enqueued. Check the URL; raise the setting to take them all"
            )
        if entry.listing is not None:
            entry.url = entry.listing.url
            entry.files, entry.outside_range, entry.ignored = _select(entry.listing, window, day)
            entry.ignored = list(entry.listing.ignored) + entry.ignored
        out.append(entry)
        if on_day:
            on_day(entry)
    if all(d.missing for d in out):
        raise DayNotInArchive(_missing_message(out))
    return out


def _list_day(day: dt.date, urls: list[str], policy: HostPolicy, config: HydroSettings) -> DayListing:
    """The first of ``urls`` whose listing has the day; when none has it, the
    day is missing with one line naming every URL asked and its answer."""
    entry = DayListing(day=day, url=urls[0])
    answers: list[str] = []
    for url in urls:
        entry.tried.append(url)
        try:
            entry.listing = fetch_listing(
                url, policy=policy, timeout_s=config.read_timeout_s, attempts=config.download_attempts,
                max_bytes=config.listing_max_bytes, budget_s=config.listing_budget_s,
            )
            return entry
        except DayNotInArchive as err:
            if len(urls) == 1:
                entry.missing = str(err)
                return entry
            answers.append(f"{url} ({err.reason})")
    entry.missing = f"{day} is not in the archive in either folder spelling: tried " + " and ".join(answers)
    return entry


def _missing_message(days: list[DayListing]) -> str:
    if len(days) == 1:
        return days[0].missing
    return f"none of the {len(days)} days is in the archive (first: {days[0].missing})"


def produce_range(
    settings: Settings,
    window: TimeRange,
    *,
    base_url: str | None = None,
    hydrophone: str | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    config: HydroSettings | None = None,
    listings: list[DayListing] | None = None,
    record: bool = True,
) -> RangeResult:
    """Enqueue one job per file of ``window`` not already done; ``listings``
    from an earlier ``list_range`` are used as they are (no second read).
    ``record``: store the listings for ``hydrophone days`` (best effort)."""
    config = config or HydroSettings()
    hydro = normalize_hydrophone(hydrophone or config.hydrophone)
    if listings is None:
        listings = list_range(window, base_url=base_url, hydrophone=hydro, config=config)
    result = RangeResult(hydrophone=hydro, window=window)
    if record:
        from .days import record_listings

        note = record_listings(
            settings, hydro,
            [(d.day, d.url, {f: d.listing.sizes.get(f) for f in d.listing.files} if d.listing else {})
             for d in listings],
        )
        if note:
            result.notes.append(note)
    jobs: list[HydroJob] = []
    for entry in listings:
        day_result = ProduceResult(
            day_url=entry.url, day=entry.day, listed=entry.listed, outside_range=entry.outside_range,
            missing=entry.missing, ignored=list(entry.ignored),
        )
        result.days.append(day_result)
        if entry.listing is not None:
            result.notes.extend(entry.listing.notes)
        if entry.missing:
            continue
        skip = set() if force else done_files(settings, config, hydro, entry.day)
        for file_url in entry.files:
            if file_name(file_url) in skip:
                day_result.already_done.append(file_url)
                continue
            try:
                job = parse_job(HydroJob, {"file_url": file_url, "hydrophone": hydro, "day_files": entry.listed})
            except JobValidationError as err:
                day_result.ignored.append((file_url, str(err)))
                continue
            assert isinstance(job, HydroJob)
            jobs.append(job)
            day_result.enqueued.append(job.file_url)
    sent = 0

    def step(n: int) -> None:
        nonlocal sent
        sent += n
        if progress:
            progress(sent, len(jobs))

    SPEC.jobs(settings).send((j.body() for j in jobs), on_sent=step)
    return result


def produce_day(
    settings: Settings,
    day: dt.date,
    *,
    base_url: str | None = None,
    hydrophone: str | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    config: HydroSettings | None = None,
    record: bool = True,
) -> ProduceResult:
    """Enqueue one job per ``.mseed`` file of ``day``'s listing, skipping files
    already done; ``config``: the hydrophone settings (default: environment).
    A day the archive does not have is a ``ListingError``."""
    result = produce_range(
        settings, TimeRange.of_day(day), base_url=base_url, hydrophone=hydrophone, force=force,
        progress=progress, config=config, record=record,
    )
    return result.days[0]


__all__ = [
    "DayListing", "ListingError", "ProduceResult", "RangeError", "RangeResult", "TimeRange",
    "list_range", "parse_day", "produce_day", "produce_range",
]
