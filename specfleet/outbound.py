"""Outbound fetches from outside input: which hosts, which addresses, how long.

Job URLs, redirects and API answers are outside input, and a worker runs
inside a VPC next to an instance-metadata endpoint, a database and other
private services. Every fetch of a URL we did not write ourselves goes
through one ``HostPolicy``:

* **hosts** -- the URL's host must be on the policy's list (``host`` or
  ``host:port``); IP addresses must be written canonically (``2130706433``,
  ``0x7f.1`` and friends are refused, not resolved);
* **addresses** -- every connection made while the policy is active is
  checked *at connect time*, after DNS: a non-public address (private,
  loopback, link-local, ULA, reserved, multicast) is refused unless the list
  names that address literally (the local stand-ins: ``127.0.0.1:8123``).
  Checking the address the socket is about to connect to, rather than a
  resolution done beforehand, also covers DNS rebinding;
* **redirects** -- ``guarded_client`` sends every hop through the same
  check (httpx hands each redirect to the transport), so a redirect to
  another host, to ``file://`` or round in a loop ends the fetch as refused;
* **time** -- ``stream_to_file`` enforces a total budget per fetch on top of
  the per-read timeout (a source sending one byte a minute cannot hold a
  worker for days) and a byte limit.

``guard_connections`` applies the address check to code that opens its own
connections (yt-dlp) for the current thread only, so the worker's own AWS
calls in other threads are unaffected.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx


class OutboundRefused(ValueError):
    """A URL or address the policy does not allow; the message says why.

    Never retried: the same URL is refused the same way next time."""


class HostNotAllowed(OutboundRefused):
    """The URL names a host the policy's list does not hold: this worker's
    configuration, not the job, decides that (``runtime.errors.Misconfigured``)."""


class FetchTooSlow(Exception):
    """A fetch ran over its total time budget."""


class FetchTooLarge(Exception):
    """A fetch ran over its byte limit."""


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?)*$")
#: Things inet_aton would read as an IPv4 address although they are not dotted quads.
_NUMERIC_HOST_RE = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$")


def _ip(text: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (a URL's hostname, no brackets)."""
    ip = _ip(host)
    return host == "localhost" if ip is None else ip.is_loopback


def is_public(ip: IpAddress) -> bool:
    """A globally routable unicast address (IPv4-mapped IPv6 judged as IPv4)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _split_entry(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IP -> (host, port)."""
    entry = entry.strip().lower()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        if not port.isdigit():
            raise ValueError(f"allowed host entry {entry!r}: port must be a number")
        return host, int(port)
    return entry, None


@dataclass(frozen=True)
class HostPolicy:
    """Hosts a fetch may name and private addresses it may reach (see module doc)."""

    #: ``(host, port or None for any port)`` a URL may name.
    hosts: frozenset[tuple[str, int | None]]
    #: Non-public ``(address, port or None)`` a connection may reach; only
    #: ever addresses the host list names literally.
    private_ok: frozenset[tuple[IpAddress, int | None]]
    #: Used in messages ("hydrophone source", "video site").
    what: str = "source"

    @classmethod
    def of(cls, entries: list[str] | tuple[str, ...], what: str = "source") -> HostPolicy:
        hosts: set[tuple[str, int | None]] = set()
        private: set[tuple[IpAddress, int | None]] = set()
        for entry in entries:
            host, port = _split_entry(entry)
            if not host:
                continue
            hosts.add((host, port))
            literal = _ip(host)
            if host == "localhost":
                private.update({(ipaddress.ip_address("127.0.0.1"), port), (ipaddress.ip_address("::1"), port)})
            elif literal is not None and not is_public(literal):
                private.add((literal, port))
        return cls(frozenset(hosts), frozenset(private), what)

    @classmethod
    def for_urls(cls, urls: list[str], what: str = "source") -> HostPolicy:
        """The hosts of our own configured endpoints (and nothing else)."""
        entries = []
        for url in urls:
            parts = urlsplit(url)
            if parts.hostname:
                entries.append(parts.netloc.rpartition("@")[2])
        return cls.of(entries, what)

    def describe(self) -> str:
        return ", ".join(sorted(h if p is None else f"{h}:{p}" for h, p in self.hosts)) or "none"

    # --- URL check (before any connection) -------------------------------------
    def check_url(self, url: str) -> str:
        """Return ``url`` if the policy allows it, else raise ``OutboundRefused``."""
        if not isinstance(url, str) or not url:
            raise OutboundRefused(f"{self.what} URL is empty")
        if any(c in url for c in "\r\n\t\x00 "):
            raise OutboundRefused(f"{self.what} URL contains whitespace or control characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as err:
            raise OutboundRefused(f"{self.what} URL is malformed: {err}") from None
        if parts.scheme not in ("http", "https"):
            raise OutboundRefused(f"{self.what} URL scheme must be http or https, got {parts.scheme or 'none'!r}")
        if parts.username is not None or parts.password is not None:
            raise OutboundRefused(f"{self.what} URL may not carry user credentials")
        host = (parts.hostname or "").lower()
        if not host:
            raise OutboundRefused(f"{self.what} URL has no host")
        literal = _ip(host)
        if literal is None and (_NUMERIC_HOST_RE.fullmatch(host) or not _HOSTNAME_RE.fullmatch(host)):
            raise OutboundRefused(f"{self.what} host {host!r} is not a hostname or a canonical IP address")
        if (host, None) not in self.hosts and (host, port or _default_port(parts.scheme)) not in self.hosts:
            raise HostNotAllowed(f"{self.what} host {parts.netloc!r} is not allowed (allowed: {self.describe()})")
        if literal is not None and not is_public(literal) and not self._private_allowed(literal, port):
            raise OutboundRefused(f"{self.what} address {host} is not public")
        return url

    # --- address check (at connect time, after DNS) --------------------------------
    def _private_allowed(self, ip: IpAddress, port: int | None) -> bool:
        return (ip, None) in self.private_ok or (ip, port) in self.private_ok

    def check_address(self, host: str, port: int) -> None:
        ip = _ip(str(host))
        if ip is None:  # connect() with a name: resolve as the socket would, check every answer
            for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
                self.check_address(str(info[4][0]), port)
            return
        if not is_public(ip) and not self._private_allowed(ip, port):
            raise OutboundRefused(f"{self.what}: connection to non-public address {ip} refused")


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


# --- connect-time guard ----------------------------------------------------------
_active = threading.local()
_install_lock = threading.Lock()
_installed = False


class Budget:
    """The time budget of a guarded scope: when it runs out, every socket the
    scope opened is shut down (waking reads blocked on a trickling source)
    and further connections are refused."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.expired = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        if seconds is not None:
            self._timer = threading.Timer(max(0.0, seconds), self._expire)
            self._timer.daemon = True
            self._timer.start()

    def opened(self, sock: socket.socket) -> None:
        if self.expired.is_set():
            raise FetchTooSlow(f"fetch took longer than its {self.seconds:g} s budget")
        with self._lock:
            self._sockets.append(sock)

    def _expire(self) -> None:
        self.expired.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._sockets = []


def _install_connect_hook() -> None:
    """Wrap ``socket.socket.connect`` once; the wrapper checks only threads
    inside ``guard_connections`` (one attribute lookup for the rest)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        original = socket.socket.connect

        def connect(sock: socket.socket, address: Any) -> None:
            scope: tuple[HostPolicy, Budget] | None = getattr(_active, "scope", None)
            if scope is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                scope[0].check_address(address[0], address[1])
                scope[1].opened(sock)
            return original(sock, address)

        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
        _installed = True


@contextmanager
def guard_connections(policy: HostPolicy, budget_s: float | None = None) -> Iterator[Budget]:
    """Check every TCP connection this thread opens against ``policy``; with
    ``budget_s``, end them all when the budget runs out (``budget.expired``
    tells the caller why its read failed)."""
    _install_connect_hook()
    previous: tuple[HostPolicy, Budget] | None = getattr(_active, "scope", None)
    # A scope without a budget inside one with a budget (GuardedTransport's,
    # inside a caller's) keeps the outer budget: its sockets are the outer
    # fetch's, and must end with it.
    outer = previous[1] if previous is not None else None
    inherited = budget_s is None and outer is not None and outer.seconds is not None
    budget = outer if inherited and outer is not None else Budget(budget_s)
    _active.scope = (policy, budget)
    try:
        yield budget
    finally:
        if not inherited:
            budget.cancel()
        _active.scope = previous


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport that checks every request (every redirect hop
    included) and the connection it opens against a ``HostPolicy``."""

    def __init__(self, policy: HostPolicy, **kwargs: Any):
        super().__init__(**kwargs)
        self.policy = policy

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.policy.check_url(str(request.url))
        with guard_connections(self.policy):
            return super().handle_request(request)


def guarded_client(
    policy: HostPolicy, *, connect_timeout_s: float = 10.0, read_timeout_s: float = 60.0, max_redirects: int = 5
) -> httpx.Client:
    """An httpx client that follows at most ``max_redirects`` redirects, each
    one checked; proxies from the environment are ignored (they would hide
    the real destination from the address check)."""
    return httpx.Client(
        transport=GuardedTransport(policy),
        timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
        follow_redirects=True,
        max_redirects=max_redirects,
        trust_env=False,
    )


def is_permanent_fetch_error(err: BaseException) -> bool:
    """Errors that the same request would meet again: never worth a retry."""
    return isinstance(err, (OutboundRefused, httpx.UnsupportedProtocol, httpx.TooManyRedirects, httpx.InvalidURL))


# --- bounded streaming ------------------------------------------------------------
@dataclass(frozen=True)
class FetchLimits:
    #: Largest body accepted; bigger ones stop as soon as the header or the count shows it.
    max_bytes: int
    connect_timeout_s: float = 10.0
    #: Longest wait for any one read.
    read_timeout_s: float = 60.0
    #: Longest a whole fetch may take, redirects and all.
    budget_s: float = 600.0
    max_redirects: int = 5


@contextmanager
def _deadline(response: httpx.Response, seconds: float) -> Iterator[threading.Event]:
    """Shut the response's socket down when ``seconds`` have passed, waking a
    read blocked on a trickling source; the event tells that it happened."""
    fired = threading.Event()
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None

    def expire() -> None:
        fired.set()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(max(0.0, seconds), expire)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


def stream_to_file(response: httpx.Response, dest: Path, limits: FetchLimits, started: float) -> int:
    """Write an open streaming ``response`` to ``dest`` within ``limits``;
    ``started`` is when the fetch began (``time.monotonic()``). Raises
    ``FetchTooLarge`` / ``FetchTooSlow``; returns the byte count."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limits.max_bytes:
        raise FetchTooLarge(f"body is {int(length)} bytes, over the {limits.max_bytes}-byte limit")
    remaining = limits.budget_s - (time.monotonic() - started)
    written = 0
    with _deadline(response, remaining) as expired, open(dest, "wb") as out:
        try:
            for piece in response.iter_bytes():
                if expired.is_set() or time.monotonic() - started > limits.budget_s:
                    break
                written += len(piece)
                if written > limits.max_bytes:
                    raise FetchTooLarge(f"body is over the {limits.max_bytes}-byte limit (stopped at {written} bytes)")
                out.write(piece)
        except httpx.TransportError:
            if not expired.is_set():
                raise
        if expired.is_set() or time.monotonic() - started > limits.budget_s:
            raise FetchTooSlow(
                f"fetch took longer than its {limits.budget_s:g} s budget ({written} bytes received)"
            )
    return written
