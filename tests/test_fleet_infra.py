"""The CloudFormation template: lint, security scan, creation in moto's
CloudFormation with working outputs, user-data in sync, Lambda package."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

from specfleet.aws import client
from specfleet.fleet import deploy, userdata
from specfleet.fleet.instances import local_worker_image
from specfleet.pipelines import job_queue, specs, status_queue
from specfleet.settings import Settings
from specfleet.storage import Storage

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"
ASG_PIPELINES = {"Hydro": "hydrophone", "Search": "search", "Download": "download", "Specto": "spectrogram"}


@pytest.mark.slow
def test_template_is_cfn_lint_clean(tmp_path: Path) -> None:
    assert deploy.validate(TEMPLATE) == []
    # the check can fail: a status queue with visibility below 6x the writer's timeout is still valid CFN,
    # but a misspelt property is not
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text().replace("VisibilityTimeout: 360", "VisibilityTimout: 360", 1))
    assert any("VisibilityTimout" in f for f in deploy.validate(broken))


@pytest.mark.slow
def test_checkov_has_no_failed_checks_and_every_skip_is_justified() -> None:
    assert CHECKOV.exists(), "install checkov: python3 -m venv .venv-tools && .venv-tools/bin/pip install checkov"
    cmd = [str(CHECKOV), "-f", str(TEMPLATE), "--framework", "cloudformation", "-o", "json", "--compact",
           "--skip-download"]
    # Tests never touch the internet: checkov's guideline download is off, and
    # where possible it runs without a network at all.
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        cmd = ["unshare", "-n", *cmd]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    report = json.loads(result.stdout)
    failed = report["results"]["failed_checks"]
    assert failed == [], [(c["check_id"], c["resource"]) for c in failed]
    assert report["summary"]["passed"] > 50
    for skipped in report["results"]["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, f"{skipped['check_id']} skipped without a reason"


def _template() -> dict:
    return cfn_yaml.load(str(TEMPLATE))


def test_template_invariants() -> None:
    t = _template()
    res = t["Resources"]
    lt = res["HydroLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert lt["MetadataOptions"]["HttpTokens"] == "required"
    writer_timeout = res["StatusWriterFunction"]["Properties"]["Timeout"]
    for logical, props in ((k, v["Properties"]) for k, v in res.items() if v["Type"] == "AWS::SQS::Queue"):
        assert props["KmsMasterKeyId"] == "alias/aws/sqs", logical
        if logical.startswith("Status") and logical.endswith("Queue"):
            assert props["VisibilityTimeout"] >= 6 * writer_timeout, logical
        if logical.endswith("Queue"):
            defaults = Settings()
            expected = defaults.status_max_receives if logical.startswith("Status") else defaults.max_receives
            assert props["RedrivePolicy"]["maxReceiveCount"] == expected, logical
    triggers = [v for v in res.values() if v["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(triggers) == len(specs())
    assert all(tr["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for tr in triggers)
    bucket = res["DataBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert any(r.get("Prefix") == "tmp/" and r["ExpirationInDays"] > 0 for r in bucket["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r)
    db = res["Database"]["Properties"]
    assert db["PubliclyAccessible"] is False and db["StorageEncrypted"] is True
    assert res["DatabaseParameters"]["Properties"]["Parameters"]["rds.force_ssl"] == "1"
    assert "resolve:secretsmanager" in json.dumps(db["MasterUserPassword"])
    for name in ASG_PIPELINES:
        dist = res[f"{name}Group"]["Properties"]["MixedInstancesPolicy"]["InstancesDistribution"]
        assert dist["SpotAllocationStrategy"] == "price-capacity-optimized"
        assert dist["OnDemandPercentageAboveBaseCapacity"] == {"Ref": "OnDemandPercentage"}


@pytest.mark.parametrize(("logical", "pipeline"), sorted(ASG_PIPELINES.items()))
def test_launch_template_user_data_is_the_rendered_bootstrap(logical: str, pipeline: str) -> None:
    data = _template()["Resources"][f"{logical}LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    embedded = data["UserData"]["Fn::Base64"]["Fn::Sub"]
    assert embedded == userdata.render(pipeline, userdata.cloudformation_env(), for_cloudformation=True)


def test_stack_creates_in_moto_and_its_outputs_work(settings: Settings) -> None:
    ec2 = client("ec2", settings)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    tag = uuid.uuid4().hex[:8]
    prefix = f"cfn{tag}_"
    name = f"specfleet-test-{tag}"
    events: list[str] = []
    outputs = deploy.deploy(
        settings,
        {
            "QueuePrefix": prefix, "DataBucketName": f"cfn-{tag}-data", "VpcId": vpc,
            "SubnetIds": ",".join(subnets[:2]), "AmiId": local_worker_image(settings, settings.region),
            "ArtifactBucket": f"cfn-{tag}-artifacts", "Emulator": "true",
        },
        stack_name=name,
        progress=events.append,
    )
    assert any("CREATE_COMPLETE" in e for e in events)  # deploy raises unless the stack completed
    cfn = client("cloudformation", settings)
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"

    env = deploy.outputs_to_env(outputs, settings.region)
    assert env["SPECFLEET_QUEUE_PREFIX"] == prefix
    deployed = settings.model_copy(update={"queue_prefix": prefix, "bucket": env["SPECFLEET_BUCKET"]})
    # queues: the outputs' URLs are the queues specfleet addresses by name, with DLQ, SSE and visibility
    for pipeline in [spec.name for spec in specs()]:
        jq, sq = job_queue(deployed, pipeline), status_queue(deployed, pipeline)
        assert jq.url.endswith(f"/{prefix}{jq.name[len(prefix):]}")
        attrs = jq.sqs.get_queue_attributes(QueueUrl=sq.url, AttributeNames=["All"])["Attributes"]
        assert int(attrs["VisibilityTimeout"]) == 360
        assert json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"].endswith(f"{sq.name}_dlq")
        assert attrs["KmsMasterKeyId"] == "alias/aws/sqs"
    # an output URL addresses the same queue specfleet finds by name
    q = job_queue(deployed, "echo")
    q.sqs.send_message(QueueUrl=outputs["JobsEchoQueueUrl"], MessageBody=json.dumps({"job_id": "through-the-stack"}))
    [msg] = q.receive(wait_s=1)
    assert json.loads(msg.body) == {"job_id": "through-the-stack"}
    assert q.delete([msg]) == []
    # bucket: encrypted; objects round-trip. (moto's CloudFormation applies only
    # BucketEncryption and Tags of a bucket; public access block and lifecycle
    # are checked in the template by test_template_invariants.)
    storage = Storage(deployed)
    storage.put_bytes("tmp/probe.txt", b"hello")
    assert storage.get_bytes("tmp/probe.txt") == b"hello"
    s3 = client("s3", settings)
    sse = s3.get_bucket_encryption(Bucket=deployed.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # topic: the status writer's alerts go here
    sns = client("sns", settings)
    assert sns.publish(TopicArn=outputs["StatusTopicArn"], Subject="probe", Message="hi")["MessageId"]
    assert outputs["StatusTopicArn"].endswith(f":{prefix}status_sns")
    # launch templates: IMDSv2 and the rendered bootstrap with the stack's values substituted
    lt = ec2.describe_launch_template_versions(LaunchTemplateId=outputs["DownloadLaunchTemplateId"])
    data = lt["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    parsed = userdata.parse(base64.b64decode(data["UserData"]).decode(), "i-1")
    assert parsed.pipeline == "download"
    assert parsed.env["SPECFLEET_QUEUE_PREFIX"] == prefix
    assert parsed.env["SPECFLEET_BUCKET"] == deployed.bucket
    groups = client("autoscaling", settings).describe_auto_scaling_groups(
        AutoScalingGroupNames=[outputs[f"{k}GroupName"] for k in ASG_PIPELINES]
    )["AutoScalingGroups"]
    assert len(groups) == 4 and all(g["DesiredCapacity"] == 0 and g["MaxSize"] == 30 for g in groups)
    # what the emulator leaves out (moto cannot create it), and nothing else
    logical = {r["LogicalResourceId"] for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    assert not logical & {"Database", "DatabaseSecret", "StatusWriterFunction", "DataBucketPolicy"}
    assert {"WorkerInstanceProfile", "WorkerRole", "StatusTopic", "DataBucket"} <= logical

    assert deploy.destroy(settings, stack_name=name) == "DELETE_COMPLETE"


@pytest.mark.slow
def test_lambda_package_contains_the_handler_and_imports_from_the_zip(tmp_path: Path) -> None:
    first = deploy.build_package(tmp_path / "a", with_dependencies=False)
    second = deploy.build_package(tmp_path / "b", with_dependencies=False)
    assert first.name == second.name  # content-addressed and reproducible
    names = set(zipfile.ZipFile(first).namelist())
    assert {"lambdas/status_writer/handler.py", "lambdas/migrate/handler.py", "specfleet/status_writer.py"} <= names
    assert any(n.startswith("specfleet/schema/") and n.endswith(".sql") for n in names)
    assert not any("__pycache__" in n for n in names)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import lambdas.status_writer.handler as h, lambdas.migrate.handler as m;"
        "assert h.__file__.startswith(sys.argv[1]) and callable(h.lambda_handler) and callable(m.lambda_handler);"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(first)], capture_output=True, text=True, cwd=tmp_path)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]
