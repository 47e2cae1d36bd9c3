"""Scale-in protection while a worker holds jobs.

A worker on an Auto Scaling instance marks its instance protected from
scale-in (``SetInstanceProtection``) before it starts a job and lifts the
mark once it has held no job for a poll interval, so the group's target
tracking never terminates a busy instance: AWS's pattern for queue workers.
When the group scales in while every instance is busy, Auto Scaling lowers
the desired capacity and terminates instances as their protection lifts.

The worker finds its group once with ``DescribeAutoScalingInstances``; an
instance outside any group (``fleet launch``, a laptop) leaves it idle. A
failed call is logged and retried on the next poll: protection is an
optimisation over the drain that ``SpotWatch`` does on termination, not the
only thing that keeps jobs.
"""

from __future__ import annotations

import logging
import threading
import time

from ..aws import client
from ..queues import Message
from ..settings import Settings
from .middleware import Polling, WorkerControl
from .outcome import Outcome

log = logging.getLogger("specfleet.runtime.protection")


class ScaleInProtection(Polling):
    name = "scale-in-protection"

    def __init__(self, settings: Settings, poll_s: float = 5.0):
        super().__init__(poll_s)
        self.settings = settings
        self.group: str | None = None
        self.protected = False
        self.calls = 0
        self._held = 0
        self._idle_since = time.monotonic()
        self._lock = threading.Lock()
        self._api_lock = threading.Lock()

    def before_worker_start(self, worker: WorkerControl) -> None:
        try:
            found = client("autoscaling", self.settings).describe_auto_scaling_instances(
                InstanceIds=[self.settings.instance_id])["AutoScalingInstances"]
        except Exception as err:  # no permission, not on EC2, endpoint down: run unprotected
            log.warning("cannot tell whether %s is in an Auto Scaling group (%s): no scale-in protection",
                        self.settings.instance_id, err)
            found = []
        if found:
            self.group = str(found[0]["AutoScalingGroupName"])
            log.info("instance %s in group %s: protecting it from scale-in while it holds jobs",
                     self.settings.instance_id, self.group)
            super().before_worker_start(worker)

    def before_process(self, worker: WorkerControl, message: Message) -> None:
        with self._lock:
            self._held += 1
        if self.group is not None:
            self._reconcile()

    def after_process(self, worker: WorkerControl, message: Message, outcome: Outcome) -> None:
        with self._lock:
            self._held -= 1
            if self._held == 0:
                self._idle_since = time.monotonic()

    def after_worker_stop(self, worker: WorkerControl) -> None:
        super().after_worker_stop(worker)
        if self.group is not None and self.protected:
            self._set(False)

    def poll(self, worker: WorkerControl) -> bool:
        self._reconcile()
        return False

    def _reconcile(self) -> None:
        with self._lock:
            want = self._held > 0 or time.monotonic() - self._idle_since < self.interval_s
        if want != self.protected:
            self._set(want)

    def _set(self, protected: bool) -> None:
        with self._api_lock:
            if protected == self.protected:
                return
            try:
                client("autoscaling", self.settings).set_instance_protection(
                    InstanceIds=[self.settings.instance_id], AutoScalingGroupName=self.group,
                    ProtectedFromScaleIn=protected)
            except Exception as err:
                log.warning("could not %s scale-in protection of %s: %s", "set" if protected else "lift",
                            self.settings.instance_id, err)
                return
            self.protected = protected
            self.calls += 1
