"""The consumer runtime: queue, loop, middleware (see worker.py)."""

from .errors import Banned, JobError, Rejected, Skipped, Transient
from .middleware import BanGuard, Heartbeat, Metrics, Middleware, RateLimit
from .outcome import Outcome
from .pipeline import JobContext, Pipeline
from .status_sender import StatusSender
from .worker import EXIT_BANNED, EXIT_OK, Worker, default_middleware

__all__ = [
    "Banned", "JobError", "Rejected", "Skipped", "Transient",
    "BanGuard", "Heartbeat", "Metrics", "Middleware", "RateLimit",
    "Outcome", "JobContext", "Pipeline", "StatusSender",
    "EXIT_BANNED", "EXIT_OK", "Worker", "default_middleware",
]
