"""Date and time ranges of the hydrophone producer (``--start``/``--end``/``--day``).

Times are UTC, as in OOI file names. A range is ``[start, end)``; a bare
date as ``end`` means through the end of that day, so ``--start 2017-10-09
--end 2017-10-11`` is three whole days. A file is taken when its nominal
five minutes (``FILE_SECONDS`` from the start time in its name) overlap the
range, so ``--start 2017-10-09T06:02`` still takes the 06:00 file.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

#: What one OOI broadband file nominally holds (SPEC.md: 5-minute files, up to 288 a day).
FILE_SECONDS = 300
FILES_PER_DAY = 24 * 3600 // FILE_SECONDS
#: Longest range one command may take (bounds the listings fetched).
MAX_DAYS = 366

_WHEN_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?Z?$")


class RangeError(ValueError):
    """A date, time or range the producer cannot take (the message says why)."""


def parse_when(text: str, *, end: bool = False) -> dt.datetime:
    """``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM[:SS]`` (UTC) as a naive UTC datetime;
    a bare date as ``end`` is the following midnight (the day is included)."""
    m = _WHEN_RE.fullmatch(text.strip())
    if not m:
        raise RangeError(f"{text!r} is not YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)")
    try:
        day = dt.date.fromisoformat(m.group(1))
        if m.group(2) is None:
            midnight = dt.datetime.combine(day, dt.time())
            return midnight + dt.timedelta(days=1) if end else midnight
        return dt.datetime.combine(day, dt.time(int(m.group(2)), int(m.group(3)), int(m.group(4) or 0)))
    except ValueError as err:
        raise RangeError(f"{text!r} is not YYYY-MM-DD or YYYY-MM-DDTHH:MM: {err}") from None


@dataclass(frozen=True)
class TimeRange:
    """``[start, end)`` in naive UTC."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise RangeError(f"the range ends ({self.end:%Y-%m-%dT%H:%M}) before it starts ({self.start:%Y-%m-%dT%H:%M})")
        if len(self.days()) > MAX_DAYS:
            raise RangeError(f"the range covers {len(self.days())} days; at most {MAX_DAYS} per command")

    @classmethod
    def of_day(cls, day: dt.date) -> TimeRange:
        start = dt.datetime.combine(day, dt.time())
        return cls(start, start + dt.timedelta(days=1))

    @classmethod
    def parse(cls, start: str | None = None, end: str | None = None, day: str | None = None) -> TimeRange:
        """From the CLI's ``--day`` or ``--start`` [``--end``]; ``--start`` alone
        runs to the end of its day."""
        if day is not None:
            if start is not None or end is not None:
                raise RangeError("give either --day or --start/--end, not both")
            return cls.of_day(parse_when(day).date())
        if start is None:
            raise RangeError("give --day DATE, or --start DATE[THH:MM] with an optional --end")
        begin = parse_when(start)
        if end is None:
            return cls(begin, dt.datetime.combine(begin.date(), dt.time()) + dt.timedelta(days=1))
        return cls(begin, parse_when(end, end=True))

    def days(self) -> list[dt.date]:
        """Every day the range touches, in order."""
        last = (self.end - dt.timedelta(microseconds=1)).date()
        return [self.start.date() + dt.timedelta(days=i) for i in range((last - self.start.date()).days + 1)]

    def covers_day(self, day: dt.date) -> bool:
        """The whole of ``day`` is inside the range."""
        begin = dt.datetime.combine(day, dt.time())
        return self.start <= begin and begin + dt.timedelta(days=1) <= self.end

    def takes_file(self, file_start: dt.datetime) -> bool:
        """The file's nominal five minutes overlap the range."""
        return file_start < self.end and file_start + dt.timedelta(seconds=FILE_SECONDS) > self.start

    def describe(self) -> str:
        days = self.days()
        if len(days) == 1 and self.covers_day(days[0]):
            return f"{days[0]}"
        if all(self.covers_day(d) for d in days):
            return f"{days[0]} to {days[-1]}"
        return f"{self.start:%Y-%m-%dT%H:%M} to {self.end:%Y-%m-%dT%H:%M} UTC"


def parse_days(text: str) -> list[dt.date]:
    """``2017-10-09``, ``2017-10-09..2017-10-11`` (both included) or a
    comma-separated list of either, as sorted unique days (at most ``MAX_DAYS``)."""
    found: set[dt.date] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        first, sep, last = part.partition("..")
        begin = parse_when(first).date()
        end = parse_when(last).date() if sep else begin
        if end < begin:
            raise RangeError(f"{part!r}: the range ends before it starts")
        if (end - begin).days + 1 + len(found) > MAX_DAYS:
            raise RangeError(f"{text!r} names more than {MAX_DAYS} days")
        found.update(begin + dt.timedelta(days=i) for i in range((end - begin).days + 1))
    if not found:
        raise RangeError("no days given: use DATE, FROM..TO or a comma-separated list")
    return sorted(found)
