"""Measured throughput per pipeline: jobs one worker instance finishes per hour.

The figures live in ``throughput.json``, written by the fleet benchmark
(``python benchmarks/fleet.py --json --write``): real worker processes, S3
and SQS behind a proxy modelling AWS's latency and bandwidth. Each row names
the command, parameters and date that measured it (``measured``); a row
without them is refused, so ``fleet plan`` and the autoscaling targets
(``scaling.py``) never run on a hand-entered guess.
``SPECFLEET_FLEET_THROUGHPUT_FILE`` points at your own copy (measured on the
instance type you run). A plugged-in pipeline the benchmark does not know
states its own figure in its ``FleetProfile``; the plan says so.
``rate_per_hour`` scales CPU-bound pipelines' figures by vCPUs from the
reference instance type to the one you run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..pipelines import UnknownPipeline, get_spec
from .settings import FleetSettings


class ThroughputError(ValueError):
    """No usable throughput figure; the message says what to add where."""


#: The benchmark that measures the figures (and writes ``throughput.json``).
BENCHMARK = "benchmarks/fleet.py"
#: What a measured row must say about how it was measured.
PROVENANCE = ("command", "parameters", "date")


def measure_hint(pipeline: str) -> str:
    return f"python {BENCHMARK} --json --write --pipelines {pipeline}"


def provenance_problem(row: dict[str, Any]) -> str:
    """Why ``row`` is not a measured figure, or ``""`` when it is: it must say
    which ``benchmarks/fleet.py`` command, with which parameters, on which
    date produced it."""
    measured = row.get("measured")
    if not isinstance(measured, dict):
        return "it does not say how it was measured (no 'measured' entry)"
    missing = [k for k in PROVENANCE if not measured.get(k)]
    if missing:
        return f"its 'measured' entry lacks {', '.join(missing)}"
    if BENCHMARK not in str(measured["command"]):
        return f"it was not produced by {BENCHMARK} (command: {measured['command']!r})"
    if not isinstance(measured["parameters"], dict):
        return "its 'measured.parameters' is not an object"
    return ""


def load_throughput(settings: FleetSettings) -> dict[str, Any]:
    """The throughput table (see ``throughput.json``)."""
    if settings.fleet_throughput_file:
        return json.loads(Path(settings.fleet_throughput_file).read_text())
    return json.loads(resources.files("specfleet.fleet").joinpath("throughput.json").read_text())


def load_prices(settings: FleetSettings) -> dict[str, Any]:
    """The price table (instance prices and vCPUs, S3, SQS; see ``prices.json``)."""
    if settings.fleet_price_table:
        return json.loads(Path(settings.fleet_price_table).read_text())
    return json.loads(resources.files("specfleet.fleet").joinpath("prices.json").read_text())


@dataclass(frozen=True)
class Rate:
    pipeline: str
    instance_type: str
    jobs_per_hour: float
    source: str
    #: The table's row (objects and bytes per job for ``plan``).
    figures: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def jobs_per_s(self) -> float:
        return self.jobs_per_hour / 3600.0


def rate_per_hour(settings: FleetSettings, pipeline: str, instance_type: str | None = None) -> Rate:
    """Jobs per instance-hour of ``pipeline`` on ``instance_type`` (default:
    the table's reference type, else ``settings.fleet_instance_type``)."""
    table = load_throughput(settings)["pipelines"]
    row = table.get(pipeline)
    if row is None:
        try:
            own = get_spec(pipeline).fleet.jobs_per_instance_hour
        except UnknownPipeline as err:
            raise ThroughputError(f"no throughput figure for {pipeline!r}: {err}") from None
        if own is None:
            raise ThroughputError(
                f"no measured throughput for {pipeline!r}: measure it with `{measure_hint(pipeline)}` "
                f"(measured: {', '.join(sorted(table))}), or, for a plugin the benchmark does not run, "
                "state it in its FleetProfile(jobs_per_instance_hour=...)"
            )
        row = {"jobs_per_instance_hour": own,
               "source": f"stated by {pipeline}'s FleetProfile (a plugin's own figure, not measured by {BENCHMARK})"}
    else:
        problem = provenance_problem(row)
        if problem:
            raise ThroughputError(
                f"the throughput figure for {pipeline!r} is not a measured one: {problem}; "
                f"measure it with `{measure_hint(pipeline)}`"
            )
    itype = instance_type or row.get("reference_instance_type") or settings.fleet_instance_type
    rate = float(row["jobs_per_instance_hour"])
    if rate <= 0:
        raise ThroughputError(f"throughput of {pipeline!r} must be > 0 jobs per instance-hour, got {rate}")
    # What the measurement could not model (a stand-in's speed...): every plan repeats it.
    notes: list[str] = [str(row["caveat"])] if row.get("caveat") else []
    ref = row.get("reference_instance_type")
    if row.get("scales_with_vcpus") and ref and ref != itype:
        instances = load_prices(settings)["instances"]
        for needed in (ref, itype):
            if needed not in instances:
                raise ThroughputError(f"instance type {needed!r} has no vCPU count in the price table")
        rate *= instances[itype]["vcpus"] / instances[ref]["vcpus"]
        notes.append(f"rate scaled by vCPUs from {ref} ({row['jobs_per_instance_hour']}/h) to {itype}")
    budget = budget_per_hour(pipeline)
    figures = dict(row)
    if budget is not None and budget < rate:
        # The source's own limit (YouTube's session limit for the music
        # pipelines) is what an instance can do, however fast it could go.
        notes.append(
            f"planned at the per-instance budget of {budget:g} jobs/hour (the pipeline's own limit, e.g. "
            f"SPECFLEET_MUSIC_VIDEOS_PER_HOUR), below the measured {rate:.1f}/hour"
        )
        figures["measured_jobs_per_instance_hour"] = rate
        figures["budget_jobs_per_instance_hour"] = budget
        rate = budget
    return Rate(pipeline, itype, rate, str(row.get("source", "")), figures, tuple(notes))


def budget_per_hour(pipeline: str) -> float | None:
    """A pipeline's own per-instance budget: its settings'
    ``jobs_per_hour_cap`` (the music pipelines: videos per hour under
    YouTube's session limit), None when it has none."""
    try:
        spec = get_spec(pipeline)
    except UnknownPipeline:
        return None
    try:
        config = spec.config()
    except Exception:  # noqa: BLE001 - a pipeline whose settings do not load has no budget to plan by
        return None
    cap = getattr(config, "jobs_per_hour_cap", None)
    return float(cap) if isinstance(cap, (int, float)) and cap > 0 else None
