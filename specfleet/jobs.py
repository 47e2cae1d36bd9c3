"""Job bodies: JSON on the job queues, validated by these models.

Everything that arrives from a queue is outside input: ``parse_job`` turns a
raw body into a model or raises ``JobValidationError`` naming what was wrong.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

#: Track ids are Spotify-style base62 ids in production; we accept a slightly
#: wider alphabet (for tests and other catalogs) but never path separators,
#: dots-only names, whitespace or shell/SQL punctuation.
TRACK_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
MAX_URL_LEN = 2048


class JobValidationError(ValueError):
    """A job body is not valid; the message says which field and why."""


def _check_track_id(value: str) -> str:
    if not TRACK_ID_RE.fullmatch(value):
        raise ValueError("track_id must be 1-64 characters of A-Z a-z 0-9 _ - (no paths, spaces or punctuation)")
    return value


def _check_http_url(value: str) -> str:
    if len(value) > MAX_URL_LEN:
        raise ValueError(f"URL longer than {MAX_URL_LEN} characters")
    if "\n" in value or "\r" in value or "::" in value.split("://", 1)[-1]:
        raise ValueError("URL may not contain line breaks or '::'")
    if value.endswith(":"):
        # Status rows carry the URL between '::' separators: a trailing ':'
        # would merge with the next one and the row could not be sent.
        raise ValueError("URL may not end with ':'")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"URL scheme must be http or https, got {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise ValueError("URL has no host")
    return value


TrackId = Annotated[str, AfterValidator(_check_track_id)]
HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


class Job(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    pipeline: ClassVar[str]

    def body(self) -> str:
        return self.model_dump_json()

    def key(self) -> str:
        """A short human-readable identity for logs and status rows."""
        raise NotImplementedError


class EchoJob(Job):
    """Built-in trivial job used to smoke-test a deployment and the runtime."""

    pipeline: ClassVar[str] = "echo"
    job_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    #: Seconds the handler works (to exercise heartbeats and shutdown).
    sleep_s: float = Field(default=0.0, ge=0, le=3600)
    #: Make the handler raise (exercises retries and the dead-letter queue).
    fail: bool = False
    #: Make the handler raise ``Banned`` (exercises the ban guard and fleet failover).
    ban: bool = False

    def key(self) -> str:
        return self.job_id


class HydroJob(Job):
    pipeline: ClassVar[str] = "hydrophone"
    file_url: HttpUrl
    #: Hydrophone path below the archive root, e.g. ``CE02SHBP/LJ01D/11-HYDBBA106``.
    hydrophone: str = Field(default="", max_length=256, pattern=r"^[A-Za-z0-9_./\-]*$")

    def key(self) -> str:
        return self.file_url


class SearchJob(Job):
    pipeline: ClassVar[str] = "search"
    track_id: TrackId
    query: str = Field(min_length=1, max_length=500)
    #: Optional split of the query (both or neither): the title matcher's
    #: artist rule needs to know which words name the artist. Without it the
    #: whole query counts as the track name.
    track_name: str | None = Field(default=None, min_length=1, max_length=300)
    artist_name: str | None = Field(default=None, min_length=1, max_length=300)

    @model_validator(mode="after")
    def _split_both_or_neither(self) -> SearchJob:
        if (self.track_name is None) != (self.artist_name is None):
            raise ValueError("track_name and artist_name go together: give both or neither")
        return self

    def body(self) -> str:
        # Without a split the body stays ``{track_id, query}``: what workers
        # that predate the split accept.
        return self.model_dump_json(exclude_none=True)

    def key(self) -> str:
        return self.track_id


class DownloadJob(Job):
    pipeline: ClassVar[str] = "download"
    track_id: TrackId
    yt_url: HttpUrl

    def key(self) -> str:
        return self.track_id


class SpectoJob(Job):
    pipeline: ClassVar[str] = "spectrogram"
    track_id: TrackId
    #: S3 key of the mp3; defaults to ``audio/{track_id}.mp3``.
    audio_key: str = Field(default="", max_length=1024)

    def key(self) -> str:
        return self.track_id

    def source_key(self) -> str:
        return self.audio_key or f"audio/{self.track_id}.mp3"


JOB_MODELS: dict[str, type[Job]] = {
    m.pipeline: m for m in (EchoJob, HydroJob, SearchJob, DownloadJob, SpectoJob)
}


def body_fields(body: str | bytes) -> dict[str, Any]:
    """The JSON object in a job body, or ``{}``: for describing a body that
    failed validation, never for doing its work."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def salvage_track_id(body: str | bytes) -> str:
    """The track id of a body that failed validation, if it is itself valid
    (safe for a status row), else ``"invalid"``."""
    track_id = body_fields(body).get("track_id")
    return track_id if isinstance(track_id, str) and TRACK_ID_RE.fullmatch(track_id) else "invalid"


def parse_job(pipeline: str, body: str | bytes | dict[str, Any]) -> Job:
    """Validate a raw queue body for ``pipeline``."""
    model = JOB_MODELS[pipeline]
    try:
        data = body if isinstance(body, dict) else json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise JobValidationError(f"{pipeline} job body is not JSON: {err.msg if hasattr(err, 'msg') else err}") from None
    except RecursionError:
        raise JobValidationError(f"{pipeline} job body nests too deeply to read") from None
    except ValueError as err:  # e.g. an integer of thousands of digits
        raise JobValidationError(f"{pipeline} job body is not readable JSON: {str(err)[:200]}") from None
    if not isinstance(data, dict):
        raise JobValidationError(f"{pipeline} job body must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in err.errors()[:3]
        )
        raise JobValidationError(f"invalid {pipeline} job: {problems}") from None
