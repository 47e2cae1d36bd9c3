"""A local stand-in for the two Session Manager calls `specfleet db tunnel`
makes (moto has no Session Manager): ``AmazonSSM.StartSession`` and
``AmazonSSM.TerminateSession`` over the JSON protocol boto3 speaks. It
records the requests; the session it hands out is carried by the stand-in
``session-manager-plugin`` (tests/standin_bin), a loopback TCP relay."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

from specfleet.standins.http import BackgroundServer


class SsmStandIn:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                target = self.headers.get("X-Amz-Target", "")
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                action = target.rsplit(".", 1)[-1]
                with standin._lock:
                    standin.requests.append((action, body))
                if action == "StartSession":
                    session = f"standin-{uuid.uuid4().hex[:8]}"
                    answer = {"SessionId": session, "TokenValue": uuid.uuid4().hex,
                              "StreamUrl": f"wss://ssmmessages.invalid/v1/data-channel/{session}"}
                elif action == "TerminateSession":
                    answer = {"SessionId": body.get("SessionId", "")}
                else:
                    return self._send(400, {"__type": "InvalidAction", "message": f"not in the stand-in: {target}"})
                self._send(200, answer)

            def _send(self, code: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = BackgroundServer(Handler, name="ssm-stand-in")

    @property
    def url(self) -> str:
        return self.server.base_url

    def start(self) -> SsmStandIn:
        self.server.start()
        return self

    def close(self) -> None:
        self.server.close()

    def calls(self, action: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for name, body in self.requests if name == action]
