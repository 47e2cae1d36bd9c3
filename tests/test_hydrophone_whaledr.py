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
from specfleet.pipelines.hydrophone import naming, whalemanifest
from specfleet.pipelines.hydrophone.producer import produce_day
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.pipelines.hydrophone.whalemanifest import publish_if_day_done
from specfleet.pipelines.hydrophone.worker import handle
from specfleet.runtime import JobContext, StatusSender, Worker
from specfleet.standins import mseed_synth as synth
from specfleet.standins.ooi_archive import OOIServer, day_dir, file_name_for
from specfleet.storage import Storage

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
    return HydroSettings(output="whaledr", allowed_hosts=[archive[0].netloc], base_url=archive[0].base_url)


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
    # No ACL on any object (the deployed bucket enforces owner-only ACLs; its
    # policy makes the prefix readable: tests/test_fleet_iam.py).
    for key in (MANIFEST, clip_keys[0]):
        grants = storage.s3.get_object_acl(Bucket=storage.bucket, Key=key)["Grants"]
        assert [g["Permission"] for g in grants] == ["FULL_CONTROL"] and "URI" not in grants[0]["Grantee"]
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


def job_manifest_part(settings, config: HydroSettings, day: dt.date, minute: int, day_files: int) -> tuple[list[str], str]:
    """What a whaledr job does for the manifest once its clips are up, as
    ``worker.handle`` does it: its done-marker (listing its 60 JPEG and 60 WAV
    keys), then ``publish_if_day_done``. Returns its entries and the note."""
    start = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
    names = [f"OO_HYVM1__YDH_{start + dt.timedelta(seconds=5 * i):%Y_%m_%dT%H_%M_%S}" for i in range(60)]
    keys = [naming.whaledr_key("megaptera", "LJ01D", f"{day:%Y_%m_%d}", n, ext) for n in names for ext in ("wav", "jpg")]
    file = f"OO-HYVM1--YDH-{start:%Y-%m-%dT%H:%M:%S}.000000.mseed"
    storage = Storage(settings)
    storage.put_bytes(naming.manifest_key(config.manifest_prefix, HYDRO, day, file),
                      json.dumps({"file_url": file, "clips": names, "keys": keys, "notes": []}).encode())
    note = publish_if_day_done(storage, config, HYDRO, day, day_files)
    return [naming.manifest_entry("megaptera", k) for k in keys if k.endswith(".jpg")], note


def seed_month(settings, config: HydroSettings, first: dt.date, days: int) -> set[str]:
    """``days`` published day parts of 288 files x 60 clips each (17,280 entries a day)."""
    storage = Storage(settings)
    seeded: set[str] = set()
    for d in range(days):
        day = first + dt.timedelta(days=d)
        t0 = dt.datetime.combine(day, dt.time())
        entries = [f"LJ01D___{day:%Y_%m_%d}___OO_HYVM1__YDH_{t0 + dt.timedelta(seconds=5 * i):%Y_%m_%dT%H_%M_%S}"
                   for i in range(288 * 60)]
        storage.put_bytes(whalemanifest.day_part_key(config, HYDRO, day), json.dumps(entries).encode())
        seeded.update(entries)
    return seeded


@pytest.mark.slow
def test_a_month_manifest_with_12_concurrent_writers_no_job_fails_and_the_list_is_the_union(settings):
    """The manifest at a month's size (518,400 entries, 30 MB) and 12 writers
    finishing 48 jobs of two new days: no job fails on contention, each day is
    published by its last job, and the published list is exactly the union
    of every job's entries and the month before."""
    config = HydroSettings(output="whaledr")
    storage = Storage(settings)
    seeded = seed_month(settings, config, dt.date(2017, 9, 1), 30)
    before = whalemanifest.publish_manifest(storage, config)
    assert before.entries == len(seeded) == 518_400 and before.bytes > 29_000_000

    days = [dt.date(2017, 10, 9), dt.date(2017, 10, 10)]
    jobs = [(day, 5 * i) for i in range(24) for day in days]  # the two days' jobs interleaved
    start = threading.Barrier(12)
    results: list[tuple[list[str], str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        try:
            start.wait(timeout=60)
            for day, minute in jobs[w::12]:
                got = job_manifest_part(settings, config, day, minute, day_files=24)
                with lock:
                    results.append(got)
        except BaseException as err:  # noqa: BLE001  (reported below)
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors and not any(t.is_alive() for t in threads), errors
    assert len(results) == 48 and [note for _, note in results] == [""] * 48  # none failed, none left unpublished
    published = json.loads(storage.get_bytes(MANIFEST))
    expect = seeded | {e for entries, _ in results for e in entries}
    assert published == sorted(expect) and len(published) == 518_400 + 48 * 60
    # Each new day's part holds exactly its 24 jobs' entries.
    for day in days:
        part = json.loads(storage.get_bytes(whalemanifest.day_part_key(config, HYDRO, day)))
        assert part == sorted(e for entries, _ in results for e in entries if f"___{day:%Y_%m_%d}___" in e)
        assert len(part) == 24 * 60


def test_publish_manifest_cli_rebuilds_a_day_that_never_finished(settings, monkeypatch):
    """A day whose listing held a file that failed never publishes by itself:
    `hydrophone publish-manifest --day` does, and the list is the day's entries."""
    from typer.testing import CliRunner

    from specfleet.cli.main import app

    config = HydroSettings(output="whaledr")
    day = dt.date(2017, 10, 9)
    entries = [job_manifest_part(settings, config, day, minute, day_files=3)[0] for minute in (0, 5)]
    assert not Storage(settings).exists(MANIFEST)  # 2 of 3 files done: not published
    for k, v in {"SPECFLEET_ENDPOINT_URL": settings.endpoint_url, "SPECFLEET_QUEUE_PREFIX": settings.queue_prefix,
                 "SPECFLEET_BUCKET": settings.bucket, "SPECFLEET_HYDRO_OUTPUT": "whaledr"}.items():
        monkeypatch.setenv(k, v)
    res = CliRunner().invoke(app, ["hydrophone", "publish-manifest", "--day", "2017-10-09", "--hydrophone", HYDRO, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["entries"] == 120 and out["days"] == {"2017-10-09": 120} and out["day_parts"] == 1
    assert manifest(Storage(settings)) == sorted(entries[0] + entries[1])
    # Again: the list already holds that part, so nothing is rebuilt unless forced.
    again = CliRunner().invoke(app, ["hydrophone", "publish-manifest", "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["up_to_date"] is True
    forced = CliRunner().invoke(app, ["hydrophone", "publish-manifest", "--force", "--json"])
    assert forced.exit_code == 0 and json.loads(forced.stdout)["entries"] == 120
    bad = CliRunner().invoke(app, ["hydrophone", "publish-manifest", "--day", "2017-13-01"])
    assert bad.exit_code == 2 and "not YYYY-MM-DD" in bad.output


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
