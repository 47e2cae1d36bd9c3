"""A day of sound levels: per-file minutes -> the day's NetCDF and pictures,
with a gap that must stay a gap."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import h5py
import numpy as np
import pytest
from obspy import UTCDateTime
from PIL import Image

from specfleet.pipelines.hydrophone import levels as L
from specfleet.pipelines.hydrophone import levels_day as D
from specfleet.pipelines.hydrophone import levels_plot as P
from specfleet.standins import mseed_synth as synth

SR = 8_000.0  # a low rate keeps the day quick; the code is the same at 64 kHz
DAY = dt.date(2017, 10, 9)
T0 = UTCDateTime(2017, 10, 9)
HYDRO = "CE02SHBP/LJ01D/11-HYDBBA106"


@dataclass
class Stretch:
    start: UTCDateTime
    samples: np.ndarray
    sample_rate: float


def _file(minute: int, seconds: float, seed: int, gap: tuple[float, float] | None = None) -> list[Stretch]:
    """A file starting at ``minute`` past midnight; ``gap`` (from, length) in
    seconds splits it into two stretches with the samples between lost."""
    x = synth.realistic_signal(seconds, sample_rate=SR, seed=seed)
    start = T0 + 60.0 * minute
    if gap is None:
        return [Stretch(start, x, SR)]
    a, b = int(gap[0] * SR), int((gap[0] + gap[1]) * SR)
    return [Stretch(start, x[:a], SR), Stretch(start + gap[0] + gap[1], x[b:], SR)]


@pytest.fixture(scope="module")
def day_results() -> list[D.MinuteResult]:
    """00:00 and 00:10 files present, the 00:05 file lost; the 00:10 file
    loses 30 s at 00:12:10-00:12:40 (minute 12 missing, 13 and 14 whole)."""
    return [
        D.file_minutes(_file(0, 300.0, seed=1), "OO-HYVM1--YDH-2017-10-09T00:00:00.000000.mseed"),
        D.file_minutes(_file(10, 300.0, seed=3, gap=(130.0, 30.0)), "OO-HYVM1--YDH-2017-10-09T00:10:00.000000.mseed"),
    ]


def _cal(tmp_path) -> L.Calibration:
    path = tmp_path / "CE02SHBP-LJ01D-11-HYDBBA106_12.csv"
    path.write_text("frequency,sensitivity\n0,-170.65\n10000,-170.65\n20100,-172.65\n")
    return L.load_calibration(path)


def test_a_gap_is_marked_in_the_netcdf(day_results, tmp_path):
    assert day_results[1].effort_s.tolist() == [60, 60, 0, 60, 60]  # the file's own minutes 10-14
    raw = D.decode_minutes(D.encode_minutes(day_results[1]))  # what S3 holds survives the trip
    assert np.array_equal(raw.bands, day_results[1].bands, equal_nan=True) and raw.params == L.LevelParams()
    cal = _cal(tmp_path)
    day = D.assemble_day(day_results, DAY, calibration=cal)
    assert len(day.times) == 1440 and day.units == L.UNITS_CALIBRATED
    have = [0, 1, 2, 3, 4, 10, 11, 13, 14]
    assert np.flatnonzero(~day.missing).tolist() == have
    out = D.write_day_netcdf(day, tmp_path / "day.nc", hydrophone=HYDRO, attrs={"institution": "test"})
    # Read back with plain h5py (not our reader): what any NetCDF-4 tool sees.
    with h5py.File(out, "r") as f:
        missing = f["missing"][...]
        psd, effort, times = f["psd"][...], f["effort"][...], f["time"][...]
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        assert f["psd"].attrs["units"] in (b"dB", "dB")
        assert f["sensitivity"].shape == f["frequency"].shape
    assert np.flatnonzero(missing == 0).tolist() == have
    assert np.isnan(psd[missing == 1]).all() and np.isfinite(psd[have][:, 1:]).all()
    assert (effort[missing == 1] == 0).all() and (effort[have] == 60).all()
    assert int(times[0]) == int(T0.timestamp) and int(times[12] - times[0]) == 720
    assert attrs["calibration_file"] == "CE02SHBP-LJ01D-11-HYDBBA106_12.csv" and attrs["calibration_deployment"] == "12"
    assert attrs["parameters_hash"] == L.LevelParams().digest()
    assert json.loads(attrs["source_files"]) == [r.source for r in day_results]
    assert attrs["minutes_missing"] == 1440 - 9 and attrs["coverage"] == pytest.approx(9 / 1440, abs=1e-6)
    assert attrs["psd_units"] == L.UNITS_CALIBRATED and attrs["institution"] == "test"
    assert attrs["time_coverage_start"] == "2017-10-09 00:00:00Z" and attrs["Conventions"].startswith("COARDS")
    assert attrs["code_version"].startswith("specfleet ")
    back = D.read_day_netcdf(out)
    assert np.array_equal(back.missing, day.missing) and back.calibrated


def test_the_gap_is_blank_in_the_long_term_spectrogram(day_results, tmp_path):
    day = D.assemble_day(day_results, DAY)
    assert day.units == L.UNITS_UNCALIBRATED
    part = D.window(day, T0.timestamp, T0.timestamp + 15 * 60)
    shot = P.render_summary(part, tmp_path / "ltsa.png")
    rgb = np.asarray(Image.open(shot.path).convert("RGB")).astype(int)
    left, top, right, bottom = shot.ltsa_box
    t0, t1 = shot.t_span

    def column(minute: float) -> np.ndarray:
        x = left + int((T0.timestamp + minute * 60 - t0) / (t1 - t0) * (right - left))
        return rgb[top + 3 : bottom - 3, x]

    white = np.array([255, 255, 255])
    for m in (5.5, 7.5, 9.5, 12.5):  # the lost file and the lost minute: background only
        assert (column(m) == white).all(), m
    for m in (0.5, 4.5, 10.5, 13.5):  # minutes with audio: coloured all the way up
        assert not (column(m) == white).all(axis=1).any(), m
    assert shot.minutes_missing == 6 and shot.minutes_with_audio == 9


def test_percentiles_ignore_missing_minutes_and_order():
    psd = np.array([[1.0, 10.0], [2.0, 20.0], [np.nan, np.nan], [3.0, 30.0]])
    pct = P.percentile_spectra(psd, (0.0, 50.0, 100.0))
    assert pct.tolist() == [[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]
    assert np.isnan(P.percentile_spectra(np.full((3, 2), np.nan))).all()
    img, _ = P.ltsa_grid(psd, np.array([100.0, 1000.0]), columns=4, rows=2)
    assert np.isnan(img[:, 2]).all() and np.isfinite(img[:, [0, 1, 3]]).all()


def test_files_computed_differently_do_not_mix(day_results):
    odd = D.file_minutes(_file(20, 60.0, seed=4), "odd.mseed", params=L.LevelParams(overlap=0.25))
    with pytest.raises(ValueError, match="computed differently"):
        D.assemble_day([*day_results, odd], DAY)
    with pytest.raises(ValueError, match="not a minute-levels file"):
        D.decode_minutes(b"garbage")


def _cli(monkeypatch, settings, *args: str):
    from typer.testing import CliRunner

    from specfleet.cli.main import app

    for k, v in {"SPECFLEET_ENDPOINT_URL": settings.endpoint_url, "SPECFLEET_QUEUE_PREFIX": settings.queue_prefix,
                 "SPECFLEET_BUCKET": settings.bucket, "SPECFLEET_DB_DSN": settings.db_dsn.get_secret_value()}.items():
        monkeypatch.setenv(k, v)
    return CliRunner().invoke(app, list(args))


@pytest.mark.slow
def test_the_daily_reduce_and_the_range_picture_from_s3(settings, day_results, tmp_path, monkeypatch):
    """Per-file minutes in S3 -> `hydrophone levels-day` writes the day's
    NetCDF beside them (a damaged file skipped and named) -> `hydrophone
    ltsa` draws two days, the second without levels."""
    from specfleet.pipelines.hydrophone.settings import HydroSettings
    from specfleet.storage import Storage

    storage = Storage(settings)
    prefix = HydroSettings().levels_prefix
    for r in day_results:
        storage.put_bytes(D.minutes_key(prefix, HYDRO, DAY, r.source), D.encode_minutes(r), "application/octet-stream")
    storage.put_bytes(D.minutes_key(prefix, HYDRO, DAY, "broken.mseed"), b"half an upload", "application/octet-stream")
    cal = tmp_path / "CE02SHBP-LJ01D-11-HYDBBA106_12.csv"
    cal.write_text("frequency,sensitivity\n0,-170.65\n20100,-172.65\n")
    res = _cli(monkeypatch, settings, "hydrophone", "levels-day", "--site", "oregon_shelf_base_seafloor",
               "--day", "2017-10-09", "--calibration", str(cal), "--out", str(tmp_path / "copy.nc"), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["key"] == D.day_key(prefix, HYDRO, DAY) and storage.exists(report["key"])
    assert report["files"] == 2 and report["minutes_with_audio"] == 9 and report["minutes_missing"] == 1431
    assert report["calibration"] == cal.name and report["units"] == L.UNITS_CALIBRATED
    assert len(report["skipped"]) == 1 and "broken.mseed.npz" in report["skipped"][0]
    # What the day cost: the files' CPU (as measured when they were made), the requests, priced.
    assert report["compute_cpu_s"] > 0
    assert report["compute_cpu_s"] == pytest.approx(sum(r.cpu_s for r in day_results), abs=1e-3)
    assert report["audio_hours"] == pytest.approx(9 / 60, abs=1e-4)
    assert (report["s3_put_requests"], report["s3_get_requests"]) == (3, 4)  # 2 results + NetCDF; 3 GETs + 1 LIST
    assert report["cost_usd"] > 0 and "spot" in report["cost_basis"]
    assert report["cost_per_audio_hour_usd"] == pytest.approx(report["cost_usd"] / report["audio_hours"])
    assert D.read_day_netcdf(tmp_path / "copy.nc").missing.sum() == 1431
    # A calibration given in the wrong reference is a clear error before anything is written.
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("frequency,sensitivity\n0,-41.7\n20100,-43.7\n")
    bad = _cli(monkeypatch, settings, "hydrophone", "levels-day", "--site", "oregon_shelf_base_seafloor",
               "--day", "2017-10-09", "--calibration", str(wrong))
    assert bad.exit_code == 2 and "reference='count'" in " ".join(bad.output.split())
    shot = tmp_path / "range.png"
    res = _cli(monkeypatch, settings, "hydrophone", "ltsa", "--site", "oregon_shelf_base_seafloor",
               "--start", "2017-10-09", "--end", "2017-10-10", "--out", str(shot), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["days"] == 2 and report["days_with_levels"] == 1 and report["days_without"] == ["2017-10-10"]
    assert report["minutes_with_audio"] == 9 and report["minutes_missing"] == 2 * 1440 - 9
    assert Image.open(shot).size[0] == 1400
    none = _cli(monkeypatch, settings, "hydrophone", "ltsa", "--site", "oregon_shelf_base_seafloor",
                "--day", "2017-10-11", "--out", str(tmp_path / "none.png"))
    assert none.exit_code == 1 and "levels-day" in none.output


@pytest.mark.slow
def test_the_levels_profile_stores_each_files_minutes_and_the_reduce_marks_its_gap(settings, tmp_path):
    """Worker with SPECFLEET_HYDRO_OUTPUT=levels on the OOI stand-in: a file
    with a 70 s data gap -> its minutes in S3 (the gap's minute missing), a
    status row counting whole minutes, a redelivery-safe key the producer
    treats as done; the day's reduce marks the gap."""
    from helpers import count, query, wait_for
    from specfleet.pipelines import get_spec
    from specfleet.pipelines.hydrophone.producer import produce_day
    from specfleet.pipelines.hydrophone.settings import HydroSettings
    from specfleet.runtime import Worker
    from specfleet.standins.ooi_archive import OOIServer, day_dir, file_name_for
    from specfleet.storage import Storage

    t0 = dt.datetime(2017, 10, 9, 1, 0)
    with OOIServer(tmp_path) as server:
        folder = day_dir(tmp_path, HYDRO, DAY)
        name = file_name_for(t0)
        # 0-130 s, then 200-300 s: minute 2 (120-180 s) and minute 3 (180-240 s) lose audio.
        (folder / name).write_bytes(synth.gap_mseed_bytes(300.0, t0, gap_from_s=130.0, gap_s=70.0, sample_rate=SR))
        config = HydroSettings(allowed_hosts=[server.netloc], base_url=server.base_url, output="levels",
                               expected_sample_rate=SR)
        produced = produce_day(settings, DAY, base_url=server.base_url, hydrophone=HYDRO, config=config)
        assert len(produced.enqueued) == 1
        worker = Worker(settings, get_spec("hydrophone"), idle_exit_s=1, config=config)
        assert worker.run() == 0 and worker.metrics()["done"] == 1
        wait_for(lambda: count(settings, "status_hydro") == 1, what="the status row")
        [(stat, clips, reason)] = query(settings, "SELECT stat, clips, reason FROM status_hydro")
        assert (stat, clips) == (1, 3) and "levels: 3 of 5 minute(s)" in reason
        storage = Storage(settings)
        key = D.minutes_key(config.levels_prefix, HYDRO, DAY, name)
        stored = D.decode_minutes(storage.get_bytes(key))
        assert stored.effort_s.tolist() == [60, 60, 0, 0, 60] and stored.source.endswith(name)
        assert stored.cpu_s > 0  # measured by the worker, decoding included
        again = produce_day(settings, DAY, base_url=server.base_url, hydrophone=HYDRO, config=config)
        assert again.enqueued == [] and len(again.already_done) == 1
    result = D.reduce_day(storage, prefix=config.levels_prefix, hydrophone=HYDRO, day=DAY)
    have = np.flatnonzero(~result.day.missing).tolist()
    assert have == [60, 61, 64] and result.files == 1 and not result.skipped


@pytest.mark.slow
def test_reprocess_picks_products_by_calibration_and_code_version_and_its_dry_run_matches(
    settings, day_results, tmp_path, monkeypatch
):
    """Two days reduced with two calibrations -> provenance rows; reprocess
    by calibration and by code version picks exactly the right days; the dry
    run's job count and cost are those of what is then enqueued."""
    from dataclasses import replace

    from helpers import query
    from specfleet.db import connect
    from specfleet.pipelines import job_queue
    from specfleet.pipelines.hydrophone.settings import HydroSettings
    from specfleet.storage import Storage

    storage = Storage(settings)
    prefix = HydroSettings().levels_prefix
    base = "https://rawdata.oceanobservatories.org/files/CE02SHBP/LJ01D/11-HYDBBA106"
    days = {DAY: 0, dt.date(2017, 10, 10): 86_400}
    for day, shift in days.items():
        for r in day_results:
            url = f"{base}/{day:%Y/%m/%d}/{r.source.replace('2017-10-09', f'{day}')}"
            moved = replace(r, source=url, times=r.times + shift)
            storage.put_bytes(D.minutes_key(prefix, HYDRO, day, url.rsplit('/', 1)[-1]), D.encode_minutes(moved),
                              "application/octet-stream")
    cals = {}
    for day, name in ((DAY, "CE02SHBP-LJ01D-11-HYDBBA106_11.csv"), (dt.date(2017, 10, 10), "CE02SHBP-LJ01D-11-HYDBBA106_12.csv")):
        cals[day] = tmp_path / name
        cals[day].write_text("frequency,sensitivity\n0,-170.65\n20100,-172.65\n")
        res = _cli(monkeypatch, settings, "hydrophone", "levels-day", "--site", "oregon_shelf_base_seafloor",
                   "--day", str(day), "--calibration", str(cals[day]), "--json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["provenance_recorded"] is True
    rows = query(settings, "SELECT day, calibration, calibration_deployment, code_version, params_hash, "
                           "cardinality(source_files), minutes_with_audio FROM hydro_levels_day ORDER BY day")
    assert [(r[0], r[1], r[2], r[5], r[6]) for r in rows] == [
        (DAY, cals[DAY].name, "11", 2, 9), (dt.date(2017, 10, 10), cals[dt.date(2017, 10, 10)].name, "12", 2, 9)]
    assert all(r[3].startswith("specfleet ") and r[4] == L.LevelParams().digest() for r in rows)
    costs = query(settings, "SELECT audio_hours, cpu_s, cost_usd, cost_per_audio_hour_usd FROM v_hydro_levels_cost")
    assert len(costs) == 2 and all(c[0] > 0 and c[1] > 0 and c[2] > 0 and c[3] == pytest.approx(c[2] / c[0])
                                   for c in costs)

    where = f"calibration = '{cals[DAY].name}'"
    dry = _cli(monkeypatch, settings, "reprocess", "--pipeline", "hydrophone", "--where", where, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert planned["jobs"] == 2 and planned["enqueued"] == 0 and [d["day"] for d in planned["days"]] == ["2017-10-09"]
    queue = job_queue(settings, "hydrophone")
    assert queue.depth()["visible"] == 0
    real = _cli(monkeypatch, settings, "reprocess", "--pipeline", "hydrophone", "--where", where, "--output", "json")
    assert real.exit_code == 0, real.output
    done = json.loads(real.stdout)
    assert done["enqueued"] == planned["jobs"] == 2 and done["plan"] == planned["plan"]
    assert planned["plan"]["jobs"] == 2 and planned["plan"]["total_spot_usd"] >= 0
    msgs = queue.receive(10, wait_s=1)
    assert sorted(json.loads(m.body)["file_url"].rsplit("/", 1)[-1] for m in msgs) == sorted(
        r.source for r in day_results)

    # Older than a code version: make one day's product look older, then only it is picked.
    conn = connect(settings)
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE hydro_levels_day SET code_version = 'specfleet 0.0.9' WHERE day = '2017-10-10'")
    conn.close()
    old = _cli(monkeypatch, settings, "reprocess", "--pipeline", "hydrophone", "--where",
               "code_version < 'specfleet 0.1.0' and day >= '2017-10-01'", "--dry-run", "--json")
    assert old.exit_code == 0, old.output
    assert [d["day"] for d in json.loads(old.stdout)["days"]] == ["2017-10-10"]
    bad = _cli(monkeypatch, settings, "reprocess", "--pipeline", "hydrophone", "--where", "1=1; DROP TABLE x", "--dry-run")
    assert bad.exit_code == 2 and "FIELD OP 'VALUE'" in bad.output
    other = _cli(monkeypatch, settings, "reprocess", "--pipeline", "music", "--where", "day = '2017-10-09'")
    assert other.exit_code == 2


def test_where_expressions_compare_versions_as_versions():
    from specfleet.pipelines.hydrophone import provenance as Pv

    terms = Pv.parse_where("code_version < 'specfleet 0.10.0' AND calibration != ''")
    assert [(t.field, t.op, t.value) for t in terms] == [("code_version", "<", "specfleet 0.10.0"), ("calibration", "!=", "")]
    row = {"code_version": "specfleet 0.9.3", "calibration": "X.nc", "day": DAY}
    assert Pv.matches(row, terms)  # 0.9.3 < 0.10.0 as versions (not as strings)
    assert not Pv.matches({**row, "code_version": "specfleet 0.10.0"}, terms)
    assert Pv.matches(row, Pv.parse_where("day >= '2017-10-09' and day < '2017-10-10'"))
    for bad in ("calibration = X", "colour = 'red'", "day = 'yesterday'", "calibration = 'a' or day = 'b'"):
        with pytest.raises(Pv.WhereError):
            Pv.parse_where(bad)
