"""What the deployed scaling policies would do now, from live figures.

For each of this deployment's Auto Scaling groups (tag ``specfleet:prefix``)
it reads the group's policies (``DescribePolicies``: the target-tracking
target and the scale-from-zero step), the job queue named in the policy's
metric (``GetQueueAttributes``: ``ApproximateNumberOfMessages``) and the
group's in-service and desired counts (``DescribeAutoScalingGroups``), and
applies ``scaling.decide``. These are the figures CloudWatch samples each
minute for the policies, read directly, so a dry run sees them without the
metrics' one-to-three-minute lag.

``specfleet fleet autoscale`` prints the result; the local fleet emulator
applies it to moto's groups (``SetDesiredCapacity``), playing CloudWatch
and Auto Scaling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..aws import client
from ..queues import Queue
from .scaling import Decision, ScalingRule, decide, rule_for, rule_from_policies
from .settings import FleetSettings

TAG_PIPELINE = "specfleet:pipeline"
TAG_PREFIX = "specfleet:prefix"


@dataclass(frozen=True)
class GroupView:
    """One group as the policies see it."""

    name: str
    pipeline: str
    rule: ScalingRule
    #: "deployed" (read from the group's policies) or "rendered" (no policy found: the template's rule).
    rule_source: str
    queue_name: str
    decision: Decision

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.name, "pipeline": self.pipeline, "queue": self.queue_name,
                "target_backlog_per_instance": self.rule.target_backlog, "rule_source": self.rule_source,
                **self.decision.as_dict()}


def _tags(group: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in group.get("Tags", [])}


def deployment_groups(settings: FleetSettings, pipelines: list[str] | None = None) -> list[dict[str, Any]]:
    """This deployment's Auto Scaling groups (``DescribeAutoScalingGroups``)."""
    api = client("autoscaling", settings)
    found = []
    for page in api.get_paginator("describe_auto_scaling_groups").paginate(
        Filters=[{"Name": f"tag:{TAG_PREFIX}", "Values": [settings.queue_prefix or "-"]}]
    ):
        for group in page["AutoScalingGroups"]:
            pipeline = _tags(group).get(TAG_PIPELINE, "")
            if pipeline and (not pipelines or pipeline in pipelines):
                found.append(group)
    return sorted(found, key=lambda g: str(g["AutoScalingGroupName"]))


def queue_of(policies: list[dict[str, Any]]) -> str | None:
    """The SQS queue the target-tracking policy's metric math reads."""
    for p in policies:
        spec = (p.get("TargetTrackingConfiguration") or {}).get("CustomizedMetricSpecification") or {}
        for metric in spec.get("Metrics", []):
            stat = metric.get("MetricStat") or {}
            if stat.get("Metric", {}).get("Namespace") == "AWS/SQS":
                for dim in stat["Metric"].get("Dimensions", []):
                    if dim["Name"] == "QueueName":
                        return str(dim["Value"])
    return None


def evaluate(settings: FleetSettings, group: dict[str, Any]) -> GroupView:
    """Apply the group's policies to the live figures."""
    from ..pipelines import get_spec

    name = str(group["AutoScalingGroupName"])
    pipeline = _tags(group)[TAG_PIPELINE]
    policies = client("autoscaling", settings).describe_policies(AutoScalingGroupName=name)[
        "ScalingPolicies"]
    lo, hi = int(group["MinSize"]), int(group["MaxSize"])
    rule = rule_from_policies(pipeline, policies, min_size=lo, max_size=hi)
    source = "deployed"
    if rule is None:
        base = rule_for(settings, pipeline, max_size=hi)
        rule, source = ScalingRule(pipeline, base.target_backlog, lo, hi, base.from_zero_capacity), "rendered"
    queue_name = queue_of(policies) or settings.queue_prefix + get_spec(pipeline).job_queue
    visible = Queue(settings, queue_name).depth()["visible"]
    in_service = sum(1 for i in group.get("Instances", []) if i.get("LifecycleState") == "InService")
    decision = decide(rule, visible=visible, in_service=in_service, desired=int(group["DesiredCapacity"]))
    return GroupView(name, pipeline, rule, source, queue_name, decision)


def dry_run(settings: FleetSettings, pipelines: list[str] | None = None) -> list[GroupView]:
    """``evaluate`` for every group of this deployment; changes nothing."""
    return [evaluate(settings, g) for g in deployment_groups(settings, pipelines)]
