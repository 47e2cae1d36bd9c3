"""A sixth pipeline that exists only for the tests: everything it takes to
add a pipeline to specfleet, in one package. It counts the words of a line
of text (``{"text": ...}`` -> ``instance_id::stat::words::date``).

Its only other files are its own migration (``schema/001_status_sixth.sql``)
and its distribution metadata (``../specfleet_sixth-1.0.dist-info``), whose
entry point in the ``specfleet.pipelines`` group registers ``SPEC``. No file
of specfleet names it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from specfleet.jobs import Job
from specfleet.runtime import FleetProfile, PipelineSpec, Ref, StatusView
from specfleet.status import Stat, StatusRecord


class SixthJob(Job):
    pipeline: ClassVar[str] = "sixth"
    text: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z ]+$")

    def key(self) -> str:
        return self.text


class SixthStatus(StatusRecord):
    pipeline: ClassVar[str] = "sixth"
    table: ClassVar[str] = "status_sixth"
    text: str = Field(min_length=1, max_length=200)
    words: int = Field(ge=0)


def handle(job: SixthJob, ctx: Any) -> None:
    ctx.report(SixthStatus(instance_id=ctx.instance_id, stat=Stat.DONE, text=job.text, words=len(job.text.split())),
               key="done")


def failure_status(job: SixthJob | None, ctx: Any, stat: Stat) -> SixthStatus:
    return SixthStatus(instance_id=ctx.instance_id, stat=stat, text=job.text if job else "invalid", words=0)


def register(app: Any, produce: Any) -> None:
    import typer

    @produce.command("sixth")
    def produce_sixth(text: list[str] = typer.Argument(..., help="Lines of text, one job each.")) -> None:  # noqa: B008
        """Enqueue one word-count job per line."""
        from specfleet.cli.context import settings  # resolved once per command line

        sent = SPEC.jobs(settings()).send(SixthJob(text=t).body() for t in text)
        print(f"enqueued {sent} sixth jobs")


def demo_step(ctx: Any) -> Any:
    from specfleet.demo import PipelineSummary, count_status, keys_with_status, run_worker, wait_for_status_drain

    lines = ["one", "two words", "three little words"]
    SPEC.jobs(ctx.settings).send(SixthJob(text=t).body() for t in lines)
    run_worker(ctx, "sixth", idle_exit_s=2)
    wait_for_status_drain(ctx, "sixth")
    seen = keys_with_status(ctx, "sixth", "text")
    return PipelineSummary(jobs=len(lines), lost=len(set(lines) - seen), **count_status(ctx, "sixth"))


SPEC: PipelineSpec[SixthJob] = PipelineSpec(
    name="sixth",
    job_queue="jobs_sixth",
    status_queue="status_sixth",
    job_model=SixthJob,
    status_model=SixthStatus,
    handler=Ref(handle),
    failure_status=failure_status,
    status_view=StatusView(item="text", job_key="text"),
    cli=Ref(register),
    demo=Ref(demo_step),
    in_default_demo=False,
    # No figure for it in specfleet's throughput.json: it states its own (autoscaling target, `fleet plan`).
    fleet=FleetProfile(jobs_per_instance_hour=3600),
    schema="specfleet_sixth.schema",
)
