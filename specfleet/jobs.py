"""Job bodies: JSON on the job queues, validated by these models.

Everything that arrives from a queue is outside input: ``parse_job`` turns a
raw body into a model or raises ``JobValidationError`` naming what was wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

#: Track ids are Spotify-style base62 ids in production; we accept a slightly
#: wider alphabet (for tests and other catalogs) but never path separators,
#: dots-only names, whitespace or shell/SQL punctuation.
TRACK_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
MAX_URL_LEN = 2048


J = TypeVar("J", bound="Job")


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


def body_fields(body: str | bytes) -> dict[str, Any]:
    """The JSON object in a job body, or ``{}``: for describing a body that
    failed validation, never for doing its work."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError, RecursionError):  # RecursionError: nested too deeply to read
        return {}
    return data if isinstance(data, dict) else {}


def salvage_track_id(body: str | bytes) -> str:
    """The track id of a body that failed validation, if it is itself valid
    (safe for a status row), else ``"invalid"``."""
    track_id = body_fields(body).get("track_id")
    return track_id if isinstance(track_id, str) and TRACK_ID_RE.fullmatch(track_id) else "invalid"


def _read_json(body: str | bytes, pipeline: str) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise JobValidationError(f"{pipeline} job body is not JSON: {err.msg if hasattr(err, 'msg') else err}") from None
    except RecursionError:
        raise JobValidationError(f"{pipeline} job body nests too deeply to read") from None
    except ValueError as err:  # e.g. an integer of thousands of digits
        raise JobValidationError(f"{pipeline} job body is not readable JSON: {str(err)[:200]}") from None


def parse_job(
    model: type[J],
    body: str | bytes | dict[str, Any],
    *,
    legacy: Callable[[str], dict[str, Any] | None] | None = None,
) -> J:
    """Validate a raw queue body as ``model``.

    ``legacy`` reads the non-JSON bodies the original producers wrote (e.g.
    ``track_id::yt_url``); it is asked first and returns None for a body
    that is not one of them."""
    pipeline = model.pipeline
    data: Any = body
    if not isinstance(body, dict):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        old = legacy(text) if legacy is not None else None
        data = old if old is not None else _read_json(body, pipeline)
    if not isinstance(data, dict):
        raise JobValidationError(f"{pipeline} job body must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in err.errors()[:3]
        )
        raise JobValidationError(f"invalid {pipeline} job: {problems}") from None
