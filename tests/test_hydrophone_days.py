"""Hydrophone date ranges, dry runs and the days view on the real local stack:
the OOI stand-in serves a few days, the producer lists and enqueues them,
the real worker runs the jobs, the status writer stores the rows, and
`hydrophone days` says which day is complete, partial or failed."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from helpers import count, query, wait_for
from specfleet.fleet.plan import plan
from specfleet.fleet.settings import FleetSettings
from specfleet.pipelines import get_spec, job_queue
from specfleet.pipelines.hydrophone.days import days_table, hydro_days, status_section
from specfleet.pipelines.hydrophone.listing import DayNotInArchive
from specfleet.pipelines.hydrophone.producer import list_range, produce_day, produce_range
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.pipelines.hydrophone.timerange import TimeRange
from specfleet.runtime import Worker
from specfleet.standins import mseed_synth as synth
from specfleet.standins.ooi_archive import day_dir, file_name_for
from specfleet.storage import Storage

HYDRO = "CE02SHBP/LJ01D/11-HYDBBA106"
D9, D10, D11, D12, D13 = (dt.date(2017, 10, d) for d in (9, 10, 11, 12, 13))


def write_files(root, day: dt.date, minutes: list[int], *, truncated: int | None = None) -> dict[str, int]:
    """Short (12 s) clean files at ``minutes`` past midnight, and optionally a
    file cut mid-record; returns {file name: bytes}."""
    folder = day_dir(root, HYDRO, day)
    sizes = {}
    for m in minutes:
        start = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=m)
        body = synth.mseed_bytes(synth.synthetic_signal(12.0, seed=m), start)
        if m == truncated:
            body = body[: len(body) // 2 + 1000]
        (folder / file_name_for(start)).write_bytes(body)
        sizes[file_name_for(start)] = len(body)
    return sizes


@pytest.fixture
def config(archive) -> HydroSettings:
    return HydroSettings(allowed_hosts=[archive[0].netloc], base_url=archive[0].base_url, hydrophone=HYDRO)


def env_of(settings, config) -> dict[str, str]:
    return {
        "SPECFLEET_ENDPOINT_URL": settings.endpoint_url,
        "SPECFLEET_QUEUE_PREFIX": settings.queue_prefix,
        "SPECFLEET_BUCKET": settings.bucket,
        "SPECFLEET_DB_DSN": settings.db_dsn.get_secret_value(),
        "SPECFLEET_HYDRO_ALLOWED_HOSTS": json.dumps(config.allowed_hosts),
        "SPECFLEET_HYDRO_BASE_URL": config.base_url,
    }


def cli(monkeypatch, settings, config, *args: str):
    from specfleet.cli.main import app

    for k, v in env_of(settings, config).items():
        monkeypatch.setenv(k, v)
    return CliRunner().invoke(app, list(args))


def test_a_range_lists_every_day_first_and_takes_files_by_their_times(settings, config, archive):
    _, root = archive
    write_files(root, D9, [0, 5, 10])
    write_files(root, D11, [0, 5, 10])
    window = TimeRange.parse(start="2017-10-09", end="2017-10-11T00:07")
    listed = list_range(window, config=config)
    assert [(d.day, d.listed, len(d.files), d.outside_range, bool(d.missing)) for d in listed] == [
        (D9, 3, 3, 0, False), (D10, 0, 0, 0, True), (D11, 3, 2, 1, False)]
    assert "HTTP 404" in listed[1].missing
    assert count_jobs(settings) == 0  # listing enqueues nothing

    result = produce_range(settings, window, config=config, listings=listed)
    assert result.total("enqueued") == 5 and not result.notes
    bodies = receive_all(settings)
    assert sorted(b["file_url"].rsplit("/", 1)[-1] for b in bodies) == sorted(
        [file_name_for(dt.datetime(2017, 10, 9, 0, m)) for m in (0, 5, 10)]
        + [file_name_for(dt.datetime(2017, 10, 11, 0, m)) for m in (0, 5)])


def test_a_range_where_no_day_exists_is_an_error_naming_both_spellings_tried(settings, config, archive):
    with pytest.raises(DayNotInArchive, match=r"none of the 2 days.*11-HYDBBA106/2017/10/09/ \(HTTP 404\) and "
                       r"\S*/CE02SHBP/LJ01D/HYDBBA106/2017/10/09/ \(HTTP 404\)"):
        produce_range(settings, TimeRange.parse(start="2017-10-09", end="2017-10-10"), config=config)
    with pytest.raises(DayNotInArchive, match="HTTP 404"):
        produce_day(settings, D9, config=config)


def count_jobs(settings) -> int:
    return int(job_queue(settings, "hydrophone").depth()["visible"])


def receive_all(settings) -> list[dict]:
    q = job_queue(settings, "hydrophone")
    out: dict[str, dict] = {}
    for _ in range(10):  # bounded: the queue holds a handful
        batch = q.receive(10, wait_s=1, visibility_s=60)
        if not batch:
            break
        out.update({m.message_id: json.loads(m.body) for m in batch})
    return list(out.values())


def test_dry_run_prints_files_and_bytes_per_day_and_the_fleet_plan_and_enqueues_nothing(
    settings, config, archive, monkeypatch
):
    _, root = archive
    sizes = write_files(root, D9, [0, 5, 10]) | write_files(root, D11, [0, 5])
    # One file already done: its manifest exists.
    done = file_name_for(dt.datetime(2017, 10, 9, 0, 5))
    Storage(settings).put_bytes(f"{config.manifest_prefix}/{HYDRO}/2017_10_09/{done}.json", b"{}")
    args = ("produce", "hydrophone", "--site", "oregon_shelf_base_seafloor", "--start", "2017-10-09", "--end",
            "2017-10-11", "--dry-run")
    out = cli(monkeypatch, settings, config, *args, "--output", "json")
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)  # one document, no table
    assert report["dry_run"] and report["hydrophone"] == HYDRO and report["sizes_from"] == "listing"
    rows = {r["day"]: r for r in report["days"]}
    assert (rows["2017-10-09"]["listed"], rows["2017-10-09"]["already_done"], rows["2017-10-09"]["to_do"]) == (3, 1, 2)
    assert rows["2017-10-10"]["missing"] and rows["2017-10-11"]["to_do"] == 2
    # The stand-in's listing shows whole KiB (like Apache's "612K"): within 1 KiB a file.
    real = sum(sizes.values())
    assert report["bytes_approximate"] and real - 1024 * len(sizes) <= report["bytes"] <= real
    day9 = sum(v for k, v in sizes.items() if "2017-10-09" in k)
    assert day9 - 3 * 1024 <= rows["2017-10-09"]["bytes"] <= day9
    assert report["files"] == 4
    assert report["plan"] == plan(FleetSettings.over(settings), "hydrophone", 4).model_dump(mode="json")
    # The default: the same data as tables, and no JSON.
    table = cli(monkeypatch, settings, config, *args)
    assert table.exit_code == 0, table.output
    shown = " ".join(table.stdout.split())
    assert "fleet plan: 4 hydrophone files" in shown and "total, spot ($)" in shown and "1 day(s) not in the archive: 2017-10-10" in shown
    assert "2017-10-11" in shown and not [line for line in table.stdout.splitlines() if line.lstrip().startswith("{")]
    assert count_jobs(settings) == 0


def test_cli_range_site_names_and_clear_errors(settings, config, archive, monkeypatch):
    _, root = archive
    write_files(root, D9, [0, 5])
    ok = cli(monkeypatch, settings, config, "produce", "hydrophone", "--hydrophone", "LJ01D",
             "--start", "2017-10-09T00:03", "--end", "2017-10-09T00:04", "--json")
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert report["enqueued"] == 1 and report["days"][0]["outside_range"] == 1
    typo = cli(monkeypatch, settings, config, "produce", "hydrophone", "--site", "axial_base_shalow", "--day", "2017-10-09")
    assert typo.exit_code == 2 and "did you mean 'axial_base_shallow'?" in " ".join(typo.output.split())
    assert "Traceback" not in typo.output
    as_path = cli(monkeypatch, settings, config, "produce", "hydrophone", "--hydrophone", "oregon_shelf_bas", "--day", "2017-10-09")
    assert as_path.exit_code == 2 and "did you mean 'oregon_shelf_base_seafloor'?" in " ".join(as_path.output.split())
    both = cli(monkeypatch, settings, config, "produce", "hydrophone", "--day", "2017-10-09", "--start", "2017-10-09")
    assert both.exit_code == 2 and "either --day or --start" in both.output
    backwards = cli(monkeypatch, settings, config, "produce", "hydrophone", "--start", "2017-10-09", "--end", "2017-10-08")
    assert backwards.exit_code == 2 and "before it starts" in backwards.output


def test_days_view_says_complete_partial_failed_and_no_data(settings, config, archive, monkeypatch):
    _, root = archive
    write_files(root, D9, [0, 5, 10], truncated=10)  # two good files and one cut short
    write_files(root, D11, [0, 5, 10])  # only two of them produced (times)
    write_files(root, D12, [0])
    write_files(root, D13, [0])  # enqueued by hand: no listing on record
    produce_range(settings, TimeRange.parse(start="2017-10-09", end="2017-10-11T00:07"), config=config)
    produce_day(settings, D12, config=config)
    by_hand = f"{config.base_url}{HYDRO}/2017/10/13/{file_name_for(dt.datetime(2017, 10, 13))}"
    get_spec("hydrophone").jobs(settings).send_json([{"file_url": by_hand, "hydrophone": HYDRO}])

    worker = Worker(settings, get_spec("hydrophone"), idle_exit_s=1, config=config)
    assert worker.run() == 0
    wait_for(lambda: count(settings, "status_hydro") == 7, what="seven status rows")
    assert sorted(r[0] for r in query(settings, "SELECT stat FROM status_hydro")) == [0, 1, 1, 1, 1, 1, 1]

    days = {d.day: d for d in hydro_days(settings)}
    assert set(days) == {D9, D10, D11, D12, D13}
    assert (days[D9].state, days[D9].done, days[D9].failed, days[D9].files_listed) == ("failed", 2, 1, 3)
    assert days[D10].state == "no data" and days[D10].files_listed == 0
    assert (days[D11].state, days[D11].done, days[D11].pending, days[D11].progress()) == (
        "partial", 2, 1, "2 of 3 (archive has 3 of 288)")
    assert days[D12].state == "complete" and days[D12].clips > 0
    assert (days[D13].state, days[D13].hydrophone, days[D13].files_listed) == ("partial", HYDRO, None)
    assert days[D13].progress() == "1 of 288 (no listing on record)"
    assert days[D12].clips == int(query(settings, "SELECT clips FROM status_hydro WHERE file_url LIKE %s",
                                        ("%/2017/10/12/%",))[0][0])

    section = status_section(settings, limit=2)
    assert section["days"] == {"complete": 1, "partial": 2, "failed": 1, "pending": 0, "no data": 1}
    assert [r["day"] for r in section["recent"]] == ["2017-10-13", "2017-10-12"]
    assert days_table(list(days.values())).row_count == 5

    shown = cli(monkeypatch, settings, config, "hydrophone", "days", "--json", "--since", "2017-10-11")
    assert shown.exit_code == 0, shown.output
    assert [r["day"] for r in json.loads(shown.stdout)["days"]] == ["2017-10-13", "2017-10-12", "2017-10-11"]
    monkeypatch.setenv("COLUMNS", "120")
    table = cli(monkeypatch, settings, config, "hydrophone", "days", "--site", "LJ01D")
    assert table.exit_code == 0 and "failed: 1 file" in table.output and "2 of 3" in table.output
    assert "oregon_shelf_base_seafloor" in table.output  # the site's name, not its path
    # and `specfleet status` carries the same days: a section in --json, a table below the main one
    status = cli(monkeypatch, settings, config, "status", "--json", "--no-record")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["hydrophone_days"]["days"] == section["days"]
    shown = cli(monkeypatch, settings, config, "status", "--no-record")
    assert shown.exit_code == 0 and "hydrophone days (newest 14)" in shown.output and "2 of 3" in shown.output


def test_a_producer_that_cannot_reach_the_database_still_enqueues_and_says_so(settings, config, archive):
    _, root = archive
    write_files(root, D9, [0])
    unreachable = settings.model_copy(update={"db_dsn": "postgresql://nobody@127.0.0.1:9/none", "db_connect_timeout_s": 2})
    result = produce_range(unreachable, TimeRange.of_day(D9), config=config)
    assert result.total("enqueued") == 1
    assert len(result.notes) == 1 and "could not reach the database" in result.notes[0]
    assert count(settings, "hydro_day") == 0


def test_days_command_with_the_database_unreachable_is_one_line(settings, config, monkeypatch):
    monkeypatch.setenv("SPECFLEET_DB_CONNECT_TIMEOUT_S", "1")
    for k, v in env_of(settings, config).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("SPECFLEET_DB_DSN", "postgresql://nobody@127.0.0.1:9/none")
    from specfleet.cli.main import app

    out = CliRunner().invoke(app, ["hydrophone", "days"], env={"COLUMNS": "300"})
    assert out.exit_code == 1 and "the database is unreachable" in out.output and "db tunnel" in out.output
    assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 1
