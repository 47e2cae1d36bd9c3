"""The ``::``-delimited status codec (SPEC.md, "Status messages and tables").

One record model per pipeline; the field order of the model *is* the wire
format. ``encode`` refuses values that would break the framing (``::`` or a
line break) and ``decode`` checks field count and types, so a malformed
message is caught with a reason instead of being half-written.

Formats (kept exactly as the original tools wrote them)::

    echo         instance_id::stat::job_id::date
    hydrophone   instance_id::stat::file_url::clips::date
    search       instance_id::stat::track_id::yt_url::views::date
    download     instance_id::stat::track_id::yt_url::date
    spectrogram  instance_id::stat::track_id::win::ini::fin::rows::cols::date
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator

SEP = "::"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
#: SQS message attributes next to the ``::`` body (the body format is the
#: original's; these carry what it has no room for): the sender's dedupe
#: key (job message id + item) and the reason of a failure or skip.
ATTR_DEDUPE = "dedupe_key"
ATTR_REASON = "reason"
MAX_REASON = 1000


class Stat(IntEnum):
    FAILED = 0
    DONE = 1
    BANNED = -1
    SKIPPED = 2
    #: Not a job outcome: the instance paused (its session is rate-limited)
    #: and handed the job back; one row per pause, the reason says until when.
    PAUSED = 3


class StatusFormatError(ValueError):
    """A status value or message does not fit the wire format."""


#: Characters an SQS message body cannot carry (SQS allows #x9 #xA #xD,
#: #x20-#xD7FF, #xE000-#xFFFD and above #xFFFF), NUL among them.
_NOT_SQS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def sqs_clean(text: str) -> str:
    """``text`` with every character SQS refuses replaced by U+FFFD (which it
    accepts): what every status field and attribute goes through before it
    is sent, so a status is never refused (``InvalidMessageContents``)."""
    return _NOT_SQS.sub("\ufffd", text)


def wire_problem(text: str) -> str:
    """Why ``text`` cannot be a status field, or ``""`` when it can."""
    if SEP in text or "\n" in text or "\r" in text:
        return "may not contain '::' or a line break"
    if _NOT_SQS.search(text):
        return "may not contain control characters (SQS cannot carry them)"
    # A leading or trailing ':' would merge with a separator on the wire.
    if text.startswith(":") or text.endswith(":"):
        return "may not start or end with ':'"
    return ""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


class StatusRecord(BaseModel):
    """Base of every status record. Subclasses add fields *between* ``stat``
    and ``date``; ``date`` is always last on the wire."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pipeline: ClassVar[str]
    table: ClassVar[str]

    instance_id: str = Field(min_length=1, max_length=128)
    stat: Stat
    date: dt.datetime = Field(default_factory=utcnow)

    @field_validator("date")
    @classmethod
    def _whole_seconds_utc(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.replace(microsecond=0)

    @field_serializer("date")
    def _date_text(self, value: dt.datetime) -> str:
        return value.strftime(DATE_FORMAT)

    @classmethod
    def wire_fields(cls) -> list[str]:
        names = [n for n in cls.model_fields if n not in ("instance_id", "stat", "date")]
        return ["instance_id", "stat", *names, "date"]

    # --- codec ---------------------------------------------------------------
    def encode(self) -> str:
        parts = []
        for name in self.wire_fields():
            value = getattr(self, name)
            if isinstance(value, dt.datetime):
                text = value.strftime(DATE_FORMAT)
            elif isinstance(value, Stat):
                text = str(int(value))
            else:
                text = str(value)
            problem = wire_problem(text)
            if problem:
                raise StatusFormatError(f"{self.pipeline} status field {name!r} {problem}: {text[:80]!r}")
            parts.append(text)
        return SEP.join(parts)

    #: What ``encode_safe`` puts in place of a value that would break the framing.
    PLACEHOLDER: ClassVar[str] = "invalid"

    def encode_safe(self) -> tuple[str, list[str]]:
        """``encode()``, except that a field value that would break the
        framing is replaced by ``PLACEHOLDER`` (one holding characters SQS
        refuses is cleaned by ``sqs_clean``) instead of failing: returns the
        wire text and what was replaced. A status row is never lost to a
        value (the reason carries what was wrong)."""
        try:
            return self.encode(), []
        except StatusFormatError:
            pass
        problems: list[str] = []
        fixed: dict[str, Any] = {}
        for name in self.wire_fields():
            value = getattr(self, name)
            if isinstance(value, str):
                problem = wire_problem(value)
                if not problem:
                    continue
                cleaned = sqs_clean(value)
                if cleaned != value and not wire_problem(cleaned):
                    # Only characters SQS refuses: the value stays, cleaned.
                    problems.append(f"{name} had characters SQS refuses (each replaced by U+FFFD)")
                    fixed[name] = cleaned
                else:
                    problems.append(f"{name} {problem}")
                    fixed[name] = self.PLACEHOLDER
        return self.model_copy(update=fixed).encode(), problems

    @classmethod
    def decode(cls, body: str) -> StatusRecord:
        if not isinstance(body, str):
            raise StatusFormatError(f"status body must be text, got {type(body).__name__}")
        if "\x00" in body:
            raise StatusFormatError(f"{cls.pipeline} status contains a NUL character")
        fields = cls.wire_fields()
        parts = body.split(SEP)
        if len(parts) != len(fields):
            raise StatusFormatError(
                f"{cls.pipeline} status needs {len(fields)} '::'-separated fields "
                f"({SEP.join(fields)}), got {len(parts)}"
            )
        values: dict[str, Any] = dict(zip(fields, parts, strict=True))
        try:
            values["date"] = dt.datetime.strptime(values["date"], DATE_FORMAT)
        except ValueError:
            raise StatusFormatError(f"{cls.pipeline} status date {values['date'][:40]!r} is not {DATE_FORMAT}") from None
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise StatusFormatError(f"{cls.pipeline} status field {where!r}: {first['msg']}") from None

    def row(self) -> dict[str, Any]:
        """Column values for the status table (stat as a plain int)."""
        out = {name: getattr(self, name) for name in self.wire_fields()}
        out["stat"] = int(self.stat)
        return out


# --- inbound status messages (what the writer receives) ---------------------------
#: Longest dedupe key stored as it is; longer ones (outside input: a sender
#: attribute) are stored as their hash, which keeps the unique index small.
MAX_KEY = 200


def bounded_key(raw: str) -> str:
    if len(raw) <= MAX_KEY:
        return raw
    return "sha256:" + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class InboundRecord:
    message_id: str
    queue_name: str
    body: str
    attributes: dict[str, str] = field(default_factory=dict)
    #: SQS's ApproximateReceiveCount and receipt handle (for the retry backoff).
    receive_count: int = 1
    receipt_handle: str = ""

    @property
    def key(self) -> str:
        return bounded_key(self.attributes.get(ATTR_DEDUPE) or self.message_id)

    @property
    def reason(self) -> str | None:
        reason = self.attributes.get(ATTR_REASON)
        return reason[:MAX_REASON] if reason else reason
