"""A threaded HTTP server on a background thread: the base of every local
stand-in (OOI archive, video site, chart pages + Spotify, stub IMDS)."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients drop keep-alive connections and abort transfers (a size
        # limit reached, a cancelled download): normal here, not errors.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class BackgroundServer:
    """``handler`` served on ``host:port`` (0: a free port) until ``close()``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, host: str = "127.0.0.1", port: int = 0,
                 name: str = "http-stand-in"):
        self.httpd = QuietServer((host, port), handler)
        self._thread = threading.Thread(target=self.httpd.serve_forever, name=name, daemon=True)

    @property
    def netloc(self) -> str:
        """``host:port``, as allowed-host settings name it."""
        host, port = self.httpd.server_address[:2]
        return f"{host.decode() if isinstance(host, bytes) else host}:{port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.netloc}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
