"""Day listings, the local OOI stand-in, and the producer."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from specfleet.outbound import HostPolicy
from specfleet.pipelines import job_queue
from specfleet.pipelines.hydrophone.listing import ListingError, fetch_listing, parse_listing
from specfleet.pipelines.hydrophone.producer import produce_day
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.standins import mseed_synth as synth
from specfleet.standins.ooi_archive import OOIServer, day_dir, file_name_for
from specfleet.storage import Storage

DAY = dt.date(2017, 10, 9)
HYDRO = "CE02SHBP/LJ01D/11-HYDBBA106"
URL = "http://archive.test/files/CE02SHBP/LJ01D/11-HYDBBA106/2017/10/09/"
GOOD = "OO-HYVM1--YDH-2017-10-09T00:00:00.000000.mseed"
GOOD2 = "OO-HYVM1--YDH-2017-10-09T00:05:00.000000.mseed"

HOSTILE = f"""<html><body><table>
<tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th></tr>
<tr><td><a href="/files/CE02SHBP/LJ01D/11-HYDBBA106/2017/10/">Parent Directory</a></td></tr>
<tr><td><a href="../">up</a></td></tr>
<tr><td><a href="{GOOD2}">{GOOD2}</a></td></tr>
<tr><td><a href="{GOOD}">{GOOD}</a></td></tr>
<tr><td><a href="./{GOOD}">same file again</a></td></tr>
<tr><td><a href="../../../../secret.mseed">escape</a></td></tr>
<tr><td><a href="%2e%2e/x.mseed">encoded escape</a></td></tr>
<tr><td><a href="{GOOD}?download=1">query</a></td></tr>
<tr><td><a href="evil.mseed#frag">fragment</a></td></tr>
<tr><td><a href="sub/OO-HYVM1--YDH-2017-10-09T00:10:00.000000.mseed">sub folder</a></td></tr>
<tr><td><a href="http://evil.example/files/x.mseed">other host</a></td></tr>
<tr><td><a href="javascript:alert(1)">js</a></td></tr>
<tr><td><a href="notes.txt">notes.txt</a></td></tr>
<tr><td><a href="x.mseed.html">disguised</a></td></tr>
<tr><td><a href="bad%20name;rm.mseed">shell</a></td></tr>
<tr><td><a href="a%3A%3Ab.mseed">status framing</a></td></tr>
<tr><td><a>no href</a></td></tr>
</table></body></html>"""


def test_listing_keeps_only_mseed_files_in_the_folder_sorted_and_unique():
    listing = parse_listing(HOSTILE, URL)
    assert listing.files == [URL + GOOD, URL + GOOD2]
    reasons = dict(listing.ignored)
    assert reasons["?C=N;O=D"] == "a column-sort link"
    assert reasons["../"] == "a folder, not a file"
    assert reasons["../../../../secret.mseed"] == "not directly inside the day folder"
    assert reasons["%2e%2e/x.mseed"] in ("path escapes the day folder", "not directly inside the day folder")
    assert reasons[f"{GOOD}?download=1"] == "has a query string or fragment"
    assert reasons["sub/OO-HYVM1--YDH-2017-10-09T00:10:00.000000.mseed"] == "not directly inside the day folder"
    assert reasons["http://evil.example/files/x.mseed"] == "other host or scheme"
    assert reasons["javascript:alert(1)"] == "not a .mseed file"  # read as a bare name, still refused
    assert reasons["notes.txt"] == reasons["x.mseed.html"] == "not a .mseed file"
    assert reasons["bad%20name;rm.mseed"] == reasons["a%3A%3Ab.mseed"] == "file name has characters we do not accept"


@pytest.fixture
def archive(tmp_path):
    with OOIServer(tmp_path) as server:
        yield server, tmp_path


def test_stand_in_serves_an_apache_style_listing_and_404s_missing_days(archive):
    server, root = archive
    folder = day_dir(root, HYDRO, DAY)
    (folder / GOOD).write_bytes(synth.mseed_bytes(synth.synthetic_signal(1.0), dt.datetime(2017, 10, 9)))
    (folder / "README.txt").write_text("not data")
    url = f"{server.base_url}{HYDRO}/2017/10/09/"
    listing = fetch_listing(url, policy=HostPolicy.of([server.netloc]))
    assert listing.files == [url + GOOD]
    assert ("../", "a folder, not a file") in listing.ignored
    with pytest.raises(ListingError, match="HTTP 404.*not in the archive"):
        fetch_listing(f"{server.base_url}{HYDRO}/2017/10/10/", policy=HostPolicy.of([server.netloc]))
    (day_dir(root, HYDRO, dt.date(2017, 10, 11)) / "x.txt").write_text("")
    with pytest.raises(ListingError, match="no .mseed files"):
        fetch_listing(f"{server.base_url}{HYDRO}/2017/10/11/", policy=HostPolicy.of([server.netloc]))


def test_producer_enqueues_one_job_per_file_and_skips_done_ones(settings, archive):
    server, root = archive
    config = HydroSettings(allowed_hosts=[server.netloc])
    folder = day_dir(root, HYDRO, DAY)
    (folder / "index.html").write_text(HOSTILE.replace("/files/", "/files/"))
    result = produce_day(settings, DAY, base_url=server.base_url, hydrophone=HYDRO, config=config)
    base = f"{server.base_url}{HYDRO}/2017/10/09/"
    assert result.enqueued == [base + GOOD, base + GOOD2]
    assert len(result.ignored) >= 14
    bodies = [json.loads(m.body) for m in job_queue(settings, "hydrophone").receive(10, wait_s=1)]
    assert sorted(b["file_url"] for b in bodies) == [base + GOOD, base + GOOD2]
    assert {b["hydrophone"] for b in bodies} == {HYDRO}

    # A file whose manifest exists is skipped unless forced.
    Storage(settings).put_bytes(f"{config.manifest_prefix}/{HYDRO}/2017_10_09/{GOOD}.json", b"{}")
    again = produce_day(settings, DAY, base_url=server.base_url, hydrophone=HYDRO, config=config)
    assert again.enqueued == [base + GOOD2] and again.already_done == [base + GOOD]
    forced = produce_day(settings, DAY, base_url=server.base_url, hydrophone=HYDRO, force=True, config=config)
    assert forced.enqueued == [base + GOOD, base + GOOD2]


def test_producer_cli_reports_missing_day_and_counts(settings, archive, monkeypatch):
    from typer.testing import CliRunner

    from specfleet.cli.main import app

    server, root = archive
    (day_dir(root, HYDRO, DAY) / file_name_for(dt.datetime(2017, 10, 9))).write_bytes(b"x" * 600)
    for k, v in settings_env(settings).items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()
    refused = runner.invoke(app, ["produce", "hydrophone", "--day", "2017-10-09", "--base-url", server.base_url])
    assert refused.exit_code == 1 and "SPECFLEET_HYDRO_ALLOWED_HOSTS" in refused.output
    monkeypatch.setenv("SPECFLEET_HYDRO_ALLOWED_HOSTS", json.dumps([server.netloc]))
    ok = runner.invoke(app, ["produce", "hydrophone", "--day", "2017-10-09", "--base-url", server.base_url, "--hydrophone", HYDRO,
                             "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["enqueued"] == 1
    missing = runner.invoke(app, ["produce", "hydrophone", "--day", "2017-10-08", "--base-url", server.base_url, "--hydrophone", HYDRO])
    assert missing.exit_code == 1 and "not in the archive" in missing.output
    bad_day = runner.invoke(app, ["produce", "hydrophone", "--day", "2017-13-01", "--base-url", server.base_url])
    assert bad_day.exit_code == 2 and "not YYYY-MM-DD" in bad_day.output
    hostile = runner.invoke(app, ["produce", "hydrophone", "--day", "2017-10-09", "--base-url", server.base_url, "--hydrophone", "../etc"])
    assert hostile.exit_code == 1 and "hydrophone path" in hostile.output


def settings_env(settings):
    return {
        "SPECFLEET_ENDPOINT_URL": settings.endpoint_url,
        "SPECFLEET_QUEUE_PREFIX": settings.queue_prefix,
        "SPECFLEET_BUCKET": settings.bucket,
        "SPECFLEET_DB_DSN": settings.db_dsn.get_secret_value(),
    }
