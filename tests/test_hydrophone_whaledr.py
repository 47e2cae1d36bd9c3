"""The whaledr output profile: the original tool's S3 layout and the
whalemanifest.json the whaledr app reads, on the real local stack (moto's
S3 server, SQS, Postgres)."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading

import pytest
from PIL import Image

from helpers import count, wait_for
from specfleet.pipelines import get_spec, job_queue, parse_body
from specfleet.pipelines.hydrophone import naming
from specfleet.pipelines.hydrophone.producer import produce_day
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.pipelines.hydrophone.worker import handle, merge_whale_manifest
from specfleet.runtime import JobContext, StatusSender, Worker
from specfleet.standins import mseed_synth as synth
from specfleet.standins.ooi_archive import OOIServer, day_dir, file_name_for
from specfleet.storage import PreconditionFailed, Storage

DAY = dt.date(2017, 10, 9)
T0 = dt.datetime(2017, 10, 9)
HYDRO = "CE02SHBP/LJ01D/11-HYDBBA106"
MANIFEST = "megaptera/whalemanifest.json"


@pytest.fixture
def archive(tmp_path):
    with OOIServer(tmp_path) as server:
        yield server, day_dir(tmp_path, HYDRO, DAY)


@pytest.fixture
def whaledr(archive) -> HydroSettings:
    return HydroSettings(output="whaledr", public_read=True, allowed_hosts=[archive[0].netloc],
                         base_url=archive[0].base_url)


def original_push_manifest(storage: Storage) -> list[str]:
    """The original's push_manifest(): every .jpg under megaptera/, key below
    'megaptera/', '/' -> '___', .split('.')[0] (listing order = key order)."""
    folder_name = "megaptera"
    return [
        key[len(folder_name) + 1 :].replace("/", "___").split(".")[0]
        for key, _ in storage.list(folder_name)
        if key.endswith(".jpg")
    ]


def manifest(storage: Storage) -> list[str]:
    return json.loads(storage.get_bytes(MANIFEST))


def deliver(settings, config, queue) -> None:
    """Take the job and handle it without deleting it (a worker that dies
    after its work): SQS will hand the same message out again."""
    [message] = wait_for(lambda: queue.receive(1, wait_s=1), what="the job")
    ctx = JobContext(settings, message, settings.instance_id, StatusSender(settings, get_spec("hydrophone")),
                     threading.Event(), config=config)
    handle(parse_body("hydrophone", message.body), ctx)
    ctx.sender.send_many(ctx.take_reports())
    queue.change_visibility([message], 0)


def test_whaledr_profile_writes_the_original_keys_and_a_manifest_of_exactly_the_jpegs(settings, whaledr, archive):
    server, folder = archive
    for minute in (0, 5):
        start = T0 + dt.timedelta(minutes=minute)
        (folder / file_name_for(start)).write_bytes(synth.mseed_bytes(synth.realistic_signal(12.5, seed=minute), start))
    produced = produce_day(settings, DAY, base_url=server.base_url, hydrophone=HYDRO, config=whaledr)
    assert len(produced.enqueued) == 2
    assert all(url.split("/")[5] == "LJ01D" for url in produced.enqueued)  # the stand-in's URLs are OOI-shaped
    worker = Worker(settings, get_spec("hydrophone"), idle_exit_s=1, config=whaledr)
    assert worker.run() == 0 and worker.metrics()["done"] == 2

    storage = Storage(settings)
    keys = sorted(k for k, _ in storage.list("megaptera/"))
    clip_keys = [k for k in keys if k != MANIFEST]
    # megaptera/{6th URL segment}/{day from the file name}/{name}.jpg|.wav; a
    # 12.5 s file gives the original's 3 clips (at seconds 0, 5, 10; the last cut short).
    assert len(clip_keys) == 2 * 3 * 2
    for key in clip_keys:
        prefix, station, day, leaf = key.split("/")
        assert (prefix, station, day) == ("megaptera", "LJ01D", "2017_10_09")
        assert leaf.startswith("OO_HYVM1__YDH_2017_10_09T00_0") and leaf.endswith((".jpg", ".wav"))
    jpg = Image.open(io.BytesIO(storage.get_bytes(next(k for k in clip_keys if k.endswith(".jpg")))))
    assert (jpg.format, jpg.size) == ("JPEG", (512, 512))
    # The manifest is what the original's push_manifest would write after the run.
    listed = manifest(storage)
    assert listed == original_push_manifest(storage) == sorted(listed)
    assert len(listed) == 6 and all(e.startswith("LJ01D___2017_10_09___OO_HYVM1__YDH_") for e in listed)
    assert not storage.exists("hydrophone/" + HYDRO)  # nothing in specfleet's layout
    # public-read, as the original uploaded it (the app fetches it anonymously).
    grants = storage.s3.get_object_acl(Bucket=storage.bucket, Key=MANIFEST)["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("/global/AllUsers") and g["Permission"] == "READ" for g in grants)
    # Done files are skipped by the producer, as in specfleet's layout.
    assert len(produce_day(settings, DAY, base_url=server.base_url, hydrophone=HYDRO, config=whaledr).already_done) == 2


def test_redelivered_job_leaves_the_manifest_unchanged(settings, whaledr, archive):
    server, folder = archive
    (folder / file_name_for(T0)).write_bytes(synth.mseed_bytes(synth.realistic_signal(12.5, seed=3), T0))
    produce_day(settings, DAY, base_url=server.base_url, hydrophone=HYDRO, config=whaledr)
    queue = job_queue(settings, "hydrophone")
    storage = Storage(settings)
    deliver(settings, whaledr, queue)
    first_keys = dict(storage.list("megaptera/"))
    first = storage.get_with_etag(MANIFEST)
    assert first is not None and json.loads(first[0]) == original_push_manifest(storage)
    deliver(settings, whaledr, queue)  # the same message again
    assert dict(storage.list("megaptera/")) == first_keys
    again = storage.get_with_etag(MANIFEST)
    assert again == first  # not even rewritten: same bytes, same ETag
    assert len(json.loads(again[0])) == len(set(json.loads(again[0]))) == 3
    wait_for(lambda: count(settings, "status_hydro") == 1, what="one status row for both deliveries")


def test_concurrent_merges_lose_no_entries(settings, whaledr):
    """Eight workers merging at the same moment into one manifest: every
    entry survives (conditional writes + retry), none is doubled."""
    storage = Storage(settings)
    key = "megaptera/whalemanifest.json"
    storage.put_bytes(key, json.dumps(["LJ01D___2017_10_08___early"]).encode(), "application/json")
    # The store really refuses a stale conditional write (what the merge relies on).
    stale = storage.get_with_etag(key)[1]
    storage.put_bytes(key, json.dumps(["LJ01D___2017_10_08___early"]).encode() + b" ", "application/json", if_match=stale)
    with pytest.raises(PreconditionFailed):
        storage.put_bytes(key, b"[]", "application/json", if_match=stale)
    with pytest.raises(PreconditionFailed):
        storage.put_bytes(key, b"[]", "application/json", if_none_match=True)

    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            entries = [f"LJ01D___2017_10_09___clip_{i}_{j}" for j in range(5)]
            start.wait(timeout=30)
            merge_whale_manifest(Storage(settings), key, entries)
            merge_whale_manifest(Storage(settings), key, entries[:2])  # a redelivery in the middle of it all
        except BaseException as err:  # noqa: BLE001  (reported below)
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    final = json.loads(storage.get_bytes(key))
    expect = {"LJ01D___2017_10_08___early"} | {f"LJ01D___2017_10_09___clip_{i}_{j}" for i in range(8) for j in range(5)}
    assert sorted(final) == final and set(final) == expect and len(final) == len(expect)


def test_whaledr_names_come_from_the_url_as_in_the_original():
    url = "https://rawdata.oceanobservatories.org/files/CE02SHBP/LJ01D/11-HYDBBA106/2017/10/09/OO-HYVM1--YDH-2017-10-09T00:00:00.000000.mseed"
    assert naming.whaledr_hydrophone(url) == url.split("/")[5] == "LJ01D"
    assert naming.whaledr_day(url) == url.split("--")[1][4:14].replace("-", "_") == "2017_10_09"
    key = naming.whaledr_key("megaptera", "LJ01D", "2017_10_09", "OO_HYVM1__YDH_2017_10_09T00_00_00", "jpg")
    assert naming.manifest_entry("megaptera", key) == "LJ01D___2017_10_09___OO_HYVM1__YDH_2017_10_09T00_00_00"
    for bad in ("https://host/x.mseed", "https://host/files/CE02SHBP/../11/2017/10/09/a--YDH-2017-10-09.mseed"):
        with pytest.raises(ValueError, match="6th"):
            naming.whaledr_hydrophone(bad)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        naming.whaledr_day("https://host/files/A/LJ01D/B/OO-HYVM1--YDH-notadate.mseed")
    with pytest.raises(ValueError, match="not below"):
        naming.manifest_entry("megaptera", "elsewhere/LJ01D/x.jpg")
