"""Reading one source file: HTTP download behaviour and miniSEED decoding."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from obspy import read

from specfleet.outbound import FetchLimits, HostPolicy
from specfleet.pipelines.hydrophone.models import HydroJob
from specfleet.pipelines.hydrophone.source import decode_mseed, download
from specfleet.pipelines.hydrophone.worker import hydrophone_of
from specfleet.runtime import Rejected, Transient
from specfleet.settings import Settings
from specfleet.standins import mseed_synth as synth

T0 = dt.datetime(2017, 10, 9, 12)


class Flaky(BaseHTTPRequestHandler):
    """``/fail-N/...`` answers 503 to the first N requests; ``/stream`` sends
    1 MB pieces with no Content-Length; ``/gone`` is 404."""

    hits: dict[str, int] = {}
    body = b"\x00" * 5000

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        n = Flaky.hits[self.path] = Flaky.hits.get(self.path, 0) + 1
        if self.path == "/gone":
            self.send_error(404)
        elif self.path.startswith("/fail-") and n <= int(self.path.split("-")[1].split("/")[0]):
            self.send_error(503)
        elif self.path == "/stream":
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(8):
                    self.wfile.write(b"\x01" * (1 << 20))
            except (BrokenPipeError, ConnectionResetError):
                pass
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body)


@pytest.fixture
def flaky():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    Flaky.hits = {}
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def fetch(url: str, dest, *, max_bytes: int, attempts: int = 4) -> int:
    """``download`` from the stand-in only (its address is named, so allowed)."""
    policy = HostPolicy.of([url.split("/")[2]])
    return download(url, dest, policy=policy, limits=FetchLimits(max_bytes=max_bytes), attempts=attempts)


@pytest.mark.slow
def test_download_retries_transient_errors_then_gives_up(flaky, tmp_path):
    dest = tmp_path / "f"
    assert fetch(f"{flaky}/fail-2/a", dest, max_bytes=10_000, attempts=3) == 5000
    assert Flaky.hits["/fail-2/a"] == 3 and dest.stat().st_size == 5000
    with pytest.raises(Transient, match="failed after 2 attempt\\(s\\).*503"):
        fetch(f"{flaky}/fail-9/b", dest, max_bytes=10_000, attempts=2)
    with pytest.raises(Rejected, match="gone \\(HTTP 404\\)"):
        fetch(f"{flaky}/gone", dest, max_bytes=10_000)
    assert Flaky.hits["/gone"] == 1  # a missing file is not retried


def test_size_limit_holds_without_a_content_length(flaky, tmp_path):
    dest = tmp_path / "f"
    with pytest.raises(Rejected, match="over the 3000000-byte limit \\(stopped at"):
        fetch(f"{flaky}/stream", dest, max_bytes=3_000_000)
    assert dest.stat().st_size <= 3_000_000


def test_extra_channels_are_left_out_and_said(tmp_path):
    from obspy import Stream, Trace, UTCDateTime

    main = synth.synthetic_signal(6.0, seed=1)
    head = {"network": "OO", "station": "HYVM1", "location": "", "sampling_rate": 64_000.0, "starttime": UTCDateTime(T0)}
    stream = Stream([Trace(main, header={**head, "channel": "YDH"}), Trace(main[:1000].copy(), header={**head, "channel": "HHZ"})])
    path = tmp_path / "two.mseed"
    path.write_bytes(synth.stream_bytes(stream))
    decoded = decode_mseed(path, expected_rate=64_000, file_seconds=6.0)
    assert decoded.channel == "YDH" and len(decoded.data) == len(main)
    assert decoded.notes == ["left out 1 other channel(s): OO.HYVM1..HHZ"]
    assert np.array_equal(decoded.data, main)


def test_a_real_break_is_marked_on_the_grid_and_counted(tmp_path):
    path = tmp_path / "gap.mseed"
    path.write_bytes(synth.gap_mseed_bytes(20.0, T0, gap_from_s=5.0, gap_s=2.0))
    assert len(read(str(path))) == 2  # really two traces with a hole between them
    decoded = decode_mseed(path, expected_rate=64_000, file_seconds=20.0)
    assert len(decoded.data) == 20 * 64_000
    assert decoded.gap_mask is not None and decoded.gap_mask.sum() == 2 * 64_000
    assert not decoded.data[decoded.gap_mask].any()
    assert decoded.missing_s == pytest.approx(2.0)
    assert decoded.notes == ["2 pieces rejoined into 2 stretches (label noise 0 ms)",
                             "missing 2.000 s of recording, 1 break(s) of 2.000 s"]


def test_hostile_hydrophone_path_in_a_job_is_rejected():
    job = HydroJob(file_url="http://127.0.0.1/x.mseed", hydrophone="CE02/../../etc")
    with pytest.raises(Rejected, match="hydrophone path"):
        hydrophone_of(job, Settings())


@pytest.mark.slow
def test_clip_cli_runs_one_file_locally(tmp_path):
    from typer.testing import CliRunner

    from specfleet.cli.main import app

    src = tmp_path / "OO-HYVM1--YDH-2017-10-09T12:00:00.000000.mseed"
    src.write_bytes(synth.mseed_bytes(synth.synthetic_signal(11.0, seed=2), T0))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["hydrophone", "clip", str(src), "--out", str(out), "--processes", "1", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["clips"] == 2
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.{e}" for n in report["names"] for e in ("wav", "png"))
    bad = CliRunner().invoke(app, ["hydrophone", "clip", str(tmp_path / "missing.mseed"), "--out", str(out)])
    assert bad.exit_code == 1 and "no such file" in bad.output
