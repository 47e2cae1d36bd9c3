"""The whaledr manifest at fleet scale: parts per job and per day, one
published list.

The whaledr app reads one object, ``{whaledr_prefix}/whalemanifest.json``:
a JSON list of ``{hydrophone}___{YYYY_MM_DD}___{clip name}`` entries (the
JPEG keys below the prefix, ``/`` -> ``___``, no extension). A month of one
hydrophone is 518,400 entries, 30 MB. When every job read that list, added
its 60 entries and wrote it back under ``If-Match``, each job's cost grew
with the archive and every job contended with the whole fleet (at a month,
12 writers managed 0.16 merges/s and 7 of 48 jobs failed). Instead:

1. **per job** -- nothing new is written: the job's done-marker
   (``{manifest_prefix}/{hydrophone}/{YYYY_MM_DD}/{file}.json``, written
   after its clips) already lists its keys, so it *is* the job's part. The
   job then lists its day's markers (one LIST request) to learn whether the
   day is done. Cost: independent of the manifest's size; no contention
   (every key is the job's own).
2. **per day** -- when a day's markers number its listed files (the job
   carries ``day_files`` from the producer), that job publishes: it gathers
   the day's entries from the markers into the day part
   ``{manifest_prefix}/whaledr-days/{hydrophone}/{YYYY_MM_DD}.json``, then
   rebuilds the published list as the union of every day part. Once per
   finished day, not once per job.
3. **on demand** -- ``specfleet hydrophone publish-manifest`` does the same
   for days given (a day with a rejected file never completes by itself),
   or for every day holding markers (``--all-days``: also turns markers
   written before parts existed into parts).

Both rebuilds are conditional writes: the ETag is read *before* the
sources are listed and the write is made ``If-Match`` that ETag (or
``If-None-Match: *``), then the ETag is read back; a publisher that loses,
or whose write was overwritten by a build that may have started earlier,
builds again. Any write that stays therefore began after every earlier
one's sources were written, so no day is lost between concurrent
publishers, and contention is only between the few publishers of the
moment. A rebuild reads every source again, so redelivered jobs and
repeated publishes are harmless, and any later publish heals a list that
a store with non-atomic conditional writes (moto checks, then writes)
let slip.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ...runtime.errors import Transient
from ...storage import PreconditionFailed, Storage
from .naming import day_folder, manifest_entry, whale_manifest_key
from .settings import HydroSettings

#: Sub-prefix of ``manifest_prefix`` holding the per-day parts.
DAY_PARTS = "whaledr-days"
#: Markers and parts are small: read this many at once.
READERS = 16


def marker_prefix(config: HydroSettings, hydrophone: str, day: dt.date | dt.datetime) -> str:
    """Where the done-markers of ``day``'s files are (``producer.done_files`` lists the same)."""
    return f"{config.manifest_prefix.strip('/')}/{hydrophone}/{day_folder(day)}/"


def parts_prefix(config: HydroSettings) -> str:
    return f"{config.manifest_prefix.strip('/')}/{DAY_PARTS}/"


def day_part_key(config: HydroSettings, hydrophone: str, day: dt.date | dt.datetime) -> str:
    return f"{parts_prefix(config)}{hydrophone}/{day_folder(day)}.json"


def marker_entries(body: bytes, whaledr_prefix: str) -> list[str]:
    """The manifest entries of one done-marker: its JPEG keys below the whaledr prefix."""
    try:
        keys = json.loads(body).get("keys", [])
    except (ValueError, AttributeError):
        return []  # a damaged marker adds nothing; the file's next delivery rewrites it
    head = whaledr_prefix.strip("/") + "/"
    return [manifest_entry(whaledr_prefix, k) for k in keys
            if isinstance(k, str) and k.startswith(head) and k.endswith(".jpg")]


def _read_all(storage: Storage, keys: list[str]) -> list[bytes]:
    if not keys:
        return []
    with ThreadPoolExecutor(max_workers=min(READERS, len(keys)), thread_name_prefix="whale-read") as pool:
        return list(pool.map(storage.get_bytes, keys))


def _union_of_lists(bodies: Iterable[bytes]) -> list[str]:
    entries: set[str] = set()
    for body in bodies:
        try:
            listed = json.loads(body)
        except ValueError:
            continue
        if isinstance(listed, list):
            entries.update(e for e in listed if isinstance(e, str))
    return sorted(entries)


def rebuild(
    storage: Storage, key: str, build: Callable[[], list[str]], *, attempts: int = 20,
    done: Callable[[], bool] | None = None,
) -> list[str] | None:
    """Write ``build()`` to ``key`` as a JSON list such that no concurrent
    rebuild that began later is overwritten (see the module doc); returns
    what was written, or ``None`` when ``done()`` says (before an attempt)
    that another publisher already wrote what this one would."""
    for attempt in range(max(1, attempts)):
        if done is not None and done():
            return None
        before = storage.etag(key)
        entries = build()
        body = json.dumps(entries).encode()
        try:
            if before is None:
                written = storage.put_bytes(key, body, "application/json", if_none_match=True)
            else:
                written = storage.put_bytes(key, body, "application/json", if_match=before)
        except PreconditionFailed:
            time.sleep(random.uniform(0.0, min(2.0, 0.05 * 2**attempt)))  # jittered backoff
            continue
        if storage.etag(key) == written:
            return entries
        # Overwritten since: by a build that may have listed its sources before ours were all there.
    raise Transient(f"could not publish {key} after {attempts} attempts (too many concurrent publishers)")


def publish_day(storage: Storage, config: HydroSettings, hydrophone: str, day: dt.date | dt.datetime) -> int:
    """Rebuild ``day``'s part from its done-markers; returns its entry count."""
    prefix = marker_prefix(config, hydrophone, day)

    def build() -> list[str]:
        keys = [k for k, _ in storage.list(prefix) if k.endswith(".json")]
        return sorted({e for body in _read_all(storage, keys) for e in marker_entries(body, config.whaledr_prefix)})

    return len(rebuild(storage, day_part_key(config, hydrophone, day), build) or [])


def published_key(config: HydroSettings) -> str:
    """Which day parts (by ETag) the published list was last built from."""
    return f"{config.manifest_prefix.strip('/')}/whaledr-published.json"


@dataclass(frozen=True)
class Published:
    entries: int
    day_parts: int
    bytes: int
    #: The list already held exactly the current day parts: nothing was read or written.
    up_to_date: bool = False


def publish_manifest(storage: Storage, config: HydroSettings, *, force: bool = False) -> Published:
    """Rebuild the list the whaledr app reads as the union of every day part.

    Skipped (unless ``force``) when the record of the last publish names
    exactly the day parts there are now, by ETag: jobs finishing a day at
    the same moment, or a publisher that lost a race to one that took its
    part in, then read two small objects instead of the whole month."""
    record = published_key(config)
    parts: dict[str, str] = {}

    def current() -> dict[str, str]:
        return {k: e for k, e in storage.list_etags(parts_prefix(config)).items() if k.endswith(".json")}

    def done() -> bool:
        if force:
            return False
        found = storage.get_with_etag(record)
        try:
            return found is not None and json.loads(found[0]).get("parts") == current()
        except (ValueError, AttributeError):
            return False

    def build() -> list[str]:
        parts.clear()
        parts.update(current())
        return _union_of_lists(_read_all(storage, sorted(parts)))

    key = whale_manifest_key(config.whaledr_prefix)
    entries = rebuild(storage, key, build, done=done)
    if entries is None:
        return Published(entries=-1, day_parts=len(current()), bytes=-1, up_to_date=True)
    # Written after the list, so it never names parts the list lacks.
    storage.put_bytes(record, json.dumps({"parts": parts, "list": key, "entries": len(entries)}).encode(),
                      "application/json")
    return Published(entries=len(entries), day_parts=len(parts), bytes=len(json.dumps(entries)))


def days_with_markers(storage: Storage, config: HydroSettings, hydrophone: str) -> list[dt.date]:
    """Every day of ``hydrophone`` holding at least one done-marker."""
    head = f"{config.manifest_prefix.strip('/')}/{hydrophone}/"
    days: set[dt.date] = set()
    for key, _ in storage.list(head):
        folder = key[len(head):].split("/", 1)[0]
        try:
            days.add(dt.datetime.strptime(folder, "%Y_%m_%d").date())
        except ValueError:
            continue
    return sorted(days)


def publish_if_day_done(
    storage: Storage, config: HydroSettings, hydrophone: str, day: dt.date | dt.datetime, day_files: int
) -> str:
    """After a job's marker: publish its day and the manifest when the day's
    markers number ``day_files`` (0: unknown, never). Returns a note for the
    status reason when the day was done but could not be published (the
    job's own work is safe in its marker; a later publish includes it, so
    the job is not failed and rendered again for it)."""
    if day_files <= 0:
        return ""
    done = sum(1 for key, _ in storage.list(marker_prefix(config, hydrophone, day)) if key.endswith(".json"))
    if done < day_files:
        return ""
    try:
        publish_day(storage, config, hydrophone, day)
        publish_manifest(storage, config)
    except Exception as err:  # noqa: BLE001  the job's clips and part are safe; say how to publish later
        return (f"whaledr manifest not published ({type(err).__name__}: {err}); "
                f"run: specfleet hydrophone publish-manifest --day {day:%Y-%m-%d}")
    return ""
