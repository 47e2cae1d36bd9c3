"""The consumer runtime: queue, loop, middleware (see worker.py).

The error classes, outcomes and the pipeline spec load at once (pipeline
specs and the status writer need them); the loop, middleware, context and
status sender load on first use, so the status-writer Lambda, which imports
the pipeline registry, never loads the worker.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import Banned, Elsewhere, JobError, Misconfigured, Paused, Rejected, Skipped, Transient
from .outcome import Outcome
from .spec import FleetProfile, PipelineSpec, Ref, StatusView

if TYPE_CHECKING:
    from .context import JobContext
    from .middleware import BanGuard, Heartbeat, Metrics, Middleware, RateLimit
    from .status_sender import StatusSender
    from .worker import EXIT_BANNED, EXIT_OK, Worker, default_middleware

_LAZY = {
    "JobContext": "context",
    "BanGuard": "middleware", "Heartbeat": "middleware", "Metrics": "middleware", "Middleware": "middleware",
    "RateLimit": "middleware",
    "StatusSender": "status_sender",
    "EXIT_BANNED": "worker", "EXIT_OK": "worker", "Worker": "worker", "default_middleware": "worker",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Banned", "Elsewhere", "JobError", "Misconfigured", "Paused", "Rejected", "Skipped", "Transient",
    "BanGuard", "Heartbeat", "Metrics", "Middleware", "RateLimit",
    "Outcome", "JobContext", "FleetProfile", "PipelineSpec", "Ref", "StatusView", "StatusSender",
    "EXIT_BANNED", "EXIT_OK", "Worker", "default_middleware",
]
