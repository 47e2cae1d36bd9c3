"""All configuration in one place.

Values come from the environment (prefix ``SPECFLEET_``) plus the standard AWS
variables (``AWS_ENDPOINT_URL``, ``AWS_REGION``). Credentials never live here:
boto3 uses its default chain (instance profile on EC2) and the database
password comes from ``SPECFLEET_DB_DSN`` or a Secrets Manager secret named by
``SPECFLEET_DB_SECRET_ID``.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def specfleet_home() -> Path:
    """This user's specfleet folder: the local stack's state and data, and
    the command log. ``SPECFLEET_HOME``, else ``~/.specfleet``: one per
    user, not one per folder, so ``local down`` or ``local env`` in any
    folder finds the stack ``local up`` started in another."""
    return Path(os.environ.get("SPECFLEET_HOME") or Path.home() / ".specfleet").expanduser()


class RenamingSettings(BaseSettings):
    """Settings of an area whose variables were renamed: a worker still given
    an old name (``renamed_env``, ``{old: new}``) stops before its first job
    instead of ignoring it."""

    renamed_env: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _no_renamed_variables(cls, data: Any) -> Any:
        old = sorted(k for k in cls.renamed_env if k in os.environ)
        if old:
            raise ValueError("renamed settings: " + ", ".join(f"{k} is now {cls.renamed_env[k]}" for k in old))
        return data


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPECFLEET_", extra="ignore", populate_by_name=True)

    # --- AWS -------------------------------------------------------------
    region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("SPECFLEET_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
    )
    endpoint_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SPECFLEET_ENDPOINT_URL", "AWS_ENDPOINT_URL")
    )
    #: Prepended to every queue, topic and bucket name so several stacks
    #: (or test cases) can share one account or one local server.
    queue_prefix: str = ""
    bucket: str = "specfleet-data"
    topic_name: str = "status_sns"

    # --- database ----------------------------------------------------------
    db_dsn: SecretStr | None = None
    db_secret_id: str | None = None
    db_connect_timeout_s: int = 5

    # --- consumer runtime ----------------------------------------------------
    instance_id: str = Field(default_factory=lambda: os.environ.get("HOSTNAME") or socket.gethostname())
    #: SQS's own bounds: a value outside them stops the worker before it
    #: takes a job instead of failing each receive at AWS.
    visibility_timeout_s: int = Field(default=120, ge=0, le=43200)
    wait_time_s: int = Field(default=20, ge=0, le=20)
    #: Receives before SQS moves a message to its dead-letter queue.
    max_receives: int = 5
    #: Jobs running at once in one worker process (threads, or a process pool
    #: for CPU-bound pipelines). 0 means one per CPU.
    concurrency: int = 0
    #: Pipelines that overlap I/O with compute (hydrophone, spectrogram; see
    #: runtime/stages.py): jobs computing at once (0 = one per CPU) and jobs
    #: beyond those that fetch inputs and upload results meanwhile (0 = two
    #: per compute slot). ``concurrency``, when set, is their sum.
    compute_slots: int = Field(default=0, ge=0)
    io_slots: int = Field(default=0, ge=0)
    #: S3 uploads in flight at once per worker process, shared by its jobs
    #: (``Storage.put_many``); at most this many bodies are read at once.
    upload_threads: int = Field(default=32, ge=1, le=64)
    #: Seconds a SIGTERM'd worker lets in-flight jobs finish before handing
    #: them back (visibility 0). The grace starts once the open receive has
    #: returned, so SQS cannot hand a job straight back to this worker; 0: no
    #: grace.
    drain_s: float = 0.0
    #: Consecutive ban-class failures before a worker reports stat -1 and stops.
    ban_threshold: int = 3
    #: Optional cap on jobs started per minute by one worker (0 = no cap).
    rate_limit_per_min: float = 0.0
    #: Backoff while a dependency (SQS, S3, SNS, the database) is unreachable:
    #: first wait, doubling up to the cap, jittered. Workers wait out outages
    #: of any length; only a deliberate stop ends them.
    outage_backoff_initial_s: float = Field(default=1.0, gt=0)
    outage_backoff_max_s: float = Field(default=60.0, gt=0)

    # --- status writer ---------------------------------------------------------
    #: Receives of a status message before its DLQ. The writer backs a record
    #: off 5 s doubling to 15 min while the database is down: 20 receives
    #: outlast about three hours of outage.
    status_max_receives: int = Field(default=20, ge=1, le=1000)
    #: At most one SNS alert per subject per this many seconds; the rest are
    #: counted and reported in the next alert (no alert storms).
    alert_min_interval_s: int = 300

    # --- local stack -------------------------------------------------------------
    #: The local stack's folder (state, data, its log): one per user (``specfleet_home()``).
    local_dir: str = Field(default_factory=lambda: str(specfleet_home() / "local"))

    # Pipeline- and tool-specific settings: each block belongs to one area.
    #: Instance metadata endpoint. Set (``http://169.254.169.254`` on EC2) to
    #: make workers watch for spot interruptions / ASG termination and drain.
    imds_url: str = ""
    imds_poll_s: float = 5.0
    def topic(self) -> str:
        return self.queue_prefix + self.topic_name

    def effective_concurrency(self) -> int:
        return self.concurrency if self.concurrency > 0 else (os.cpu_count() or 1)

    def effective_compute_slots(self) -> int:
        return self.compute_slots if self.compute_slots > 0 else (os.cpu_count() or 1)

    def effective_io_slots(self) -> int:
        return self.io_slots if self.io_slots > 0 else 2 * self.effective_compute_slots()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings. Tests and the CLI build their own ``Settings``."""
    return Settings()
