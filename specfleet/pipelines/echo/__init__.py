"""A trivial built-in pipeline: each job sleeps a little and reports done.

It exercises the whole path (producer -> queue -> worker -> status queue ->
writer -> Postgres) without any remote source, for smoke tests of a new
deployment and for the runtime's own tests. Small enough to live in one
module: models, handler and spec.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from ...jobs import Job
from ...runtime.errors import Banned, Transient
from ...runtime.spec import FleetProfile, PipelineSpec, Ref, StatusView
from ...status import Stat, StatusRecord


class EchoJob(Job):
    """Built-in trivial job used to smoke-test a deployment and the runtime."""

    pipeline: ClassVar[str] = "echo"
    job_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    #: Seconds the handler works (to exercise heartbeats and shutdown).
    sleep_s: float = Field(default=0.0, ge=0, le=3600)
    #: Make the handler raise (exercises retries and the dead-letter queue).
    fail: bool = False
    #: Make the handler raise ``Banned`` (exercises the ban guard and fleet failover).
    ban: bool = False

    def key(self) -> str:
        return self.job_id


class EchoStatus(StatusRecord):
    pipeline: ClassVar[str] = "echo"
    table: ClassVar[str] = "status_echo"
    job_id: str = Field(min_length=1, max_length=256)


def handle(job: EchoJob, ctx: Any) -> None:
    if job.sleep_s and ctx.cancelled.wait(job.sleep_s):
        raise Transient("worker shutting down")
    if job.fail:
        raise Transient(f"echo job {job.job_id} asked to fail")
    if job.ban:
        raise Banned(f"echo job {job.job_id} asked to look banned")
    ctx.report(EchoStatus(instance_id=ctx.instance_id, stat=Stat.DONE, job_id=job.job_id), key="done")


def failure_status(job: EchoJob | None, ctx: Any, stat: Stat) -> EchoStatus:
    return EchoStatus(instance_id=ctx.instance_id, stat=stat, job_id=job.job_id if job is not None else "invalid")


SPEC: PipelineSpec[EchoJob] = PipelineSpec(
    name="echo",
    job_queue="jobs_echo",
    status_queue="status_echo",
    job_model=EchoJob,
    status_model=EchoStatus,
    handler=Ref(handle),
    failure_status=failure_status,
    status_view=StatusView(item="job_id", job_key="job_id"),
    default_concurrency=4,
    cli=Ref("specfleet.cli.echo:register_echo"),
    demo=Ref("specfleet.demo:echo_step"),
    in_default_demo=False,
    fleet=FleetProfile(autoscaled=False),
)
