"""The spectrogram worker end to end: moto S3 + SQS, the real worker with its
process pool, the status poller and Postgres.

One namespace and one worker run are shared by the module (``run``): the
worker pool's start-up (spawned processes, imports, warm-up) is the slow part,
so every input goes through the same run and each test checks its own part.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from helpers import count, query, wait_for
from specfleet.local.stack import Namespace
from specfleet.pipelines import get_spec, job_queue, status_queue
from specfleet.pipelines.melwindows.settings import SpectroSettings
from specfleet.pipelines.spectrogram.producer import ProduceReport, plan_jobs, produce
from specfleet.queues import Message
from specfleet.runtime import Metrics, Middleware, Worker, default_middleware
from specfleet.settings import Settings
from specfleet.storage import Storage
from test_spectrogram_dsp import make_long_silent_mp3, make_lying_mp3, make_mp3


class Seen(Middleware):
    """Records every message a worker took."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def before_process(self, worker, message) -> None:  # type: ignore[no-untyped-def]
        self.messages.append(message)


class Stall(Seen):
    """Holds each taken job before its handler runs until ``release`` is set:
    a worker stalled (GC pause, lost network) past its visibility timeout."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def before_process(self, worker, message) -> None:  # type: ignore[no-untyped-def]
        super().before_process(worker, message)
        if not self.release.wait(60):
            raise TimeoutError("the stalled worker was never released")


def _worker(settings: Settings, config: SpectroSettings, *extra: Middleware) -> Worker:
    mw = default_middleware(settings) + list(extra)
    return Worker(settings, get_spec("spectrogram"), concurrency=3, middleware=mw, idle_exit_s=1, config=config)


@dataclass
class Run:
    settings: Settings
    config: SpectroSettings
    storage: Storage
    report: ProduceReport
    exit_code: int
    metrics: dict[str, float]

    def rows(self, track_id: str) -> list[tuple]:
        return query(
            self.settings,
            "SELECT stat, win, ini, fin, rows, cols, reason FROM status_specto WHERE track_id = %s ORDER BY win",
            (track_id,),
        )


@pytest.fixture(scope="module")
def run(stack, tmp_path_factory) -> Iterator[Run]:  # type: ignore[no-untyped-def]
    # A 2 s visibility timeout lets the redelivery test see a real lapse quickly;
    # the heartbeat keeps running jobs invisible meanwhile.
    ns = Namespace(stack, wait_time_s=1, visibility_timeout_s=2)
    try:
        # A 10-minute limit: long61 is refused by its header, lying by decoding.
        settings = ns.settings
        config = SpectroSettings(processes=1, max_duration_s=600)
        tmp = tmp_path_factory.mktemp("specto")
        storage = Storage(settings)
        storage.put_file("audio/good50.mp3", make_mp3(tmp / "a.mp3", 50.2, 44100, 2))
        storage.put_file("audio/long61.mp3", make_long_silent_mp3(tmp / "long.mp3", 61))
        storage.put_file("audio/lying.mp3", make_lying_mp3(tmp / "lying.mp3", claimed_s=20, holds_s=15 * 60))
        storage.put_bytes("audio/corrupt.mp3", bytes(range(256)) * 40)
        storage.put_bytes("audio/empty.mp3", b"")
        storage.put_file("audio/song.wav", make_mp3(tmp / "w.mp3", 5, 8000, 1))
        report = produce(settings, config)
        # The producer filters empty and .wav objects; send those jobs anyway to see the worker refuse them.
        job_queue(settings, "spectrogram").send_json(
            [{"track_id": "empty"}, {"track_id": "song", "audio_key": "audio/song.wav"}]
        )
        worker = _worker(settings, config)
        exit_code = worker.run()
        wait_for(lambda: count(settings, "status_specto") == 7, what="2 window rows + 5 failure rows")
        yield Run(settings, config, storage, report, exit_code, worker.metrics())
    finally:
        ns.close()


def test_producer_filters_and_skips_done_tracks(run):
    assert (run.report.listed, run.report.enqueued, run.report.skipped_empty, run.report.skipped_not_mp3) == (
        6, 4, 1, 1
    )
    # A second producer run finds the finished track and plans nothing for it
    # (planned only: enqueueing would hand the refused tracks to later workers).
    again = ProduceReport()
    planned = plan_jobs(run.settings, run.config.model_copy(update={"max_mp3_bytes": 5_000_000}), again)
    assert again.skipped_done == 1 and again.skipped_too_large == 0
    assert sorted(j.track_id for j in planned) == ["corrupt", "long61", "lying"]


def test_worker_writes_windows_and_one_row_each(run):
    assert run.exit_code == 0 and run.metrics["done"] == 1
    keys = sorted(k for k, _ in run.storage.list("spec/"))
    assert keys == ["spec/good50__0__0__30.jpg", "spec/good50__1__20__50.jpg"]
    assert run.rows("good50") == [(1, 0, 0, 30, 256, 937, None), (1, 1, 20, 50, 256, 937, None)]


def test_worker_images_name_their_s3_key_track_and_window(run):
    """Each window JPEG's comment (issue 18) names the job's S3 key and track
    and the window it holds; the values are those of the status row."""
    from specfleet.imagemeta import read_metadata

    for stat, win, ini, fin, rows, cols, _reason in run.rows("good50"):
        assert stat == 1
        meta = read_metadata(run.storage.get_bytes(f"spec/good50__{win}__{ini}__{fin}.jpg"))
        assert (meta["source"], meta["track_id"]) == ("audio/good50.mp3", "good50")
        assert (meta["win"], meta["window_start_s"], meta["window_end_s"]) == (str(win), str(ini), str(fin))
        assert (meta["height"], meta["width"]) == (str(rows), str(cols))
        assert meta["render"] == "half-rate-grid" and meta["source_sample_rate_hz"] == "44100"


def test_worker_guard_and_rejects_leave_reasoned_rows(run):
    (stat, win, *_rest, reason), = run.rows("long61")
    assert (stat, win) == (2, -1) and "61." in reason and "min long" in reason
    # The lying header (20 s) passes the header guard; decoding stops at the limit.
    (stat, win, *_rest, reason), = run.rows("lying")
    assert (stat, win) == (2, -1), reason
    assert "holds over 10 min of audio" in reason and "header claims 0.3 min" in reason
    assert not list(run.storage.list("spec/lying__"))
    (corrupt,) = run.rows("corrupt")
    assert corrupt[0] == 0 and "not a decodable audio file" in corrupt[-1]
    (empty,) = run.rows("empty")
    assert empty[0] == 0 and "empty (0 bytes)" in empty[-1]
    (wav,) = run.rows("song")
    assert wav[0] == 0 and "expected an .mp3" in wav[-1]


def test_redelivered_job_same_keys_no_duplicate_rows(run, tmp_path):
    """Worker A takes the job and stalls without a heartbeat; the visibility
    lapses, SQS hands the same message to worker B, which does it all and
    deletes it. Then A wakes up and does it all again with its stale receipt.
    The job ran twice: same keys, no duplicate rows."""
    settings, storage = run.settings, run.storage
    storage.put_file("audio/trk.mp3", make_mp3(tmp_path / "t.mp3", 41, 48000, 1))
    queue = job_queue(settings, "spectrogram")
    queue.send_json([{"track_id": "trk"}])

    release = threading.Event()
    stall = Stall(release)
    first = Worker(settings, get_spec("spectrogram"), concurrency=1, middleware=[Metrics(), stall], idle_exit_s=1,
                   config=run.config)
    first_exit: list[int] = []
    thread = threading.Thread(target=lambda: first_exit.append(first.run()), daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(stall.messages) == 1, timeout=60, what="worker A took the job")
        wait_for(lambda: queue.depth()["visible"] == 1, timeout=30, what="the visibility of A's job lapsed")
        seen = Seen()
        second = _worker(settings, run.config, seen)
        assert second.run() == 0
    finally:
        release.set()
        thread.join(60)
    assert first_exit == [0]

    assert [m.message_id for m in seen.messages] == [stall.messages[0].message_id]
    assert (stall.messages[0].receive_count, seen.messages[0].receive_count) == (1, 2)
    assert first.metrics()["done"] == 1 and second.metrics()["done"] == 1  # both ran the whole job
    assert sorted(k for k, _ in storage.list("spec/trk__")) == ["spec/trk__0__0__30.jpg", "spec/trk__1__11__41.jpg"]
    assert sum(queue.depth().values()) == 0
    # Both workers' status messages must have been written (queue drained) before counting.
    wait_for(lambda: sum(status_queue(settings, "spectrogram").depth().values()) == 0, what="status queue drained")
    assert run.rows("trk") == [(1, 0, 0, 30, 256, 937, None), (1, 1, 11, 41, 256, 938, None)]
