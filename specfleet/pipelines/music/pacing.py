"""Pacing under YouTube's session limit: one budget of videos per hour per
instance, shared by every download slot and by search.

YouTube rate-limits a session at roughly 300 videos an hour (yt-dlp wiki,
"Common YouTube Errors"; yt-dlp #11426 and PR #12958), and yt-dlp
recommends 5-10 s between downloads. ``Pacer.wait`` hands out start times
at least ``3600 / videos_per_hour`` seconds apart, each gap lengthened by a
random fraction (``pace_jitter``) so requests do not tick like a clock;
never shortened, so the budget is never exceeded. The next free start time
lives in a small file under an exclusive ``fcntl`` lock, so every worker
process of the instance (download and search units) draws from the same
budget; threads of one process share one ``Pacer``.
"""

from __future__ import annotations

import fcntl
import os
import random
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from .settings import MusicSettings

DEFAULT_STATE = "specfleet-video-pace"


class Pacer:
    def __init__(self, videos_per_hour: float, *, jitter: float = 0.5, state_file: str | Path = "",
                 rng: random.Random | None = None):
        self.gap_s = 3600.0 / videos_per_hour if videos_per_hour > 0 else 0.0
        self.jitter = max(0.0, jitter)
        self.state_file = Path(state_file or Path(tempfile.gettempdir()) / DEFAULT_STATE)
        self._rng = rng or random.Random()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Reserve the next start time (``time.time()`` clock) and return it."""
        if self.gap_s <= 0:
            return time.time()
        with self._lock:
            fd = os.open(self.state_file, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                raw = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
                try:
                    next_free = float(raw)
                except ValueError:
                    next_free = 0.0
                now = time.time()
                if next_free > now + 24 * 3600:  # a clock jump or a foreign file: start afresh
                    next_free = 0.0
                start = max(now, next_free)
                gap = self.gap_s * (1.0 + self._rng.uniform(0.0, self.jitter))
                text = f"{start + gap:.6f}".encode()
                os.ftruncate(fd, 0)
                os.pwrite(fd, text, 0)
            finally:
                os.close(fd)  # closing releases the lock
        return start

    def wait(self, cancelled: threading.Event | None = None) -> float:
        """Block until this caller's turn; the seconds waited. A set
        ``cancelled`` ends the wait early (the caller checks it)."""
        start = self.reserve()
        delay = start - time.time()
        if delay > 0:
            (cancelled or threading.Event()).wait(delay)
        return max(0.0, delay)


_pacers: dict[tuple[float, float, str], Pacer] = {}
_pacers_lock = threading.Lock()


def pacer_for(config: MusicSettings) -> Pacer | None:
    """This process's shared pacer for ``config`` (None: unpaced)."""
    if config.videos_per_hour <= 0:
        return None
    key = (config.videos_per_hour, config.pace_jitter, config.pace_state_file)
    with _pacers_lock:
        pacer = _pacers.get(key)
        if pacer is None:
            pacer = _pacers[key] = Pacer(config.videos_per_hour, jitter=config.pace_jitter,
                                         state_file=config.pace_state_file)
        return pacer


def paced(url: str, config: MusicSettings) -> bool:
    """Whether a request to ``url`` counts against the budget: YouTube's
    hosts always, the local ``extra_hosts`` only with ``pace_local_sites``."""
    if config.videos_per_hour <= 0:
        return False
    netloc = urlsplit(url).netloc.lower()
    host = urlsplit(url).hostname or ""
    if netloc in config.extra_hosts or host in config.extra_hosts:
        return config.pace_local_sites
    return True


def pace(url: str, config: MusicSettings, cancelled: threading.Event | None = None) -> float:
    """Wait for ``url``'s turn under the instance's budget; seconds waited."""
    pacer = pacer_for(config) if paced(url, config) else None
    return pacer.wait(cancelled) if pacer is not None else 0.0
