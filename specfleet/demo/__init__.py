"""``specfleet demo``: every pipeline end to end on the embedded stack.

Each pipeline contributes a *step* (its spec's ``demo`` reference; the
built-in ones live in this package): it starts its local stand-in for the
remote source, produces jobs, runs its worker until the queue drains and
returns a ``PipelineSummary``. Steps share one ``DemoContext`` (stack
namespace, work folder, servers to close) and run in registry order, so
downloaded tracks flow on into spectrograms. Pipelines that are not in the
default demo (echo) run when asked for with ``--pipelines``.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from ..db import connect
from ..local.stack import Namespace, destroy_data, start_detached, stop_detached
from ..pipelines import get_spec, job_queue, specs, status_queue
from ..runtime import Worker
from ..settings import Settings


@dataclass
class PipelineSummary:
    jobs: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    objects: int = 0
    status_rows: int = 0
    lost: int = 0

    def describe(self) -> str:
        """One line for the terminal: what happened to the jobs."""
        parts = [f"{self.jobs} jobs: {self.ok} ok"]
        if self.failed:
            parts.append(f"{self.failed} failed (on purpose: bad inputs)")
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        text = ", ".join(parts)
        if self.objects:
            text += f"; {self.objects} objects written"
        return text + f"; {self.lost} lost"


@dataclass
class DemoContext:
    ns: Namespace
    workdir: Path
    console: Console
    #: Things with ``close()``/``stop()`` to call when the demo ends (servers).
    cleanup: list[Any] = field(default_factory=list)
    #: Free-form hand-over between steps (e.g. the video site's URL).
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self):
        return self.ns.settings


def run_worker(
    ctx: DemoContext,
    pipeline: str,
    *,
    concurrency: int | None = None,
    idle_exit_s: float = 3.0,
    settings: Settings | None = None,
    config: Any = None,
) -> dict:
    """Run a pipeline's worker in this process until its queue stays empty
    (with ``settings``/``config`` when a step points the pipeline at its stand-in)."""
    worker = Worker(settings or ctx.settings, get_spec(pipeline), concurrency=concurrency, idle_exit_s=idle_exit_s,
                    config=config)
    worker.run()
    return worker.metrics()


def wait_for_status_drain(ctx: DemoContext, pipeline: str, timeout_s: float = 120) -> None:
    """Wait until the poller has written every status message of ``pipeline``."""
    q = status_queue(ctx.settings, pipeline)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        d = q.depth()
        if d["visible"] == 0 and d["in_flight"] == 0 and d["delayed"] == 0:
            return
        threading.Event().wait(0.2)
    raise TimeoutError(f"status queue {q.name} did not drain in {timeout_s}s")


def count_status(ctx: DemoContext, pipeline: str, job_column: str | None = None) -> dict[str, int]:
    """ok/failed/skipped per job and the number of status rows.

    Pipelines with one status row per job count rows. For a pipeline with
    several rows per job (spectrogram: one per window) pass ``job_column``:
    a job is ok if any row of it is stat 1, else failed if any row is 0/-1,
    else skipped."""
    table = get_spec(pipeline).status_model.table
    conn = connect(ctx.settings)
    try:
        with conn.cursor() as cur:
            cur.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 (our table name)
            rows = cur.fetchone()[0]
            if job_column is None:
                cur.execute(f'SELECT stat, count(*) FROM "{table}" GROUP BY stat')  # noqa: S608
            else:
                cur.execute(
                    f"SELECT s, count(*) FROM (SELECT CASE WHEN bool_or(stat = 1) THEN 1 "
                    f"WHEN bool_or(stat IN (0, -1)) THEN 0 ELSE 2 END AS s "
                    f'FROM "{table}" GROUP BY "{job_column}") per_job GROUP BY s'  # noqa: S608
                )
            by_stat = dict(cur.fetchall())
    finally:
        conn.close()
    return {
        "ok": by_stat.get(1, 0),
        "failed": by_stat.get(0, 0) + by_stat.get(-1, 0),
        "skipped": by_stat.get(2, 0),
        "status_rows": rows,
    }


def keys_with_status(ctx: DemoContext, pipeline: str, column: str) -> set[str]:
    table = get_spec(pipeline).status_model.table
    conn = connect(ctx.settings)
    try:
        with conn.cursor() as cur:
            cur.execute(f'SELECT DISTINCT "{column}" FROM "{table}"')  # noqa: S608 (our names)
            return {r[0] for r in cur.fetchall()}
    finally:
        conn.close()


def echo_step(ctx: DemoContext) -> PipelineSummary:
    """The built-in trivial pipeline."""
    ids = [f"demo-{i}" for i in range(20)]
    job_queue(ctx.settings, "echo").send_json({"job_id": j} for j in ids)
    run_worker(ctx, "echo", concurrency=4, idle_exit_s=2)
    wait_for_status_drain(ctx, "echo")
    counts = count_status(ctx, "echo")
    seen = keys_with_status(ctx, "echo", "job_id")
    return PipelineSummary(jobs=len(ids), objects=0, lost=len(set(ids) - seen), **counts)


def run_demo(
    workdir: Path,
    only: list[str] | None = None,
    console: Console | None = None,
    on_workdir: Callable[[Path], None] | None = None,
) -> dict[str, Any]:
    """Run the demo in ``workdir`` (emptied first); ``on_workdir(path)`` is
    called once it exists (the CLI puts its log file there). Prints one line
    per step to ``console``; returns the contract summary."""
    console = console or Console(stderr=True)
    runnable = [spec for spec in specs() if spec.demo is not None]
    unknown = set(only or []) - {spec.name for spec in runnable}
    if unknown:
        raise ValueError(f"unknown pipeline(s) for the demo: {', '.join(sorted(unknown))}")
    chosen = [spec for spec in runnable if (spec.name in only if only else spec.in_default_demo)]
    available = [(spec.name, spec.demo.load()) for spec in chosen if spec.demo is not None]
    workdir = Path(workdir).resolve()
    if workdir.exists():
        stop_detached(workdir / "stack")
        destroy_data(workdir / "stack")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    if on_workdir is not None:
        on_workdir(workdir)

    started = time.monotonic()
    with console.status("starting the embedded stack (moto + PostgreSQL)"):
        state = start_detached(workdir / "stack", poller=False)
        ns = Namespace(state, name="demo")
    console.print(f"[green]✓[/] embedded stack up (moto {state.endpoint_url}, PostgreSQL :{state.pg_port})"
                  f"  [dim]{time.monotonic() - started:.1f}s[/]", highlight=False, soft_wrap=True)
    ctx = DemoContext(ns=ns, workdir=workdir, console=console)
    results: dict[str, Any] = {}
    try:
        for name, step in available:
            started = time.monotonic()
            with console.status(f"running the {name} pipeline"):
                summary = step(ctx)
            results[name] = asdict(summary)
            mark = "[green]✓[/]" if summary.lost == 0 else "[red]✗[/]"
            # soft_wrap: one line per step, also when the output is piped (no 80-column breaks)
            console.print(f"{mark} {name:<12} {summary.describe()}  [dim]{time.monotonic() - started:.1f}s[/]",
                          highlight=False, soft_wrap=True)
        report = workdir / "report.html"
        with console.status("writing the report"):
            _write_report(ctx, results, report)
    finally:
        for thing in reversed(ctx.cleanup):
            for method in ("close", "stop", "shutdown"):
                if callable(getattr(thing, method, None)):
                    try:
                        getattr(thing, method)()
                    except Exception:
                        pass
                    break
        ns.close()
        stop_detached(workdir / "stack")
        destroy_data(workdir / "stack")
    return {"pipelines": results, "report": str(report)}


def _write_report(ctx: DemoContext, results: dict[str, Any], path: Path) -> None:
    from ..report import write_report

    write_report(ctx.settings, path)
