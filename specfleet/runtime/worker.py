"""The consumer loop every worker runs.

It long-polls the pipeline's job queue, runs up to ``concurrency`` jobs at
once (one thread each; CPU-bound pipelines hand work to a process pool from
their handler), sends each job's status messages in batches, then deletes
the job — or retries, dead-letters or hands it back according to what the
handler raised (see ``errors.py``). Cross-cutting concerns are middleware.

Pipelines that overlap I/O with compute (``spec.overlaps_io``) get more job
slots than compute slots; their handlers mark stages and wait for a compute
slot only to compute (``stages.py``), so inputs are fetched and results
uploaded while other jobs compute.

A ``Paused`` job (the source rate-limits this worker's session) is handed
back and the worker takes no job until the pause it carries is over: one
stat 3 status row per pause says so and until when; no job is failed and
the ban counter is untouched.

Shutdown: SIGTERM/SIGINT (or ``stop()``, used by the ban guard) stops taking
jobs at once; after ``settings.drain_s`` seconds of grace, every job still
running is handed back (visibility 0) so another worker can take it now,
and its late result is discarded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..jobs import Job, JobValidationError, parse_job
from ..queues import BATCH, Message, OutgoingMessage, dead_letter_queue
from ..retries import HEARTBEAT, SETTLE
from ..settings import Settings
from ..status import Stat, StatusRecord
from .batching import GroupCommit
from .context import JobContext
from .errors import JobError
from .middleware import BanGuard, Heartbeat, Metrics, Middleware, RateLimit
from .outage import Outages, call_through_outages, client_endpoint, is_outage, probe, unreachable_endpoint
from .outcome import Outcome
from .policy import RetryPolicy
from .preflight import EXIT_CONFIG, ConfigError, core_checks
from .spec import PipelineSpec
from .stages import Stages
from .status_sender import StatusSender

log = logging.getLogger("specfleet.runtime")

EXIT_OK = 0
#: Exit code of a worker that stopped because its IP looks banned. The
#: instance bootstrap turns it into "shut this instance down".
EXIT_BANNED = 75


def default_middleware(settings: Settings) -> list[Middleware]:
    chain: list[Middleware] = [Heartbeat(settings.visibility_timeout_s), Metrics()]
    if settings.rate_limit_per_min > 0:
        chain.append(RateLimit(settings.rate_limit_per_min))
    if settings.ban_threshold > 0:
        chain.append(BanGuard(settings.ban_threshold))
    if settings.imds_url:  # on EC2 (or the fleet emulator): drain on spot/ASG termination
        from .protection import ScaleInProtection
        from .spot import SpotWatch

        chain.append(SpotWatch(settings.imds_url, settings.imds_poll_s))
        # In an Auto Scaling group: never scaled in while holding jobs.
        chain.append(ScaleInProtection(settings, settings.imds_poll_s))
    return chain


@dataclass
class _Running:
    message: Message
    cancelled: threading.Event
    released: bool = False
    #: Its outcome is being carried out (status sent, then delete): it is
    #: no longer handed back, and the worker waits for it before exiting.
    settling: bool = False


class Worker:
    def __init__(
        self,
        settings: Settings,
        spec: PipelineSpec,
        *,
        concurrency: int | None = None,
        middleware: list[Middleware] | None = None,
        idle_exit_s: float | None = None,
        max_jobs: int | None = None,
        config: Any = None,
    ):
        self.settings = settings
        self.spec = spec
        #: The pipeline's own settings: given, or read from the environment once.
        self.config = config if config is not None else spec.config()
        self.policy = RetryPolicy(settings.max_receives, settings.visibility_timeout_s)
        self.queue = spec.jobs(settings)
        self.sender = StatusSender(settings, spec)
        #: Jobs in their compute stage at most (see ``stages.py``).
        self.compute_slots = settings.effective_compute_slots()
        if spec.overlaps_io:
            default = settings.concurrency or self.compute_slots + settings.effective_io_slots()
        else:
            default = spec.default_concurrency or settings.effective_concurrency()
        self.concurrency = max(1, concurrency or default)
        #: The compute gate and the record of every job's stages.
        self.stages = Stages(self.compute_slots)
        self.middleware = middleware if middleware is not None else default_middleware(settings)
        #: Exit once the queue has been empty this long with nothing running.
        self.idle_exit_s = idle_exit_s
        #: Exit after this many jobs were taken (tests, benchmarks).
        self.max_jobs = max_jobs
        self.stopping = threading.Event()
        self.banned = False
        #: The signal that stopped the worker (SIGINT, SIGTERM), if one did.
        self.stop_signal: int | None = None
        #: Jobs handed back to the queue unfinished when it stopped.
        self.handed_back = 0
        self.resources: Any = None
        self._deletes: GroupCommit[Message] = GroupCommit(
            self.queue.delete, key=lambda m: m.message_id, linger_s=0.05, outstanding=lambda: len(self._running)
        )
        self._sends: GroupCommit[OutgoingMessage] = GroupCommit(self._send_status, key=id)
        #: Taken and not yet settled (deleted, retried or handed back).
        self._running: dict[str, _Running] = {}
        #: Jobs inside their handler; this is what ``concurrency`` bounds, so
        #: the next receive overlaps with the previous jobs' status sends and
        #: deletes.
        self._active = 0
        self._lock = threading.Condition()
        self._taken = 0
        #: Hand-back threads started by ``stop()``; ``run()`` waits for them so a
        #: process that exits right after stopping has really handed its jobs back.
        self._hand_back_threads: list[threading.Thread] = []
        #: Endpoints that did not answer, with their backoff: while one is down
        #: the worker takes no new jobs (they would only spend their attempts).
        self.outages = Outages(initial_s=settings.outage_backoff_initial_s, max_s=settings.outage_backoff_max_s)
        self.sqs_endpoint = client_endpoint(self.queue.sqs)
        #: Until when (monotonic) the worker takes no job: its session is rate-limited.
        self._paused_until = 0.0
        #: Pauses so far (each sent one stat 3 row).
        self.pauses = 0
        #: The configuration mistake that kept ``run()`` from starting, if one did.
        self.config_error: ConfigError | None = None

    def preflight(self) -> None:
        """Run the pre-flight checks (``preflight.py``) before any job is
        taken. A check that meets an outage is retried as the outage allows
        (an endpoint that is down is not a configuration mistake); a
        ``ConfigError`` propagates."""
        checks = [*core_checks(self.spec), ("redrive policy", lambda _s, _c: self.adopt_redrive_policy())]
        for name, check in checks:
            while not self.stopping.is_set():
                try:
                    check(self.settings, self.config)
                    break
                except Exception as err:
                    if not is_outage(err):
                        raise
                    endpoint = unreachable_endpoint(err) or self.sqs_endpoint
                    self.stopping.wait(self.outages.failed(endpoint, err, f"pre-flight check {name}"))
            log.debug("pre-flight check %s passed", name)

    def adopt_redrive_policy(self) -> None:
        """Give up on a job on the receive after which SQS dead-letters it:
        the job queue's own ``maxReceiveCount`` (one GetQueueAttributes; the
        template or ``ensure_queue`` set it). Judged by a setting that
        drifted from it, a job would reach the dead-letter queue with no
        failed row (setting higher) or get failed rows while SQS still
        retries it (setting lower)."""
        count = self.queue.max_receive_count()
        if count is None:
            log.warning("%s has no redrive policy; a failing job is given up after %d receives "
                        "(SPECFLEET_MAX_RECEIVES) but stays in the queue", self.queue.name, self.settings.max_receives)
            return
        if count != self.settings.max_receives:
            log.warning("%s dead-letters a job after %d receives (its redrive policy), not %d "
                        "(SPECFLEET_MAX_RECEIVES): the worker follows the queue", self.queue.name, count,
                        self.settings.max_receives)
        self.policy = dataclasses.replace(self.policy, max_receives=count)

    # --- public API ---------------------------------------------------------
    def run(self) -> int:
        """Consume until stopped; return the process exit code (``EXIT_CONFIG``,
        with ``config_error`` set, when a pre-flight check failed: then no job
        was received)."""
        self._install_signal_handlers()
        try:
            self.preflight()
        except ConfigError as err:
            self.config_error = err
            # info: the CLI prints the one line; this keeps it in the log file
            log.info("%s worker not started: %s", self.spec.name, err.line())
            return EXIT_CONFIG
        if self.spec.resources is not None:
            self.resources = self.spec.resources.load()(self.settings, self.config)
        for mw in self.middleware:
            mw.before_worker_start(self)
        log.info(
            "worker %s consuming %s (concurrency %d)", self.settings.instance_id, self.queue.name, self.concurrency
        )
        try:
            self._loop()
        finally:
            self._drain_and_hand_back()
            with self._lock:
                hand_backs = list(self._hand_back_threads)
            for thread in hand_backs:
                thread.join(timeout=30)
            self._wait_settled()
            for mw in reversed(self.middleware):
                mw.after_worker_stop(self)
            close = getattr(self.resources, "close", None) or getattr(self.resources, "shutdown", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    log.exception("closing worker resources failed")
        return EXIT_BANNED if self.banned else EXIT_OK

    def stop(self, banned: bool = False) -> None:
        """Stop taking jobs. With ``banned`` also hand in-flight jobs back now."""
        if banned:
            self.banned = True
        self.stopping.set()
        with self._lock:
            self._lock.notify_all()
        if banned or self.settings.drain_s <= 0:
            thread = threading.Thread(target=self._hand_back_running, name="hand-back", daemon=True)
            with self._lock:  # run() only ever sees started threads
                thread.start()
                self._hand_back_threads.append(thread)

    # --- WorkerControl (what middleware may use) -------------------------------
    def inflight(self) -> list[Message]:
        with self._lock:
            return [r.message for r in self._running.values() if not r.released]

    def extend_visibility(self, messages: list[Message], seconds: int) -> None:
        # One short attempt; a failure is the heartbeat's to report and retry (retries.py).
        failed = self.queue.change_visibility(messages, seconds, call=HEARTBEAT)
        if failed:
            log.debug("%d messages settled before they could be extended", len(failed))

    def report_banned(self, message: Message, reason: str) -> None:
        """Send the one stat -1 status for this worker."""
        ctx = self._context(message)
        try:
            job: Job | None = self._parse(message)
        except JobValidationError:
            job = None
        record = self.failure_record(job, ctx, Stat.BANNED)
        self.sender.send(
            record,
            dedupe_key=f"banned/{self.settings.instance_id}/{message.message_id}",
            reason=f"banned after {self.settings.ban_threshold} consecutive ban-class failures: {reason}",
        )

    def metrics(self) -> dict[str, float]:
        for mw in self.middleware:
            if isinstance(mw, Metrics):
                return mw.snapshot()
        return {}

    # --- loop ---------------------------------------------------------------
    def _loop(self) -> None:
        idle_since = time.monotonic()
        while not self.stopping.is_set():
            with self._lock:
                while self._active >= self.concurrency and not self.stopping.is_set():
                    self._lock.wait(0.5)
                if self.concurrency - self._active < min(BATCH, self.concurrency):
                    # Give short jobs a moment to free more slots so one
                    # receive fetches a fuller batch (negligible for long jobs).
                    self._lock.wait(0.02)
                free = self.concurrency - self._active
            if self.stopping.is_set():
                break
            if self.max_jobs is not None:
                free = min(free, self.max_jobs - self._taken)
                if free <= 0:
                    self._wait_for_running()
                    break
            if self._wait_out_dependencies():
                continue
            pause_left = self.pause_left()
            if pause_left > 0:
                self.stopping.wait(pause_left)
                idle_since = time.monotonic()  # a pause is not idleness
                continue
            wait_s = self.settings.wait_time_s
            if self.idle_exit_s is not None:
                wait_s = min(wait_s, max(1, int(self.idle_exit_s)))
            try:
                messages = self.queue.receive(
                    min(10, free), wait_s=wait_s, visibility_s=self.settings.visibility_timeout_s
                )
            except Exception as err:
                if not is_outage(err):
                    raise
                self.stopping.wait(self.outages.failed(self.sqs_endpoint, err, "receive"))
                idle_since = time.monotonic()  # an outage is not idleness
                continue
            self.outages.succeeded(self.sqs_endpoint)
            if self.stopping.is_set():
                self._hand_back_received(messages)
                break
            if not messages:
                with self._lock:
                    busy = bool(self._running)
                if busy:
                    idle_since = time.monotonic()
                elif self.idle_exit_s is not None and time.monotonic() - idle_since >= self.idle_exit_s:
                    break
                continue
            idle_since = time.monotonic()
            for message in messages:
                self._start(message)

    def pause_left(self) -> float:
        """Seconds this worker still waits out a session rate limit (0: none)."""
        with self._lock:
            return max(0.0, self._paused_until - time.monotonic())

    def _pause(self, message: Message, job: Job | None, ctx: JobContext, outcome: Outcome) -> None:
        """Start a pause of ``outcome.wait_s`` unless one is on: the first
        rate-limited job of a pause sends its one stat 3 row; the others
        (in flight when the limit came) are only handed back."""
        with self._lock:
            now = time.monotonic()
            if now < self._paused_until:
                return
            self._paused_until = now + outcome.wait_s
            self.pauses += 1
            n = self.pauses
        until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=outcome.wait_s)
        reason = (f"paused {outcome.wait_s:.0f} s until {until:%Y-%m-%d %H:%M:%S} UTC, job handed back, "
                  f"no job failed: {outcome.reason}")
        log.warning("worker %s %s", self.settings.instance_id, reason)
        try:
            record = self.failure_record(job, ctx, Stat.PAUSED)
            self._through_outages(lambda: self._sends.submit_many([self.sender.message(
                record, dedupe_key=f"paused/{self.settings.instance_id}/{n}/{message.message_id}", reason=reason,
            )]), "status send")
        except Exception:
            log.exception("sending the pause status failed; the worker pauses all the same")

    def _wait_out_dependencies(self) -> bool:
        """While an endpoint a job found unreachable (S3, SNS...) is down, take
        no jobs: wait out its backoff, then probe it. True if the loop should
        look again instead of receiving."""
        blocked = [e for e in self.outages.down() if e != self.sqs_endpoint]
        if not blocked:
            return False
        wait = min(self.outages.next_try_in(e) for e in blocked)
        if wait > 0:
            self.stopping.wait(wait)
            return True
        for endpoint in blocked:
            if self.outages.next_try_in(endpoint) > 0:
                continue
            if probe(endpoint):
                self.outages.succeeded(endpoint)
            else:
                self.outages.failed(endpoint, "no answer to a probe")
        return True

    def _start(self, message: Message) -> None:
        running = _Running(message, threading.Event())
        with self._lock:
            self._running[message.message_id] = running
            self._active += 1
            self._taken += 1
        threading.Thread(
            target=self._process, args=(running,), name=f"job-{message.message_id[:8]}", daemon=True
        ).start()

    def _wait_for_running(self) -> None:
        with self._lock:
            while self._running and not self.stopping.is_set():
                self._lock.wait(0.5)

    # --- one job --------------------------------------------------------------
    def _context(self, message: Message, cancelled: threading.Event | None = None) -> JobContext:
        return JobContext(
            settings=self.settings,
            message=message,
            instance_id=self.settings.instance_id,
            sender=self.sender,
            cancelled=cancelled or threading.Event(),
            resources=self.resources,
            config=self.config,
            stages=self.stages,
        )

    def _process(self, running: _Running) -> None:
        message = running.message
        started = time.monotonic()
        ctx = self._context(message, running.cancelled)
        job: Job | None = None
        error: BaseException | None = None
        try:
            for mw in self.middleware:
                mw.before_process(self, message)
            job = self._parse(message)
            try:
                self.spec.handler.load()(job, ctx)
            finally:
                ctx.end_stages()  # a compute slot is free again before the job settles
        except Exception as err:
            error = err
            endpoint = unreachable_endpoint(err)
            if endpoint is not None:
                # A dependency is down, not the job: stop taking jobs until it is back.
                self.outages.failed(endpoint, err, f"job {message.message_id[:8]}")
            elif running.cancelled.is_set() or self.stopping.is_set():
                log.info("job %s stopped by the shutdown: %s", message.message_id, err)
            elif not isinstance(err, (JobError, JobValidationError)):
                log.exception("job %s failed unexpectedly", message.message_id)
        outcome = self.policy.outcome(error, message.receive_count)
        outcome = Outcome(outcome.kind, outcome.reason, time.monotonic() - started,
                          key=job.key() if job is not None else message.message_id, wait_s=outcome.wait_s,
                          wrote=ctx.wrote)
        # A finished job frees its slot now, so the next receive overlaps with
        # its status send and delete. Any other outcome holds the slot until
        # the middleware has seen it: after a ban-class failure the ban guard
        # must decide before another job is taken.
        early = outcome.kind == "done"
        if early:
            self._free_slot()
        if outcome.kind == "paused":
            self._pause(message, job, ctx, outcome)
        try:
            if outcome.kind == "retry" and self.stopping.is_set():
                # Stopping: hand it back now, no attempt spent; another worker takes it at once.
                self._release(running)
            if not self._settle(running, job, ctx, outcome):
                # handed back before it could settle: nothing was sent, another worker redoes it
                outcome = Outcome("released", "handed back to the queue", outcome.seconds, key=outcome.key)
        except Exception:
            # The job stays invisible until its timeout and is then redelivered.
            log.exception("settling job %s failed", message.message_id)
        finally:
            for mw in reversed(self.middleware):
                try:
                    mw.after_process(self, message, outcome)
                except Exception:
                    log.exception("middleware %s failed", type(mw).__name__)
            if not early:
                self._free_slot()
            with self._lock:
                self._running.pop(message.message_id, None)
                self._lock.notify_all()

    def _free_slot(self) -> None:
        with self._lock:
            self._active -= 1
            self._lock.notify_all()

    def _settle(self, running: _Running, job: Job | None, ctx: JobContext, outcome: Outcome) -> bool:
        """Carry ``outcome`` out; False if the job was handed back first
        (then nothing is sent: its status is the next worker's to send)."""
        message = running.message
        with self._lock:
            if running.released:
                log.info("job %s finished after it was handed back; result discarded", message.message_id)
                return False
            running.settling = True
        reports: list[OutgoingMessage] = ctx.take_reports()
        if outcome.kind in ("rejected", "skipped", "dead"):
            stat = Stat.SKIPPED if outcome.kind == "skipped" else Stat.FAILED
            record = self.failure_record(job, ctx, stat)
            reports.append(
                self.sender.message(record, dedupe_key=f"{message.message_id}/{outcome.kind}", reason=outcome.reason)
            )
            # info: the terminal's job line says it once (cli JobLines); the log file keeps it
            log.info("job %s %s: %s", message.message_id, outcome.kind, outcome.reason)
        if outcome.kind not in ("banned", "paused", "elsewhere", "misconfigured") and reports:
            self._through_outages(lambda: self._sends.submit_many(reports), "status send")
        action, seconds = self.policy.queue_action(outcome, message.receive_count)
        if action == "requeue":
            copy = OutgoingMessage(message.body, dict(message.attributes))
            self._through_outages(lambda: self.queue.send([copy], call=SETTLE), "requeue")
            log.info("job %s requeued as a fresh message (receive %d): %s", message.message_id,
                     message.receive_count, outcome.reason)
            self._through_outages(lambda: self._deletes.submit(message), "delete")
        elif action == "dlq":  # a configuration problem: kept as it came, never a failure (errors.py)
            log.warning("job %s kept in the dead-letter queue: %s", message.message_id, outcome.reason)
            moved = OutgoingMessage(message.body, {**message.attributes, "specfleet_reason": outcome.reason[:1000]})
            self._through_outages(lambda: dead_letter_queue(self.queue).send([moved], call=SETTLE), "dead-letter")
            self._through_outages(lambda: self._deletes.submit(message), "delete")
        elif action == "delete":
            self._through_outages(lambda: self._deletes.submit(message), "delete")
        else:
            self._through_outages(lambda: self.queue.change_visibility([message], seconds), "visibility")
            if outcome.kind == "retry":
                log.info("job %s will be retried in %ds: %s", message.message_id, seconds, outcome.reason)
            elif outcome.kind == "elsewhere":
                log.warning("job %s handed back for another worker: %s", message.message_id, outcome.reason)
        with self._lock:
            running.released = True  # settled: the heartbeat must leave it alone
        return True

    def _parse(self, message: Message) -> Job:
        return parse_job(self.spec.job_model, message.body, legacy=self.spec.legacy_body)

    def failure_record(self, job: Job | None, ctx: JobContext, stat: Stat) -> StatusRecord:
        """The pipeline's failure record for ``job``; if the job's own values
        cannot make a record, the one for an unreadable job (never no row)."""
        if job is not None:
            try:
                return self.spec.failure_status(job, ctx, stat)
            except Exception as err:
                log.warning("%s failure status from the job's values failed (%s); using placeholders",
                            self.spec.name, err)
        return self.spec.failure_status(None, ctx, stat)

    def _through_outages(self, action: Callable[[], object], what: str) -> None:
        """Settling survives an SQS outage shorter than the visibility timeout:
        past that, SQS hands the job to another worker anyway. The one retry
        owner of settle calls (``retries.py``): each attempt is one call."""
        call_through_outages(
            action, outages=self.outages, endpoint=self.sqs_endpoint, what=what,
            stop=threading.Event(), deadline_s=self.settings.visibility_timeout_s,
        )

    def _send_status(self, batch: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
        self.sender.send_many(list(batch), call=SETTLE)  # raises unless SQS took all of them
        return []

    # --- shutdown ---------------------------------------------------------------
    def _hand_back(self, messages: list[Message]) -> None:
        if messages:
            self.queue.change_visibility(messages, 0)
            log.info("handed back %d jobs", len(messages))

    def _hand_back_received(self, messages: list[Message]) -> None:
        """Received as the worker stopped: never started, back at once."""
        with self._lock:
            self.handed_back += len(messages)
        self._hand_back(messages)

    def _release(self, running: _Running) -> None:
        """Hand one job back unfinished (unless a hand-back already has)."""
        with self._lock:
            if running.released or running.settling:
                return
            running.released = True
            running.cancelled.set()
            self.handed_back += 1
        self._hand_back([running.message])

    def _hand_back_running(self) -> None:
        with self._lock:
            to_release = [r for r in self._running.values() if not r.released and not r.settling]
            for r in to_release:
                r.released = True
                r.cancelled.set()
            self.handed_back += len(to_release)
        try:
            self._hand_back([r.message for r in to_release])
        except Exception:
            log.exception("handing back in-flight jobs failed; they reappear after their visibility timeout")

    def _drain_and_hand_back(self) -> None:
        deadline = time.monotonic() + max(0.0, self.settings.drain_s)
        with self._lock:
            while self._running and time.monotonic() < deadline and not self.banned:
                self._lock.wait(min(0.5, max(0.01, deadline - time.monotonic())))
        self._hand_back_running()

    def _wait_settled(self) -> None:
        """Wait for the jobs whose outcome is being carried out (their status
        on its way) to be through, middleware included, so what the worker
        reports on exit is final."""
        deadline = time.monotonic() + self.settings.visibility_timeout_s
        with self._lock:
            while any(r.settling for r in self._running.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(min(0.5, left))

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_signal(signum: int, _frame: Any) -> None:
            # info, not warning: the CLI says it in its closing line
            log.info("signal %d: stop taking jobs, hand back in-flight ones", signum)
            self.stop_signal = signum
            self.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
