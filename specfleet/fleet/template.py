"""``infra/template.yaml`` and ``infra/local/elasticmq.conf``, rendered from
the pipeline registry (``specfleet infra render``).

Per pipeline (``specs()``): its job and status queues with dead-letter queues
(the attributes ``queues.ensure_queue`` uses), the status writer's trigger on
its status queue, a log group; per autoscaled pipeline also a launch
template (user-data from ``userdata.py``), a spot/on-demand Auto Scaling
group, and the two policies of ``scaling.py`` (target tracking on backlog per
instance, a step policy + alarm to scale out from zero). The shared parts --
parameters, bucket, network, database, Lambdas, roles -- are in
``template_shared.py``; roles list every pipeline's queues.

Rendering is deterministic: the same registry and settings give the same
bytes, so a test keeps the committed file equal to the render. FleetSettings
enter only as defaults of template parameters and the autoscaling targets;
``defaults()`` gives the committed file's (environment ignored).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..pipelines import LOCAL_STATUS_VISIBILITY_S, specs
from ..queues import DLQ_RETENTION_S, DLQ_SUFFIX, LONG_POLL_S, RETENTION_S
from ..runtime.spec import PipelineSpec, StackSetting
from . import cfn, template_shared, userdata
from .cfn import get_att, if_, ref, sub
from .scaling import INSTANCE_WARMUP_S, ScalingRule, group_name, rule_for
from .settings import FleetSettings
from .userdata import log_group_name

#: The status writer's timeout; its status queues' visibility is 6x that (AWS's rule for SQS event sources).
WRITER_TIMEOUT_S = 60
STATUS_VISIBILITY_S = 6 * WRITER_TIMEOUT_S


def defaults() -> FleetSettings:
    """FleetSettings at their declared defaults, whatever the environment says:
    what the committed template is rendered with."""
    return FleetSettings.model_construct()


@dataclass(frozen=True)
class Names:
    """Logical ids of one pipeline's resources (stable across renders: they
    derive from the queue names, so existing stacks keep their queues)."""

    spec: PipelineSpec

    @property
    def base(self) -> str:
        stem = self.spec.job_queue.removeprefix("jobs_") if self.spec.job_queue.startswith("jobs_") else self.spec.name
        return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", stem) if part)

    def __getattr__(self, kind: str) -> str:
        suffixes = {
            "job_queue": ("Jobs", "Queue"), "job_dlq": ("Jobs", "Dlq"),
            "status_queue": ("Status", "Queue"), "status_dlq": ("Status", "Dlq"), "trigger": ("Status", "Trigger"),
            "launch_template": ("", "LaunchTemplate"), "group": ("", "Group"), "log_group": ("", "LogGroup"),
            "backlog_policy": ("", "BacklogPolicy"), "from_zero_policy": ("", "ScaleFromZeroPolicy"),
            "from_zero_alarm": ("", "ScaleFromZeroAlarm"),
        }
        if kind not in suffixes:
            raise AttributeError(kind)
        before, after = suffixes[kind]
        return f"{before}{self.base}{after}"


# --- queues ------------------------------------------------------------------------------
def _queue_pair(logical: str, dlq: str, queue_name: str, visibility_s: int, max_receives: int) -> dict[str, Any]:
    # SSE with the AWS-managed SQS key: its key policy lets this account's
    # principals use it through SQS, so the roles need no KMS statements.
    return {
        dlq: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": sub(f"${{QueuePrefix}}{queue_name}{DLQ_SUFFIX}"),
                "MessageRetentionPeriod": DLQ_RETENTION_S,
                "KmsMasterKeyId": "alias/aws/sqs",
            },
        },
        logical: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": sub(f"${{QueuePrefix}}{queue_name}"),
                "VisibilityTimeout": visibility_s,
                "ReceiveMessageWaitTimeSeconds": LONG_POLL_S,
                "MessageRetentionPeriod": RETENTION_S,
                "KmsMasterKeyId": "alias/aws/sqs",
                "KmsDataKeyReusePeriodSeconds": 3600,
                "RedrivePolicy": {"deadLetterTargetArn": get_att(dlq, "Arn"), "maxReceiveCount": max_receives},
            },
        },
    }


def queues(spec: PipelineSpec, settings: FleetSettings) -> dict[str, Any]:
    n = Names(spec)
    return {
        **_queue_pair(n.job_queue, n.job_dlq, spec.job_queue, settings.visibility_timeout_s, settings.max_receives),
        **_queue_pair(n.status_queue, n.status_dlq, spec.status_queue, STATUS_VISIBILITY_S,
                      settings.status_max_receives),
    }


def trigger(spec: PipelineSpec) -> dict[str, Any]:
    n = Names(spec)
    return {
        n.trigger: {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Condition": "WithStatusWriter",
            "Properties": {
                "FunctionName": ref("StatusWriterFunction"),
                "EventSourceArn": get_att(n.status_queue, "Arn"),
                # In the emulator the local status poller consumes the status queues.
                "Enabled": if_("OnAws", True, False),
                "BatchSize": 10,
                "MaximumBatchingWindowInSeconds": 5,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            },
        }
    }


def log_group(spec: PipelineSpec) -> dict[str, Any]:
    return {
        Names(spec).log_group: {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": sub(log_group_name("${AWS::StackName}", spec.name)),
                "RetentionInDays": ref("LogRetentionDays"),
                "KmsKeyId": get_att("LogsKey", "Arn"),
            },
        }
    }


# --- workers -------------------------------------------------------------------------------
def launch_template(spec: PipelineSpec) -> dict[str, Any]:
    n = Names(spec)
    script = userdata.render(spec.name, userdata.cloudformation_env(spec.name), for_cloudformation=True,
                             log_group=log_group_name("${AWS::StackName}", spec.name))
    return {
        n.launch_template: {
            "Type": "AWS::EC2::LaunchTemplate",
            "Properties": {
                "LaunchTemplateName": sub(group_name("${AWS::StackName}", spec.name)),
                "LaunchTemplateData": {
                    "ImageId": ref("AmiId"),
                    "InstanceType": ref("InstanceType"),
                    "IamInstanceProfile": {"Arn": get_att("WorkerInstanceProfile", "Arn")},
                    "SecurityGroupIds": [get_att("WorkerSecurityGroup", "GroupId")],
                    "InstanceInitiatedShutdownBehavior": "terminate",
                    "EbsOptimized": True,
                    "Monitoring": {"Enabled": True},
                    "MetadataOptions": {
                        "HttpEndpoint": "enabled", "HttpTokens": "required", "HttpPutResponseHopLimit": 1,
                        "InstanceMetadataTags": "enabled",
                    },
                    "BlockDeviceMappings": [{
                        "DeviceName": "/dev/xvda",
                        "Ebs": {"VolumeSize": ref("WorkerVolumeGiB"), "VolumeType": "gp3", "Encrypted": True,
                                "DeleteOnTermination": True},
                    }],
                    "TagSpecifications": [{
                        "ResourceType": "instance",
                        "Tags": [{"Key": "specfleet:pipeline", "Value": spec.name},
                                 {"Key": "specfleet:stack", "Value": ref("AWS::StackName")}],
                    }],
                    "UserData": {"Fn::Base64": {"Fn::Sub": script}},
                },
            },
        }
    }


def auto_scaling_group(spec: PipelineSpec) -> dict[str, Any]:
    n = Names(spec)
    return {
        n.group: {
            "Type": "AWS::AutoScaling::AutoScalingGroup",
            "Properties": {
                "AutoScalingGroupName": sub(group_name("${AWS::StackName}", spec.name)),
                "MinSize": "0",
                "MaxSize": ref("MaxInstancesPerPipeline"),
                "DesiredCapacity": "0",
                "CapacityRebalance": True,
                "VPCZoneIdentifier": ref("SubnetIds"),
                # GroupInServiceInstances feeds the backlog-per-instance metric,
                # GroupDesiredCapacity the scale-from-zero alarm.
                "MetricsCollection": [{"Granularity": "1Minute",
                                       "Metrics": ["GroupInServiceInstances", "GroupDesiredCapacity"]}],
                "MixedInstancesPolicy": {
                    "InstancesDistribution": {
                        "OnDemandBaseCapacity": 0,
                        "OnDemandPercentageAboveBaseCapacity": ref("OnDemandPercentage"),
                        "SpotAllocationStrategy": "price-capacity-optimized",
                    },
                    "LaunchTemplate": {
                        "LaunchTemplateSpecification": {
                            "LaunchTemplateId": ref(n.launch_template),
                            "Version": get_att(n.launch_template, "LatestVersionNumber"),
                        },
                        "Overrides": [{"InstanceType": ref("InstanceType")},
                                      {"InstanceType": ref("AlternateInstanceType")}],
                    },
                },
                # Spot reclaims and rebalancing: the worker sees the Terminated
                # lifecycle state in IMDS and drains (runtime/spot.py).
                "LifecycleHookSpecificationList": [{
                    "LifecycleHookName": "drain",
                    "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                    "HeartbeatTimeout": 180,
                    "DefaultResult": "CONTINUE",
                }],
                "Tags": [
                    {"Key": "specfleet:pipeline", "Value": spec.name, "PropagateAtLaunch": True},
                    {"Key": "specfleet:prefix", "Value": if_("HasQueuePrefix", ref("QueuePrefix"), "-"),
                     "PropagateAtLaunch": True},
                ],
            },
        }
    }


def _metric(metric_id: str, namespace: str, name: str, dimension: str, value: Any, stat: str,
            period: int | None = None) -> dict[str, Any]:
    """One metric of a metric-math expression (alarms need a period;
    target tracking uses its own one-minute evaluation)."""
    stat_part: dict[str, Any] = {
        "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": [{"Name": dimension, "Value": value}]},
    }
    if period is not None:
        stat_part["Period"] = period
    stat_part["Stat"] = stat
    return {"Id": metric_id, "MetricStat": stat_part, "ReturnData": False}


def scaling_policies(spec: PipelineSpec, rule: ScalingRule) -> dict[str, Any]:
    n = Names(spec)
    queue_name = get_att(n.job_queue, "QueueName")
    visible = _metric("visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", queue_name, "Sum")
    return {
        n.backlog_policy: {
            "Type": "AWS::AutoScaling::ScalingPolicy",
            "Properties": {
                "AutoScalingGroupName": ref(n.group),
                "PolicyType": "TargetTrackingScaling",
                "EstimatedInstanceWarmup": INSTANCE_WARMUP_S,
                "TargetTrackingConfiguration": {
                    "TargetValue": rule.target_backlog,
                    "CustomizedMetricSpecification": {
                        "Metrics": [
                            visible,
                            _metric("in_service", "AWS/AutoScaling", "GroupInServiceInstances",
                                    "AutoScalingGroupName", ref(n.group), "Average"),
                            {"Id": "backlog_per_instance", "Expression": "visible / in_service",
                             "Label": "Messages visible per in-service instance", "ReturnData": True},
                        ]
                    },
                },
            },
        },
        n.from_zero_policy: {
            "Type": "AWS::AutoScaling::ScalingPolicy",
            "Properties": {
                "AutoScalingGroupName": ref(n.group),
                "PolicyType": "StepScaling",
                "AdjustmentType": "ExactCapacity",
                "MetricAggregationType": "Maximum",
                "EstimatedInstanceWarmup": INSTANCE_WARMUP_S,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": rule.from_zero_capacity}],
            },
        },
        n.from_zero_alarm: {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": f"{spec.name}: jobs waiting and no instance wanted (scale out from zero)",
                "Metrics": [
                    _metric("visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", queue_name,
                            "Sum", period=60),
                    _metric("desired", "AWS/AutoScaling", "GroupDesiredCapacity", "AutoScalingGroupName",
                            ref(n.group), "Maximum", period=60),
                    {"Id": "waiting_with_none", "Expression": "IF(desired == 0, visible, 0)",
                     "Label": "Messages visible while desired capacity is 0", "ReturnData": True},
                ],
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "Threshold": 1,
                "EvaluationPeriods": 1,
                "TreatMissingData": "notBreaching",
                "AlarmActions": [ref(n.from_zero_policy)],
            },
        },
    }


# --- the whole template ----------------------------------------------------------------------
def _stack_settings(pipelines: Iterable[PipelineSpec[Any]]) -> list[StackSetting]:
    """Every pipeline's stack settings, one per parameter, in registry order."""
    found: dict[str, StackSetting] = {}
    for spec in pipelines:
        for setting in spec.fleet.stack_settings:
            if found.setdefault(setting.parameter, setting) != setting:
                raise ValueError(f"parameter {setting.parameter} is declared twice, differently")
    return list(found.values())


def build(settings: FleetSettings | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The template as a dict, and the comments to print above resources."""
    settings = settings or defaults()
    pipelines = specs()
    names = [Names(s) for s in pipelines]
    if len({n.base for n in names}) != len(names):
        raise ValueError(f"pipelines' logical ids clash: {[n.base for n in names]}")
    scaled = [s for s in pipelines if s.fleet.autoscaled]
    stack_settings = _stack_settings(pipelines)
    resources: dict[str, Any] = {}
    comments: dict[str, str] = {}
    shared = template_shared.storage_and_messaging(
        public_read_prefixes=sorted({prefix for s in pipelines for prefix in s.fleet.public_read_prefixes}),
    )
    comments[next(iter(shared))] = (
        "--- storage and messaging ------------------------------------------------\n"
        "Public reads (the whaledr app fetches megaptera/ anonymously): the bucket policy grants s3:GetObject\n"
        "under the pipelines' public prefixes only -- no list, no write. Objects carry no ACL: the bucket\n"
        "enforces owner-only ACLs (an ACL=public-read upload fails there), and Block Public Access still\n"
        "blocks and ignores public ACLs; only BlockPublicPolicy/RestrictPublicBuckets are off, so that\n"
        "one statement takes effect. (CloudFront + OAC would keep the bucket private but give the app a\n"
        "new URL; it reads the bucket's own.)"
    )
    resources.update(shared)
    first = True
    for spec in pipelines:
        part = queues(spec, settings)
        if first:
            comments[next(iter(part))] = (
                "--- queues: every job and status queue has a dead-letter queue ----------------\n"
                f"Status queues: visibility {STATUS_VISIBILITY_S} s = 6 x the writer's {WRITER_TIMEOUT_S} s timeout "
                "(AWS's rule for SQS event sources)."
            )
            first = False
        resources.update(part)
    network = template_shared.network()
    comments[next(iter(network))] = "--- network -----------------------------------------------------------------"
    resources.update(network)
    database = template_shared.database()
    comments[next(iter(database))] = "--- database ----------------------------------------------------------------"
    resources.update(database)
    roles = template_shared.roles(
        job_queues=[get_att(Names(s).job_queue, "Arn") for s in pipelines],
        status_queues=[get_att(Names(s).status_queue, "Arn") for s in pipelines],
        log_groups=[get_att(Names(s).log_group, "Arn") for s in pipelines],
        bucket_prefixes=sorted({prefix for s in pipelines for prefix in s.fleet.bucket_prefixes}),
        read_prefixes=sorted({prefix for s in pipelines for prefix in s.fleet.read_prefixes}),
        stack_settings=stack_settings,
    )
    comments[next(iter(roles))] = "--- IAM: one role per kind of principal, each limited to its own resources ----"
    resources.update(roles)
    writer = template_shared.status_writer(WRITER_TIMEOUT_S)
    comments[next(iter(writer))] = "--- status writer -------------------------------------------------------------"
    resources.update(writer)
    for i, spec in enumerate(pipelines):
        part = trigger(spec)
        if i == 0:
            comments[next(iter(part))] = "One trigger per status queue (disabled in the emulator: the poller plays it)."
        resources.update(part)
    logs = template_shared.logs_key()
    comments[next(iter(logs))] = (
        "--- logs: one group per pipeline, one stream per instance (CloudWatch agent) ----"
    )
    resources.update(logs)
    for spec in pipelines:
        resources.update(log_group(spec))
    for i, spec in enumerate(scaled):
        rule = rule_for(settings, spec.name)
        part = {**launch_template(spec), **auto_scaling_group(spec), **scaling_policies(spec, rule)}
        if i == 0:
            comments[next(iter(part))] = (
                "--- workers: per autoscaled pipeline a launch template, a spot/on-demand group and\n"
                "target tracking on backlog per instance + a step policy to scale out from zero\n"
                "(specfleet/fleet/scaling.py). Targets: jobs per instance-second on the default\n"
                f"InstanceType x {settings.fleet_backlog_drain_s:g} s (SPECFLEET_FLEET_BACKLOG_DRAIN_S)."
            )
        resources.update(part)
    outputs = template_shared.outputs()
    for spec in pipelines:
        n = Names(spec)
        outputs[f"{n.job_queue}Url"] = {"Value": ref(n.job_queue)}
        outputs[f"{n.status_queue}Url"] = {"Value": ref(n.status_queue)}
        outputs[f"{n.log_group}Name"] = {"Value": ref(n.log_group)}
        if spec.fleet.autoscaled:
            outputs[f"{n.group}Name"] = {"Value": ref(n.group)}
            outputs[f"{n.launch_template}Id"] = {"Value": ref(n.launch_template)}
    document = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": template_shared.DESCRIPTION,
        "Metadata": template_shared.metadata(stack_settings),
        "Parameters": template_shared.parameters(settings, stack_settings),
        "Conditions": template_shared.conditions(stack_settings),
        "Resources": resources,
        "Outputs": outputs,
    }
    return document, comments


HEADER = (
    "# Rendered by `specfleet infra render` from the pipeline registry\n"
    "# (specfleet/fleet/template.py, template_shared.py): edit those, not this file.\n"
)


def render(settings: FleetSettings | None = None) -> str:
    document, comments = build(settings)
    return HEADER + cfn.dump(document, comments)


# --- elasticmq.conf ------------------------------------------------------------------------------
def render_elasticmq(settings: FleetSettings | None = None) -> str:
    """ElasticMQ's queue config for docker-compose: the queues ``specfleet local
    up`` makes (local status-queue visibility), from the registry."""
    settings = settings or defaults()
    lines = [
        "# Rendered by `specfleet infra render` (specfleet/fleet/template.py): every job and",
        f"# status queue with its dead-letter queue (redrive after {settings.max_receives} receives,",
        f"# {settings.status_max_receives} for status queues), as `specfleet local up` makes them.",
        'include classpath("application.conf")',
        "",
        "queues {",
    ]
    pipelines = specs()
    shapes = [(s.job_queue, settings.visibility_timeout_s, settings.max_receives) for s in pipelines]
    shapes += [(s.status_queue, LOCAL_STATUS_VISIBILITY_S, settings.status_max_receives) for s in pipelines]
    for name, visibility, receives in shapes:
        lines += [
            f"  {name}{DLQ_SUFFIX} {{ }}",
            f"  {name} {{",
            f"    defaultVisibilityTimeout = {visibility} seconds",
            f"    receiveMessageWait = {LONG_POLL_S} seconds",
            f'    deadLettersQueue {{ name = "{name}{DLQ_SUFFIX}", maxReceiveCount = {receives} }}',
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"
