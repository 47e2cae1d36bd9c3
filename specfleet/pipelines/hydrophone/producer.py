"""The hydrophone producer: one job per ``.mseed`` file in a day's listing.

Files whose manifest already exists (every clip written) are skipped
unless ``force``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from ...jobs import JobValidationError, parse_job
from ...outbound import HostPolicy, OutboundRefused
from ...settings import Settings
from ...storage import Storage
from . import SPEC
from .listing import Listing, ListingError, fetch_listing
from .models import HydroJob
from .naming import day_folder, day_url, file_name, normalize_hydrophone
from .settings import HydroSettings


@dataclass
class ProduceResult:
    day_url: str
    enqueued: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    #: ``(href or url, reason)`` of links and URLs not turned into jobs.
    ignored: list[tuple[str, str]] = field(default_factory=list)


def parse_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"day {text!r} is not YYYY-MM-DD") from None


def done_files(settings: Settings, config: HydroSettings, hydrophone: str, day: dt.date) -> set[str]:
    """File names of ``day`` whose manifest exists (one S3 list call per 1000)."""
    prefix = f"{config.manifest_prefix.strip('/')}/{hydrophone}/{day_folder(day)}/"
    return {key[len(prefix):].removesuffix(".json") for key, _ in Storage(settings).list(prefix)}


def produce_day(
    settings: Settings,
    day: dt.date,
    *,
    base_url: str | None = None,
    hydrophone: str | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    config: HydroSettings | None = None,
) -> ProduceResult:
    """Enqueue one job per ``.mseed`` file of ``day``'s listing, skipping files
    already done; ``config``: the hydrophone settings (default: environment)."""
    config = config or HydroSettings()
    hydro = normalize_hydrophone(hydrophone or config.hydrophone)
    url = day_url(base_url or config.base_url, hydro, day)
    policy = HostPolicy.of(config.allowed_hosts, what="hydrophone archive")
    try:
        policy.check_url(url)
    except OutboundRefused as err:
        # Workers would refuse every file of this archive: say so before enqueuing.
        raise ListingError(f"{err}; add it to SPECFLEET_HYDRO_ALLOWED_HOSTS (a JSON list)") from None
    listing: Listing = fetch_listing(
        url,
        policy=policy,
        timeout_s=config.read_timeout_s,
        attempts=config.download_attempts,
    )
    result = ProduceResult(day_url=listing.url, ignored=list(listing.ignored))
    skip = set() if force else done_files(settings, config, hydro, day)
    jobs: list[HydroJob] = []
    for file_url in listing.files:
        name = file_name(file_url)
        if name in skip:
            result.already_done.append(file_url)
            continue
        try:
            job = parse_job(HydroJob, {"file_url": file_url, "hydrophone": hydro})
        except JobValidationError as err:
            result.ignored.append((file_url, str(err)))
            continue
        assert isinstance(job, HydroJob)
        jobs.append(job)
    sent = 0

    def step(n: int) -> None:
        nonlocal sent
        sent += n
        if progress:
            progress(sent, len(jobs))

    SPEC.jobs(settings).send((j.body() for j in jobs), on_sent=step)
    result.enqueued.extend(j.file_url for j in jobs)
    return result
