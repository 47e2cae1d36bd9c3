"""Search overrides: a CSV a person keeps, ``track_id,url`` per line, where
``url`` is a video URL or ``NOTFOUND`` -- to fix a wrong version (a live
take, a cover, a reaction video the title rules let through) or to say
there is none, without editing the database.

A search worker answers an overridden track from the file, without
searching (no request, nothing from the budget): stat 1 with the URL
(checked against the host policy like any result) or stat 2 NOTFOUND, rule
``override``. The file is ``SPECFLEET_MUSIC_OVERRIDES_CSV``: a local path or
``s3://bucket/key`` (a fleet reads it from S3); it is read again when it
changes (local: its modification time; S3: its ETag, looked up at most once
a minute). A header line ``track_id,url`` is optional; blank lines and
lines starting with ``#`` are skipped.

On a fleet the file lives under ``music-config/`` of the data bucket: the
worker role may read objects there (and write none), and nothing elsewhere.
So the worker's pre-flight (``preflight_overrides``) refuses, with one line,
an ``s3://`` URL in another bucket or prefix, and reads the file once: a
file that is missing, unreadable or malformed stops the worker before it
takes a job (each job would otherwise fail on it).
"""

from __future__ import annotations

import csv
import io
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import botocore.exceptions

from ...aws import client, error_code
from ...jobs import TRACK_ID_RE
from ...runtime.outage import is_outage
from ...runtime.preflight import ConfigError
from ...settings import Settings
from ..music.settings import CONFIG_PREFIX, MusicSettings
from .track_url import NOTFOUND


class OverridesError(ValueError):
    """The overrides file is malformed (says which line)."""


def parse_overrides(text: str) -> dict[str, str]:
    """``{track_id: url or NOTFOUND}`` from the CSV text."""
    out: dict[str, str] = {}
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if n == 1 and [c.strip().lower() for c in row[:2]] == ["track_id", "url"]:
            continue
        if len(row) != 2:
            raise OverridesError(f"overrides line {n}: expected 'track_id,url', got {len(row)} fields")
        track_id, url = row[0].strip(), row[1].strip()
        if not TRACK_ID_RE.fullmatch(track_id):
            raise OverridesError(f"overrides line {n}: {track_id[:40]!r} is not a track id")
        if url != NOTFOUND and not url.startswith(("https://", "http://")):
            raise OverridesError(f"overrides line {n}: {url[:60]!r} is neither a URL nor {NOTFOUND}")
        out[track_id] = url
    return out


class Overrides:
    """The overrides of one worker process, re-read when the file changes."""

    def __init__(self, source: str, settings: Settings, *, recheck_s: float = 60.0):
        self.source = source
        self.settings = settings
        self.recheck_s = recheck_s
        self._version: object = None
        self._checked = 0.0
        self._table: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, track_id: str) -> str | None:
        if not self.source:
            return None
        with self._lock:
            self._refresh()
            return self._table.get(track_id)

    def load(self) -> int:
        """Read the file now; the number of overridden tracks."""
        with self._lock:
            self._refresh()
            return len(self._table)

    def _refresh(self) -> None:
        now = time.monotonic()
        if self._version is not None and now - self._checked < self.recheck_s and self.source.startswith("s3://"):
            return
        self._checked = now
        if self.source.startswith("s3://"):
            parts = urlsplit(self.source)
            s3 = client("s3", self.settings)
            version = s3.head_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["ETag"]
            if version != self._version:
                body = s3.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read()
                self._table, self._version = parse_overrides(body.decode("utf-8-sig")), version
            return
        path = Path(self.source)
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        if version != self._version:
            self._table, self._version = parse_overrides(path.read_text(encoding="utf-8-sig")), version


_shared: dict[str, Overrides] = {}
_shared_lock = threading.Lock()


def overrides_for(source: str, settings: Settings) -> Overrides:
    """This process's ``Overrides`` for ``source``."""
    with _shared_lock:
        if source not in _shared:
            _shared[source] = Overrides(source, settings)
        return _shared[source]


def preflight_overrides(settings: Settings, config: MusicSettings) -> None:
    """Pre-flight: a configured overrides file is where this worker may read
    it (an ``s3://`` URL: under ``music-config/`` of ``SPECFLEET_BUCKET``) and
    reads as overrides."""
    source = config.overrides_csv
    if not source:
        return
    place = f"s3://{settings.bucket}/{CONFIG_PREFIX}"
    if source.startswith("s3://"):
        parts = urlsplit(source)
        key = parts.path.lstrip("/")
        if parts.netloc != settings.bucket or not key.startswith(CONFIG_PREFIX) or key == CONFIG_PREFIX:
            raise ConfigError(f"overrides {source} are outside {place}, the only place the worker role may read them",
                              f"put the CSV under {place} and point SPECFLEET_MUSIC_OVERRIDES_CSV at it")
    elif "://" in source:
        raise ConfigError(f"overrides {source}: neither a local path nor an s3:// URL",
                          f"use a path or an object under {place}")
    try:
        Overrides(source, settings).load()
    except botocore.exceptions.ClientError as err:
        if is_outage(err):
            raise  # S3 is down or throttling: the worker waits it out and checks again
        code = error_code(err)
        what = "do not exist" if code in ("404", "NoSuchKey", "NotFound") else f"cannot be read ({code})"
        raise ConfigError(f"overrides {source} {what}", "upload the CSV there, or unset "
                          "SPECFLEET_MUSIC_OVERRIDES_CSV (the stack's SearchOverridesCsv)") from None
    except OSError as err:
        raise ConfigError(f"overrides {source} cannot be read ({err.strerror or err})",
                          "check SPECFLEET_MUSIC_OVERRIDES_CSV") from None
    except (OverridesError, UnicodeDecodeError) as err:
        raise ConfigError(f"overrides {source} are malformed: {err}", "fix the CSV (track_id,url per line)") from None
