"""``specfleet work``: take a pipeline's jobs, one terminal line per settled job.

A stream, not a result: it runs until idle or stopped and reports each
job as it settles, so it has no ``--output`` (``status --output json`` is
the fleet's state as data)."""

from __future__ import annotations

import signal
import threading

import typer
from rich.console import Console
from rich.markup import escape

from ..pipelines import get_spec
from ..queues import Message
from ..runtime.middleware import Middleware
from ..runtime.outcome import Outcome
from .app import pipeline_name
from .context import settings
from .errors import fail
from .output import verbosity

console = Console(stderr=True)


def work(
    pipeline: str = typer.Argument(..., help="The pipeline whose jobs to take.", callback=pipeline_name),
    concurrency: int = typer.Option(0, help="Jobs at once (0: the pipeline's default, one per CPU)."),
    idle_exit: float | None = typer.Option(None, help="Exit after the queue was empty this many seconds."),
    max_jobs: int | None = typer.Option(None, help="Exit after taking this many jobs."),
) -> None:
    """Take a pipeline's jobs until stopped; Ctrl-C or SIGTERM hands the jobs in hand back.

    Prints a start banner and one line per job (-q: errors only). On EC2 the
    worker runs as the unit specfleet-worker@PIPELINE: `journalctl -u
    specfleet-worker@PIPELINE` on the instance, `specfleet logs PIPELINE` from
    anywhere.

    Example: specfleet work echo --idle-exit 10
    """
    from ..runtime import Worker, default_middleware

    s = settings(check_endpoint=False)  # a worker waits out an endpoint that is down
    spec = get_spec(pipeline)
    middleware = default_middleware(s)
    if verbosity() >= 0:
        middleware.append(JobLines(console))
    worker = Worker(s, spec, concurrency=concurrency or None, idle_exit_s=idle_exit, max_jobs=max_jobs,
                    middleware=middleware)
    endpoint = s.endpoint_url or f"AWS ({s.region})"
    console.print(
        f"[bold]{spec.name}[/] worker [dim]{s.instance_id}[/]: queue {worker.queue.name}, "
        f"{worker.concurrency} at once, endpoint {endpoint}", highlight=False,
    )
    code = worker.run()
    if worker.config_error is not None:
        fail(worker.config_error.what, worker.config_error.hint, code=code)
    why = " (banned: exit 75)" if code == 75 else ""
    if worker.stop_signal is not None:
        why = " (Ctrl-C)" if worker.stop_signal == signal.SIGINT else f" ({signal.Signals(worker.stop_signal).name})"
        if worker.stop_signal == signal.SIGINT and console.is_terminal:
            console.print()  # the terminal echoed ^C where the next line would start
    console.print(f"worker stopped{why}: {worker_summary(worker.metrics(), worker.handed_back)}", highlight=False,
                  soft_wrap=True)
    raise typer.Exit(code)


#: How each outcome reads on a job line and in the closing summary, and its colour.
OUTCOME_WORDS = {
    "done": ("done", "green"),
    "rejected": ("failed", "red"),
    "skipped": ("skipped", "yellow"),
    "retry": ("will retry", "yellow"),
    "dead": ("gave up", "red"),
    "misconfigured": ("kept", "red"),
    "banned": ("blocked", "magenta"),
}


def worker_summary(metrics: dict[str, float], handed_back: int) -> str:
    """The closing line's counts: the outcomes that were settled (each one's
    status sent), then the jobs handed back unfinished (no status: the next
    worker does them)."""
    parts = [f"{int(metrics[kind])} {word}" for kind, (word, _) in OUTCOME_WORDS.items() if metrics.get(kind)]
    if handed_back:
        parts.append(f"{handed_back} handed back to the queue")
    return ", ".join(parts) or "no jobs"


def job_label(key: str) -> str:
    """A job as a person names it: a file's name (which carries its start
    time) rather than its whole URL; a track id as it is."""
    return key.rstrip("/").rsplit("/", 1)[-1] if "://" in key else key


class JobLines(Middleware):
    """One terminal line per settled job: what became of it, which job, what
    it wrote, its time, and why when it did not succeed. Printed after the
    job's status was sent (the worker calls this after settling). A job
    handed back at shutdown gets no line (the closing summary counts it), and
    nothing is printed once the worker has stopped: the summary is last."""

    def __init__(self, out: Console):
        self.out = out
        self._closed = False
        self._lock = threading.Lock()

    def after_worker_stop(self, worker: object) -> None:
        with self._lock:
            self._closed = True

    def after_process(self, worker: object, message: Message, outcome: Outcome) -> None:
        if outcome.kind not in OUTCOME_WORDS:
            return
        word, style = OUTCOME_WORDS[outcome.kind]
        wrote = f"  {escape(outcome.wrote)}" if outcome.wrote else ""
        reason = outcome.reason[:300]
        if outcome.kind == "misconfigured":
            reason = f"in the dead-letter queue, not failed: {reason}"
        why = f"  [dim]{escape(reason)}[/]" if reason and outcome.kind != "done" else ""
        line = f"[{style}]{word:>10}[/] {escape(job_label(outcome.key))}{wrote}  {outcome.seconds:.1f}s{why}"
        with self._lock:
            if not self._closed:
                self.out.print(line, highlight=False, soft_wrap=True)


def register(app: typer.Typer, produce_app: typer.Typer) -> None:
    app.command()(work)
