"""``PipelineSpec``: the one place a pipeline is declared.

A pipeline package exports one ``SPEC``; everything else -- queues, the
worker, the CLI, the demo, user-data, the CloudFormation template,
``elasticmq.conf``, the status writer, the schema's status union, the tests
-- derives from the registry of specs (``specfleet.pipelines.registry``).

A spec is cheap to import: it names its models (pydantic, light) and refers
to everything heavy (the handler and its libraries, per-process resources,
CLI commands, the demo step) by ``"module:attribute"``, loaded on first use.
A worker for one pipeline therefore never imports another pipeline's
libraries, and the status writer never imports any handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Generic, TypeVar

from pydantic_settings import BaseSettings

from ..jobs import Job
from ..queues import Queue
from ..settings import Settings
from ..status import Stat, StatusRecord

T = TypeVar("T")
J = TypeVar("J", bound=Job)


class Ref(Generic[T]):
    """A ``"package.module:attribute"`` reference, imported on ``load()``
    (Python caches the module; the attribute is looked up each time, so a
    test may patch it); or an object already at hand (light modules, tests)."""

    def __init__(self, target: str | T):
        self._obj: T | None = None
        if not isinstance(target, str):
            self._obj = target
            target = f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', repr(target))}"
        module, sep, attr = target.partition(":")
        if not sep or not module or not attr:
            raise ValueError(f"reference {target!r} must look like 'package.module:attribute'")
        self.target = target

    def load(self) -> T:
        if self._obj is not None:
            return self._obj
        module, _, attr = self.target.partition(":")
        return getattr(import_module(module), attr)

    def __repr__(self) -> str:
        return f"Ref({self.target!r})"


@dataclass(frozen=True)
class StatusView:
    """How a pipeline's status rows appear in the ``status_all`` view: SQL
    expressions over its status table's columns."""

    #: One row's item (a file, a track, a window).
    item: str
    #: The job the row belongs to (several rows per job for spectrograms).
    job_key: str
    #: The track, for music pipelines (NULL otherwise).
    track_id: str = "NULL"


@dataclass(frozen=True)
class StatusSection:
    """A pipeline's own part of ``specfleet status`` (hydrophone days):
    ``data`` goes under ``key`` in ``--json``; ``table`` (a rich renderable)
    is printed below the main table."""

    key: str
    data: dict[str, Any]
    table: Any


@dataclass(frozen=True)
class StackSetting:
    """A worker setting a deployed stack hands to this pipeline's workers:
    the template gets a parameter (default empty: the setting stays unset)
    and the pipeline's launch template puts ``env=<its value>`` in the
    worker's env file. The value lands in user-data (a shell heredoc, then a
    systemd env file), so ``allowed_pattern`` must admit only shell-safe
    characters -- and the empty string."""

    #: The worker's environment variable (``SPECFLEET_...``).
    env: str
    #: The template parameter (CamelCase); pipelines naming the same one share it.
    parameter: str
    description: str
    #: The parameter's ``AllowedPattern`` (anchored; must match "").
    allowed_pattern: str
    #: The value is a Secrets Manager secret's full ARN: when it is set, the
    #: worker role may ``secretsmanager:GetSecretValue`` on exactly that ARN
    #: (and on no secret when it is empty). The secret's value never enters
    #: the template, user-data or the image; the worker reads it at start.
    secret: bool = False


@dataclass(frozen=True)
class FleetProfile:
    """What running this pipeline on EC2 takes."""

    #: pip extras its workers install (``specfleet[hydrophone]``...).
    extras: tuple[str, ...] = ()
    #: Debian packages its workers need beyond Python.
    apt_packages: tuple[str, ...] = ()
    #: Whether it gets an Auto Scaling group in the template (echo does not).
    autoscaled: bool = True
    #: Jobs one worker instance finishes per hour, for pipelines without a
    #: figure in ``specfleet/fleet/throughput.json`` (plugins): it sets the
    #: autoscaling target and ``fleet plan``'s estimate.
    jobs_per_instance_hour: float | None = None
    #: S3 key prefixes its workers read or write in the data bucket; the
    #: worker role allows objects under these only (keep them in step with
    #: the pipeline's settings: ``specfleet infra render`` reads them here).
    bucket_prefixes: tuple[str, ...] = ()
    #: Prefixes (among ``bucket_prefixes``) anyone may read anonymously: the
    #: template's bucket policy grants ``s3:GetObject`` under these and nothing
    #: else (objects carry no ACLs: the bucket enforces owner-only ones).
    public_read_prefixes: tuple[str, ...] = ()
    #: S3 key prefixes its workers only read (configuration a person keeps,
    #: e.g. search overrides): the worker role allows ``s3:GetObject`` there,
    #: no writes.
    read_prefixes: tuple[str, ...] = ()
    #: Settings a deployed stack passes its workers from template parameters.
    stack_settings: tuple[StackSetting, ...] = ()


FailureStatus = Callable[[Any, Any, Stat], StatusRecord]


@dataclass(frozen=True)
class PipelineSpec(Generic[J]):
    """Everything the rest of specfleet needs to know about one pipeline."""

    name: str
    #: Logical queue names (SPEC.md); real names are ``queue_prefix + name``.
    job_queue: str
    status_queue: str
    job_model: type[J]
    status_model: type[StatusRecord]
    #: ``handle(job, ctx)``: does the work, reports through ``ctx``, raises
    #: the runtime's error classes (see ``runtime/errors.py``).
    handler: Ref[Callable[[J, Any], None]]
    #: ``failure_status(job or None, ctx, stat)``: the record for a job that
    #: failed, was skipped or could not even be parsed. Light: it only builds
    #: a status model, so it is a plain function, not a reference.
    failure_status: FailureStatus
    #: How its rows appear in ``status_all``.
    status_view: StatusView
    #: ``make_resources(settings, config)``: per-process resources (a process
    #: pool, a browser), passed as ``ctx.resources`` and closed on exit.
    resources: Ref[Callable[..., Any]] | None = None
    #: Its own settings class (its own env prefix), resolved once per worker
    #: and handed to the handler as ``ctx.config``.
    settings: type[BaseSettings] | None = None
    #: Jobs at once in one worker (0: settings / one per CPU).
    default_concurrency: int = 0
    #: A CPU-bound pipeline whose jobs also move data (hydrophone,
    #: spectrogram): its worker runs ``compute_slots + io_slots`` jobs at once
    #: (settings) and its handler marks ``ctx.stage("compute")``, so at most
    #: ``compute_slots`` compute while the others fetch and upload (stages.py).
    #: ``default_concurrency`` is then not used.
    overlaps_io: bool = False
    #: ``register(app, produce_app)``: its CLI commands.
    cli: Ref[Callable[[Any, Any], None]] | None = None
    #: ``step(ctx) -> PipelineSummary``: its part of ``specfleet demo``.
    demo: Ref[Callable[[Any], Any]] | None = None
    #: Whether ``specfleet demo`` runs it without being asked (echo: no).
    in_default_demo: bool = True
    fleet: FleetProfile = field(default_factory=FleetProfile)
    #: Package holding this pipeline's own ``NNN_*.sql`` migrations (its status
    #: table and anything else it needs); None when they live in the core schema.
    schema: str | None = None
    #: ``hook(cursor, [(inbound record, status)])``: rows of other tables the
    #: status writer derives from newly stored records (search -> track_url).
    derived_rows: Ref[Callable[[Any, list[Any]], object]] | None = None
    #: ``body -> dict | None``: reads the original producers' non-JSON bodies
    #: (e.g. ``track_id::yt_url``) as a job object; None when not one of them.
    legacy_body: Callable[[str], dict[str, Any] | None] | None = None
    #: ``section(settings) -> StatusSection``: its own part of ``specfleet status``.
    status_section: Ref[Callable[[Any], StatusSection]] | None = None
    #: ``check(settings, config)``: pre-flight checks of its own (a JS runtime,
    #: an allowed host), run after the core ones before the worker takes a
    #: job; each raises ``preflight.ConfigError`` on a configuration mistake.
    preflight: tuple[Ref[Callable[[Settings, Any], None]], ...] = ()

    def __post_init__(self) -> None:
        if self.status_model.pipeline != self.name or self.job_model.pipeline != self.name:
            raise ValueError(f"pipeline {self.name!r}: its job and status models must name it")

    def jobs(self, settings: Settings) -> Queue:
        """Its job queue in the deployment ``settings`` point at."""
        return Queue(settings, settings.queue_prefix + self.job_queue)

    def statuses(self, settings: Settings) -> Queue:
        """Its status queue in the deployment ``settings`` point at."""
        return Queue(settings, settings.queue_prefix + self.status_queue)

    def config(self) -> BaseSettings | None:
        """This pipeline's settings from the environment."""
        return self.settings() if self.settings is not None else None
