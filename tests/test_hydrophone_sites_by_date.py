"""Sites by date (issue 26, item 5): a site and a time range resolve to the
archive folder in use at each date, and a day OOI has moved to the other
spelling is still found.

The folder names are ooipy's: ``CE02SHBP/LJ01D/11-HYDBBA106`` as published
until the archive's layout change on 2023-06-07 (ooipy issue #159) and
``CE02SHBP/LJ01D/HYDBBA106`` as ooipy asks for every date since commits
4bc04e7/21ef493 (March 2025), after issue #201 found a 2016 day of LJ03A
only under ``RS03AXBS/LJ03A/HYDBBA302``. Real local servers: the OOI
archive stand-in serves each day under the folder a test puts it in."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from specfleet.pipelines import job_queue
from specfleet.pipelines.hydrophone.listing import DayNotInArchive
from specfleet.pipelines.hydrophone.producer import list_range, produce_range
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.pipelines.hydrophone.sites import find_site
from specfleet.pipelines.hydrophone.timerange import TimeRange
from specfleet.standins import mseed_synth as synth
from specfleet.standins.ooi_archive import OOIServer, day_dir, file_name_for

SHELF_NUMBERED, SHELF_PLAIN = "CE02SHBP/LJ01D/11-HYDBBA106", "CE02SHBP/LJ01D/HYDBBA106"
AXIAL_NUMBERED, AXIAL_PLAIN = "RS03AXBS/LJ03A/09-HYDBBA302", "RS03AXBS/LJ03A/HYDBBA302"


def put_files(root, folder: str, day: dt.date, minutes=(0, 5)) -> list[str]:
    """Short clean miniSEED files (obspy) in ``folder`` for ``day``; their names."""
    names = []
    for m in minutes:
        start = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=m)
        (day_dir(root, folder, day) / file_name_for(start)).write_bytes(
            synth.mseed_bytes(synth.synthetic_signal(2.0, seed=m), start))
        names.append(file_name_for(start))
    return names


@pytest.fixture
def config(archive) -> HydroSettings:
    return HydroSettings(allowed_hosts=[archive[0].netloc], base_url=archive[0].base_url, hydrophone=SHELF_NUMBERED)


def listing_url(server: OOIServer, folder: str, day: dt.date) -> str:
    return f"{server.base_url}{folder}/{day:%Y/%m/%d}/"


def listing_requests(server: OOIServer) -> list[str]:
    return [p for p in server.requests if not p.endswith(".mseed")]


DAYS = [dt.date(2023, 6, d) for d in (5, 6, 7, 8)]


@pytest.mark.slow  # ~2.5 s: eight days' listings and files
def test_a_site_and_a_range_across_the_layout_change_ask_each_day_in_its_dates_folder(archive, config):
    server, root = archive
    folders = {day: SHELF_NUMBERED if day < dt.date(2023, 6, 7) else SHELF_PLAIN for day in DAYS}
    for day, folder in folders.items():
        put_files(root, folder, day)
    site = find_site("oregon_shelf_base_seafloor")
    window = TimeRange.parse(start="2023-06-05", end="2023-06-08")

    # By the site's key and by either spelling: a path that names a site resolves by date like it.
    for hydrophone in (site.path, SHELF_PLAIN):
        server.requests.clear()
        listed = list_range(window, hydrophone=hydrophone, config=config)
        assert [(d.day, d.url, d.tried, d.listed) for d in listed] == [
            (day, listing_url(server, folders[day], day), [listing_url(server, folders[day], day)], 2) for day in DAYS]
        # One listing per day, each in its date's folder: no request for the other spelling.
        assert listing_requests(server) == [f"/files/{folders[day]}/{day:%Y/%m/%d}/" for day in DAYS]


def test_a_path_of_no_site_is_asked_as_it_is(archive, config):
    server, root = archive
    put_files(root, "XX01/NODE/HYD", DAYS[-1])
    listed = list_range(TimeRange.of_day(DAYS[-1]), hydrophone="XX01/NODE/HYD", config=config)
    assert listed[0].tried == [listing_url(server, "XX01/NODE/HYD", DAYS[-1])] and listed[0].listed == 2


def test_a_day_held_only_under_the_other_spelling_is_found_through_the_fallback(archive, config):
    server, root = archive
    # ooipy #201: 2016-06-05 of LJ03A answered nothing under the numbered folder, and was in the plain one.
    old = dt.date(2016, 6, 5)
    names = put_files(root, AXIAL_PLAIN, old)
    listed = list_range(TimeRange.of_day(old), hydrophone=find_site("axial_base_seafloor").path, config=config)
    assert listed[0].tried == [listing_url(server, AXIAL_NUMBERED, old), listing_url(server, AXIAL_PLAIN, old)]
    assert listed[0].url == listing_url(server, AXIAL_PLAIN, old) and not listed[0].missing
    assert [f.rsplit("/", 1)[-1] for f in listed[0].files] == names

    # And the other way round: a recent day that a mirror still keeps under the numbered folder.
    recent = dt.date(2025, 3, 1)
    put_files(root, SHELF_NUMBERED, recent)
    got = list_range(TimeRange.of_day(recent), hydrophone=SHELF_NUMBERED, config=config)[0]
    assert got.tried == [listing_url(server, SHELF_PLAIN, recent), listing_url(server, SHELF_NUMBERED, recent)]
    assert got.url == listing_url(server, SHELF_NUMBERED, recent) and got.listed == 2


def test_jobs_of_a_range_across_the_change_keep_one_output_key(settings, archive, config):
    server, root = archive
    for day in DAYS[1:3]:
        put_files(root, SHELF_NUMBERED if day < dt.date(2023, 6, 7) else SHELF_PLAIN, day, minutes=(0,))
    result = produce_range(settings, TimeRange.parse(start="2023-06-06", end="2023-06-07"), hydrophone=SHELF_NUMBERED,
                           config=config, record=False)
    assert result.total("enqueued") == 2
    q = job_queue(settings, "hydrophone")
    bodies = [json.loads(m.body) for m in q.receive(10, wait_s=1, visibility_s=60)]
    assert sorted((b["hydrophone"], b["file_url"].split("/files/")[1].rsplit("/", 4)[0]) for b in bodies) == [
        (SHELF_NUMBERED, SHELF_NUMBERED), (SHELF_NUMBERED, SHELF_PLAIN)]


def test_a_day_in_neither_spelling_says_so_in_one_line_naming_both_urls(archive, config):
    server, root = archive
    day = dt.date(2025, 3, 1)
    with pytest.raises(DayNotInArchive) as err:
        list_range(TimeRange.of_day(day), hydrophone=SHELF_NUMBERED, config=config)
    text = str(err.value)
    assert "\n" not in text and "2025-03-01 is not in the archive" in text
    assert f"{listing_url(server, SHELF_PLAIN, day)} (HTTP 404)" in text
    assert f"{listing_url(server, SHELF_NUMBERED, day)} (HTTP 404)" in text
    assert "try --hydrophone" not in text  # both were asked: nothing left to suggest

    # An empty folder is "not there" too, and says which answer was which.
    day_dir(root, SHELF_PLAIN, day)
    with pytest.raises(DayNotInArchive) as err:
        list_range(TimeRange.of_day(day), hydrophone=SHELF_NUMBERED, config=config)
    assert f"{listing_url(server, SHELF_PLAIN, day)} (no .mseed files)" in str(err.value)


def test_the_cli_names_both_urls_for_a_missing_day_and_the_sites_table_by_date(settings, archive, config):
    from specfleet.cli.main import app

    server, _ = archive
    env = {"SPECFLEET_ENDPOINT_URL": settings.endpoint_url, "SPECFLEET_QUEUE_PREFIX": settings.queue_prefix,
           "SPECFLEET_BUCKET": settings.bucket, "SPECFLEET_DB_DSN": settings.db_dsn.get_secret_value(),
           "SPECFLEET_HYDRO_ALLOWED_HOSTS": json.dumps(config.allowed_hosts),
           "SPECFLEET_HYDRO_BASE_URL": config.base_url, "COLUMNS": "100"}
    out = CliRunner().invoke(app, ["produce", "hydrophone", "--site", "oregon_shelf_base_seafloor",
                                   "--day", "2025-03-01", "--dry-run"], env=env)
    assert out.exit_code == 1
    lines = [line for line in out.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    day = dt.date(2025, 3, 1)
    assert listing_url(server, SHELF_PLAIN, day) in lines[0] and listing_url(server, SHELF_NUMBERED, day) in lines[0]

    sites = CliRunner().invoke(app, ["hydrophone", "sites", "--json"], env=env)
    assert sites.exit_code == 0, sites.output
    shelf = next(s for s in json.loads(sites.stdout) if s["node"] == "LJ01D")
    assert shelf["path"] == SHELF_NUMBERED
    assert shelf["archive_paths"] == [{"from": None, "path": SHELF_NUMBERED}, {"from": "2023-06-07", "path": SHELF_PLAIN}]


@pytest.mark.slow  # writes the stand-in's awkward files (obspy) for two days
def test_local_ooi_archive_puts_each_day_in_its_dates_folder_and_the_producer_finds_it_first(tmp_path, config):
    from specfleet.cli.hydrophone import fill_local_archive

    root = tmp_path / "local"
    days = [dt.date(2023, 6, 6), dt.date(2023, 6, 7)]
    folders = fill_local_archive(root, SHELF_NUMBERED, days, files=1, seconds=2.0)
    assert folders == [root / SHELF_NUMBERED / "2023/06/06", root / SHELF_PLAIN / "2023/06/07"]
    assert all(any(f.iterdir()) for f in folders)
    with OOIServer(root) as server:
        local = config.model_copy(update={"base_url": server.base_url, "allowed_hosts": [server.netloc]})
        listed = list_range(TimeRange.parse(start="2023-06-06", end="2023-06-07"), hydrophone=SHELF_NUMBERED,
                            config=local)
    assert [d.tried for d in listed] == [[listing_url(server, SHELF_NUMBERED, days[0])],
                                         [listing_url(server, SHELF_PLAIN, days[1])]]
    assert all(d.listed >= 1 for d in listed)


def test_a_range_of_moved_days_costs_one_404_not_one_per_day(archive, config):
    server, root = archive
    days = [dt.date(2016, 6, d) for d in (5, 6, 7)]
    for day in days:
        put_files(root, AXIAL_PLAIN, day, minutes=(0,))
    listed = list_range(TimeRange.parse(start="2016-06-05", end="2016-06-07"), hydrophone=AXIAL_NUMBERED,
                        config=config)
    assert [d.url for d in listed] == [listing_url(server, AXIAL_PLAIN, day) for day in days]
    assert listing_requests(server) == [f"/files/{AXIAL_NUMBERED}/2016/06/05/"] + [
        f"/files/{AXIAL_PLAIN}/2016/06/{d:02d}/" for d in (5, 6, 7)]
