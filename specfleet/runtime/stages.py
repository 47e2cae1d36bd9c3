"""Stages of a job and the compute gate: how a worker overlaps I/O with compute.

A job of a CPU-bound pipeline fetches its input, computes, and uploads its
results. With one job per CPU, every CPU idles while its job waits on the
network. So a worker of a pipeline that says ``overlaps_io`` runs more jobs
than it computes: ``compute_slots + io_slots`` jobs at once
(``Settings.compute_slots`` / ``Settings.io_slots``), of which at most
``compute_slots`` are in their compute stage at a time. The others fetch
the next inputs or upload finished results meanwhile.

A handler marks where its stages begin; a stage lasts until the next mark or
the end of the job::

    ctx.stage("fetch")     # download the input
    ctx.stage("compute")   # waits for a compute slot, holds it until the next mark
    ctx.stage("upload")    # the slot is free again: another job computes

Memory stays bounded: at most ``concurrency`` jobs hold an input or results
at all, and at most ``compute_slots`` hold what computing needs (decoded
audio, arrays). Each stage's start and end are kept (the last ``keep`` of
them), so tests and benchmarks can check the overlap from what the worker
recorded, not from wall time.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from .errors import Transient

#: The stage that needs a compute slot.
COMPUTE = "compute"
#: How often a job waiting for a compute slot looks at its cancel flag.
_GATE_TICK_S = 0.5


@dataclass(frozen=True)
class StageSpan:
    """One stage of one job: ``start``/``end`` on the monotonic clock (the
    wait for a compute slot is not part of the compute stage)."""

    job: str
    stage: str
    start: float
    end: float


class Stages:
    """A worker's compute gate and the record of its jobs' stages."""

    def __init__(self, compute_slots: int, *, keep: int = 4096):
        if compute_slots < 1:
            raise ValueError(f"compute_slots must be at least 1, got {compute_slots}")
        self.compute_slots = compute_slots
        self._gate = threading.BoundedSemaphore(compute_slots)
        self._spans: deque[StageSpan] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Jobs waiting for a compute slot now."""
        with self._lock:
            return self._waiting

    def acquire_compute(self, cancelled: threading.Event) -> None:
        """Wait for a compute slot; ``Transient`` if the worker stops meanwhile
        (the job goes back to the queue instead of holding its slot)."""
        with self._lock:
            self._waiting += 1
        try:
            while not self._gate.acquire(timeout=_GATE_TICK_S):
                if cancelled.is_set():
                    raise Transient("worker shutting down while the job waited to compute")
        finally:
            with self._lock:
                self._waiting -= 1

    def release_compute(self) -> None:
        self._gate.release()

    def record(self, span: StageSpan) -> None:
        with self._lock:
            self._spans.append(span)

    def spans(self) -> list[StageSpan]:
        """The recorded stages, oldest first."""
        with self._lock:
            return list(self._spans)


class JobStages:
    """The open stage of one job (see ``JobContext.stage``)."""

    def __init__(self, stages: Stages | None, job: str, cancelled: threading.Event):
        self._stages = stages
        self._job = job
        self._cancelled = cancelled
        self._open: tuple[str, float] | None = None
        self._holds_slot = False

    def enter(self, name: str) -> None:
        if self._stages is None:
            return
        if self._open is not None and self._open[0] == name:
            return
        self.close()
        if name == COMPUTE:
            self._stages.acquire_compute(self._cancelled)
            self._holds_slot = True
        self._open = (name, time.monotonic())

    def close(self) -> None:
        """End the open stage (and free its compute slot); idempotent."""
        if self._stages is None:
            return
        if self._open is not None:
            name, start = self._open
            self._open = None
            self._stages.record(StageSpan(self._job, name, start, time.monotonic()))
        if self._holds_slot:
            self._holds_slot = False
            self._stages.release_compute()


def most_at_once(spans: list[StageSpan], stage: str | None = None) -> int:
    """The largest number of ``spans`` (of ``stage``, or of any stage but
    counted per job) open at the same moment."""
    if stage is not None:
        intervals = [(s.start, s.end) for s in spans if s.stage == stage]
    else:
        by_job: dict[str, tuple[float, float]] = {}
        for s in spans:
            lo, hi = by_job.get(s.job, (s.start, s.end))
            by_job[s.job] = (min(lo, s.start), max(hi, s.end))
        intervals = list(by_job.values())
    # An end and a start at the same instant do not overlap: ends sort first.
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most
