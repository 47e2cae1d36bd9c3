"""The fleet's results, from the bucket to a folder, without knowing the key layout.

By site and day range (hydrophone clips: ``{prefix}/{hydrophone path}/YYYY_MM_DD/``,
under the site's classic and 2025 archive spellings both) or by track ids
(``spec/{track}__*.jpg`` windows and ``audio/{track}.mp3``). The folder mirrors
the keys. Each object is written to ``NAME.part`` and renamed when whole, so
an interrupted pull leaves no half file under a real name; the next pull
skips every object already there at its listed size and fetches the rest
(a file of another size, e.g. cut short by some other tool, is fetched
again). ``aws s3 sync`` does the same for one prefix; this knows which
prefixes a site's days or a list of tracks mean.

``specfleet results pull`` parses its options, calls :func:`pull_results`
and renders the :class:`Pulled` it returns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from .storage import Storage

#: S3 prefixes of a track's results (the music pipelines' default layout).
TRACK_PREFIXES = ("spec/{track}__", "audio/{track}.mp3")

#: ``on_object(key, size, fetched)``: called after each listed object (fetched or already there).
OnObject = Callable[[str, int, bool], None]


@dataclass
class PullResult:
    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bytes_fetched: int = 0


class Pulled(BaseModel):
    """A pull's outcome: the objects fetched (or, in a dry run, to fetch) and those already there."""

    out: str
    source: str
    dry_run: bool
    objects: int
    bytes: int
    already_there: int


def day_prefixes(prefix: str, hydrophone_paths: Iterable[str], start: dt.date, end: dt.date) -> list[str]:
    """Clip prefixes of every day from ``start`` to ``end`` (inclusive)."""
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return [f"{prefix.strip('/')}/{path.strip('/')}/{day:%Y_%m_%d}/" for path in hydrophone_paths for day in days]


def site_day_prefixes(first: dt.date, last: dt.date, *, site: str | None = None,
                      hydrophone: str | None = None) -> list[str]:
    """The clip prefixes of a site's (every archive spelling of it) or one
    hydrophone path's days, under the hydrophone pipeline's output prefix.
    An unknown site raises ``UnknownSite`` (a ``ValueError`` naming the choices)."""
    from .pipelines.hydrophone.settings import HydroSettings
    from .pipelines.hydrophone.sites import find_site

    prefix = HydroSettings().prefix
    if hydrophone:
        return day_prefixes(prefix, [hydrophone.strip("/")], first, last)
    return day_prefixes(prefix, list(find_site(site or "").paths), first, last)  # outputs may sit under either


def track_prefixes(tracks: Iterable[str]) -> list[str]:
    return [p.format(track=t) for t in tracks for p in TRACK_PREFIXES]


def plan(listing: Iterable[tuple[str, int]], out: Path) -> Iterator[tuple[str, int, Path, bool]]:
    """``(key, size, local path, already there)`` per listed object, each key once."""
    seen: set[str] = set()
    for key, size in listing:
        if key in seen or key.endswith("/"):
            continue
        seen.add(key)
        local = out / key
        yield key, size, local, local.is_file() and local.stat().st_size == size


def listing(storage: Storage, prefixes: Iterable[str]) -> list[tuple[str, int]]:
    """``(key, size)`` of every object under ``prefixes``."""
    return [obj for prefix in prefixes for obj in storage.list(prefix)]


def pull(storage: Storage, listed: Iterable[tuple[str, int]], out: Path, *,
         on_object: OnObject | None = None) -> PullResult:
    """Fetch every listed object not already in ``out`` (``on_object(key,
    size, fetched)`` after each one)."""
    result = PullResult()
    for key, size, local, present in plan(listed, out):
        if present:
            result.skipped.append(key)
        else:
            local.parent.mkdir(parents=True, exist_ok=True)
            part = local.with_name(local.name + ".part")
            storage.download(key, part)
            part.replace(local)  # whole or not there: never a half file under the real name
            result.fetched.append(key)
            result.bytes_fetched += size
        if on_object is not None:
            on_object(key, size, not present)
    return result


def pull_results(storage: Storage, prefixes: list[str], out: Path, *, dry_run: bool = False,
                 on_start: Callable[[int], None] | None = None, on_object: OnObject | None = None) -> Pulled:
    """List ``prefixes`` and fetch what ``out`` lacks (``dry_run``: count it
    only). ``on_start(objects listed)`` before the first fetch, ``on_object``
    after each (a progress bar)."""
    listed = listing(storage, prefixes)
    where = f"s3://{storage.bucket} under {', '.join(prefixes[:3])}{' ...' if len(prefixes) > 3 else ''}"
    if dry_run:
        todo = [(k, n) for k, n, _, present in plan(listed, out) if not present]
        return Pulled(out=str(out), source=where, dry_run=True, objects=len(todo), bytes=sum(n for _, n in todo),
                      already_there=len(listed) - len(todo))
    if on_start is not None:
        on_start(len({k for k, _ in listed}))
    done = pull(storage, listed, out, on_object=on_object)
    return Pulled(out=str(out), source=where, dry_run=False, objects=len(done.fetched), bytes=done.bytes_fetched,
                  already_there=len(done.skipped))
