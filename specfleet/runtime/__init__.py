"""The consumer runtime: queue, loop, middleware (see worker.py)."""

from .context import JobContext
from .errors import Banned, JobError, Rejected, Skipped, Transient
from .middleware import BanGuard, Heartbeat, Metrics, Middleware, RateLimit
from .outcome import Outcome
from .spec import FleetProfile, PipelineSpec, Ref, StatusView
from .status_sender import StatusSender
from .worker import EXIT_BANNED, EXIT_OK, Worker, default_middleware

__all__ = [
    "Banned", "JobError", "Rejected", "Skipped", "Transient",
    "BanGuard", "Heartbeat", "Metrics", "Middleware", "RateLimit",
    "Outcome", "JobContext", "FleetProfile", "PipelineSpec", "Ref", "StatusView", "StatusSender",
    "EXIT_BANNED", "EXIT_OK", "Worker", "default_middleware",
]
