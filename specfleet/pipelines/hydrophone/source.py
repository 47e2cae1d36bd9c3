"""Reading one source file: streamed HTTP download (bounded memory, size
limit, timeouts, retries) and miniSEED decoding with obspy, repaired by
its sample count (``repair``: pieces rejoined whatever their labels say,
real breaks kept as breaks), extra channels left out.

Bad input raises ``Rejected`` with a reason naming what was wrong; network
trouble that may pass raises ``Transient`` after the retries are used up.
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from ...outbound import (
    FetchLimits,
    FetchTooLarge,
    FetchTooSlow,
    HostNotAllowed,
    HostPolicy,
    OutboundRefused,
    guarded_client,
    is_permanent_fetch_error,
    stream_to_file,
)
from ...runtime.errors import Misconfigured, Rejected, Transient
from .naming import check_seed_code
from .repair import RepairedFile, repair, timeline
from .settings import GAP_THRESHOLD_S
from .timerange import FILE_SECONDS

F = TypeVar("F", bound=Callable[..., Any])


def _is_retryable(exc: BaseException) -> bool:
    if is_permanent_fetch_error(exc):
        return False
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    # timeouts, resets, refused connections, cut-off bodies, a budget overrun
    return isinstance(exc, (httpx.TransportError, FetchTooSlow))


def http_retry(attempts: int) -> Callable[[F], F]:
    """Retry transient HTTP failures with jittered exponential backoff."""
    return retry(  # type: ignore[return-value]
        retry=retry_if_exception(_is_retryable),
        wait=wait_exponential_jitter(initial=0.2, max=8),
        stop=stop_after_attempt(max(1, attempts)),
        reraise=True,
    )


def download(url: str, dest: Path, *, policy: HostPolicy, limits: FetchLimits, attempts: int = 4) -> int:
    """Stream ``url`` into ``dest``; return the byte count.

    ``policy`` decides which hosts and addresses the fetch (and each redirect)
    may reach; ``limits`` bound its size and total time. A refused URL, a
    missing file, a body that is too big or an HTML page is ``Rejected``; a
    host the policy does not list is ``Misconfigured`` (the settings' fault);
    what may pass (timeouts, 5xx, a source slower than the budget) is
    ``Transient`` once ``attempts`` tries are used up.
    """
    tries = 0

    @http_retry(attempts)
    def once() -> int:
        nonlocal tries
        tries += 1
        started = time.monotonic()
        with guarded_client(
            policy,
            connect_timeout_s=limits.connect_timeout_s,
            read_timeout_s=min(limits.read_timeout_s, limits.budget_s),
            max_redirects=limits.max_redirects,
        ) as client, client.stream("GET", url) as resp:
            code = resp.status_code
            if code in (404, 410):
                raise Rejected(f"source file is gone (HTTP {code}): {url}")
            if 400 <= code < 500 and code != 429:
                raise Rejected(f"source answered HTTP {code} for {url}")
            resp.raise_for_status()
            ctype = resp.headers.get("content-type", "")
            if ctype.startswith("text/html"):
                raise Rejected(f"server sent an HTML page (Content-Type {ctype}) instead of miniSEED")
            try:
                return stream_to_file(resp, dest, limits, started)
            except FetchTooLarge as err:
                raise Rejected(f"file {err}") from None

    try:
        return once()
    except HostNotAllowed as err:
        # The worker's allowed hosts, not the file, are wrong: kept for a redrive, never failed.
        raise Misconfigured(f"{err}; add it to SPECFLEET_HYDRO_ALLOWED_HOSTS (a JSON list), restart the "
                            "worker, then `specfleet dlq redrive hydrophone`") from None
    except (OutboundRefused, httpx.TooManyRedirects, httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
        raise Rejected(f"fetch of {url} refused: {type(err).__name__}: {err}") from None
    except (httpx.HTTPError, FetchTooSlow) as err:
        raise Transient(f"download of {url} failed after {tries} attempt(s): {type(err).__name__}: {err}") from None


@dataclass
class Decoded:
    """One channel of a miniSEED file, repaired (``repair.repair``) and laid
    on one sample grid from its first stretch's start (``repair.timeline``)."""

    data: np.ndarray
    sample_rate: float
    start: dt.datetime
    network: str
    station: str
    location: str
    channel: str
    #: True where a real break left no recording (the samples there are 0
    #: and stand for nothing); ``None`` when the file is one stretch.
    gap_mask: np.ndarray | None = None
    #: What was repaired, merged or left out, for the status reason.
    notes: list[str] = field(default_factory=list)
    #: The repair's account: pieces, label noise, breaks, missing seconds.
    repaired: RepairedFile | None = None

    @property
    def seconds(self) -> float:
        return len(self.data) / self.sample_rate

    @property
    def missing_s(self) -> float:
        """Recording missing from this file by its sample count (s)."""
        return self.repaired.missing_s if self.repaired is not None else 0.0


def _looks_like_text(head: bytes) -> str:
    stripped = head.lstrip()
    lower = stripped[:256].lower()
    if lower.startswith((b"<!doctype html", b"<html")) or b"<html" in lower or b"<body" in lower:
        return "an HTML page"
    if stripped.startswith((b"<", b"{", b"[")):
        return "text markup"
    return ""


def decode_mseed(
    path: Path,
    *,
    expected_rate: float = 0.0,
    file_seconds: float = float(FILE_SECONDS),
    gap_threshold_s: float = GAP_THRESHOLD_S,
    nominal_start: dt.datetime | None = None,
) -> Decoded:
    """Decode a miniSEED file and repair it by its sample count (``repair``):
    a complete file's pieces are rejoined whatever their labels say; a short
    file is split only at real breaks, laid on one grid with the break marked
    in ``gap_mask``. Traces of other channels are left out; each is noted.
    ``nominal_start``: the file's start from its name, when known.
    """
    from obspy import UTCDateTime, read
    from obspy.io.mseed.util import get_record_information

    size = path.stat().st_size
    if size == 0:
        raise Rejected("empty file (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(512)
    text = _looks_like_text(head)
    if text:
        # The body is outside input: never echo it into a status reason.
        raise Rejected(f"not miniSEED: the file is {text}")
    try:
        info = get_record_information(str(path))
    except Exception as err:  # its message may quote the file's bytes: name the error only
        raise Rejected(f"not miniSEED: no valid record header ({type(err).__name__})") from None
    reclen = int(info.get("record_length") or 0)
    if reclen <= 0:
        raise Rejected("not miniSEED: no record length in the first record header")
    if size % reclen:
        raise Rejected(
            f"truncated miniSEED: {size} bytes is not a whole number of {reclen}-byte records "
            f"(the last record has only {size % reclen} bytes)"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            stream = read(str(path), format="MSEED")
        except Exception as err:
            raise Rejected(f"not readable miniSEED ({type(err).__name__})") from None
    notes = [f"decoder warning: {w.message}" for w in caught][:3]
    if len(stream) == 0:
        raise Rejected("miniSEED file holds no traces")

    # Keep the channel with the most samples; say what else was there.
    by_id: dict[str, int] = {}
    for tr in stream:
        by_id[tr.id] = by_id.get(tr.id, 0) + tr.stats.npts
    keep = max(by_id, key=lambda k: by_id[k])
    others = sorted(k for k in by_id if k != keep)
    if others:
        notes.append(f"left out {len(others)} other channel(s): {', '.join(others)}")
    stream = stream.select(id=keep)

    rates = sorted({float(tr.stats.sampling_rate) for tr in stream})
    if len(rates) > 1:
        raise Rejected(f"traces of {keep} have different sampling rates: {rates} Hz")
    rate = rates[0]
    if expected_rate and abs(rate - expected_rate) > 0.5:
        raise Rejected(f"sampling rate is {rate:g} Hz, expected {expected_rate:g} Hz")
    if rate <= 0:
        raise Rejected(f"sampling rate {rate} Hz is not positive")

    # The pieces in the file's order (never sorted by their labels, which lie).
    repaired = repair(
        stream, file_seconds=file_seconds, gap_threshold_s=gap_threshold_s,
        nominal_start=UTCDateTime(nominal_start) if nominal_start is not None else None,
    )
    notes.extend(repaired.notes())
    line = timeline(repaired)
    data, mask = line.data, line.missing
    trace = stream[0]
    stats = trace.stats
    try:
        codes = [check_seed_code(k, getattr(stats, k)) for k in ("network", "station", "location", "channel")]
    except ValueError as err:
        raise Rejected(f"bad SEED header: {err}") from None
    if not np.issubdtype(data.dtype, np.number):
        raise Rejected(f"unsupported sample type {data.dtype}")
    check_finite(data)
    start = time_span(line.start, len(data), rate)
    network, station, location, channel = codes
    return Decoded(np.ascontiguousarray(data), rate, start, network, station, location, channel,
                   gap_mask=mask, notes=notes, repaired=repaired)


def check_finite(data: np.ndarray) -> None:
    """Refuse NaN and infinite samples (a FLOAT32/FLOAT64 miniSEED may hold
    them): they have no value in a PCM WAV (they would come out as INT32_MIN)
    and make every spectrogram cell they touch NaN."""
    if not np.issubdtype(data.dtype, np.floating):
        return  # integer encodings (Steim, INT32: OOI's) hold no NaN
    bad = ~np.isfinite(data)
    n = int(np.count_nonzero(bad))
    if n:
        first = int(np.argmax(bad))
        raise Rejected(f"{n} of {len(data)} sample(s) are NaN or infinite (the first is sample {first})")


def time_span(starttime: Any, n_samples: int, sample_rate: float) -> dt.datetime:
    """The file's start as a naive UTC datetime, refusing a file whose samples
    do not all lie within years 1-9999: clip names, keys and days are
    datetimes, and a date beyond them is bad input, never worth a retry.
    ``starttime``: obspy's ``UTCDateTime`` (which holds years datetime cannot)."""
    try:
        start = starttime.datetime  # naive UTC
        start + dt.timedelta(seconds=n_samples / sample_rate)
    except (ValueError, OverflowError):
        raise Rejected(
            f"the file's samples run from {starttime} for {n_samples / sample_rate:.3f} s, "
            "outside the dates a clip can be named with (years 1-9999)"
        ) from None
    return start
