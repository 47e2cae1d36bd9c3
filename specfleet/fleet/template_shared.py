"""The template's shared parts: parameters, bucket and topic, network,
database, roles, the status writer's functions, the logs key, outputs.
Pipeline-specific resources are in ``template.py``, which assembles both."""

from __future__ import annotations

from typing import Any

from ..runtime.spec import StackSetting
from .cfn import NO_VALUE, and_, equals, get_att, if_, not_, ref, select, sub
from .settings import FleetSettings

DESCRIPTION = (
    "specfleet: job and status queues (with dead-letter queues), data bucket, status topic, status-writer "
    "Lambda, Postgres on RDS, worker IAM, log groups, and per autoscaled pipeline a launch template and a "
    "spot/on-demand Auto Scaling group with target tracking on backlog per instance. Rendered from the "
    "pipeline registry by `specfleet infra render`; deploy with `specfleet infra deploy`."
)

#: CloudWatch Logs' allowed retention periods (days).
LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653]


def metadata(stack_settings: list[StackSetting] | None = None) -> dict[str, Any]:
    groups = [
        ("Naming", ["QueuePrefix", "DataBucketName"]),
        ("Network", ["VpcId", "VpcCidr", "SubnetIds"]),
        ("Workers", ["AmiId", "InstanceType", "AlternateInstanceType", "MaxInstancesPerPipeline",
                     "OnDemandPercentage", "WorkerVolumeGiB", "LogRetentionDays"]),
        ("Status writer and database", ["ArtifactBucket", "ArtifactKey", "DbInstanceClass", "DbAllocatedStorageGiB",
                                        "Emulator"]),
    ]
    if stack_settings:
        groups.append(("Worker settings (optional)", [s.parameter for s in stack_settings]))
    return {"AWS::CloudFormation::Interface": {
        "ParameterGroups": [{"Label": {"default": label}, "Parameters": params} for label, params in groups]}}


def stack_setting_condition(setting: StackSetting) -> str:
    """The condition "this stack setting's parameter is set"."""
    return f"Has{setting.parameter}"


def parameters(settings: FleetSettings, stack_settings: list[StackSetting] | None = None) -> dict[str, Any]:
    return {
        "QueuePrefix": {"Type": "String", "Default": "", "AllowedPattern": "^[A-Za-z0-9_-]{0,40}$",
                        "Description": "Prepended to queue and topic names (SPECFLEET_QUEUE_PREFIX)."},
        "DataBucketName": {"Type": "String", "AllowedPattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
                           "Description": "Bucket for results (SPECFLEET_BUCKET); must be globally unique."},
        "VpcId": {"Type": "AWS::EC2::VPC::Id"},
        "VpcCidr": {"Type": "String", "Default": "172.31.0.0/16", "AllowedPattern": "^[0-9./]+$",
                    "Description": "CIDR of VpcId (the status writer may reach the database and endpoints inside "
                                   "it only)."},
        "SubnetIds": {"Type": "List<AWS::EC2::Subnet::Id>",
                      "Description": "At least two subnets in different AZs (RDS needs two); workers need outbound "
                                     "internet."},
        "AmiId": {"Type": "AWS::EC2::Image::Id", "Description": "Worker AMI from `specfleet ami bake`."},
        "InstanceType": {"Type": "String", "Default": settings.fleet_instance_type,
                         "Description": "The autoscaling targets assume this type's throughput (re-render with "
                                        "SPECFLEET_FLEET_INSTANCE_TYPE for another)."},
        "AlternateInstanceType": {"Type": "String", "Default": "c5.large",
                                  "Description": "Second instance type so spot capacity has a fallback pool."},
        "MaxInstancesPerPipeline": {"Type": "String", "Default": str(settings.fleet_max_size),
                                    "AllowedPattern": "^[0-9]+$"},
        "OnDemandPercentage": {"Type": "Number", "Default": 20, "MinValue": 0, "MaxValue": 100,
                               "Description": "Share of instances above the base bought on-demand; the rest is "
                                              "spot."},
        "WorkerVolumeGiB": {"Type": "Number", "Default": 30, "MinValue": 8},
        "LogRetentionDays": {"Type": "Number", "Default": 30, "AllowedValues": LOG_RETENTION_DAYS,
                             "Description": "Days CloudWatch Logs keeps worker logs (`specfleet logs`)."},
        "ArtifactBucket": {"Type": "String", "AllowedPattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
                           "Description": "Bucket holding the status-writer zip from `specfleet infra package`."},
        "ArtifactKey": {"Type": "String", "Default": "",
                        "Description": "Key of that zip; empty leaves out the status writer."},
        "DbInstanceClass": {"Type": "String", "Default": "db.t4g.micro"},
        "DbAllocatedStorageGiB": {"Type": "Number", "Default": 20, "MinValue": 20},
        "Emulator": {
            "Type": "String", "Default": "false", "AllowedValues": ["true", "false"],
            "Description": "\"true\" leaves out what the local emulator (moto) cannot create: RDS with its Secrets "
                           "Manager secret, VPC endpoints and the bucket policy; the status writer's triggers are "
                           "created disabled (locally the status poller plays the Lambda and an embedded Postgres "
                           "the database).",
        },
        **{s.parameter: {"Type": "String", "Default": "", "AllowedPattern": s.allowed_pattern,
                         "Description": s.description} for s in stack_settings or []},
    }


def conditions(stack_settings: list[StackSetting] | None = None) -> dict[str, Any]:
    return {
        "OnAws": equals(ref("Emulator"), "false"),
        "WithStatusWriter": not_(equals(ref("ArtifactKey"), "")),
        "WithDatabase": equals(ref("Emulator"), "false"),
        "HasQueuePrefix": not_(equals(ref("QueuePrefix"), "")),
        "WithStatusWriterAndDatabase": and_({"Condition": "WithStatusWriter"}, {"Condition": "WithDatabase"}),
        # a secret's statement exists only while its parameter is set
        **{stack_setting_condition(s): not_(equals(ref(s.parameter), "")) for s in stack_settings or [] if s.secret},
    }


def storage_and_messaging(public_read_prefixes: list[str] | None = None) -> dict[str, Any]:
    """The data bucket, its policy and the status topic. ``public_read_prefixes``:
    key prefixes anyone may read (the whaledr app fetches its clips and
    manifest anonymously).

    Public reads go through the bucket policy, not ACLs: the bucket enforces
    owner-only ACLs (``BucketOwnerEnforced``), so an upload with
    ``ACL=public-read`` fails (AccessControlListNotSupported) and the worker
    role would also need ``s3:PutObjectAcl``. One policy statement grants
    ``s3:GetObject`` -- no listing, no writes -- under those prefixes only;
    Block Public Access keeps blocking ACLs and lets just that policy take
    effect (``BlockPublicPolicy``/``RestrictPublicBuckets`` off only when a
    prefix is public). CloudFront with OAC would keep the bucket private
    but adds a distribution and a new URL the app would have to be changed
    for; the app reads the bucket's own URL today."""
    public = [sub(f"${{DataBucket.Arn}}/{prefix}*") for prefix in public_read_prefixes or []]
    statements: list[dict[str, Any]] = [{
        "Sid": "DenyPlainHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [get_att("DataBucket", "Arn"), sub("${DataBucket.Arn}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }]
    if public:
        statements.append({"Sid": "PublicReadOfAppPrefixes", "Effect": "Allow", "Principal": "*",
                           "Action": "s3:GetObject", "Resource": public})
    skips = [
        {"id": "CKV_AWS_18",
         "comment": "Access logging needs a second bucket; results are written only by the fleet's own role."},
        {"id": "CKV_AWS_21",
         "comment": "Keys are deterministic and jobs idempotent (a redelivered job overwrites the same "
                    "object); versioning would keep every overwrite of ~30 GB/day."},
    ]
    if public:
        skips += [
            {"id": check, "comment": "The whaledr app reads its prefix anonymously: the bucket policy grants "
                                     "s3:GetObject there only; public ACLs stay blocked and ignored."}
            for check in ("CKV_AWS_54", "CKV_AWS_56")
        ]
    return {
        "DataBucket": {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Metadata": {"checkov": {"skip": skips}},
            "Properties": {
                "BucketName": ref("DataBucketName"),
                "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]},
                "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": not public,
                                                   "IgnorePublicAcls": True, "RestrictPublicBuckets": not public},
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "LifecycleConfiguration": {"Rules": [
                    {"Id": "expire-temporary-objects", "Status": "Enabled", "Prefix": "tmp/", "ExpirationInDays": 7},
                    {"Id": "abort-incomplete-uploads", "Status": "Enabled",
                     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}},
                ]},
            },
        },
        "DataBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            # moto's CloudFormation does not model bucket policies (it skips
            # them with a warning), so the emulator leaves this out explicitly.
            "Condition": "OnAws",
            "Properties": {
                "Bucket": ref("DataBucket"),
                "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
            },
        },
        "StatusTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": sub("${QueuePrefix}status_sns"), "KmsMasterKeyId": "alias/aws/sns"},
        },
    }


def _egress_none() -> list[dict[str, Any]]:
    return [{"Description": "No outbound traffic (placeholder rule to loopback)", "IpProtocol": "-1",
             "CidrIp": "127.0.0.1/32"}]


def network() -> dict[str, Any]:
    return {
        "WorkerSecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Metadata": {"checkov": {"skip": [{
                "id": "CKV_AWS_382",
                "comment": "Workers fetch from the public internet (OOI archive, YouTube) and AWS APIs; no inbound "
                           "rules at all."}]}},
            "Properties": {
                "GroupDescription": "specfleet workers - no inbound, outbound to the internet",
                "VpcId": ref("VpcId"),
                "SecurityGroupEgress": [{"Description": "Downloads and AWS APIs", "IpProtocol": "-1",
                                         "CidrIp": "0.0.0.0/0"}],
            },
        },
        "WriterSecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Condition": "WithDatabase",
            "Properties": {
                "GroupDescription": "specfleet status writer - Postgres and HTTPS inside the VPC only",
                "VpcId": ref("VpcId"),
                "SecurityGroupEgress": [
                    {"Description": "Postgres", "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                     "CidrIp": ref("VpcCidr")},
                    {"Description": "Secrets Manager and SNS endpoints", "IpProtocol": "tcp", "FromPort": 443,
                     "ToPort": 443, "CidrIp": ref("VpcCidr")},
                ],
            },
        },
        "DatabaseSecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Condition": "WithDatabase",
            "Properties": {
                "GroupDescription": "specfleet Postgres - from the status writer and SSM tunnels through a worker",
                "VpcId": ref("VpcId"),
                "SecurityGroupIngress": [
                    {"Description": "Status writer", "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                     "SourceSecurityGroupId": get_att("WriterSecurityGroup", "GroupId")},
                    # `specfleet db tunnel`: Session Manager port forwarding through
                    # a fleet instance. Workers themselves hold no DB credentials.
                    {"Description": "SSM port forwarding through a fleet instance", "IpProtocol": "tcp",
                     "FromPort": 5432, "ToPort": 5432,
                     "SourceSecurityGroupId": get_att("WorkerSecurityGroup", "GroupId")},
                ],
                "SecurityGroupEgress": _egress_none(),
            },
        },
        "EndpointSecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Condition": "WithDatabase",
            "Properties": {
                "GroupDescription": "specfleet interface endpoints - HTTPS from the status writer",
                "VpcId": ref("VpcId"),
                "SecurityGroupIngress": [{"Description": "Status writer", "IpProtocol": "tcp", "FromPort": 443,
                                          "ToPort": 443,
                                          "SourceSecurityGroupId": get_att("WriterSecurityGroup", "GroupId")}],
                "SecurityGroupEgress": _egress_none(),
            },
        },
        # The writer runs in the VPC (to reach the private database) without a
        # NAT: it reaches Secrets Manager and SNS through interface endpoints.
        "SecretsManagerEndpoint": _endpoint("secretsmanager"),
        "SnsEndpoint": _endpoint("sns"),
    }


def _endpoint(service: str) -> dict[str, Any]:
    return {
        "Type": "AWS::EC2::VPCEndpoint",
        "Condition": "WithDatabase",
        "Properties": {
            "VpcId": ref("VpcId"),
            "ServiceName": sub(f"com.amazonaws.${{AWS::Region}}.{service}"),
            "VpcEndpointType": "Interface",
            "PrivateDnsEnabled": True,
            "SubnetIds": ref("SubnetIds"),
            "SecurityGroupIds": [get_att("EndpointSecurityGroup", "GroupId")],
        },
    }


def database() -> dict[str, Any]:
    return {
        "DatabaseSecret": {
            "Type": "AWS::SecretsManager::Secret",
            "Condition": "WithDatabase",
            "Metadata": {"checkov": {"skip": [{
                "id": "CKV_AWS_149",
                "comment": "The AWS-managed key suffices; a CMK adds cost and key-policy upkeep without changing who "
                           "can read the secret (IAM decides)."}]}},
            "Properties": {
                "Description": "specfleet Postgres credentials (RDS-style JSON; host and port added by the attachment)",
                "GenerateSecretString": {
                    "SecretStringTemplate": '{"username": "specfleet", "dbname": "specfleet"}',
                    "GenerateStringKey": "password",
                    "PasswordLength": 32,
                    "ExcludeCharacters": "\"@/\\'",
                },
            },
        },
        "DatabaseSubnetGroup": {
            "Type": "AWS::RDS::DBSubnetGroup",
            "Condition": "WithDatabase",
            "Properties": {"DBSubnetGroupDescription": "specfleet database subnets", "SubnetIds": ref("SubnetIds")},
        },
        "DatabaseParameters": {
            "Type": "AWS::RDS::DBParameterGroup",
            "Condition": "WithDatabase",
            "Properties": {"Description": "specfleet Postgres - TLS required", "Family": "postgres17",
                           "Parameters": {"rds.force_ssl": "1"}},
        },
        "Database": {
            "Type": "AWS::RDS::DBInstance",
            "Condition": "WithDatabase",
            "DeletionPolicy": "Snapshot",
            "UpdateReplacePolicy": "Snapshot",
            "Metadata": {"checkov": {"skip": [
                {"id": "CKV_AWS_157", "comment": "Single-AZ by default for cost; status rows can be rebuilt from S3 "
                                                 "and re-sent. Set MultiAZ for production."},
                {"id": "CKV_AWS_118", "comment": "Enhanced monitoring needs an extra role and costs; CloudWatch basic "
                                                 "metrics and exported logs suffice here."},
                {"id": "CKV_AWS_293", "comment": "Deletion protection would make `specfleet infra destroy` fail; the "
                                                 "DeletionPolicy takes a final snapshot instead."},
            ]}},
            "Properties": {
                "Engine": "postgres",
                "EngineVersion": "17.6",
                "DBName": "specfleet",
                "DBInstanceClass": ref("DbInstanceClass"),
                "AllocatedStorage": ref("DbAllocatedStorageGiB"),
                "StorageType": "gp3",
                "StorageEncrypted": True,
                "PubliclyAccessible": False,
                "MultiAZ": False,
                "DBSubnetGroupName": ref("DatabaseSubnetGroup"),
                "DBParameterGroupName": ref("DatabaseParameters"),
                "VPCSecurityGroups": [get_att("DatabaseSecurityGroup", "GroupId")],
                "MasterUsername": sub("{{resolve:secretsmanager:${DatabaseSecret}:SecretString:username}}"),
                "MasterUserPassword": sub("{{resolve:secretsmanager:${DatabaseSecret}:SecretString:password}}"),
                "BackupRetentionPeriod": 7,
                "CopyTagsToSnapshot": True,
                "AutoMinorVersionUpgrade": True,
                "EnableIAMDatabaseAuthentication": True,
                "EnablePerformanceInsights": True,
                "EnableCloudwatchLogsExports": ["postgresql"],
            },
        },
        "DatabaseSecretAttachment": {
            "Type": "AWS::SecretsManager::SecretTargetAttachment",
            "Condition": "WithDatabase",
            "Properties": {"SecretId": ref("DatabaseSecret"), "TargetId": ref("Database"),
                           "TargetType": "AWS::RDS::DBInstance"},
        },
    }


def _policy(name: str, statements: list[Any]) -> dict[str, Any]:
    return {"PolicyName": name, "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}


def _trust(service: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}


#: The worker role's and writer role's inline policy names (the IAM test reads them back).
WORKER_POLICY = "specfleet-worker"
WRITER_POLICY = "specfleet-status-writer"
#: Session Manager on the workers (the SSM agent; `specfleet db tunnel` forwards through it).
SSM_MANAGED_INSTANCE_POLICY = "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"


def roles(*, job_queues: list[Any], status_queues: list[Any], log_groups: list[Any],
          bucket_prefixes: list[str], read_prefixes: list[str] | None = None,
          stack_settings: list[StackSetting] | None = None) -> dict[str, Any]:
    objects = [sub(f"${{DataBucket.Arn}}/{prefix}*") for prefix in bucket_prefixes]
    readable = [sub(f"${{DataBucket.Arn}}/{prefix}*") for prefix in read_prefixes or [] if prefix not in bucket_prefixes]
    # A secret a stack setting names (YouTube cookies): exactly that ARN, and
    # the statement only exists while the parameter is set.
    secrets = [
        if_(stack_setting_condition(s), {"Sid": f"Read{s.parameter}", "Effect": "Allow",
                                         "Action": "secretsmanager:GetSecretValue", "Resource": ref(s.parameter)},
            NO_VALUE)
        for s in stack_settings or [] if s.secret
    ]
    worker_statements = [
        {"Sid": "ConsumeAndChainJobs", "Effect": "Allow",
         "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage",
                    "sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
         "Resource": job_queues},
        {"Sid": "SendStatus", "Effect": "Allow",
         "Action": ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
         "Resource": status_queues},
        # Objects under the pipelines' own prefixes only (FleetProfile.bucket_prefixes).
        *([{"Sid": "Results", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": objects}]
          if objects else []),
        # Configuration a person keeps (search overrides): read, never written.
        *([{"Sid": "ReadConfig", "Effect": "Allow", "Action": "s3:GetObject", "Resource": readable}]
          if readable else []),
        # Listing tells a missing key (404) from a forbidden one (403) on HEAD.
        {"Sid": "ListResults", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": get_att("DataBucket", "Arn")},
        # Scale-in protection while a worker holds jobs (runtime/protection.py):
        # only this stack's groups. Finding its own group takes a Describe,
        # which has no resource-level permissions.
        {"Sid": "ProtectBusyInstance", "Effect": "Allow", "Action": "autoscaling:SetInstanceProtection",
         "Resource": sub("arn:${AWS::Partition}:autoscaling:${AWS::Region}:${AWS::AccountId}:autoScalingGroup:*:"
                         "autoScalingGroupName/${AWS::StackName}-*")},
        {"Sid": "FindOwnGroup", "Effect": "Allow", "Action": "autoscaling:DescribeAutoScalingInstances",
         "Resource": "*"},
        # The CloudWatch agent ships the worker's log into its pipeline's group.
        {"Sid": "ShipLogs", "Effect": "Allow",
         "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
         # A log group's Arn attribute ends in ":*", which covers its streams.
         "Resource": log_groups},
        *secrets,
    ]
    writer_statements = [
        {"Sid": "StatusQueues", "Effect": "Allow",
         # ChangeMessageVisibility: the writer backs failed records off; GetQueueUrl to address them.
         "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
         "Resource": status_queues},
        if_("WithDatabase", {"Sid": "DatabaseSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                             "Resource": ref("DatabaseSecret")}, NO_VALUE),
        {"Sid": "Alerts", "Effect": "Allow", "Action": ["sns:Publish", "sns:CreateTopic"],
         "Resource": ref("StatusTopic")},
    ]
    return {
        "WorkerRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "specfleet workers - consume job queues, send status, read/write the data bucket, "
                               "protect busy instances, ship logs; no database access",
                "AssumeRolePolicyDocument": _trust("ec2.amazonaws.com"),
                "ManagedPolicyArns": [sub(SSM_MANAGED_INSTANCE_POLICY)],
                "Policies": [_policy(WORKER_POLICY, worker_statements)],
            },
        },
        "WorkerInstanceProfile": {"Type": "AWS::IAM::InstanceProfile", "Properties": {"Roles": [ref("WorkerRole")]}},
        "WriterRole": {
            "Type": "AWS::IAM::Role",
            "Condition": "WithStatusWriter",
            "Properties": {
                "Description": "specfleet status writer - read status queues, read the DB secret, publish alerts",
                "AssumeRolePolicyDocument": _trust("lambda.amazonaws.com"),
                # CloudWatch Logs + the ENI actions a VPC function needs (AWS-managed).
                "ManagedPolicyArns": [
                    sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole")],
                "Policies": [_policy(WRITER_POLICY, writer_statements)],
            },
        },
    }


def status_writer(timeout_s: int) -> dict[str, Any]:
    vpc = if_("WithDatabase", {"SubnetIds": ref("SubnetIds"),
                               "SecurityGroupIds": [get_att("WriterSecurityGroup", "GroupId")]}, NO_VALUE)
    secret = if_("WithDatabase", ref("DatabaseSecret"), NO_VALUE)
    code = {"S3Bucket": ref("ArtifactBucket"), "S3Key": ref("ArtifactKey")}
    return {
        "StatusWriterFunction": {
            "Type": "AWS::Lambda::Function",
            "Condition": "WithStatusWriter",
            "Metadata": {"checkov": {"skip": [
                {"id": "CKV_AWS_116", "comment": "SQS-triggered; failed records stay on their status queue, whose "
                                                 "redrive policy moves them to its DLQ."},
                {"id": "CKV_AWS_173", "comment": "The environment holds names only (queue prefix, secret ARN), no "
                                                 "secrets."},
                {"id": "CKV_AWS_272", "comment": "Code comes from our own artifact bucket, uploaded by `specfleet "
                                                 "infra package`; no signing profile."},
            ]}},
            "Properties": {
                "Description": "Writes specfleet status messages into Postgres and raises SNS alerts",
                "Handler": "lambdas.status_writer.handler.lambda_handler",
                "Runtime": "python3.12",
                "Timeout": timeout_s,
                "MemorySize": 256,
                # Caps concurrent DB connections (one per warm instance).
                "ReservedConcurrentExecutions": 5,
                "Role": get_att("WriterRole", "Arn"),
                "Code": code,
                "VpcConfig": vpc,
                "TracingConfig": {"Mode": "Active"},
                "Environment": {"Variables": {
                    "SPECFLEET_QUEUE_PREFIX": ref("QueuePrefix"),
                    "SPECFLEET_BUCKET": ref("DataBucket"),
                    "SPECFLEET_DB_SECRET_ID": secret,
                    "POWERTOOLS_SERVICE_NAME": "specfleet-status-writer",
                }},
            },
        },
        # Applies specfleet/schema/*.sql; `specfleet infra deploy` invokes it
        # once after each create/update (the database is private, so it runs in the VPC).
        "MigrateFunction": {
            "Type": "AWS::Lambda::Function",
            "Condition": "WithStatusWriter",
            "Metadata": {"checkov": {"skip": [
                {"id": "CKV_AWS_116", "comment": "Invoked synchronously by the deploy command, which reports "
                                                 "failures."},
                {"id": "CKV_AWS_173", "comment": "The environment holds names only, no secrets."},
                {"id": "CKV_AWS_272", "comment": "Code comes from our own artifact bucket; no signing profile."},
                {"id": "CKV_AWS_115", "comment": "Invoked once per deploy; concurrency is naturally one."},
            ]}},
            "Properties": {
                "Description": "Applies specfleet's database migrations",
                "Handler": "lambdas.migrate.handler.lambda_handler",
                "Runtime": "python3.12",
                "Timeout": 120,
                "MemorySize": 256,
                "Role": get_att("WriterRole", "Arn"),
                "Code": code,
                "VpcConfig": vpc,
                "TracingConfig": {"Mode": "Active"},
                "Environment": {"Variables": {"SPECFLEET_DB_SECRET_ID": secret}},
            },
        },
    }


def logs_key() -> dict[str, Any]:
    """A customer-managed key for the log groups (CloudWatch Logs encrypts
    with it; readers need no KMS permission)."""
    return {
        "LogsKey": {
            "Type": "AWS::KMS::Key",
            "Properties": {
                "Description": "specfleet worker logs",
                "EnableKeyRotation": True,
                "KeyPolicy": {"Version": "2012-10-17", "Statement": [
                    {"Sid": "AccountAdministers", "Effect": "Allow",
                     "Principal": {"AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
                     "Action": "kms:*", "Resource": "*"},
                    {"Sid": "CloudWatchLogsUsesIt", "Effect": "Allow",
                     "Principal": {"Service": sub("logs.${AWS::Region}.amazonaws.com")},
                     "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                                "kms:Describe*"],
                     "Resource": "*",
                     "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": sub(
                         "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/specfleet/"
                         "${AWS::StackName}/*")}}},
                ]},
            },
        },
    }


def outputs() -> dict[str, Any]:
    return {
        "StackName": {"Description": "SPECFLEET_FLEET_STACK_NAME (log groups, Auto Scaling groups)",
                      "Value": ref("AWS::StackName")},
        "QueuePrefix": {"Description": "SPECFLEET_QUEUE_PREFIX", "Value": ref("QueuePrefix")},
        "DataBucketName": {"Description": "SPECFLEET_BUCKET", "Value": ref("DataBucket")},
        "StatusTopicArn": {"Value": ref("StatusTopic")},
        "WorkerInstanceProfileArn": {"Description": "SPECFLEET_FLEET_INSTANCE_PROFILE",
                                     "Value": get_att("WorkerInstanceProfile", "Arn")},
        "WorkerRoleArn": {"Value": get_att("WorkerRole", "Arn")},
        "WorkerSecurityGroupId": {"Description": "SPECFLEET_FLEET_SECURITY_GROUP_IDS",
                                  "Value": get_att("WorkerSecurityGroup", "GroupId")},
        "WorkerSubnetId": {"Description": "SPECFLEET_FLEET_SUBNET_ID (first of SubnetIds)",
                           "Value": select(0, ref("SubnetIds"))},
        "DatabaseSecretArn": {"Condition": "WithDatabase", "Description": "SPECFLEET_DB_SECRET_ID",
                              "Value": ref("DatabaseSecret")},
        "StatusWriterFunctionName": {"Condition": "WithStatusWriter", "Value": ref("StatusWriterFunction")},
        "MigrateFunctionName": {"Condition": "WithStatusWriterAndDatabase", "Value": ref("MigrateFunction")},
        "WriterRoleArn": {"Condition": "WithStatusWriter", "Value": get_att("WriterRole", "Arn")},
    }
