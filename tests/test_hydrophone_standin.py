"""The OOI archive stand-in is as awkward as the real archive (issue 23):
files in mislabelled pieces, real breaks, short and too-long files, an
addendum/ folder, empty slots, Apache listings that sort and that are
reached through index.html or a sort-query redirect."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import unquote

import httpx
import numpy as np
import pytest
from obspy import UTCDateTime, read

from specfleet.pipelines.hydrophone.repair import repair
from specfleet.pipelines.hydrophone.source import decode_mseed
from specfleet.standins.ooi_archive import OOIServer, label_noise_for, write_day

HYDRO = "CE02SHBP/LJ01D/11-HYDBBA106"
DAY = dt.date(2017, 10, 11)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("ooi")
    names = write_day(root, HYDRO, DAY, clean_files=1, clean_seconds=30.0, short_file=True, long_file=True,
                      addendum=True, empty_slots=(1,), listing_redirect="?C=M;O=A")
    with OOIServer(root) as server:
        yield server, root / HYDRO / "2017/10/11", names


def hrefs(page: str) -> list[str]:
    return [unquote(h) for h in re.findall(r'<a href="([^"]+)"', page)]


def test_files_come_in_pieces_labelled_with_the_days_noise(archive):
    _, folder, names = archive
    noise = label_noise_for(DAY)
    assert 0.005 <= noise <= 0.125
    [clean] = names["clean"]
    traces = read(str(folder / clean))
    assert len(traces) == 120  # 30 s in pieces of 16,000 samples, ~1,200 per 5 minutes
    t0 = UTCDateTime(DAY)
    offsets = np.array([tr.stats.starttime - t0 for tr in traces]) - np.arange(120) * 0.25
    assert np.abs(offsets).max() <= noise and np.abs(offsets).max() > noise / 2
    got = repair(traces, file_seconds=30.0)
    assert len(got.stretches) == 1 and got.breaks == ()
    assert 0.010 <= got.label_noise_s <= 0.250  # the largest overlap, as OOI observes it


def test_breaks_short_long_and_empty_slots_are_there(archive):
    _, folder, names = archive
    # Slot 1 is empty: the gap file takes slot 2.
    assert names["gap"] == ["OO-HYVM1--YDH-2017-10-11T00:10:00.000000.mseed"]
    gap = decode_mseed(folder / names["gap"][0], expected_rate=64_000, file_seconds=40.0)
    assert gap.repaired is not None and gap.missing_s == pytest.approx(9.0)
    assert len(gap.repaired.breaks) == 1
    short = decode_mseed(folder / names["short"][0], expected_rate=64_000, file_seconds=300.0)
    assert short.missing_s == pytest.approx(255.0)
    long = decode_mseed(folder / names["long"][0], expected_rate=64_000, file_seconds=30.0)
    assert long.repaired is not None and long.repaired.too_long
    assert (folder / "addendum" / names["addendum"][0]).is_file()


def test_listing_redirects_to_a_sort_query_and_really_sorts(archive):
    server, folder, names = archive
    url = f"{server.base_url}{HYDRO}/2017/10/11/"
    first = httpx.get(url, timeout=10)
    assert first.status_code == 302 and first.headers["location"].endswith("/2017/10/11/?C=M;O=A")
    page = httpx.get(url, timeout=10, follow_redirects=True)
    assert str(page.url).endswith("?C=M;O=A") and page.status_code == 200
    links = [h for h in hrefs(page.text) if h.endswith(".mseed") or h.endswith("/")]
    by_mtime = sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: (p.stat().st_mtime, p.name))
    assert [h.rstrip("/") for h in links if h != "../"] == [p.name for p in by_mtime]
    assert {"?C=N;O=A", "?C=M;O=D", "?C=S;O=A"} <= set(hrefs(page.text))
    by_name_desc = httpx.get(url + "?C=N;O=D", timeout=10).text
    files = [h for h in hrefs(by_name_desc) if h.endswith(".mseed")]
    assert files == sorted(files, reverse=True) and len(files) == 5


def test_index_html_is_the_folders_listing(archive):
    server, _, names = archive
    page = httpx.get(f"{server.base_url}{HYDRO}/2017/10/11/index.html", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    listed = [h for h in hrefs(page.text) if h.endswith(".mseed")]
    assert sorted(listed) == sorted(n for k, v in names.items() if k != "addendum" for n in v)
    assert "addendum/" in hrefs(page.text) and ".redirect" not in page.text
