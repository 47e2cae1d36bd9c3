"""Backlog-per-instance autoscaling (target tracking, done by hand).

AWS's recommended SQS scaling metric is backlog per instance: with a worker
finishing ``r`` jobs per second and a decision every ``interval`` seconds,
one instance clears ``r * interval`` jobs per interval, so

    desired = ceil(backlog / (r * interval)),  clamped to [min_size, max_size],

and 0 when there is no backlog at all (scale to zero: idle workers cost money).
``min_size`` therefore applies only while there is work.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..settings import Settings


def desired_capacity(backlog: int, jobs_per_instance_per_interval: float, min_size: int = 0, max_size: int = 30) -> int:
    """Instances needed to clear ``backlog`` within one interval, bounded."""
    if backlog < 0:
        raise ValueError("backlog must be >= 0")
    if jobs_per_instance_per_interval <= 0:
        raise ValueError("jobs per instance per interval must be > 0")
    if min_size < 0 or max_size < min_size:
        raise ValueError(f"need 0 <= min_size <= max_size, got {min_size}..{max_size}")
    if backlog == 0:
        return 0
    needed = math.ceil(backlog / jobs_per_instance_per_interval)
    return max(min_size, min(max_size, needed))


def load_throughput(settings: Settings) -> dict[str, Any]:
    """Measured throughput per pipeline (see ``throughput.json``)."""
    if settings.fleet_throughput_file:
        return json.loads(Path(settings.fleet_throughput_file).read_text())
    return json.loads(resources.files("specfleet.fleet").joinpath("throughput.json").read_text())


def jobs_per_instance_per_s(settings: Settings, pipeline: str) -> float:
    table = load_throughput(settings)["pipelines"]
    if pipeline not in table:
        raise KeyError(f"no throughput figure for {pipeline!r} in the throughput table")
    return float(table[pipeline]["jobs_per_instance_hour"]) / 3600.0


@dataclass(frozen=True)
class Decision:
    pipeline: str
    backlog: int
    per_instance_per_interval: float
    desired: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(settings: Settings, pipeline: str, interval_s: float | None = None) -> Decision:
    """Read the queue's backlog (visible + in flight) and compute the target."""
    from ..pipelines import job_queue

    depth = job_queue(settings, pipeline).depth()
    backlog = depth["visible"] + depth["in_flight"]
    per = jobs_per_instance_per_s(settings, pipeline) * (interval_s or settings.fleet_scale_interval_s)
    return Decision(pipeline, backlog, per, desired_capacity(backlog, per, settings.fleet_min_size, settings.fleet_max_size))
