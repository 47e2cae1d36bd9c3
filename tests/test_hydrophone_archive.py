"""The archive-grade copy (issue 23): FLAC of the true 24-bit counts with
the exact start and provenance in its tags, per-file records, and the
day's manifest written last; ``hydrophone days`` shows its coverage."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import soundfile as sf
from obspy import read

from helpers import count, query, wait_for
from specfleet.pipelines import get_spec
from specfleet.pipelines.hydrophone.archive import (
    archive_stretches,
    day_manifest_key,
    flac_bytes,
    instrument_of,
    read_counts,
    read_coverage,
    record_key,
)
from specfleet.pipelines.hydrophone.days import archive_coverage, days_table, hydro_days
from specfleet.pipelines.hydrophone.producer import produce_day
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.pipelines.hydrophone.source import decode_mseed
from specfleet.runtime import Worker
from specfleet.standins import mseed_synth as synth
from specfleet.standins.ooi_archive import OOIServer, day_dir, file_name_for
from specfleet.storage import Storage

DAY = dt.date(2017, 10, 9)
T0 = dt.datetime(2017, 10, 9)
SR = 64_000.0
HYDRO = "CE02SHBP/LJ01D/11-HYDBBA106"
FULL = [2**23 - 1, -(2**23), -(2**23 - 1), 0, 1, -1, 565, -565]


def test_flac_round_trip_gives_back_the_miniseed_counts_at_both_full_scales(tmp_path):
    """Counts read back (libsndfile int32 >> 8, and float x 2^23, OOI's
    documented reading) equal what obspy reads from the miniSEED."""
    rng = np.random.default_rng(7)
    counts = np.concatenate([np.array(FULL * 50, dtype=np.int32),
                             rng.integers(-(2**23), 2**23, 64_000 * 3, dtype=np.int32)])
    start = T0 + dt.timedelta(microseconds=314_000)  # further off than the tolerance: the label wins
    src = tmp_path / file_name_for(T0)
    src.write_bytes(synth.pieces_mseed_bytes(counts, start, piece_samples=2560, label_noise_s=0.0))
    from_obspy = np.concatenate([tr.data for tr in read(str(src))])
    assert np.array_equal(from_obspy, counts)  # the reference: obspy's own reading of the file

    decoded = decode_mseed(src, expected_rate=SR, file_seconds=len(counts) / SR, nominal_start=T0)
    assert decoded.repaired is not None
    [stretch], _ = archive_stretches(decoded.repaired, hydrophone=HYDRO, source=f"http://x/{src.name}")
    back, rate, tags = read_counts(stretch.flac)
    assert rate == 64_000 and back.dtype == np.int32
    assert np.array_equal(back, from_obspy)
    assert back.max() == 2**23 - 1 and back.min() == -(2**23)
    path = tmp_path / stretch.name
    path.write_bytes(stretch.flac)
    info = sf.info(str(path))
    assert (info.format, info.subtype, info.channels) == ("FLAC", "PCM_24", 1)
    as_float, _ = sf.read(str(path), dtype="float64")
    assert np.array_equal(np.round(as_float * 2**23).astype(np.int64), from_obspy.astype(np.int64))
    # The exact sub-second start (the name rounds it away) and the provenance.
    assert stretch.name == "HYDBBA106_20171009_000000.flac"
    assert tags["date"] == "2017-10-09T00:00:00.314000Z" == stretch.start
    assert f"source=http://x/{src.name}" in tags["comment"] and "pieces=" in tags["comment"]
    assert "counts=int24" in tags["comment"] and tags["software"].startswith("specfleet")


def test_counts_outside_24_bits_or_float_samples_are_refused():
    with pytest.raises(ValueError, match="outside 24-bit"):
        flac_bytes(np.array([2**23], dtype=np.int32), SR)
    with pytest.raises(ValueError, match="not integer"):
        flac_bytes(np.zeros(10, dtype=np.float32), SR)


def test_instrument_is_oois_short_refdes():
    assert instrument_of("CE02SHBP/LJ01D/11-HYDBBA106") == "HYDBBA106"


@pytest.mark.slow
def test_a_day_with_pieces_a_break_and_a_bad_file_gets_its_flacs_and_manifest_last(settings, tmp_path, monkeypatch):
    """Three files of 30 s (file_seconds=30): one complete in 300 mislabelled
    pieces, one with a real 4 s break, one cut mid-record. The FLACs hold
    the counts, the status row and the day's manifest count the missing
    seconds, and the manifest (written last) gives the day's coverage."""
    folder = day_dir(tmp_path, HYDRO, DAY)
    a = synth.synthetic_signal(30.0, seed=1)
    b = synth.synthetic_signal(30.0, seed=2)
    names = [file_name_for(T0 + dt.timedelta(minutes=5 * i)) for i in range(3)]
    (folder / names[0]).write_bytes(synth.pieces_mseed_bytes(a, T0, label_noise_s=0.1, piece_samples=6400, seed=1))
    (folder / names[1]).write_bytes(synth.pieces_mseed_bytes(
        b, T0 + dt.timedelta(minutes=5), label_noise_s=0.02, breaks=((17.0, 4.0),), seed=2))
    good = synth.mseed_bytes(synth.synthetic_signal(12.0), T0 + dt.timedelta(minutes=10))
    (folder / names[2]).write_bytes(good[: len(good) // 2 + 1000])
    with OOIServer(tmp_path) as server:
        config = HydroSettings(allowed_hosts=[server.netloc], base_url=server.base_url, file_seconds=30.0, archive=True)
        produced = produce_day(settings, DAY, base_url=server.base_url, hydrophone=HYDRO, config=config)
        assert len(produced.enqueued) == 3
        worker = Worker(settings, get_spec("hydrophone"), idle_exit_s=1, config=config)
        assert worker.run() == 0
    wait_for(lambda: count(settings, "status_hydro") == 3, what="three status rows")
    reasons = {u.rsplit("/", 1)[-1]: (stat, r) for u, stat, r in query(settings, "SELECT file_url, stat, reason FROM status_hydro")}
    assert reasons[names[0]][0] == 1 and "300 pieces rejoined" in reasons[names[0]][1]
    assert reasons[names[1]][0] == 1 and "missing 4.000 s of recording, 1 break(s)" in reasons[names[1]][1]
    assert reasons[names[2]][0] == 0

    storage = Storage(settings)
    prefix = config.archive_prefix
    mkey = day_manifest_key(prefix, "HYDBBA106", DAY)
    manifest = json.loads(storage.get_bytes(mkey))
    flacs = sorted(k for k, _ in storage.list(f"{prefix}/2017/HYDBBA106/2017_10_09/") if k.endswith(".flac"))
    assert len(flacs) == 3 == manifest["files_written"]  # the complete file, and the two stretches of the other
    assert manifest["source_mseed_files"] == 3
    assert manifest["seconds_written"] == pytest.approx(30.0 + 26.0)
    assert manifest["day_coverage_pct"] == pytest.approx(100 * 56.0 / 86_400, abs=0.01)
    assert manifest["missing_s"] == pytest.approx(4.0)
    assert len(manifest["breaks"]) == 1 and manifest["breaks"][0]["seconds"] == pytest.approx(4.0, abs=0.05)
    assert manifest["pieces"] == 300 + len(read(str(folder / names[1])))
    assert [r["source"].rsplit("/", 1)[-1] for r in manifest["rejected"]] == [names[2]]
    # The complete file's FLAC holds exactly its counts, whatever its labels said.
    back, _, tags = read_counts(storage.get_bytes(f"{prefix}/2017/HYDBBA106/2017_10_09/HYDBBA106_20171009_000000.flac"))
    assert np.array_equal(back, a) and tags["date"] == "2017-10-09T00:00:00.000000Z"
    # The break file's two stretches: each its own samples, each named from its own start.
    kept = np.concatenate([read_counts(storage.get_bytes(k))[0] for k in flacs[1:]])
    assert np.array_equal(kept, np.concatenate([b[: 17 * 64_000], b[21 * 64_000 :]]))
    # Written last: every record and FLAC is older than (or as old as) the manifest.
    heads = {k: storage.s3.head_object(Bucket=storage.bucket, Key=k)["LastModified"] for k in [*flacs, mkey]}
    assert all(heads[k] <= heads[mkey] for k in flacs)
    assert storage.exists(record_key(prefix, "HYDBBA106", DAY, names[2]))

    # `hydrophone days` shows it.
    days = hydro_days(settings, hydrophone=HYDRO)
    cov = archive_coverage(settings, days, prefix)
    assert cov[(HYDRO, DAY)] == read_coverage(storage, prefix, HYDRO, DAY)
    assert cov[(HYDRO, DAY)].missing_s == pytest.approx(4.0)
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(days_table(days, coverage=cov))
    text = console.export_text()
    assert "0.1 % (0.0 h), 1 break, 4.0 s missing" in text, text

    # The report's coverage view draws the manifest: one green bar per file, one red per break.
    from specfleet.report import write_report

    page = write_report(settings, tmp_path / "report.html").read_text()
    assert "Hydrophone day coverage (1 finished day)" in page
    view = page[page.index("Hydrophone day coverage"):page.index("Recent hydrophone spectrograms")]
    assert view.count('fill="#2a9d4b"') == 2 * 3  # whole day and zoom, three FLACs
    assert view.count('fill="#d62728"') == 2 * 1
    assert f'{manifest["day_coverage_pct"]:.2f} %' in view and names[2] in view  # the rejected file, named

    # ... and so does the command, from the same manifest.
    from typer.testing import CliRunner

    from specfleet.cli.main import app

    for k, v in {"SPECFLEET_ENDPOINT_URL": settings.endpoint_url, "SPECFLEET_QUEUE_PREFIX": settings.queue_prefix,
                 "SPECFLEET_BUCKET": settings.bucket, "SPECFLEET_DB_DSN": settings.db_dsn.get_secret_value()}.items():
        monkeypatch.setenv(k, v)
    shown = CliRunner().invoke(app, ["hydrophone", "days", "--json"])
    assert shown.exit_code == 0, shown.output
    [row] = json.loads(shown.stdout.strip().splitlines()[-1])["days"]
    assert row["archive"]["coverage_pct"] == manifest["day_coverage_pct"] and row["archive"]["breaks"] == 1
    table = CliRunner().invoke(app, ["hydrophone", "days"], env={"COLUMNS": "250"})
    assert table.exit_code == 0 and "1 break, 4.0 s missing" in table.stdout, table.stdout
