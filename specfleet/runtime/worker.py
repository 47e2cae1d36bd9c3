"""The consumer loop every worker runs, and the threads it runs on.

It long-polls the pipeline's job queue, runs up to ``concurrency`` jobs at
once (CPU-bound pipelines hand work to a process pool from their handler),
sends each job's status messages in batches, then deletes the job -- or
retries, dead-letters or hands it back according to what the handler
raised (see ``errors.py``). Cross-cutting concerns are middleware.

Threads (dramatiq's shape: a consumer feeding a fixed pool). Each has one
job, and each shared structure has its own narrow lock, so no lock is held
across an SQS call and no thread waits on another's bookkeeping:

* the receive loop (the thread that calls ``run()``) receives only as many
  messages as there are free job slots (``_Slots``) and puts them on a
  bounded queue. A fixed pool of ``concurrency`` job threads, started
  once, reads it. A message is received only for a slot that is free, and
  a job thread is free for every free slot, so none sits received but
  unstarted while its visibility timeout runs.
* job threads run middleware's ``before_process`` and the handler, turn
  what it raised into an outcome and hand that to the settle owner
  (``settle.py``) without waiting for it.
* the settle owner is the one thread that deletes jobs, changes their
  visibility and sends status messages, batching what arrives together;
  ``after_process`` runs there once a job was settled. A finished job frees
  its slot when it is handed over, so the next receive overlaps with its
  status send and delete; any other outcome holds its slot until the
  middleware has seen it (after a ban-class failure the ban guard must
  decide before another job is taken).
* the registry of jobs taken and not yet settled (``_jobs``: what the
  heartbeat extends and shutdown hands back) is the only state the threads
  share, under its own lock.

Pipelines that overlap I/O with compute (``spec.overlaps_io``) get more job
slots than compute slots; their handlers mark stages and wait for a compute
slot only to compute (``stages.py``), so inputs are fetched and results
uploaded while other jobs compute.

A ``Paused`` job (the source rate-limits this worker's session) is handed
back and the worker takes no job until the pause it carries is over: one
stat 3 status row per pause says so and until when; no job is failed and
the ban counter is untouched.

Shutdown: SIGTERM/SIGINT (or ``stop()``, used by the ban guard) stops
receiving first: no new long poll starts, and whatever the open one returns
is handed back unstarted. Only once the receive loop has stopped, after
``settings.drain_s`` seconds of grace (none when banned), is every job
still running handed back (visibility 0) so another worker can take it now;
its late result is discarded. Handed back while a long poll was still open,
a job would be returned by that poll to the stopping worker and lose one of
its receives.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import queue
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from ..jobs import Job, JobValidationError, parse_job
from ..queues import BATCH, Message, OutgoingMessage, dead_letter_queue
from ..retries import HEARTBEAT
from ..settings import Settings
from ..status import Stat, StatusRecord
from .context import JobContext
from .errors import JobError
from .middleware import BanGuard, Heartbeat, Metrics, Middleware, RateLimit
from .outage import Outages, client_endpoint, is_outage, probe, unreachable_endpoint
from .outcome import Outcome
from .policy import RetryPolicy
from .preflight import EXIT_CONFIG, ConfigError, core_checks, denied_code
from .settle import Settlement, Settler
from .spec import PipelineSpec
from .stages import Stages
from .status_sender import StatusSender

log = logging.getLogger("specfleet.runtime")

EXIT_OK = 0
#: Exit code of a worker that stopped because its IP looks banned. The
#: instance bootstrap turns it into "shut this instance down".
EXIT_BANNED = 75
#: How long the receive loop waits for more job slots to free up when only a
#: few are free, so one receive fetches a fuller batch (negligible for long jobs).
FULLER_BATCH_S = 0.02


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


#: A taken job's state: in its handler; its outcome handed to the settle
#: owner; handed back unfinished (its late result is discarded).
State = Literal["running", "settling", "released"]


@dataclass
class _Running:
    message: Message
    cancelled: threading.Event
    state: State = "running"


class _Slots:
    """Job slots: jobs inside their handler, at most ``concurrency``."""

    def __init__(self, size: int):
        self.size = size
        self._free = size
        #: Free slots the receive loop waits for (0: it is not waiting): a
        #: slot given back wakes it only once there are that many.
        self._want = 0
        self._cv = threading.Condition()  # re-entrant: ``wake`` may run in a signal handler

    def take(self) -> None:
        with self._cv:
            self._free -= 1

    def give(self) -> None:
        with self._cv:
            self._free += 1
            if self._want and self._free >= self._want:
                self._cv.notify_all()

    def wake(self) -> None:
        with self._cv:
            self._cv.notify_all()

    def wait_free(self, fuller: int, stopping: threading.Event) -> int:
        """Wait for a free slot (or ``stopping``); then up to ``FULLER_BATCH_S``
        for ``fuller`` of them. The free slots (only the caller takes any)."""
        with self._cv:
            try:
                self._want = 1
                while self._free <= 0 and not stopping.is_set():
                    self._cv.wait(0.5)
                self._want = fuller
                deadline = time.monotonic() + FULLER_BATCH_S
                while self._free < fuller and not stopping.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cv.wait(left)
                return self._free
            finally:
                self._want = 0


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
        #: Endpoints that did not answer, with their backoff: while one is down
        #: the worker takes no new jobs (they would only spend their attempts).
        self.outages = Outages(initial_s=settings.outage_backoff_initial_s, max_s=settings.outage_backoff_max_s)
        self.sqs_endpoint = client_endpoint(self.queue.sqs)
        #: Until when (monotonic) the worker takes no job: its session is rate-limited.
        self._paused_until = 0.0
        #: Pauses so far (each sent one stat 3 row).
        self.pauses = 0
        self._pause_lock = threading.Lock()
        #: The configuration mistake that kept ``run()`` from starting, if one did.
        self.config_error: ConfigError | None = None

        self._slots = _Slots(self.concurrency)
        #: Received jobs on their way to a job thread: bounded by the slots (a
        #: message is received only for a free slot, and a job thread is free
        #: for every free slot), so it never holds more than ``concurrency``.
        self._work: queue.SimpleQueue[_Running | None] = queue.SimpleQueue()
        self._pool: list[threading.Thread] = []
        #: Taken and not yet settled (deleted, retried or handed back), by message id;
        #: ``_in_handler`` of them are still in their handler. Guarded by ``_jobs_cv``
        #: (with ``handed_back``).
        self._jobs: dict[str, _Running] = {}
        self._in_handler = 0
        self._jobs_cv = threading.Condition()
        #: Jobs taken so far (the receive loop's own count).
        self._taken = 0
        #: Set once the receive loop has stopped: hand-backs may go out.
        self._receiving_stopped = threading.Event()
        self._settler = Settler(
            self.queue, self.sender, self.outages, self.sqs_endpoint,
            deadline_s=settings.visibility_timeout_s,
            hold=lambda: self.stopping.is_set() and not self._receiving_stopped.is_set(),
            outstanding=self._jobs_in_handler,
        )

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
        retries it (setting lower). A role that may not read it is a
        configuration mistake (``ConfigError``); an outage is the caller's
        to wait out."""
        try:
            count = self.queue.max_receive_count()
        except Exception as err:
            code = denied_code(err)
            if code is None:
                raise
            raise ConfigError(f"may not read the redrive policy of queue {self.queue.name}: {code}",
                              "grant sqs:GetQueueAttributes on it (the template's worker role does)") from None
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
        self._settler.start()
        for i in range(self.concurrency):
            thread = threading.Thread(target=self._job_thread, name=f"job-{i}", daemon=True)
            thread.start()
            self._pool.append(thread)
        try:
            self._receive_loop()
        finally:
            # Receiving has stopped (the last long poll returned): hand-backs may go now.
            self._receiving_stopped.set()
            self._settler.wake()
            self._drain()
            self._hand_back_running()
            self._wait_settled()
            for _ in self._pool:
                self._work.put(None)
            self._settler.close(timeout=self.settings.visibility_timeout_s)
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
        """Stop receiving; once the open long poll has returned, hand in-flight
        jobs back (with ``banned`` at once, else after ``drain_s``). Safe in a
        signal handler: it only sets flags and wakes the receive loop."""
        if banned:
            self.banned = True
        self.stopping.set()
        self._slots.wake()

    # --- WorkerControl (what middleware may use) -------------------------------
    def inflight(self) -> list[Message]:
        with self._jobs_cv:
            return [r.message for r in self._jobs.values() if r.state != "released"]

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

    # --- the receive loop ------------------------------------------------------
    def _receive_loop(self) -> None:
        idle_since = time.monotonic()
        while not self.stopping.is_set():
            free = self._slots.wait_free(min(BATCH, self.concurrency), self.stopping)
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
                    min(BATCH, free), wait_s=wait_s, visibility_s=self.settings.visibility_timeout_s
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
                with self._jobs_cv:
                    busy = bool(self._jobs)
                if busy:
                    idle_since = time.monotonic()
                elif self.idle_exit_s is not None and time.monotonic() - idle_since >= self.idle_exit_s:
                    break
                continue
            idle_since = time.monotonic()
            for message in messages:
                self._dispatch(message)

    def _dispatch(self, message: Message) -> None:
        running = _Running(message, threading.Event())
        self._slots.take()
        with self._jobs_cv:
            self._jobs[message.message_id] = running
            self._in_handler += 1
        self._taken += 1
        self._work.put(running)

    def _jobs_in_handler(self) -> int:
        with self._jobs_cv:
            return self._in_handler

    def pause_left(self) -> float:
        """Seconds this worker still waits out a session rate limit (0: none)."""
        with self._pause_lock:
            return max(0.0, self._paused_until - time.monotonic())

    def _pause(self, message: Message, job: Job | None, ctx: JobContext, outcome: Outcome) -> None:
        """Start a pause of ``outcome.wait_s`` unless one is on: the first
        rate-limited job of a pause sends its one stat 3 row; the others
        (in flight when the limit came) are only handed back."""
        with self._pause_lock:
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
            self._settler.submit(Settlement(statuses=[self.sender.message(
                record, dedupe_key=f"paused/{self.settings.instance_id}/{n}/{message.message_id}", reason=reason,
            )]))
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

    def _wait_for_running(self) -> None:
        with self._jobs_cv:
            while self._jobs and not self.stopping.is_set():
                self._jobs_cv.wait(0.5)

    # --- the job threads --------------------------------------------------------
    def _job_thread(self) -> None:
        while True:
            running = self._work.get()
            if running is None:
                return
            try:
                self._process(running)
            except Exception:  # a bug here must not cost the pool a thread
                log.exception("job %s: the runtime failed", running.message.message_id)

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
        if outcome.kind == "paused":
            self._pause(message, job, ctx, outcome)
        # A finished job frees its slot once handed over, so the next receive
        # overlaps with its status send and delete; any other outcome holds it
        # until the middleware has seen it (see the module docstring).
        early = outcome.kind == "done"
        with self._jobs_cv:
            discarded = running.state == "released"  # handed back while it ran
            release = not discarded and outcome.kind == "retry" and self.stopping.is_set()
            if running.state == "running":
                self._in_handler -= 1
            if release:
                # Stopping: hand it back, no attempt spent; another worker takes it at once.
                running.state = "released"
                running.cancelled.set()
                self.handed_back += 1
            elif not discarded:
                running.state = "settling"
        if discarded or release:
            if discarded:
                log.info("job %s finished after it was handed back; result discarded", message.message_id)
            outcome = Outcome("released", "handed back to the queue", outcome.seconds, key=outcome.key)
            settlement = Settlement(message, action="visibility", seconds=0) if release else Settlement()
        else:
            try:
                settlement = self._settlement(message, job, ctx, outcome)
            except Exception:
                # The job stays invisible until its timeout and is then redelivered.
                log.exception("settling job %s failed", message.message_id)
                settlement = Settlement()
        settlement.done = lambda ok: self._settled(running, outcome, early)
        self._settler.submit(settlement)
        if early:
            self._slots.give()

    def _settlement(self, message: Message, job: Job | None, ctx: JobContext, outcome: Outcome) -> Settlement:
        """What must be done to carry ``outcome`` out (the settle owner does it)."""
        reports: list[OutgoingMessage] = ctx.take_reports()
        if outcome.kind in ("rejected", "skipped", "dead"):
            stat = Stat.SKIPPED if outcome.kind == "skipped" else Stat.FAILED
            record = self.failure_record(job, ctx, stat)
            reports.append(
                self.sender.message(record, dedupe_key=f"{message.message_id}/{outcome.kind}", reason=outcome.reason)
            )
            # info: the terminal's job line says it once (cli JobLines); the log file keeps it
            log.info("job %s %s: %s", message.message_id, outcome.kind, outcome.reason)
        if outcome.kind in ("banned", "paused", "elsewhere", "misconfigured"):
            reports = []
        action, seconds = self.policy.queue_action(outcome, message.receive_count)
        if action == "requeue":
            log.info("job %s requeued as a fresh message (receive %d): %s", message.message_id,
                     message.receive_count, outcome.reason)
            copy = OutgoingMessage(message.body, dict(message.attributes))
            return Settlement(message, reports, "move", copy=copy, to=self.queue)
        if action == "dlq":  # a configuration problem: kept as it came, never a failure (errors.py)
            log.warning("job %s kept in the dead-letter queue: %s", message.message_id, outcome.reason)
            moved = OutgoingMessage(message.body, {**message.attributes, "specfleet_reason": outcome.reason[:1000]})
            return Settlement(message, reports, "move", copy=moved, to=dead_letter_queue(self.queue))
        if action == "delete":
            return Settlement(message, reports, "delete")
        if outcome.kind == "retry":
            log.info("job %s will be retried in %ds: %s", message.message_id, seconds, outcome.reason)
        elif outcome.kind == "elsewhere":
            log.warning("job %s handed back for another worker: %s", message.message_id, outcome.reason)
        return Settlement(message, reports, "visibility", seconds=seconds)

    def _settled(self, running: _Running, outcome: Outcome, early: bool) -> None:
        """On the settle owner's thread, once ``running`` was settled: the
        middleware sees the outcome, then the job's slot and entry go."""
        for mw in reversed(self.middleware):
            try:
                mw.after_process(self, running.message, outcome)
            except Exception:
                log.exception("middleware %s failed", type(mw).__name__)
        if not early:
            self._slots.give()
        with self._jobs_cv:
            self._jobs.pop(running.message.message_id, None)
            self._jobs_cv.notify_all()

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

    # --- shutdown ---------------------------------------------------------------
    def _hand_back_received(self, messages: list[Message]) -> None:
        """Received as the worker stopped: never started, back (once receiving has stopped)."""
        with self._jobs_cv:
            self.handed_back += len(messages)
        for message in messages:
            self._settler.submit(Settlement(message, action="visibility", seconds=0))

    def _hand_back_running(self) -> None:
        with self._jobs_cv:
            to_release = [r for r in self._jobs.values() if r.state == "running"]
            for r in to_release:
                r.state = "released"
                r.cancelled.set()
            self._in_handler -= len(to_release)
            self.handed_back += len(to_release)
        for r in to_release:
            self._settler.submit(Settlement(r.message, action="visibility", seconds=0))

    def _drain(self) -> None:
        """Give running jobs ``drain_s`` to finish (none when banned)."""
        deadline = time.monotonic() + max(0.0, self.settings.drain_s)
        with self._jobs_cv:
            while self._jobs and not self.banned:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._jobs_cv.wait(min(0.5, left))

    def _wait_settled(self) -> None:
        """Wait for the jobs whose outcome is being carried out (their status
        on its way) to be through, middleware included, so what the worker
        reports on exit is final."""
        deadline = time.monotonic() + self.settings.visibility_timeout_s
        with self._jobs_cv:
            while any(r.state == "settling" for r in self._jobs.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._jobs_cv.wait(min(0.5, left))

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_signal(signum: int, _frame: Any) -> None:
            # info, not warning: the CLI says it in its closing line
            log.info("signal %d: stop receiving, then hand back in-flight jobs", signum)
            self.stop_signal = signum
            self.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
