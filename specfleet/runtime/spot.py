"""Graceful drain on spot interruption or Auto Scaling termination.

``SpotWatch`` is a polling middleware: every ``poll_s`` it asks IMDSv2 for
``spot/instance-action`` (AWS posts it two minutes before reclaiming a spot
instance) and ``autoscaling/target-lifecycle-state`` (``Terminated`` when the
group scales in; the ASG's lifecycle hook gives the worker time). On either it
calls ``worker.stop()``: the worker stops taking jobs and hands in-flight ones
back after ``drain_s`` (see ``Worker.stop``), so no job is lost.

The default middleware adds it only when ``settings.imds_url`` is set (the
user-data sets it on EC2; the fleet emulator points it at a stub).
"""

from __future__ import annotations

import logging

import httpx

from .middleware import Polling, WorkerControl

log = logging.getLogger("specfleet.runtime.spot")

TOKEN_TTL_S = 21600


class ImdsClient:
    """Minimal IMDSv2 client: token, then GETs with the token header."""

    def __init__(self, base_url: str, timeout_s: float = 2.0):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout_s, trust_env=False)
        self._token: str | None = None

    def _fetch_token(self) -> str:
        resp = self._http.put(
            f"{self.base_url}/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_S)}
        )
        resp.raise_for_status()
        return resp.text

    def get(self, path: str) -> str | None:
        """The value at ``/latest/meta-data/<path>``, or None when it is absent (404)."""
        for attempt in (1, 2):
            if self._token is None:
                self._token = self._fetch_token()
            resp = self._http.get(
                f"{self.base_url}/latest/meta-data/{path}", headers={"X-aws-ec2-metadata-token": self._token}
            )
            if resp.status_code == 401 and attempt == 1:  # token expired: get a new one once
                self._token = None
                continue
            if resp.status_code == 404:
                return None
            resp.raise_for_status()
            return resp.text
        return None

    def close(self) -> None:
        self._http.close()


def termination_notice(imds: ImdsClient) -> str | None:
    """Why this instance is going away, or None if it is not."""
    action = imds.get("spot/instance-action")
    if action:
        return f"spot interruption notice: {action}"
    state = imds.get("autoscaling/target-lifecycle-state")
    if state and state.strip() == "Terminated":
        return "auto scaling group is terminating this instance"
    return None


class SpotWatch(Polling):
    name = "spot-watch"

    def __init__(self, imds_url: str, poll_s: float = 5.0):
        super().__init__(poll_s)
        self.imds_url = imds_url
        self.notice: str | None = None
        self._imds: ImdsClient | None = None

    def poll(self, worker: WorkerControl) -> bool:
        if self._imds is None:
            self._imds = ImdsClient(self.imds_url)
        try:
            notice = termination_notice(self._imds)
        except httpx.HTTPError as err:  # IMDS hiccup: keep watching
            log.debug("IMDS poll failed: %s", err)
            return False
        if not notice:
            return False
        self.notice = notice
        log.warning("%s: draining (no new jobs, in-flight ones handed back)", notice)
        worker.stop()
        return True

    def close(self) -> None:
        if self._imds is not None:
            self._imds.close()
