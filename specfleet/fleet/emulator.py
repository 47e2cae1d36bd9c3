"""Local fleet emulator: EC2 instances on moto become local worker processes.

It watches moto's EC2 (in every fleet region) for this deployment's
instances. For each new one it reads the user-data, takes the env block and
the ``specfleet work <pipeline>`` command out of it (``userdata.parse``) and
runs that command as a child process, as cloud-init + systemd would on EC2:

* the process gets the instance id (``SPECFLEET_INSTANCE_ID``) and its own
  stub IMDS (``SPECFLEET_IMDS_URL``), so spot notices can be sent per instance;
* terminating or stopping the instance SIGTERMs its process (the worker
  drains and hands jobs back);
* a process that exits with ``EXIT_BANNED`` (75) powers its instance off:
  the emulator stops it in moto, or terminates it when its shutdown behaviour
  is ``terminate`` (what ``fleet launch`` sets);
* after a spot notice the process is not restarted and the instance is
  terminated once the worker has drained (AWS reclaims it);
* any other exit is restarted like ``Restart=always`` in the unit, at most
  ``max_restarts`` times.

With ``autoscale`` it also plays CloudWatch and Auto Scaling for the stack's
groups: every ``scale_every_s`` it applies each group's deployed policies
(``autoscale.evaluate``: target tracking on backlog per instance, the step
from zero) to the live figures and sets the group's desired capacity; moto
then launches instances (which become workers) or terminates unprotected
ones (whose workers drain). Workers protect their instance from scale-in
while they hold jobs, as on AWS. And it plays the CloudWatch agent: each
worker's output is shipped to the log group its user-data names, one stream
per instance (``specfleet logs`` reads it).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..aws import client
from ..local.stack import EMULATOR_CREDENTIALS
from ..runtime.worker import EXIT_BANNED
from ..standins.imds import StubImds
from . import instances, userdata
from .autoscale import GroupView, deployment_groups, evaluate
from .logs import LogShipper
from .settings import FleetSettings

log = logging.getLogger("specfleet.fleet.emulator")

#: Variables a child inherits from this process; everything else comes from user-data.
PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "SSL_CERT_FILE")


@dataclass
class EmulatedInstance:
    instance_id: str
    region: str
    pipeline: str
    imds: StubImds
    env: dict[str, str]
    argv: list[str]
    log_path: Path
    shipper: LogShipper | None = None
    proc: subprocess.Popen[bytes] | None = None
    exit_codes: list[int] = field(default_factory=list)
    _recorded_pids: set[int] = field(default_factory=set)
    restarts: int = 0
    #: "running", "draining" (SIGTERM sent), "banned", "reclaimed", "done"
    phase: str = "running"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class FleetEmulator:
    def __init__(
        self,
        settings: FleetSettings,
        *,
        regions: list[str] | None = None,
        log_dir: Path | None = None,
        poll_s: float = 0.25,
        max_restarts: int = 3,
        autoscale: bool = False,
        scale_every_s: float = 1.0,
        ship_logs: bool = True,
    ):
        if not settings.endpoint_url:
            raise ValueError("the fleet emulator runs only against a local endpoint (moto), never against AWS")
        self.settings = settings
        self.autoscale = autoscale
        self.scale_every_s = scale_every_s
        self.ship_logs = ship_logs
        #: Every scaling decision that changed a group's desired capacity.
        self.scaling: list[GroupView] = []
        self._last_scale = 0.0
        self.regions = regions or instances.fleet_regions(settings)
        self.log_dir = Path(log_dir or Path(settings.local_dir) / "fleet").resolve()
        self.poll_s = poll_s
        self.max_restarts = max_restarts
        self.instances: dict[str, EmulatedInstance] = {}
        self._ignored: set[str] = set()
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------
    def start(self) -> FleetEmulator:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="fleet-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 20) -> None:
        """Stop watching; SIGTERM every worker, then SIGKILL stragglers."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout_s)
        with self._lock:
            members = list(self.instances.values())
        for inst in members:
            if inst.alive and inst.proc:
                inst.proc.send_signal(signal.SIGTERM)
        for inst in members:
            if inst.proc:
                try:
                    inst.proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    inst.proc.kill()
                    inst.proc.wait()
            self._record_exit(inst)
            if inst.phase in ("running", "draining"):
                inst.phase = "done"
            inst.imds.stop()
            if inst.shipper is not None and self.ship_logs:
                try:
                    inst.shipper.ship()  # what the worker wrote while stopping
                except Exception:
                    log.exception("shipping %s's last log lines failed", inst.instance_id)

    def __enter__(self) -> FleetEmulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- queries for tests and the CLI ---------------------------------------------
    def get(self, instance_id: str) -> EmulatedInstance | None:
        with self._lock:
            return self.instances.get(instance_id)

    def alive(self) -> list[EmulatedInstance]:
        with self._lock:
            return [i for i in self.instances.values() if i.alive]

    # --- the watch loop ---------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception:  # keep emulating; moto may be briefly busy
                log.exception("fleet emulator sync failed")
            self._stop.wait(self.poll_s)

    def sync(self) -> None:
        """One pass: scale the groups, spawn new instances, react to state
        changes and exits, ship logs."""
        if self.autoscale and time.monotonic() - self._last_scale >= self.scale_every_s:
            self._last_scale = time.monotonic()
            self.scale_groups()
        seen: dict[str, instances.InstanceInfo] = {}
        for info in instances.list_instances(self.settings, regions=self.regions):
            seen[info.instance_id] = info
        for info in seen.values():
            if info.instance_id in self._ignored:
                continue
            known = self.get(info.instance_id)
            if known is None:
                if info.state in instances.LIVE_STATES:
                    self._spawn(info)
                continue
            self._reconcile(known, info.state)
        with self._lock:
            vanished = [i for i in self.instances.values() if i.instance_id not in seen]
        for inst in vanished:  # gone from EC2's listing (terminated long enough): as terminated
            self._reconcile(inst, "terminated")
        if self.ship_logs:
            with self._lock:
                members = list(self.instances.values())
            for inst in members:
                if inst.shipper is not None:
                    inst.shipper.ship()

    def scale_groups(self) -> list[GroupView]:
        """Apply each group's policies once; return the decisions."""
        views = []
        api = client("autoscaling", self.settings)
        for group in deployment_groups(self.settings):
            view = evaluate(self.settings, group)
            # Always set it: moto terminates the surplus only when told, and
            # instances whose protection was lifted since are surplus now.
            api.set_desired_capacity(
                AutoScalingGroupName=view.name, DesiredCapacity=view.decision.desired, HonorCooldown=False)
            if view.decision.desired != view.decision.desired_before:
                log.info("%s: %s %d -> %d (%s: %s)", view.name, view.decision.change, view.decision.desired_before,
                         view.decision.desired, view.decision.policy, view.decision.reason)
                with self._lock:
                    self.scaling.append(view)
                    del self.scaling[:-1000]
            views.append(view)
        return views

    def _spawn(self, info: instances.InstanceInfo) -> None:
        script = instances.user_data_of(self.settings, info.region, info.instance_id)
        try:
            parsed = userdata.parse(script, info.instance_id)
        except userdata.UserDataError as err:
            log.warning("instance %s: user-data not runnable here (%s); leaving it alone", info.instance_id, err)
            self._ignored.add(info.instance_id)
            return
        imds = StubImds(info.instance_id).start()
        env = {k: os.environ[k] for k in PASS_THROUGH if k in os.environ}
        env.update(EMULATOR_CREDENTIALS)
        env.update(parsed.env)
        # The template's user-data names no endpoint (AWS needs none): the
        # emulated instance talks to the emulator it runs in, never to AWS.
        if self.settings.endpoint_url:
            env["SPECFLEET_ENDPOINT_URL"] = self.settings.endpoint_url
        env["SPECFLEET_INSTANCE_ID"] = info.instance_id
        env["SPECFLEET_IMDS_URL"] = imds.url
        env.setdefault("SPECFLEET_IMDS_POLL_S", "0.5")
        if "SPECFLEET_ENDPOINT_URL" in env:
            env["AWS_ENDPOINT_URL"] = env["SPECFLEET_ENDPOINT_URL"]
        # The real command is `specfleet work <pipeline>`; run the same CLI with this interpreter.
        argv = [sys.executable, "-m", "specfleet.cli.main", *parsed.argv[1:]]
        log_path = self.log_dir / f"{info.instance_id}.log"
        target = parsed.log_target()
        shipper = (LogShipper(self.settings, info.region, log_path, target[1], info.instance_id)
                   if target and self.ship_logs else None)
        inst = EmulatedInstance(
            instance_id=info.instance_id, region=info.region, pipeline=parsed.pipeline, imds=imds,
            env=env, argv=argv, log_path=log_path, shipper=shipper,
        )
        with self._lock:
            self.instances[info.instance_id] = inst
        self._start_process(inst)
        log.info("instance %s (%s, %s): worker pid %s", info.instance_id, info.region, parsed.pipeline, inst.proc.pid if inst.proc else "?")

    def _start_process(self, inst: EmulatedInstance) -> None:
        logfile = open(inst.log_path, "ab")
        try:
            inst.proc = subprocess.Popen(
                inst.argv, env=inst.env, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=os.getcwd(),
            )
        finally:
            logfile.close()

    def _reconcile(self, inst: EmulatedInstance, state: str) -> None:
        if state not in instances.LIVE_STATES:
            # Stopped or terminated in EC2: the OS would SIGTERM the worker.
            if inst.alive and inst.phase == "running" and inst.proc:
                inst.proc.send_signal(signal.SIGTERM)
                inst.phase = "draining"
            if not inst.alive and inst.phase in ("running", "draining"):
                self._record_exit(inst)
                inst.phase = "done"
            return
        if inst.alive:
            return
        if inst.phase in ("banned", "reclaimed", "done"):
            return
        code = self._record_exit(inst)
        api = instances.ec2(self.settings, inst.region)
        if code == EXIT_BANNED:
            inst.phase = "banned"
            behaviour = api.describe_instance_attribute(
                InstanceId=inst.instance_id, Attribute="instanceInitiatedShutdownBehavior"
            ).get("InstanceInitiatedShutdownBehavior", {}).get("Value", "stop")
            log.warning("instance %s: worker exited banned (75): powering off (%s)", inst.instance_id, behaviour)
            if behaviour == "terminate":
                api.terminate_instances(InstanceIds=[inst.instance_id])
            else:
                api.stop_instances(InstanceIds=[inst.instance_id])
        elif inst.imds.interrupted:
            inst.phase = "reclaimed"
            log.warning("instance %s: drained after its termination notice; reclaiming it", inst.instance_id)
            api.terminate_instances(InstanceIds=[inst.instance_id])
        elif inst.restarts < self.max_restarts:
            inst.restarts += 1
            log.warning("instance %s: worker exited %s; restarting (%d)", inst.instance_id, code, inst.restarts)
            self._start_process(inst)
        else:
            inst.phase = "done"
            log.error("instance %s: worker keeps exiting (last %s); giving up", inst.instance_id, code)

    @staticmethod
    def _record_exit(inst: EmulatedInstance) -> int:
        """The exit code of the current process, recorded once per process."""
        if inst.proc is None or inst.proc.returncode is None:
            return -1
        if inst.proc.pid not in inst._recorded_pids:
            inst._recorded_pids.add(inst.proc.pid)
            inst.exit_codes.append(inst.proc.returncode)
        return inst.proc.returncode
