"""A stub EC2 instance metadata service (IMDSv2) on 127.0.0.1.

Serves what specfleet's workers read: ``PUT /latest/api/token``,
``/latest/meta-data/instance-id``, ``/latest/meta-data/spot/instance-action``
(404 until ``interrupt()``) and
``/latest/meta-data/autoscaling/target-lifecycle-state`` (``InService`` until
``set_lifecycle("Terminated")``). Like the real one it refuses metadata
requests without a valid token (401). One stub per emulated instance.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from .http import BackgroundServer

TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"


class StubImds:
    def __init__(self, instance_id: str, host: str = "127.0.0.1", port: int = 0):
        self.instance_id = instance_id
        self._tokens: set[str] = set()
        self._spot_action: dict[str, str] | None = None
        self._lifecycle = "InService"
        self._lock = threading.Lock()
        self.requests = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, code: int, body: str = "", ctype: str = "text/plain") -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                if self.path != "/latest/api/token":
                    return self._send(404, "not found")
                ttl = self.headers.get(TTL_HEADER, "")
                if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                    return self._send(400, "missing or invalid token TTL")
                token = secrets.token_urlsafe(24)
                with stub._lock:
                    stub._tokens.add(token)
                self._send(200, token)

            def do_GET(self) -> None:
                with stub._lock:
                    stub.requests += 1
                    authorised = self.headers.get(TOKEN_HEADER, "") in stub._tokens
                    action = stub._spot_action
                    lifecycle = stub._lifecycle
                if not authorised:
                    return self._send(401, "IMDSv2 token required")
                if self.path == "/latest/meta-data/instance-id":
                    return self._send(200, stub.instance_id)
                if self.path == "/latest/meta-data/spot/instance-action":
                    if action is None:
                        return self._send(404, "not found")
                    return self._send(200, json.dumps(action), "application/json")
                if self.path == "/latest/meta-data/autoscaling/target-lifecycle-state":
                    return self._send(200, lifecycle)
                self._send(404, "not found")

        self._server = BackgroundServer(Handler, host=host, port=port, name=f"imds-{instance_id}")

    @property
    def url(self) -> str:
        return self._server.base_url

    def start(self) -> StubImds:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.close()

    def interrupt(self, action: str = "terminate", in_s: int = 120) -> None:
        """Post a spot interruption notice (what AWS gives two minutes ahead)."""
        when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=in_s)
        with self._lock:
            self._spot_action = {"action": action, "time": when.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def set_lifecycle(self, state: str) -> None:
        with self._lock:
            self._lifecycle = state

    @property
    def interrupted(self) -> bool:
        with self._lock:
            return self._spot_action is not None or self._lifecycle == "Terminated"
