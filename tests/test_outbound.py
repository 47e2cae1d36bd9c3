"""Outbound fetches of outside URLs (issue 14, item 3 and 6): hosts on a list,
non-public addresses refused at connect time, every redirect re-checked, a
total time budget per fetch. Loopback only: private and link-local addresses
appear here as text to validate, never as something to connect to; the
"other host" is a second loopback address."""

from __future__ import annotations

import socket
import time

import pytest

from specfleet.outbound import FetchLimits, HostPolicy, OutboundRefused, guard_connections
from specfleet.pipelines.download.worker import fetch_mp3
from specfleet.pipelines.hydrophone.source import download
from specfleet.pipelines.music.settings import MusicSettings
from specfleet.runtime import Misconfigured, Rejected, Transient
from specfleet.standins.faults import HostileSource

OOI = HostPolicy.of(["rawdata.oceanobservatories.org", "127.0.0.1:8123"], what="hydrophone source")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/", "not allowed"),
        ("http://10.0.0.7/x.mseed", "not allowed"),
        ("http://192.168.1.1/x.mseed", "not allowed"),
        ("http://2130706433:8123/x.mseed", "not a hostname or a canonical IP"),
        ("http://0x7f000001:8123/x.mseed", "not a hostname or a canonical IP"),
        ("http://0177.0.0.1:8123/x.mseed", "not a hostname or a canonical IP"),
        ("http://127.1:8123/x.mseed", "not a hostname or a canonical IP"),
        ("http://localhost:5432/", "not allowed"),
        ("http://127.0.0.1:5432/", "not allowed"),  # the stand-in's address, another port
        ("http://[fd00::1]/x.mseed", "not allowed"),
        ("http://[::ffff:10.0.0.1]/x.mseed", "not allowed"),
        ("http://user:pw@rawdata.oceanobservatories.org/x.mseed", "credentials"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://rawdata.oceanobservatories.org/", "scheme"),
        ("http://rawdata.oceanobservatories.org.evil.example/x.mseed", "not allowed"),
        ("http://rawdata.oceanobservatories.org:99999/", "malformed"),
    ],
)
def test_urls_outside_the_policy_are_refused_before_any_connection(url: str, why: str):
    with pytest.raises(OutboundRefused, match=why):
        OOI.check_url(url)


def test_urls_inside_the_policy_pass():
    assert OOI.check_url("https://rawdata.oceanobservatories.org/files/a.mseed")
    assert OOI.check_url("http://127.0.0.1:8123/files/a.mseed")
    assert HostPolicy.for_urls(["https://api.spotify.com/v1"]).check_url("https://api.spotify.com/v1/artists")


def test_connect_time_check_refuses_a_non_public_address_the_list_does_not_name():
    # What DNS rebinding or a hostname pointing inside the VPC would look like:
    # the name passed the list, the address it resolves to does not.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        with guard_connections(HostPolicy.of(["example.org"])), pytest.raises(OutboundRefused, match="non-public"):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        with guard_connections(HostPolicy.of([f"127.0.0.1:{port}"])):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()  # named literally: allowed
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # other threads/code: unaffected
    finally:
        listener.close()


@pytest.fixture
def sources():
    """The allowed source on 127.0.0.1 and "another host" on 127.0.0.2."""
    with HostileSource() as allowed, HostileSource(host="127.0.0.2") as other:
        yield allowed, other


def _limits(**kw: float) -> FetchLimits:
    return FetchLimits(max_bytes=kw.pop("max_bytes", 1_000_000), **kw)  # type: ignore[arg-type]


def test_a_redirect_to_another_host_is_refused_and_never_followed(sources, tmp_path):
    allowed, other = sources
    policy = HostPolicy.of([allowed.netloc])
    url = f"{allowed.base_url}/redirect?to={other.base_url}/trickle"
    # the host list, not the file, decides: kept for a redrive once the list allows it (issue 26)
    with pytest.raises(Misconfigured, match="not allowed.*SPECFLEET_HYDRO_ALLOWED_HOSTS"):
        download(url, tmp_path / "f", policy=policy, limits=_limits(), attempts=3)
    assert other.hits == []  # the other host never saw a request
    assert allowed.hits == ["/redirect?to=" + other.base_url + "/trickle"]  # refused once, not retried


@pytest.mark.parametrize(
    ("path", "why"),
    [("/redirect?to=file:///etc/passwd", "UnsupportedProtocol|scheme"), ("/loop", "TooManyRedirects")],
)
def test_redirects_that_can_never_succeed_are_rejected_without_retries(sources, tmp_path, path, why):
    allowed, _ = sources
    with pytest.raises(Rejected, match=why):
        download(allowed.base_url + path, tmp_path / "f", policy=HostPolicy.of([allowed.netloc]),
                 limits=_limits(max_redirects=5), attempts=4)
    assert len(allowed.hits) <= 6  # one fetch (a loop stops at 5 redirects), no retry of it


@pytest.mark.slow
def test_a_trickling_source_ends_at_the_fetch_budget(sources, tmp_path):
    allowed, _ = sources
    started = time.monotonic()
    with pytest.raises(Transient, match="longer than its 2 s budget"):
        download(f"{allowed.base_url}/trickle?every=0.5&bytes=100000", tmp_path / "f",
                 policy=HostPolicy.of([allowed.netloc]), limits=_limits(budget_s=2, read_timeout_s=30), attempts=1)
    # One byte every 0.5 s would take 14 hours; each read is well inside its
    # 30 s read timeout, so only the budget can have ended it.
    assert time.monotonic() - started < 15


def test_a_body_shorter_than_its_content_length_is_transient_not_accepted(sources, tmp_path):
    allowed, _ = sources
    with pytest.raises(Transient, match="failed after 2 attempt"):
        download(f"{allowed.base_url}/lie?claim=5000&send=10", tmp_path / "f",
                 policy=HostPolicy.of([allowed.netloc]), limits=_limits(), attempts=2)
    assert len(allowed.hits) == 2


# --- the download worker's yt-dlp fetches ------------------------------------------
def _video_config(allowed: str, **kw: float) -> MusicSettings:
    return MusicSettings(extra_hosts=[allowed], ytdlp_retries=0, socket_timeout_s=5, **kw)


@pytest.mark.slow
def test_yt_dlp_is_kept_off_addresses_the_policy_does_not_name(sources, tmp_path):
    allowed, other = sources
    url = f"{allowed.base_url}/redirect?to={other.base_url}/trickle"
    with pytest.raises(Rejected, match="non-public address 127.0.0.2 refused"):
        fetch_mp3(url, tmp_path, _video_config(allowed.netloc))
    assert other.hits == []


@pytest.mark.slow
def test_a_trickling_video_source_ends_at_the_download_budget(sources, tmp_path):
    allowed, _ = sources
    started = time.monotonic()
    with pytest.raises(Transient, match="longer than its 3 s budget"):
        fetch_mp3(f"{allowed.base_url}/trickle?every=0.5&bytes=100000", tmp_path,
                  _video_config(allowed.netloc, fetch_budget_s=3))
    assert time.monotonic() - started < 20
