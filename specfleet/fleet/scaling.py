"""Autoscaling the AWS way: the rule the template deploys, as one function.

Per autoscaled pipeline the template (``template.py``) gives its Auto Scaling
group two policies, both rendered from a ``ScalingRule``:

* **target tracking on backlog per instance** (AWS's pattern for SQS
  workers): metric math ``visible / in_service`` over SQS
  ``ApproximateNumberOfMessagesVisible`` and the group's
  ``GroupInServiceInstances``; the target is the backlog one instance clears
  in ``fleet_backlog_drain_s`` seconds (its measured jobs per second, see
  ``throughput.py``, times that). Tracking ``visible / n`` at ``T`` means
  ``desired = ceil(visible / T)``; an empty queue scales the group in to 0.
* **a step policy to scale out from zero**: with no instance in service the
  metric divides by zero and target tracking cannot act, so a CloudWatch
  alarm on ``IF(desired == 0, visible, 0) >= 1`` sets the capacity to 1
  (ExactCapacity: idempotent while the alarm stays on); target tracking takes
  over once that instance is in service.

Scale-in never takes a busy instance: workers protect their instance from
scale-in while they hold jobs (``runtime/protection.py``); an instance
lost anyway (spot) drains through the lifecycle hook and ``SpotWatch``.

When several policies fire, Auto Scaling takes the largest capacity; so
does ``decide``. The local fleet emulator applies ``decide`` to moto's
groups, and ``specfleet fleet autoscale`` prints it from live figures.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..pipelines import get_spec
from ..settings import Settings
from .throughput import rate_per_hour

#: The step policy's capacity when the queue has work and the group none.
FROM_ZERO_CAPACITY = 1
#: Seconds a new instance needs before its metrics count (boot + worker start).
INSTANCE_WARMUP_S = 180


def group_name(stack_name: str, pipeline: str) -> str:
    """The Auto Scaling group of ``pipeline`` in stack ``stack_name``."""
    return f"{stack_name}-{pipeline}"


@dataclass(frozen=True)
class ScalingRule:
    pipeline: str
    #: Target backlog per in-service instance (messages).
    target_backlog: float
    min_size: int = 0
    max_size: int = 30
    from_zero_capacity: int = FROM_ZERO_CAPACITY

    def __post_init__(self) -> None:
        if self.target_backlog <= 0:
            raise ValueError(f"{self.pipeline}: target backlog per instance must be > 0, got {self.target_backlog}")
        if not 0 <= self.min_size <= self.max_size:
            raise ValueError(f"{self.pipeline}: need 0 <= min_size <= max_size, got {self.min_size}..{self.max_size}")

    def clamp(self, capacity: int) -> int:
        return max(self.min_size, min(self.max_size, capacity))


@dataclass(frozen=True)
class Decision:
    pipeline: str
    visible: int
    in_service: int
    desired_before: int
    desired: int
    #: "target-tracking", "step-from-zero" or "none".
    policy: str
    reason: str

    @property
    def change(self) -> str:
        if self.desired > self.desired_before:
            return "scale out"
        if self.desired < self.desired_before:
            return "scale in"
        return "no change"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "change": self.change}


def decide(rule: ScalingRule, *, visible: int, in_service: int, desired: int) -> Decision:
    """What the group's two policies do with these figures."""
    if visible < 0 or in_service < 0 or desired < 0:
        raise ValueError("visible, in_service and desired must be >= 0")
    fired: list[tuple[int, str, str]] = []
    if in_service > 0:
        per_instance = visible / in_service
        wanted = rule.clamp(math.ceil(visible / rule.target_backlog))
        fired.append((wanted, "target-tracking",
                      f"backlog per instance {per_instance:.1f} vs target {rule.target_backlog:g}: "
                      f"ceil({visible} / {rule.target_backlog:g}) = {math.ceil(visible / rule.target_backlog)}"))
    if desired == 0 and visible >= 1:
        fired.append((rule.clamp(rule.from_zero_capacity), "step-from-zero",
                      f"{visible} messages visible and desired capacity 0: exact capacity {rule.from_zero_capacity}"))
    if not fired:
        why = "no instance in service and nothing visible" if in_service == 0 else "no policy fired"
        return Decision(rule.pipeline, visible, in_service, desired, desired, "none", why)
    capacity, policy, reason = max(fired, key=lambda f: f[0])
    return Decision(rule.pipeline, visible, in_service, desired, capacity, policy, reason)


def rule_for(settings: Settings, pipeline: str, *, instance_type: str | None = None,
             max_size: int | None = None) -> ScalingRule:
    """The rule the template renders for ``pipeline``: target = its measured
    jobs per second on ``instance_type`` (default ``settings.fleet_instance_type``)
    times ``settings.fleet_backlog_drain_s``, at least one message."""
    spec = get_spec(pipeline)
    rate = rate_per_hour(settings, spec.name, instance_type or settings.fleet_instance_type)
    target = max(1.0, round(rate.jobs_per_s * settings.fleet_backlog_drain_s, 1))
    return ScalingRule(spec.name, target, 0, max_size if max_size is not None else settings.fleet_max_size)


def rule_from_policies(pipeline: str, policies: list[dict[str, Any]], *, min_size: int, max_size: int) -> ScalingRule | None:
    """The rule a deployed group's policies (``DescribePolicies``) encode, or
    None when it has no target-tracking policy."""
    target = None
    from_zero = FROM_ZERO_CAPACITY
    for p in policies:
        if p.get("PolicyType") == "TargetTrackingScaling":
            target = float(p["TargetTrackingConfiguration"]["TargetValue"])
        elif p.get("PolicyType") == "StepScaling" and p.get("AdjustmentType") == "ExactCapacity":
            steps = p.get("StepAdjustments") or []
            if steps:
                from_zero = int(steps[0]["ScalingAdjustment"])
    if target is None:
        return None
    return ScalingRule(pipeline, target, min_size, max_size, from_zero)
