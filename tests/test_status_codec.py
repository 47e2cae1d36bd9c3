"""The `::` status codec: round trips for every format, refusals for values
that would break the framing, and decoder checks on count and types."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from specfleet.pipelines import specs
from specfleet.pipelines.download.models import DownloadStatus
from specfleet.pipelines.hydrophone.models import HydroStatus
from specfleet.pipelines.melwindows.models import SpectoStatus
from specfleet.pipelines.search.models import SearchStatus
from specfleet.status import Stat, StatusFormatError

STATUS_MODELS = {spec.name: spec.status_model for spec in specs()}

# Text that can legally appear in a field: no '::', no line breaks, no
# control characters SQS cannot carry (NUL among them), and no
# leading/trailing ':' (it would merge with a separator).
field_text = (
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60)
    .filter(lambda s: "::" not in s and not s.startswith(":") and not s.endswith(":"))
)
dates = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1)).map(
    lambda d: d.replace(microsecond=0)
)
stats = st.sampled_from(list(Stat))
instance = field_text.filter(lambda s: len(s) <= 128)


@hsettings(max_examples=150, deadline=None)
@given(instance, stats, field_text, st.integers(0, 100_000), dates)
def test_hydro_round_trip(instance_id, stat, url, clips, date):
    rec = HydroStatus(instance_id=instance_id, stat=stat, file_url=url, clips=clips, date=date)
    assert HydroStatus.decode(rec.encode()) == rec


@hsettings(max_examples=150, deadline=None)
@given(instance, stats, field_text, field_text, st.integers(-1, 10**12), dates)
def test_search_round_trip(instance_id, stat, track, url, views, date):
    rec = SearchStatus(instance_id=instance_id, stat=stat, track_id=track, yt_url=url, views=views, date=date)
    assert SearchStatus.decode(rec.encode()) == rec


@hsettings(max_examples=150, deadline=None)
@given(instance, stats, field_text, field_text, dates)
def test_download_round_trip(instance_id, stat, track, url, date):
    rec = DownloadStatus(instance_id=instance_id, stat=stat, track_id=track, yt_url=url, date=date)
    assert DownloadStatus.decode(rec.encode()) == rec


@hsettings(max_examples=150, deadline=None)
@given(instance, stats, field_text, st.integers(-1, 500), st.integers(0, 10**5), st.integers(0, 10**5),
       st.integers(0, 512), st.integers(0, 10**5), dates)
def test_specto_round_trip(instance_id, stat, track, win, ini, fin, rows, cols, date):
    rec = SpectoStatus(instance_id=instance_id, stat=stat, track_id=track, win=win, ini=ini, fin=fin,
                       rows=rows, cols=cols, date=date)
    assert SpectoStatus.decode(rec.encode()) == rec


def test_wire_format_is_the_original():
    date = dt.datetime(2019, 3, 4, 5, 6, 7)
    assert (
        DownloadStatus(instance_id="i-1", stat=Stat.DONE, track_id="abc", yt_url="https://youtu.be/x", date=date).encode()
        == "i-1::1::abc::https://youtu.be/x::2019-03-04 05:06:07"
    )
    assert (
        SpectoStatus(instance_id="i-1", stat=Stat.DONE, track_id="abc", win=2, ini=40, fin=70, rows=256, cols=938,
                     date=date).encode()
        == "i-1::1::abc::2::40::70::256::938::2019-03-04 05:06:07"
    )
    assert (
        HydroStatus(instance_id="i-9", stat=Stat.FAILED, file_url="http://h/a.mseed", clips=0, date=date).encode()
        == "i-9::0::http://h/a.mseed::0::2019-03-04 05:06:07"
    )


@pytest.mark.parametrize("bad", ["a::b", "line\nbreak", "cr\rhere", "x:", ":x"])
def test_encoder_refuses_framing_characters(bad):
    rec = DownloadStatus(instance_id="i-1", stat=Stat.DONE, track_id=bad, yt_url="u")
    with pytest.raises(StatusFormatError, match="track_id"):
        rec.encode()


@pytest.mark.parametrize(
    "body, message",
    [
        ("i-1::1::abc::2019-03-04 05:06:07", "needs 5"),
        ("i-1::1::abc::u::x::2019-03-04 05:06:07", "needs 5"),
        ("i-1::one::abc::u::2019-03-04 05:06:07", "stat"),
        ("i-1::7::abc::u::2019-03-04 05:06:07", "stat"),
        ("i-1::1::abc::u::yesterday", "date"),
        ("::1::abc::u::2019-03-04 05:06:07", "instance_id"),
        ("i-1::1::a\x00b::u::2019-03-04 05:06:07", "NUL"),
        ("", "needs 5"),
    ],
)
def test_decoder_checks_count_and_types(body, message):
    with pytest.raises(StatusFormatError, match=message):
        DownloadStatus.decode(body)


def test_specto_decoder_checks_integer_fields():
    with pytest.raises(StatusFormatError, match="win"):
        SpectoStatus.decode("i-1::1::abc::two::40::70::256::938::2019-03-04 05:06:07")


def test_every_pipeline_has_a_format():
    assert set(STATUS_MODELS) == {"echo", "hydrophone", "search", "download", "spectrogram"}
    assert {m.table for m in STATUS_MODELS.values()} == {
        "status_echo", "status_hydro", "status_search", "status", "status_specto"}
