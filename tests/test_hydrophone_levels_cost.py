"""Cost per audio-hour (issue 27): a day reduced by `hydrophone levels-day`
records what it cost and what the fleet plan priced its files at before the
run; `status --json`, the HTML report and the dashboard's /api/state show
both, per day and in total."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from obspy import UTCDateTime

from helpers import wait_for
from specfleet.dashboard import Dashboard
from specfleet.fleet.plan import plan
from specfleet.fleet.settings import FleetSettings
from specfleet.pipelines.hydrophone import levels_day as D
from specfleet.pipelines.hydrophone.days import usd
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.report import ReportSettings, write_report
from specfleet.standins import mseed_synth as synth
from specfleet.storage import Storage
from test_hydrophone_levels_day import Stretch, _cli
from test_monitoring_report import chrome  # noqa: F401 - the headless Chromium fixture

SR = 8_000.0
DAY = dt.date(2017, 10, 9)
HYDRO = "CE02SHBP/LJ01D/11-HYDBBA106"


def _results() -> list[D.MinuteResult]:
    """Two files of 2 and 3 minutes: 5 minutes of audio in the day."""
    out = []
    for minute, seconds, seed in ((0, 120.0, 1), (10, 180.0, 2)):
        x = synth.realistic_signal(seconds, sample_rate=SR, seed=seed)
        start = UTCDateTime(2017, 10, 9) + 60.0 * minute
        out.append(D.file_minutes([Stretch(start, x, SR)], f"OO-HYVM1--YDH-{start.isoformat()}.000000.mseed"))
    return out


def _plan_estimate(settings, jobs: int) -> float:
    """What `fleet plan` prices ``jobs`` hydrophone files at on the fleet's
    instance type, in the items a day's record prices (spot compute, S3 and
    SQS requests), per job. The plan rounds to cents, so it is asked for
    many jobs and divided back."""
    fleet = FleetSettings.over(settings)
    many = 1_000_000
    p = plan(fleet, "hydrophone", many, instance_type=fleet.fleet_instance_type)
    return jobs * (p.compute_spot_usd + p.s3_put_usd + p.s3_get_usd + p.sqs_usd) / many


@pytest.mark.slow
def test_a_reduced_days_cost_and_estimate_show_in_status_report_and_dashboard(
    settings, tmp_path, monkeypatch, chrome  # noqa: F811 - the fixture
):
    storage = Storage(settings)
    prefix = HydroSettings().levels_prefix
    results = _results()
    for r in results:
        storage.put_bytes(D.minutes_key(prefix, HYDRO, DAY, r.source), D.encode_minutes(r), "application/octet-stream")
    res = _cli(monkeypatch, settings, "hydrophone", "levels-day", "--site", "oregon_shelf_base_seafloor",
               "--day", str(DAY), "--json")
    assert res.exit_code == 0, res.output
    reduced = json.loads(res.stdout)
    assert reduced["provenance_recorded"] is True and reduced["cost_usd"] > 0
    assert reduced["audio_hours"] == pytest.approx(5 / 60, abs=1e-4)
    expected = _plan_estimate(settings, 2)
    assert expected > 0 and reduced["estimate_usd"] == pytest.approx(expected, rel=1e-3)
    assert "fleet plan: 2 hydrophone jobs" in reduced["estimate_basis"]

    status = _cli(monkeypatch, settings, "status", "--json", "--no-record")
    assert status.exit_code == 0, status.output
    costs = json.loads(status.stdout)["hydrophone_days"]["levels_cost"]
    [day] = costs["days"]
    assert (day["day"], day["hydrophone"], day["files"]) == (str(DAY), HYDRO, 2)
    assert day["audio_hours"] == pytest.approx(reduced["audio_hours"], abs=1e-4)
    assert day["cpu_s"] == pytest.approx(reduced["compute_cpu_s"] + reduced["reduce_cpu_s"], abs=2e-3)
    assert day["cost_usd"] == pytest.approx(reduced["cost_usd"])
    assert day["cost_per_audio_hour_usd"] == pytest.approx(day["cost_usd"] / day["audio_hours"])
    assert day["estimate_usd"] == pytest.approx(expected, rel=1e-3)
    assert day["estimate_per_audio_hour_usd"] == pytest.approx(day["estimate_usd"] / day["audio_hours"])
    assert day["cost_basis"] == reduced["cost_basis"] and day["estimate_basis"] == reduced["estimate_basis"]
    total = costs["total"]
    assert (total["day"], total["files"], total["cost_usd"], total["estimate_usd"]) == (
        None, 2, pytest.approx(day["cost_usd"]), pytest.approx(day["estimate_usd"]))
    monkeypatch.setenv("COLUMNS", "160")
    shown = _cli(monkeypatch, settings, "status", "--no-record")
    assert shown.exit_code == 0 and "cost per audio-hour" in shown.output
    assert usd(day["cost_per_audio_hour_usd"]) in shown.output and usd(day["estimate_usd"]) in shown.output

    page = write_report(settings, tmp_path / "report.html", ReportSettings(gallery_max=0)).read_text()
    section = page.split('id="levels-cost"', 1)[1].split("<h2", 1)[0]
    assert str(DAY) in section and "total" in section and reduced["estimate_basis"] in section
    for figure in ("cost_usd", "estimate_usd", "cost_per_audio_hour_usd", "estimate_per_audio_hour_usd"):
        assert usd(day[figure]) in section, figure

    board = Dashboard(settings, refresh_s=1.0).start()
    try:
        with httpx.Client(base_url=board.url) as http:
            state = http.get("/api/state").json()
        assert state["hydrophone_levels_cost"] == costs
        # the page draws the day and the total line from that JSON
        chrome.get(board.url)
        rows = wait_for(lambda: chrome.execute_script(
            "const r = [...document.querySelectorAll('#levels-cost tbody tr')];"
            "return r.length ? r.map(x => [...x.cells].map(c => c.textContent)) : null;"), timeout=30,
            what="the levels cost rows")
    finally:
        board.close()
    assert [r[0] for r in rows] == [str(DAY), "total"]
    for r in rows:
        assert r[5:] == [usd(day[f]) for f in ("cost_usd", "estimate_usd", "cost_per_audio_hour_usd",
                                               "estimate_per_audio_hour_usd")]
    assert [e for e in chrome.get_log("browser") if e["level"] == "SEVERE"] == []


def test_the_report_says_when_no_level_products_are_recorded():
    from specfleet.report import levels_cost_section

    html = "".join(levels_cost_section({"days": [], "total": None}))
    assert "no level products recorded yet" in html and 'id="levels-cost"' in html
