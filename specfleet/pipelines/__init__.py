"""The pipeline registry: every ``PipelineSpec``, built in or plugged in.

Built-in pipelines are listed here. Others plug in through the entry-point
group ``specfleet.pipelines`` (``name = "package:SPEC"`` in their
distribution's metadata), so a new pipeline is one package (spec, models,
handler, its migrations) and nothing else edited. Queues, the worker, the
CLI, the demo, user-data, the CloudFormation template, ``elasticmq.conf``,
the status writer and the schema's status union all iterate over
``specs()``.

Only the specs load here (models, light); handlers load when a worker
asks for them, so an echo worker never imports librosa.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from ..jobs import Job, parse_job
from ..queues import Queue, ensure_queue
from ..runtime.spec import PipelineSpec
from ..settings import Settings
from .download import SPEC as DOWNLOAD
from .echo import SPEC as ECHO
from .hydrophone import SPEC as HYDROPHONE
from .search import SPEC as SEARCH
from .spectrogram import SPEC as SPECTROGRAM

BUILT_IN: tuple[PipelineSpec, ...] = (ECHO, HYDROPHONE, SEARCH, DOWNLOAD, SPECTROGRAM)
ENTRY_POINT_GROUP = "specfleet.pipelines"
#: Status queues' visibility where the local poller plays the Lambda (the
#: template uses 6x the writer's timeout, AWS's rule for SQS event sources).
LOCAL_STATUS_VISIBILITY_S = 60


class UnknownPipeline(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@lru_cache(maxsize=1)
def specs() -> tuple[PipelineSpec, ...]:
    """Every registered pipeline, built-ins first, in a stable order."""
    found = list(BUILT_IN)
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        spec = ep.load()
        if not isinstance(spec, PipelineSpec):
            raise TypeError(f"entry point {ep.name!r} ({ep.value}) is not a PipelineSpec")
        found.append(spec)
    names = [s.name for s in found]
    clashes = {n for n in names if names.count(n) > 1}
    queues = [q for s in found for q in (s.job_queue, s.status_queue)]
    if clashes or len(set(queues)) != len(queues):
        raise ValueError(f"pipelines clash: names {sorted(clashes)} or queue names repeat")
    return tuple(found)


def names() -> list[str]:
    return [s.name for s in specs()]


def get_spec(name: str) -> PipelineSpec:
    for spec in specs():
        if spec.name == name:
            return spec
    raise UnknownPipeline(f"unknown pipeline {name!r}; choose one of {', '.join(names())}")


def parse_body(pipeline: str, body: str | bytes | dict[str, Any]) -> Job:
    """A queue body read as ``pipeline``'s job (the original producers'
    bodies included), or ``JobValidationError``."""
    spec = get_spec(pipeline)
    return parse_job(spec.job_model, body, legacy=spec.legacy_body)


def job_queue(settings: Settings, pipeline: str) -> Queue:
    return get_spec(pipeline).jobs(settings)


def status_queue(settings: Settings, pipeline: str) -> Queue:
    return get_spec(pipeline).statuses(settings)


def ensure_all_queues(settings: Settings) -> dict[str, Queue]:
    """Every pipeline's job and status queue with its DLQ; keys are real queue names."""
    out = {}
    for spec in specs():
        jobs, statuses = spec.jobs(settings), spec.statuses(settings)
        out[jobs.name] = ensure_queue(settings, jobs.name)
        # Status queues: the writer's visibility must be >= 6x its timeout in AWS;
        # locally the poller holds messages only for the handler call. More
        # receives than a job queue: with the writer's growing backoff they
        # carry status rows through hours of database outage.
        out[statuses.name] = ensure_queue(
            settings, statuses.name, LOCAL_STATUS_VISIBILITY_S, max_receives=settings.status_max_receives
        )
    return out


def pipeline_for_queue(queue_name: str, prefix: str = "") -> tuple[PipelineSpec, str]:
    """``(spec, "jobs"|"status")`` of a real queue name; ``UnknownPipeline``
    for a queue that is not ours."""
    name = queue_name[len(prefix):] if prefix and queue_name.startswith(prefix) else queue_name
    for spec in specs():
        if spec.status_queue == name:
            return spec, "status"
        if spec.job_queue == name:
            return spec, "jobs"
    raise UnknownPipeline(f"unknown queue {queue_name!r}")
