"""The fault proxy's network model and counters (what benchmarks/fleet.py
relies on): HTTP requests counted by method, bytes each way, an answer never
sooner than the modelled latency after its request, the bandwidth cap."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from specfleet.standins.faults import FaultProxy
from specfleet.standins.http import BackgroundServer

BODY = b"x" * 200_000


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: several requests per connection

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        self._answer(BODY)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(BODY)

    def do_PUT(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(b"ok")


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    server = BackgroundServer(_Echo).start()
    host, port = server.netloc.split(":")
    try:
        with FaultProxy((host, int(port))) as p:
            yield p
    finally:
        server.close()


def test_requests_are_counted_by_method_on_a_kept_alive_connection(proxy: FaultProxy) -> None:
    before = proxy.snapshot()
    with httpx.Client(base_url=proxy.url) as client:
        assert client.get("/a").content == BODY
        assert client.put("/b", content=b"y" * 100_000).content == b"ok"
        assert client.head("/c").status_code == 200
        assert client.get("/d").status_code == 200
    seen = proxy.snapshot().minus(before)
    assert dict(seen.requests) == {"GET": 2, "PUT": 1, "HEAD": 1}
    assert seen.connections == 1  # one connection carried all four
    assert 100_000 < seen.bytes_up < 101_000  # the PUT body plus four request heads
    assert 2 * len(BODY) < seen.bytes_down < 2 * len(BODY) + 1000


def test_answers_wait_out_the_latency_and_the_bandwidth_cap(proxy: FaultProxy) -> None:
    with httpx.Client(base_url=proxy.url) as client:
        client.head("/warm")  # the connection is open: what follows is the model alone
        proxy.slow(latency_s=0.3)
        started = time.monotonic()
        client.head("/a")
        assert time.monotonic() - started >= 0.3
        proxy.slow(bytes_per_s=1_000_000)
        started = time.monotonic()
        assert client.get("/b").content == BODY
        assert time.monotonic() - started >= len(BODY) / 1_000_000
        proxy.slow()  # and back to loopback speed
        assert client.get("/c").content == BODY
