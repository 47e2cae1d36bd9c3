"""A trivial built-in pipeline: each job sleeps a little and reports done.

It exercises the whole path (producer -> queue -> worker -> status queue ->
writer -> Postgres) without any remote source, for smoke tests of a new
deployment and for the runtime's own tests.
"""

from __future__ import annotations

from ..jobs import EchoJob, Job
from ..runtime import Banned, JobContext, Pipeline, Transient
from ..status import EchoStatus, Stat, StatusRecord


def handle(job: Job, ctx: JobContext) -> None:
    assert isinstance(job, EchoJob)
    if job.sleep_s and ctx.cancelled.wait(job.sleep_s):
        raise Transient("worker shutting down")
    if job.fail:
        raise Transient(f"echo job {job.job_id} asked to fail")
    if job.ban:
        raise Banned(f"echo job {job.job_id} asked to look banned")
    ctx.report(EchoStatus(instance_id=ctx.instance_id, stat=Stat.DONE, job_id=job.job_id), key="done")


def failure_status(job: Job | None, ctx: JobContext, stat: Stat) -> StatusRecord:
    job_id = job.job_id if isinstance(job, EchoJob) else "invalid"
    return EchoStatus(instance_id=ctx.instance_id, stat=stat, job_id=job_id)


PIPELINE = Pipeline(name="echo", job_model=EchoJob, handler=handle, failure_status=failure_status, default_concurrency=4)
