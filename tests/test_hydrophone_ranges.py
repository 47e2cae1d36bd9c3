"""Site names, date/time ranges and listing sizes of the hydrophone producer
(no stack needed)."""

from __future__ import annotations

import datetime as dt

import pytest

from specfleet.pipelines.hydrophone.listing import parse_listing, parse_size
from specfleet.pipelines.hydrophone.sites import SITES, UnknownSite, find_site, resolve_hydrophone, site_of_path
from specfleet.pipelines.hydrophone.timerange import MAX_DAYS, RangeError, TimeRange, parse_days, parse_when

URL = "http://archive.test/files/CE02SHBP/LJ01D/11-HYDBBA106/2017/10/09/"
F0 = "OO-HYVM1--YDH-2017-10-09T00:00:00.000000.mseed"
F1 = "OO-HYVM1--YDH-2017-10-09T00:05:00.000000.mseed"


# --- sites: ooipy's table (src/ooipy/request/hydrophone_request.py, __get_mseed_urls) ------
@pytest.mark.parametrize(("name", "path"), [
    # The pairs as ooipy's request code spells them (node name or id -> array/node/instrument).
    ("Oregon_Shelf_Base_Seafloor", "CE02SHBP/LJ01D/11-HYDBBA106"),
    ("Oregon_Slope_Base_Seafloor", "RS01SLBS/LJ01A/09-HYDBBA102"),
    ("Oregon_Slope_Base_Shallow", "RS01SBPS/PC01A/08-HYDBBA103"),
    ("Axial_Base_Shallow", "RS03AXPS/PC03A/08-HYDBBA303"),
    ("Oregon_Offshore_Base_Seafloor", "CE04OSBP/LJ01C/11-HYDBBA105"),
    ("Axial_Base_Seafloor", "RS03AXBS/LJ03A/09-HYDBBA302"),
    ("LJ01D", "CE02SHBP/LJ01D/11-HYDBBA106"),
    ("lj03a", "RS03AXBS/LJ03A/09-HYDBBA302"),
    ("oregon-shelf-base-seafloor", "CE02SHBP/LJ01D/11-HYDBBA106"),
])
def test_site_names_as_ooipy_users_write_them_map_to_archive_paths(name, path):
    assert find_site(name).path == path
    assert resolve_hydrophone(name) == path


def test_the_plain_spelling_drops_the_numeric_prefix_and_is_recognised():
    shelf = find_site("oregon_shelf_base_seafloor")
    assert shelf.paths == ("CE02SHBP/LJ01D/11-HYDBBA106", "CE02SHBP/LJ01D/HYDBBA106")
    # ooipy #159: the layout changed on 2023-06-07; the day before is asked in the numbered folder first.
    assert shelf.archive_paths(dt.date(2023, 6, 6)) == shelf.paths
    assert shelf.archive_paths(dt.date(2023, 6, 7)) == shelf.paths[::-1]
    assert site_of_path("CE02SHBP/LJ01D/HYDBBA106/") is shelf
    assert site_of_path("CE02SHBP/LJ01D/11-HYDBBA106") is shelf
    assert site_of_path("X/Y/Z") is None
    assert len({s.name for s in SITES}) == len({s.node for s in SITES}) == len(SITES) == 6


def test_a_misspelt_site_gets_did_you_mean_and_the_list_of_names():
    with pytest.raises(UnknownSite) as err:
        find_site("oregon_shelf_base_seafloar")
    text = str(err.value)
    assert "did you mean 'oregon_shelf_base_seafloor'?" in text
    assert all(s.name in text for s in SITES)
    with pytest.raises(UnknownSite, match="known sites") as err:
        find_site("nowhere")
    assert "did you mean" not in str(err.value)


def test_a_path_with_slashes_is_taken_as_it_is():
    assert resolve_hydrophone("CE02SHBP/LJ01D/HYDBBA106") == "CE02SHBP/LJ01D/HYDBBA106"


# --- time ranges ---------------------------------------------------------------------------------
def test_dates_and_times_parse_as_utc_and_a_bare_end_date_is_included():
    assert parse_when("2017-10-09") == dt.datetime(2017, 10, 9)
    assert parse_when("2017-10-09", end=True) == dt.datetime(2017, 10, 10)
    assert parse_when("2017-10-09T06:30") == dt.datetime(2017, 10, 9, 6, 30)
    assert parse_when("2017-10-09 06:30:15Z") == dt.datetime(2017, 10, 9, 6, 30, 15)
    for bad in ("2017-13-01", "09/10/2017", "2017-10-09T25:00", "yesterday", "2017-10-09T06"):
        with pytest.raises(RangeError, match="not YYYY-MM-DD"):
            parse_when(bad)


def test_ranges_cover_the_days_they_touch():
    three = TimeRange.parse(start="2017-10-09", end="2017-10-11")
    assert three.days() == [dt.date(2017, 10, 9), dt.date(2017, 10, 10), dt.date(2017, 10, 11)]
    assert all(three.covers_day(d) for d in three.days()) and three.describe() == "2017-10-09 to 2017-10-11"
    one = TimeRange.parse(day="2017-10-09")
    assert one.days() == [dt.date(2017, 10, 9)] and one.describe() == "2017-10-09"
    # --start alone: to the end of its day; a range ending at midnight does not touch the next day.
    assert TimeRange.parse(start="2017-10-09T22:00").end == dt.datetime(2017, 10, 10)
    night = TimeRange.parse(start="2017-10-09T22:00", end="2017-10-10T00:00")
    assert night.days() == [dt.date(2017, 10, 9)] and not night.covers_day(dt.date(2017, 10, 9))


def test_a_file_is_taken_when_its_five_minutes_overlap_the_range():
    r = TimeRange.parse(start="2017-10-09T06:02", end="2017-10-09T06:10")
    at = lambda h, m: dt.datetime(2017, 10, 9, h, m)  # noqa: E731
    assert not r.takes_file(at(5, 55))  # ends 06:00, before the start
    assert r.takes_file(at(6, 0))  # 06:00-06:05 holds 06:02
    assert r.takes_file(at(6, 5))
    assert not r.takes_file(at(6, 10))  # starts at the (exclusive) end


def test_bad_ranges_are_refused_with_the_reason():
    with pytest.raises(RangeError, match="before it starts"):
        TimeRange.parse(start="2017-10-10", end="2017-10-09T12:00")
    with pytest.raises(RangeError, match="either --day or --start"):
        TimeRange.parse(start="2017-10-10", day="2017-10-10")
    with pytest.raises(RangeError, match="give --day"):
        TimeRange.parse(end="2017-10-10")
    with pytest.raises(RangeError, match=f"at most {MAX_DAYS}"):
        TimeRange.parse(start="2017-01-01", end="2019-01-01")


def test_day_lists_for_the_stand_in():
    assert parse_days("2017-10-09..2017-10-11, 2017-10-20,2017-10-09") == [
        dt.date(2017, 10, 9), dt.date(2017, 10, 10), dt.date(2017, 10, 11), dt.date(2017, 10, 20)]
    for bad in ("", "2017-10-11..2017-10-09", "2017-10-09..2019-10-09", "x"):
        with pytest.raises(RangeError):
            parse_days(bad)


# --- sizes from the listing ------------------------------------------------------------------------
def test_sizes_parse_like_apache_prints_them():
    assert parse_size("612K") == (612 * 1024, True)
    assert parse_size("9.6M") == (int(9.6 * 1024**2), True)
    assert parse_size("10064384") == (10064384, False)
    for not_a_size in ("-", "", "2017-10-10", "00:05", "12 K", "1e6"):
        assert parse_size(not_a_size) is None


def test_apache_fancy_index_rows_give_each_file_its_size():
    html = f"""<table>
    <tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th><th><a href="?C=S;O=A">Size</a></th></tr>
    <tr><td><a href="../">Parent Directory</a></td><td>&nbsp;</td><td>-</td></tr>
    <tr><td valign="top"><img src="/icons/unknown.gif"></td><td><a href="{F0}">{F0}</a></td>
        <td align="right">2017-10-09 00:05  </td><td align="right">9.6M</td><td>&nbsp;</td></tr>
    <tr><td><a href="{F1}">{F1}</a></td><td>2017-10-09 00:10</td><td>612K</td></tr>
    </table>"""
    listing = parse_listing(html, URL)
    assert listing.sizes == {URL + F0: int(9.6 * 1024**2), URL + F1: 612 * 1024}
    assert listing.sizes_approximate and listing.total_bytes() == int(9.6 * 1024**2) + 612 * 1024


def test_pre_indexes_give_exact_sizes_and_missing_sizes_stay_unknown():
    html = (f'<pre><a href="../">../</a>\n<a href="{F0}">{F0}</a>   09-Oct-2017 00:05    10064384\n'
            f'<a href="{F1}">{F1}</a>   09-Oct-2017 00:10    -\n</pre>')
    listing = parse_listing(html, URL)
    assert listing.files == [URL + F0, URL + F1]
    assert listing.sizes == {URL + F0: 10064384} and not listing.sizes_approximate
    assert listing.total_bytes() is None  # one file shows no size
