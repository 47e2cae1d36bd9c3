"""What moto's CloudFormation skips, created through the service APIs.

moto 5 creates most of the template (queues, bucket, roles, launch templates,
Auto Scaling groups, Lambda functions and their event-source mappings, log
groups) but silently skips scaling policies and CloudWatch alarms. After an
emulator deploy, ``fill_in`` creates those resources from the same template
with the stack's parameters and physical ids -- ``PutScalingPolicy`` and
``PutMetricAlarm`` with the template's properties -- so the local fleet
emulator and ``fleet autoscale`` read the deployed policies as they would on
AWS. Never used against AWS (CloudFormation creates them there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..aws import client
from ..settings import Settings
from .cfn import resolve

#: Resource types moto 5's CloudFormation skips that the fleet needs.
FILLED_IN = ("AWS::AutoScaling::ScalingPolicy", "AWS::CloudWatch::Alarm")


def fill_in(settings: Settings, stack_name: str, template: Path, parameters: dict[str, str]) -> dict[str, str]:
    """Create the template's scaling policies and alarms for ``stack_name``;
    return logical id -> what was created (policy ARN, alarm name)."""
    from cfnlint.decode import cfn_yaml

    doc = cfn_yaml.load(str(template))
    cfn = client("cloudformation", settings)
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    given = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    defaults = {k: str(v.get("Default", "")) for k, v in doc.get("Parameters", {}).items()}
    physical: dict[str, str] = {}
    paginator = cfn.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_name):
        for r in page["StackResourceSummaries"]:
            physical[r["LogicalResourceId"]] = r["PhysicalResourceId"]
    pseudo = {"AWS::StackName": stack_name, "AWS::Region": settings.region, "AWS::Partition": "aws",
              "AWS::AccountId": stack["StackId"].split(":")[4]}

    def lookup(name: str) -> Any:
        for table in (pseudo, physical, {**defaults, **given, **parameters}):
            if name in table:
                return table[name]
        raise KeyError(f"{template.name}: nothing named {name!r} in stack {stack_name}")

    def get_attr(resource: str, attribute: str) -> Any:
        kind = doc["Resources"][resource]["Type"]
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return physical[resource].rstrip("/").rsplit("/", 1)[-1]
        if kind == "AWS::SQS::Queue" and attribute == "Arn":
            sqs = client("sqs", settings)
            return sqs.get_queue_attributes(QueueUrl=physical[resource], AttributeNames=["QueueArn"])[
                "Attributes"]["QueueArn"]
        raise KeyError(f"{resource}.{attribute}: not known to the emulator's fill-in")

    created: dict[str, str] = {}
    autoscaling = client("autoscaling", settings)
    cloudwatch = client("cloudwatch", settings)
    # Policies first: alarms name them in their actions.
    for kind in FILLED_IN:
        for logical, res in doc["Resources"].items():
            if res["Type"] != kind or logical in physical:
                continue
            props = resolve(dict(res.get("Properties", {})), lookup, get_attr)
            if kind == "AWS::AutoScaling::ScalingPolicy":
                policy = f"{stack_name}-{logical}"
                autoscaling.put_scaling_policy(PolicyName=policy, **props)
                # (moto's PutScalingPolicy answer lacks the ARN; DescribePolicies has it)
                [found] = autoscaling.describe_policies(
                    AutoScalingGroupName=props["AutoScalingGroupName"], PolicyNames=[policy])["ScalingPolicies"]
                physical[logical] = created[logical] = str(found["PolicyARN"])
            else:
                name = f"{stack_name}-{logical}"
                cloudwatch.put_metric_alarm(AlarmName=name, **props)
                physical[logical] = created[logical] = name
    return created


def remove(settings: Settings, stack_name: str) -> None:
    """Delete what ``fill_in`` created for ``stack_name``."""
    cloudwatch = client("cloudwatch", settings)
    names = [a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNamePrefix=f"{stack_name}-")[
        "MetricAlarms"]]
    if names:
        cloudwatch.delete_alarms(AlarmNames=names)
    autoscaling = client("autoscaling", settings)
    for policy in autoscaling.describe_policies()["ScalingPolicies"]:
        if policy["PolicyName"].startswith(f"{stack_name}-"):
            autoscaling.delete_policy(PolicyName=policy["PolicyName"],
                                                 AutoScalingGroupName=policy["AutoScalingGroupName"])
