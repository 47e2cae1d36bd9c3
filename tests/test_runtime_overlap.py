"""I/O overlapped with compute (issue 19): the compute gate and the stage
record (runtime/stages.py), the shared upload threads (``Storage.put_many``),
and a real spectrogram worker behind a slow network whose recorded stages
show downloads and uploads running while other tracks compute, with never
more jobs in flight than its slots nor more computing than its compute slots.

Everything is asserted on what the worker recorded (stage spans, the order of
events), not on wall time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from helpers import wait_for
from specfleet.local.stack import Namespace, StackState
from specfleet.pipelines import get_spec, job_queue
from specfleet.runtime import Transient, Worker
from specfleet.runtime.stages import JobStages, Stages, StageSpan, most_at_once
from specfleet.settings import Settings
from specfleet.standins.faults import FaultProxy
from specfleet.storage import Put, Storage
from test_spectrogram_dsp import make_mp3


def overlaps(a: StageSpan, b: StageSpan) -> bool:
    return a.start < b.end and b.start < a.end


# --- the gate, without a stack --------------------------------------------------------
def test_the_gate_lets_compute_slots_jobs_compute_and_the_next_one_waits_for_a_free_slot() -> None:
    stages = Stages(2)
    cancelled = threading.Event()
    a, b, c = (JobStages(stages, name, cancelled) for name in "abc")
    a.enter("fetch")
    a.enter("compute")
    b.enter("compute")  # two slots: both compute at once
    entered = threading.Event()

    def third() -> None:
        c.enter("compute")
        entered.set()

    thread = threading.Thread(target=third)
    thread.start()
    wait_for(lambda: stages.waiting == 1, timeout=10, what="the third job to wait for a compute slot")
    assert not entered.is_set()  # both slots taken: it waits
    a.enter("upload")  # a's slot is free: c computes
    thread.join(10)
    assert entered.is_set()
    for job in (a, b, c):
        job.close()
    spans = stages.spans()
    by = {(s.job, s.stage): s for s in spans}
    assert by[("c", "compute")].start >= by[("a", "compute")].end
    assert overlaps(by[("a", "compute")], by[("b", "compute")])
    assert by[("a", "fetch")].end <= by[("a", "compute")].start <= by[("a", "compute")].end <= by[("a", "upload")].start
    assert most_at_once(spans, "compute") == 2
    assert stages.waiting == 0


def test_a_job_waiting_for_a_slot_gives_up_when_the_worker_stops() -> None:
    stages = Stages(1)
    holder = JobStages(stages, "holder", threading.Event())
    holder.enter("compute")
    cancelled = threading.Event()
    waiter = JobStages(stages, "waiter", cancelled)
    raised: list[BaseException] = []

    def wait_for_slot() -> None:
        try:
            waiter.enter("compute")
        except Transient as err:
            raised.append(err)

    thread = threading.Thread(target=wait_for_slot)
    thread.start()
    wait_for(lambda: stages.waiting == 1, timeout=10, what="the job to wait for the slot")
    cancelled.set()
    thread.join(10)
    assert raised and "shutting down" in raised[0].reason
    holder.close()
    # the slot it never got is still there for the next job
    again = JobStages(stages, "next", threading.Event())
    again.enter("compute")
    again.close()
    assert [s.job for s in stages.spans() if s.stage == "compute"] == ["holder", "next"]


def test_stages_are_a_no_op_without_a_record_and_closing_twice_frees_one_slot() -> None:
    JobStages(None, "j", threading.Event()).enter("compute")  # nothing to wait for or record
    stages = Stages(1)
    job = JobStages(stages, "j", threading.Event())
    job.enter("compute")
    job.enter("compute")  # the same stage again: no second slot
    job.close()
    job.close()
    other = JobStages(stages, "k", threading.Event())
    other.enter("compute")  # would block forever had the slot leaked
    other.close()
    assert [(s.job, s.stage) for s in stages.spans()] == [("j", "compute"), ("k", "compute")]
    with pytest.raises(ValueError, match="at least 1"):
        Stages(0)


def test_most_at_once_counts_stages_and_jobs() -> None:
    spans = [
        StageSpan("a", "fetch", 0, 1), StageSpan("a", "compute", 1, 3), StageSpan("a", "upload", 3, 4),
        StageSpan("b", "fetch", 0.5, 2), StageSpan("b", "compute", 3, 5),  # b computes right after a
        StageSpan("c", "fetch", 3.5, 6),
    ]
    assert most_at_once(spans, "compute") == 1  # touching ends do not overlap
    assert most_at_once(spans, "fetch") == 2
    assert most_at_once(spans) == 3  # jobs a (0-4), b (0.5-5), c (3.5-6): all three from 3.5 to 4


def test_job_slots_of_a_pipeline_that_overlaps_io() -> None:
    s = Settings(endpoint_url="http://127.0.0.1:9", compute_slots=3, io_slots=4)
    spectro, echo = get_spec("spectrogram"), get_spec("echo")
    assert spectro.overlaps_io and get_spec("hydrophone").overlaps_io and not echo.overlaps_io
    w = Worker(s, spectro)
    assert (w.concurrency, w.stages.compute_slots) == (7, 3)
    assert Worker(s.model_copy(update={"io_slots": 0}), spectro).concurrency == 3 + 2 * 3  # default: two per slot
    assert Worker(s.model_copy(update={"concurrency": 5}), spectro).concurrency == 5
    assert Worker(s, spectro, concurrency=2).concurrency == 2
    assert Worker(s, echo).concurrency == echo.default_concurrency  # others keep their own


# --- with the stack ----------------------------------------------------------------------
@pytest.fixture
def slow_s3(stack: StackState) -> Iterator[FaultProxy]:
    """moto behind a proxy that makes every answer wait 100 ms."""
    port = int(urlsplit(stack.endpoint_url).port or 0)
    with FaultProxy(("127.0.0.1", port)) as proxy:
        proxy.slow(latency_s=0.1)
        yield proxy


class RecordingStorage(Storage):
    """Records when each object's write starts and ends (and on which thread)."""

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.writes: list[StageSpan] = []
        self._lock = threading.Lock()

    def put_bytes(self, key: str, data: bytes, *args: object, **kwargs: object) -> str:  # type: ignore[override]
        started = time.monotonic()
        try:
            return super().put_bytes(key, data, *args, **kwargs)  # type: ignore[arg-type]
        finally:
            with self._lock:
                self.writes.append(StageSpan(key, threading.current_thread().name, started, time.monotonic()))


def test_put_many_writes_concurrently_on_bounded_shared_threads(settings: Settings, slow_s3: FaultProxy,
                                                                  tmp_path: Path) -> None:
    s = settings.model_copy(update={"endpoint_url": slow_s3.url, "upload_threads": 3})
    storage = RecordingStorage(s)
    on_disk = tmp_path / "clip.wav"
    on_disk.write_bytes(b"RIFF" + b"\0" * 5000)
    objects = [Put(f"overlap/{i}.bin", bytes([i]) * 1000) for i in range(7)] + [Put("overlap/clip.wav", on_disk)]
    before = slow_s3.snapshot()
    etags = storage.put_many(objects)
    assert len(etags) == 8 and all(etags)
    assert slow_s3.snapshot().minus(before).requests["PUT"] == 8
    assert Storage(settings).get_bytes("overlap/3.bin") == bytes([3]) * 1000
    assert Storage(settings).get_bytes("overlap/clip.wav") == on_disk.read_bytes()
    # not one after another, and never more at once than the 3 upload threads
    assert 2 <= most_at_once(storage.writes) <= 3
    assert all(w.stage.startswith("s3-upload") for w in storage.writes)


def test_put_many_raises_once_every_write_settled(settings: Settings, tmp_path: Path) -> None:
    storage = RecordingStorage(settings)
    objects = [Put("settle/a.bin", b"a"), Put("settle/missing.wav", tmp_path / "missing.wav"), Put("settle/b.bin", b"b")]
    with pytest.raises(FileNotFoundError):
        storage.put_many(objects)
    assert sorted(w.job for w in storage.writes) == ["settle/a.bin", "settle/b.bin"]  # the others still written
    assert Storage(settings).exists("settle/b.bin")


TRACKS = 6


def test_a_spectrogram_worker_downloads_and_uploads_while_other_tracks_compute(
    namespace: Namespace, slow_s3: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything the worker says to S3 and SQS waits 100 ms; one compute slot,
    two I/O slots: while one track computes, others download or upload."""
    base = namespace.settings
    storage = Storage(base)
    mp3 = make_mp3(tmp_path / "t.mp3", 35.0)  # two windows: 0-30 s, 5-35 s
    tracks = [f"overlap{i}" for i in range(TRACKS)]
    for t in tracks:
        storage.put_file(f"audio/{t}.mp3", mp3)
    job_queue(base, "spectrogram").send_json({"track_id": t} for t in tracks)
    monkeypatch.setenv("SPECFLEET_SPECTRO_PROCESSES", "1")  # the pipeline's own settings (ctx.config)
    s = base.model_copy(update={"endpoint_url": slow_s3.url, "compute_slots": 1, "io_slots": 2, "wait_time_s": 1})
    worker = Worker(s, get_spec("spectrogram"), idle_exit_s=2)
    assert worker.concurrency == 3
    assert worker.run() == 0
    assert worker.metrics().get("done") == TRACKS
    assert len([k for k, _ in storage.list("spec/overlap")]) == 2 * TRACKS

    spans = worker.stages.spans()
    by_job: dict[str, dict[str, StageSpan]] = {}
    for span in spans:
        by_job.setdefault(span.job, {})[span.stage] = span
    assert len(by_job) == TRACKS
    for stages in by_job.values():  # each job: fetch, then compute, then upload
        assert stages["fetch"].end <= stages["compute"].start
        assert stages["compute"].end <= stages["upload"].start
    computes = [s for s in spans if s.stage == "compute"]
    # bounded: one computes at a time, at most three jobs hold an input or results
    assert most_at_once(spans, "compute") == 1
    assert 2 <= most_at_once(spans) <= worker.concurrency
    # overlapped: some track uploaded while another computed, and some downloaded while another computed
    uploads = [s for s in spans if s.stage == "upload"]
    fetches = [s for s in spans if s.stage == "fetch"]
    assert any(overlaps(u, c) for u in uploads for c in computes if u.job != c.job)
    assert any(overlaps(f, c) for f in fetches for c in computes if f.job != c.job)
