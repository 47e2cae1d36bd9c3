"""The hydrophone worker end to end: local OOI stand-in -> producer -> SQS
-> worker (process pool) -> S3 objects + status rows in Postgres."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import threading

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from helpers import count, query, wait_for
from specfleet.pipelines import get_spec, job_queue, parse_body
from specfleet.pipelines.hydrophone.producer import produce_day
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.pipelines.hydrophone.worker import handle
from specfleet.runtime import JobContext, StatusSender, Worker
from specfleet.standins import mseed_synth as synth
from specfleet.standins.ooi_archive import OOIServer, day_dir, file_name_for
from specfleet.storage import Storage

DAY = dt.date(2017, 10, 9)
T0 = dt.datetime(2017, 10, 9)
HYDRO = "CE02SHBP/LJ01D/11-HYDBBA106"
NAME_RE = re.compile(r"^OO_HYVM1__YDH_2017_10_09T\d\d_\d\d_\d\d$")


@pytest.fixture(scope="module")
def five_minute_file(tmp_path_factory) -> bytes:
    """One realistic 5-minute 64 kHz Steim2 file, generated once."""
    path = tmp_path_factory.getbasetemp() / "hydro-5min.mseed"
    if not path.exists():
        path.write_bytes(synth.mseed_bytes(synth.synthetic_signal(300.0, seed=0), T0))
    return path.read_bytes()


@pytest.fixture
def archive(tmp_path):
    with OOIServer(tmp_path) as server:
        yield server, day_dir(tmp_path, HYDRO, DAY)


@pytest.fixture
def config(archive) -> HydroSettings:
    """Hydrophone settings with the stand-in archive as an allowed source."""
    return HydroSettings(allowed_hosts=[archive[0].netloc], base_url=archive[0].base_url)


def run_worker(settings, config, **kw) -> Worker:
    worker = Worker(settings, get_spec("hydrophone"), idle_exit_s=1, config=config, **kw)
    assert worker.run() == 0
    return worker


def rows(settings):
    return {
        url.rsplit("/", 1)[-1]: (stat, clips, reason)
        for url, stat, clips, reason in query(settings, "SELECT file_url, stat, clips, reason FROM status_hydro")
    }


def test_clean_file_gives_60_wav_and_png_clips_with_spec_names(settings, config, archive, five_minute_file):
    server, folder = archive
    name = file_name_for(T0)
    (folder / name).write_bytes(five_minute_file)
    produced = produce_day(settings, DAY, base_url=server.base_url, hydrophone=HYDRO, config=config)
    assert len(produced.enqueued) == 1
    worker = run_worker(settings, config)
    assert worker.metrics()["done"] == 1
    wait_for(lambda: count(settings, "status_hydro") == 1, what="one status row")
    assert rows(settings)[name][:2] == (1, 60)

    storage = Storage(settings)
    prefix = f"{config.prefix}/{HYDRO}/2017_10_09/"
    keys = sorted(k for k, _ in storage.list(prefix))
    assert len(keys) == 120
    names = sorted({k[len(prefix):].rsplit(".", 1)[0] for k in keys})
    assert len(names) == 60 and all(NAME_RE.fullmatch(n) for n in names)
    assert keys == sorted(f"{prefix}{n}.{ext}" for n in names for ext in ("wav", "png"))
    # Ping-aligned: clip i starts within the first second of its 5 s slot.
    for i, n in enumerate(names):
        start = dt.datetime.strptime(n[-19:], "%Y_%m_%dT%H_%M_%S")
        assert 5 * i <= (start - T0).total_seconds() <= 5 * i + 1, n

    wav = storage.get_bytes(f"{prefix}{names[7]}.wav")
    info = sf.info(io.BytesIO(wav))
    # The original's clips: stream.slice(t, t + 5 s) includes both ends.
    assert (info.samplerate, info.frames, info.subtype) == (64_000, 320_001, "PCM_32")
    samples, _ = sf.read(io.BytesIO(wav), dtype="int32")
    assert np.abs(samples).max() == 2**31 - 1  # normalised to full scale
    png = Image.open(io.BytesIO(storage.get_bytes(f"{prefix}{names[7]}.png")))
    assert png.size == (512, 512)

    manifest = json.loads(storage.get_bytes(f"{config.manifest_prefix}/{HYDRO}/2017_10_09/{name}.json"))
    assert len(manifest["keys"]) == 120
    # Done files are not produced again.
    again = produce_day(settings, DAY, base_url=server.base_url, hydrophone=HYDRO, config=config)
    assert again.enqueued == [] and len(again.already_done) == 1


def test_bad_inputs_each_get_stat_0_with_a_reason_and_the_worker_goes_on(settings, config, archive):
    server, folder = archive
    config = config.model_copy(update={"max_file_bytes": 4_000_000, "download_attempts": 1})
    files: dict[str, bytes] = {}
    at = iter(T0 + dt.timedelta(minutes=5 * i) for i in range(20))
    ok_start = next(at)
    files["ok"] = synth.mseed_bytes(synth.synthetic_signal(12.0, seed=3), ok_start)
    files["gap"] = synth.gap_mseed_bytes(40.0, next(at), gap_from_s=12.0, gap_s=9.0, label_noise_s=0.04)
    whole = synth.mseed_bytes(synth.synthetic_signal(12.0, seed=5), next(at))
    files["truncated"] = whole[: len(whole) // 2 + 1000]
    files["html"] = b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body>" + b"x" * 400 + b"</body></html>"
    files["empty"] = b""
    files["huge"] = np.random.default_rng(0).bytes(4_000_001)
    files["rate"] = synth.mseed_bytes(synth.synthetic_signal(12.0, sample_rate=48_000.0), next(at), sample_rate=48_000.0)
    files["short"] = synth.mseed_bytes(synth.synthetic_signal(1.5), next(at))
    names = {}
    for kind, data in files.items():
        start = ok_start if kind == "ok" else next(at)
        name = file_name_for(start, station="HYVM1", channel="YDH")
        if kind == "ok":
            name = file_name_for(ok_start)
        names[kind] = name
        (folder / name).write_bytes(data)
    # Hostile listing entries next to the real files never become jobs.
    listing = "".join(f'<a href="{n}">{n}</a>' for n in names.values())
    listing += '<a href="../../../../etc/passwd.mseed">x</a><a href="evil.mseed?x=1">y</a><a href="notes.txt">z</a>'
    (folder / "index.html").write_text(f"<html><body>{listing}</body></html>")

    produced = produce_day(settings, DAY, base_url=server.base_url, hydrophone=HYDRO, config=config)
    assert len(produced.enqueued) == len(files)
    assert {h for h, _ in produced.ignored} == {"../../../../etc/passwd.mseed", "evil.mseed?x=1", "notes.txt"}
    worker = run_worker(settings, config)
    assert worker.metrics().get("done") == 2 and worker.metrics().get("rejected") == len(files) - 2
    wait_for(lambda: count(settings, "status_hydro") == len(files), what="a status row per file")
    got = rows(settings)
    expect = {
        "truncated": "truncated miniSEED",
        "html": "HTML page",
        "empty": "empty file",
        "huge": "over the 4000000-byte limit",
        "rate": "sampling rate is 48000 Hz, expected 64000 Hz",
        "short": "no clips: 1.50 s of data",
    }
    for kind, phrase in expect.items():
        stat, clips, reason = got[names[kind]]
        assert (stat, clips) == (0, 0), kind
        assert phrase in reason, (kind, reason)
    assert got[names["ok"]][:2] == (1, 2)
    stat, clips, reason = got[names["gap"]]
    assert (stat, clips) == (1, 6)
    # 31 s of a 300 s file's recording: 269 s missing, 9 s of it at the real break (+-2x label noise).
    assert re.search(r"missing 269\.000 s of recording, 1 break\(s\) of (8\.9|9\.0)\d\d s", reason), reason
    assert "rejoined into 2 stretches" in reason and "skipped 2 clip(s)" in reason, reason
    storage = Storage(settings)
    assert storage.count(f"{config.prefix}/{HYDRO}/") == 2 * (2 + 6)


def test_redelivered_job_rewrites_the_same_keys_without_duplicate_rows(settings, config, archive):
    server, folder = archive
    name = file_name_for(T0)
    (folder / name).write_bytes(synth.mseed_bytes(synth.synthetic_signal(16.0, seed=8), T0))
    produce_day(settings, DAY, base_url=server.base_url, hydrophone=HYDRO, config=config)
    queue = job_queue(settings, "hydrophone")
    [message] = wait_for(lambda: queue.receive(1, wait_s=1), what="the job")
    # First delivery: the work is done and reported, then the worker "dies"
    # before deleting the job, so SQS hands the same message out again.
    ctx = JobContext(settings, message, settings.instance_id, StatusSender(settings, get_spec("hydrophone")),
                     threading.Event(), config=config)
    handle(parse_body("hydrophone", message.body), ctx)
    ctx.sender.send_many(ctx.take_reports())
    wait_for(lambda: count(settings, "status_hydro") == 1, what="the first status row")
    storage = Storage(settings)
    prefix = f"{config.prefix}/{HYDRO}/"
    first = dict(storage.list(prefix))
    assert len(first) == 6
    queue.change_visibility([message], 0)

    worker = run_worker(settings, config)
    assert worker.metrics()["done"] == 1
    wait_for(lambda: queue.depth()["visible"] == 0, what="the job to be deleted")
    second = dict(storage.list(prefix))
    assert second == first  # same keys, same sizes
    # The redelivered job's status carries the same dedupe key: still one row.
    wait_for(lambda: status_queue_empty(settings), what="status queue drained")
    assert count(settings, "status_hydro") == 1


def status_queue_empty(settings) -> bool:
    from specfleet.pipelines import status_queue

    d = status_queue(settings, "hydrophone").depth()
    return d["visible"] == 0 and d["in_flight"] == 0
