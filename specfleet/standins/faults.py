"""Fault injection on loopback: a TCP proxy that can cut, stall or slow the
traffic between a worker and the services it depends on, and an HTTP source
that trickles, lies or redirects.

``FaultProxy`` sits between a client and one server (moto's endpoint,
PostgreSQL, a stand-in site)::

    proxy = FaultProxy(("127.0.0.1", moto_port)).start()
    settings = settings.model_copy(update={"endpoint_url": proxy.url})
    proxy.cut()       # every connection reset, new ones reset at once
    proxy.stall()     # connections accepted, nothing forwarded
    proxy.restore()   # traffic flows again
    proxy.slow(latency_s=0.03, bytes_per_s=10e6)   # a model of a real network
    proxy.snapshot()  # connections, bytes each way, HTTP requests by method

Everything listens on and connects to loopback addresses only.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from .http import BackgroundServer

Mode = Literal["pass", "cut", "stall"]
_CHUNK = 64 * 1024
#: How often blocked threads look at the mode and the closing flag.
_TICK_S = 0.05
#: Request lines counted by ``ProxyStats.requests`` (HTTP/1.x methods).
_METHODS = {b"GET", b"HEAD", b"PUT", b"POST", b"DELETE", b"PATCH", b"OPTIONS"}


def _require_loopback(host: str) -> None:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"fault proxy works on loopback only, not {host}")


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (what a peer sees when a service dies)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


@dataclass
class ProxyStats:
    connections: int = 0
    resets: int = 0
    #: Client -> server and server -> client bytes.
    bytes_up: int = 0
    bytes_down: int = 0
    #: HTTP requests by method: the request lines that opened a client turn
    #: (a turn is what the client sends until the server answers; a body sent
    #: after ``100 Continue`` opens a turn but no request). Counts only when
    #: the traffic is HTTP/1.x, as botocore's, httpx's and yt-dlp's is.
    requests: Counter[str] = field(default_factory=Counter)

    def copy(self) -> ProxyStats:
        return ProxyStats(self.connections, self.resets, self.bytes_up, self.bytes_down, Counter(self.requests))

    def minus(self, earlier: ProxyStats) -> ProxyStats:
        """What happened since ``earlier`` (a ``snapshot()``)."""
        requests = Counter(self.requests)
        requests.subtract(earlier.requests)
        return ProxyStats(self.connections - earlier.connections, self.resets - earlier.resets,
                          self.bytes_up - earlier.bytes_up, self.bytes_down - earlier.bytes_down,
                          +requests)


@dataclass(eq=False)  # identity: links live in a set
class _Link:
    client: socket.socket
    server: socket.socket
    closed: threading.Event = field(default_factory=threading.Event)
    #: Pump threads still running; the last one to finish closes the sockets.
    pumps_left: int = 2

    def reset(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            _reset(self.client)
            _reset(self.server)


class FaultProxy:
    def __init__(self, target: tuple[str, int], *, listen_host: str = "127.0.0.1", listen_port: int = 0):
        _require_loopback(target[0])
        _require_loopback(listen_host)
        self.target = target
        self._listener = socket.create_server((listen_host, listen_port), reuse_port=False)
        self._listener.settimeout(_TICK_S)
        self._mode: Mode = "pass"
        self._latency_s = 0.0
        self._bytes_per_s = 0.0
        self._links: set[_Link] = set()
        self._lock = threading.Condition()
        self._closing = threading.Event()
        self.stats = ProxyStats()
        self._stats_lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)

    # --- control -----------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return host, port

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}"

    @property
    def mode(self) -> Mode:
        return self._mode

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def cut(self) -> None:
        """Reset every open connection; new ones are reset as they arrive."""
        with self._lock:
            self._mode = "cut"
            links, self._links = list(self._links), set()
            self._lock.notify_all()
        for link in links:
            link.reset()
            with self._stats_lock:
                self.stats.resets += 1

    def stall(self) -> None:
        """Accept and hold connections but forward nothing (a black hole)."""
        with self._lock:
            self._mode = "stall"
            self._lock.notify_all()

    def restore(self) -> None:
        with self._lock:
            self._mode = "pass"
            self._lock.notify_all()

    def slow(self, *, latency_s: float = 0.0, bytes_per_s: float = 0.0) -> None:
        """Add ``latency_s`` before each answer starts (a request's time to
        first byte: counted from the request's last byte, so an answer never
        starts sooner than that after its request) and cap each connection's
        bandwidth, each direction (0 = no cap). ``slow()`` undoes both."""
        with self._lock:
            self._latency_s = max(0.0, latency_s)
            self._bytes_per_s = max(0.0, bytes_per_s)

    def snapshot(self) -> ProxyStats:
        """A consistent copy of the counters (``later.minus(earlier)`` for a span)."""
        with self._stats_lock:
            return self.stats.copy()

    def close(self) -> None:
        self._closing.set()
        self.cut()
        self._thread.join(5)
        self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._stats_lock:
                self.stats.connections += 1
            if self._mode == "cut":
                _reset(client)
                with self._stats_lock:
                    self.stats.resets += 1
                continue
            threading.Thread(target=self._open, args=(client,), name="fault-proxy-link", daemon=True).start()

    def _open(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=10)
        except OSError:
            _reset(client)
            return
        server.settimeout(None)
        link = _Link(client, server)
        with self._lock:
            if self._mode == "cut":
                link.reset()
                return
            self._links.add(link)
        turn = {"last_up": 0.0, "answered": 1.0}
        threading.Thread(target=self._pump, args=(link, client, server, True, turn), daemon=True).start()
        self._pump(link, server, client, False, turn)

    def _wait_while_stalled(self, link: _Link) -> bool:
        """Block while stalled; False when the link was cut or the proxy closes."""
        with self._lock:
            while self._mode == "stall" and not link.closed.is_set() and not self._closing.is_set():
                self._lock.wait(_TICK_S)
            return self._mode == "pass" and not link.closed.is_set()

    def _pump(self, link: _Link, src: socket.socket, dst: socket.socket, upstream: bool, turn: dict[str, float]) -> None:
        try:
            while not link.closed.is_set():
                try:
                    data = src.recv(_CHUNK)
                except OSError:
                    break
                if not data:
                    break
                if not self._wait_while_stalled(link):
                    break
                if upstream:
                    turn["last_up"] = time.monotonic()
                    method = b""
                    if turn["answered"]:  # the first bytes since the last answer: a new turn
                        turn["answered"] = 0.0
                        method = _request_method(data)
                    with self._stats_lock:
                        self.stats.bytes_up += len(data)
                        if method:
                            self.stats.requests[method.decode()] += 1
                else:
                    turn["answered"] = 1.0
                    if self._latency_s and turn["last_up"]:
                        # The first bytes of an answer wait out the modelled latency.
                        wait = self._latency_s - (time.monotonic() - turn["last_up"])
                        turn["last_up"] = 0.0
                        if wait > 0:
                            link.closed.wait(wait)
                    with self._stats_lock:
                        self.stats.bytes_down += len(data)
                if self._bytes_per_s:
                    link.closed.wait(len(data) / self._bytes_per_s)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            with self._lock:
                link.pumps_left -= 1
                last = link.pumps_left == 0
                if last:
                    self._links.discard(link)
            if last:
                link.closed.set()
                src.close()
                dst.close()


def _request_method(data: bytes) -> bytes:
    """The method of an HTTP/1.x request line at the start of ``data``, else b""."""
    line = data[:256].split(b"\r\n", 1)[0]
    method, _, rest = line.partition(b" ")
    return method if method in _METHODS and b" HTTP/1." in rest else b""


# --- a hostile HTTP source -------------------------------------------------------
class _HostileHandler(BaseHTTPRequestHandler):
    """``/trickle?every=S&bytes=N``: N bytes, one every S seconds;
    ``/redirect?to=URL``: 302 to URL; ``/loop``: 302 to itself;
    ``/lie?claim=N&send=M``: Content-Length N, M bytes sent, then hang up;
    anything else: 404. Every request is counted in ``hits``."""

    hits: list[str]
    closing: threading.Event

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        self.hits.append(self.path)
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/trickle":
            every, total = float(query.get("every", "1")), int(query.get("bytes", "1000"))
            self.send_response(200)
            self.send_header("Content-Length", str(total))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            for _ in range(total):
                if self.closing.wait(every):
                    return
                try:
                    self.wfile.write(b"\x00")
                    self.wfile.flush()
                except OSError:
                    return
        elif parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", query.get("to", "/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif parts.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif parts.path == "/lie":
            claim, send = int(query.get("claim", "1000")), int(query.get("send", "10"))
            self.send_response(200)
            self.send_header("Content-Length", str(claim))
            self.end_headers()
            self.wfile.write(b"\x00" * send)
            self.close_connection = True
        else:
            self.send_error(404)


class HostileSource:
    """A local HTTP source that misbehaves on request (see ``_HostileHandler``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        _require_loopback(host)
        self.hits: list[str] = []
        self._closing = threading.Event()
        handler = type("Hostile", (_HostileHandler,), {"hits": self.hits, "closing": self._closing})
        self.server = BackgroundServer(handler, host=host, port=port, name="hostile-source")

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def netloc(self) -> str:
        return self.server.netloc

    def start(self) -> HostileSource:
        self.server.start()
        return self

    def close(self) -> None:
        self._closing.set()
        self.server.close()

    def __enter__(self) -> HostileSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
