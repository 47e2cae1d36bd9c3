"""``fleet plan``: instances, wall time and cost before launching.

From the measured throughput (``throughput.json``) and a price table
(``prices.json``): how many instances meet a deadline (or how long the
configured maximum takes), compute cost on-demand and on spot, S3 request and
storage cost, and SQS request cost. Per-second billing is approximated by
instance-hours; storage is priced for one month.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, Field

from .settings import FleetSettings
from .throughput import ThroughputError, load_prices, rate_per_hour

#: SQS requests per job when the throughput row has no measured count:
#: receive, delete, status send, writer receive + delete (batched by up to
#: 10, so this is an upper bound).
SQS_REQUESTS_PER_JOB = 5
#: The status writer's side, added to a measured worker-side count (the
#: benchmark sees only the worker's requests): its receive and delete of the
#: job's status messages (batched, so an upper bound).
WRITER_SQS_REQUESTS_PER_JOB = 2


HOURS_PER_MONTH = 730


class PlanError(ValueError):
    pass


class Plan(BaseModel):
    pipeline: str
    jobs: int
    instance_type: str
    instances: int
    jobs_per_instance_hour: float
    wall_hours: float
    instance_hours: float
    compute_on_demand_usd: float
    compute_spot_usd: float
    s3_put_usd: float
    #: GET and HEAD requests (reading inputs), when the throughput row counts them.
    s3_get_usd: float = 0.0
    s3_storage_gb: float
    s3_storage_month_usd: float
    sqs_usd: float
    #: Reading every result out of AWS once (data transfer out to the internet).
    egress_gb: float
    egress_usd: float
    #: The stack's fixed costs (database, VPC endpoints, secret) for the run's wall time.
    fixed_usd: float
    fixed_month_usd: float
    total_spot_usd: float
    total_on_demand_usd: float
    throughput_source: str
    notes: list[str] = Field(default_factory=list)


def requests_per_job(figures: dict[str, Any]) -> tuple[float, float, float]:
    """S3 PUTs, S3 GETs and SQS requests per job: the counts measured at the
    benchmark's proxy when the throughput row has them, else upper bounds."""
    puts = float(figures.get("s3_put_requests_per_job", figures.get("objects_per_job", 0)))
    gets = float(figures.get("s3_get_requests_per_job", 0))
    if "sqs_requests_per_job" in figures:
        sqs = float(figures["sqs_requests_per_job"]) + WRITER_SQS_REQUESTS_PER_JOB
    else:
        sqs = SQS_REQUESTS_PER_JOB
    return puts, gets, sqs


def plan(
    settings: FleetSettings,
    pipeline: str,
    jobs: int,
    *,
    instance_type: str | None = None,
    deadline_h: float | None = None,
    max_instances: int | None = None,
    instances: int | None = None,
    read_out: float | None = None,
) -> Plan:
    """Instances, hours and dollars for ``jobs`` jobs: ``instances`` fixed (a
    launch), else as many as meet ``deadline_h``, else one per hour of work,
    capped at ``max_instances``. ``read_out``: the share of the results read
    out of AWS once (default ``settings.fleet_results_read_out``)."""
    share = settings.fleet_results_read_out if read_out is None else read_out
    if not 0.0 <= share <= 1.0:
        raise PlanError(f"the share of results read out of AWS must be between 0 and 1, got {share}")
    if jobs < 1:
        raise PlanError("jobs must be at least 1")
    if deadline_h is not None and deadline_h <= 0:
        raise PlanError("deadline must be a positive number of hours")
    prices = load_prices(settings)
    if instance_type is not None and instance_type not in prices["instances"]:
        raise PlanError(f"no price for instance type {instance_type!r}; known: {', '.join(sorted(prices['instances']))}")
    try:
        measured = rate_per_hour(settings, pipeline, instance_type)
    except ThroughputError as err:
        raise PlanError(str(err)) from None
    itype, rate, t = measured.instance_type, measured.jobs_per_hour, measured.figures
    if itype not in prices["instances"]:
        raise PlanError(f"no price for instance type {itype!r}; known: {', '.join(sorted(prices['instances']))}")
    price = prices["instances"][itype]
    notes = list(measured.notes)
    cap = max_instances or settings.fleet_max_size
    if instances is not None:
        n = max(1, instances)
    elif deadline_h is not None:
        n = math.ceil(jobs / (rate * deadline_h))
        if n > cap:
            notes.append(f"meeting {deadline_h} h needs {n} instances, above the configured max {cap}")
    else:
        n = min(cap, max(1, math.ceil(jobs / rate)))  # no deadline: never less than an hour of work each
    wall_h = jobs / (rate * n)
    instance_hours = n * wall_h
    measured_rate = t.get("measured_jobs_per_instance_hour")
    if measured_rate:
        notes.append(
            f"the budget implies {instance_hours:.1f} instance-hours for {jobs} jobs "
            f"({jobs / float(measured_rate):.1f} at the measured rate)"
        )
    s3 = prices["s3"]
    puts_per_job, gets_per_job, sqs_per_job = requests_per_job(t)
    gb = jobs * float(t.get("bytes_per_job", 0)) / 1e9
    s3_put = jobs * puts_per_job / 1000 * s3["put_per_1000"]
    s3_get = jobs * gets_per_job / 1000 * float(s3.get("get_per_1000", 0.0))
    s3_store = gb * s3["storage_gb_month"]
    sqs = jobs * sqs_per_job / 1e6 * prices["sqs"]["per_million_requests"]
    od = instance_hours * price["on_demand_hour"]
    spot = instance_hours * price["spot_hour"]
    egress_gb = gb * share
    egress = egress_gb * float(prices.get("transfer", {}).get("internet_out_gb", 0.0))
    fixed_month = float(prices.get("fixed", {}).get("month_usd", 0.0))
    fixed = fixed_month * wall_h / HOURS_PER_MONTH
    variable = s3_put + s3_get + s3_store + sqs + egress + fixed
    r2 = lambda x: round(x, 2)  # noqa: E731
    return Plan(
        pipeline=pipeline, jobs=jobs, instance_type=itype, instances=n, jobs_per_instance_hour=round(rate, 2),
        wall_hours=round(wall_h, 2), instance_hours=round(instance_hours, 2),
        compute_on_demand_usd=r2(od), compute_spot_usd=r2(spot), s3_put_usd=r2(s3_put), s3_get_usd=r2(s3_get),
        s3_storage_gb=round(gb, 1), s3_storage_month_usd=r2(s3_store), sqs_usd=r2(sqs),
        egress_gb=round(egress_gb, 1), egress_usd=r2(egress), fixed_usd=r2(fixed), fixed_month_usd=r2(fixed_month),
        total_spot_usd=r2(spot + variable), total_on_demand_usd=r2(od + variable),
        throughput_source=measured.source, notes=notes,
    )


class Estimate(BaseModel):
    """What ``jobs`` jobs cost by the plan's figures, unrounded, in the items
    a finished run's record prices (compute on spot, S3 and SQS requests):
    the plan's storage, egress and fixed costs are left out, so the two
    compare like for like."""

    jobs: int
    instance_type: str
    instance_hours: float
    compute_usd: float
    requests_usd: float
    usd: float
    basis: str


def estimate(settings: FleetSettings, pipeline: str, jobs: int, *, instance_type: str | None = None) -> Estimate:
    """The plan's estimate for ``jobs`` jobs on ``instance_type`` (default: the
    throughput table's reference type), with the same rate, price table and
    request counts as ``plan``."""
    if jobs < 0:
        raise PlanError("jobs must not be negative")
    prices = load_prices(settings)
    try:
        measured = rate_per_hour(settings, pipeline, instance_type)
    except ThroughputError as err:
        raise PlanError(str(err)) from None
    itype = measured.instance_type
    if itype not in prices["instances"]:
        raise PlanError(f"no price for instance type {itype!r}; known: {', '.join(sorted(prices['instances']))}")
    spot = float(prices["instances"][itype]["spot_hour"])
    puts, gets, sqs = requests_per_job(measured.figures)
    hours = jobs / measured.jobs_per_hour
    compute = hours * spot
    requests = jobs * (puts / 1000 * float(prices["s3"]["put_per_1000"])
                       + gets / 1000 * float(prices["s3"].get("get_per_1000", 0.0))
                       + sqs / 1e6 * float(prices["sqs"]["per_million_requests"]))
    basis = (f"fleet plan: {jobs} {pipeline} jobs at {measured.jobs_per_hour:.1f}/instance-hour on {itype} "
             f"spot ${spot}/h, {puts:g} PUT + {gets:g} GET + {sqs:g} SQS requests per job")
    return Estimate(jobs=jobs, instance_type=itype, instance_hours=hours, compute_usd=compute, requests_usd=requests,
                    usd=compute + requests, basis=basis)
