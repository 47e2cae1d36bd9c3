"""The CloudFormation template: rendered from the registry (the committed
file is the render), lint, security scan, creation in moto's CloudFormation
-- Lambda functions and their triggers included -- with working outputs,
user-data in sync, Lambda package."""

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

from fleet_helpers import deploy_emulated
from specfleet.aws import client
from specfleet.fleet import deploy, moto_gaps, template, userdata
from specfleet.fleet.scaling import rule_for
from specfleet.fleet.settings import FleetSettings
from specfleet.pipelines import job_queue, specs, status_queue
from specfleet.settings import Settings
from specfleet.storage import Storage

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
ELASTICMQ = ROOT / "infra" / "local" / "elasticmq.conf"
CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"
#: Logical-id stem -> pipeline, for the pipelines with an Auto Scaling group.
ASG_PIPELINES = {template.Names(s).base: s.name for s in specs() if s.fleet.autoscaled}


def test_the_committed_files_are_the_render_of_the_registry(tmp_path: Path) -> None:
    assert TEMPLATE.read_text() == template.render(template.defaults())
    assert ELASTICMQ.read_text() == template.render_elasticmq(template.defaults())
    # `infra render --check` agrees, and notices a stale file
    from typer.testing import CliRunner

    from specfleet.cli.main import app

    stale = tmp_path / "template.yaml"
    stale.write_text(TEMPLATE.read_text().replace("maxReceiveCount: 20", "maxReceiveCount: 21", 1))
    runner = CliRunner(env={"SPECFLEET_ENDPOINT_URL": "http://127.0.0.1:9"})  # nothing is contacted
    ok = runner.invoke(app, ["infra", "render", "--check"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["infra", "render", "--check", "--template", str(stale)])
    assert bad.exit_code == 1 and str(stale) in bad.output
    assert set(ASG_PIPELINES.values()) == {"hydrophone", "search", "download", "spectrogram"}


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
    # one log group per pipeline, with retention and a key
    groups = [v["Properties"] for v in res.values() if v["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) == len(specs())
    assert all(g["RetentionInDays"] == {"Ref": "LogRetentionDays"} and "KmsKeyId" in g for g in groups)
    # per autoscaled pipeline: target tracking on backlog per instance + a step from zero on an alarm
    for stem, pipeline in ASG_PIPELINES.items():
        tracking = res[f"{stem}BacklogPolicy"]["Properties"]
        assert tracking["PolicyType"] == "TargetTrackingScaling"
        config = tracking["TargetTrackingConfiguration"]
        assert config["TargetValue"] == rule_for(template.defaults(), pipeline).target_backlog
        metrics = {m["Id"]: m for m in config["CustomizedMetricSpecification"]["Metrics"]}
        assert metrics["backlog_per_instance"]["Expression"] == "visible / in_service"
        assert metrics["visible"]["MetricStat"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert metrics["in_service"]["MetricStat"]["Metric"]["MetricName"] == "GroupInServiceInstances"
        group = res[f"{stem}Group"]["Properties"]
        assert {"GroupInServiceInstances", "GroupDesiredCapacity"} <= set(group["MetricsCollection"][0]["Metrics"])
        alarm = res[f"{stem}ScaleFromZeroAlarm"]["Properties"]
        assert alarm["AlarmActions"] == [{"Ref": f"{stem}ScaleFromZeroPolicy"}]
        step = res[f"{stem}ScaleFromZeroPolicy"]["Properties"]
        assert (step["AdjustmentType"], step["StepAdjustments"][0]["ScalingAdjustment"]) == ("ExactCapacity", 1)
    # workers hold no database credentials: no secret, no secretsmanager, not even its name -- the one
    # Secrets Manager statement is the optional YouTube cookies', on exactly the ARN its parameter names and
    # absent while that is empty (tests/test_fleet_iam_cookies.py shows it under enforced IAM)
    statements = res["WorkerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    secret_reads = [st for st in statements if "secretsmanager" in json.dumps(st)]
    assert secret_reads == [{"Fn::If": ["HasYouTubeCookiesSecretArn", {
        "Sid": "ReadYouTubeCookiesSecretArn", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
        "Resource": {"Ref": "YouTubeCookiesSecretArn"}}, {"Ref": "AWS::NoValue"}]}]
    assert "DatabaseSecret" not in json.dumps(res["WorkerRole"]["Properties"])
    for stem in ASG_PIPELINES:
        assert "DatabaseSecret" not in json.dumps(res[f"{stem}LaunchTemplate"])
    assert "AmazonSSMManagedInstanceCore" in json.dumps(res["WorkerRole"]["Properties"]["ManagedPolicyArns"])
    # the writer backs failed records off on their status queue
    writer = res["WriterRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert {"sqs:ChangeMessageVisibility", "sqs:GetQueueUrl"} <= set(writer["Action"])
    assert len(writer["Resource"]) == len(specs())
    bucket = res["DataBucket"]["Properties"]
    # Public ACLs always blocked; a public policy only for the pipelines' public prefixes (whaledr's app),
    # and then only s3:GetObject under them.
    block = bucket["PublicAccessBlockConfiguration"]
    assert block["BlockPublicAcls"] and block["IgnorePublicAcls"]
    public = sorted({p for spec in specs() for p in spec.fleet.public_read_prefixes})
    assert public == ["megaptera/"]
    assert block["BlockPublicPolicy"] is block["RestrictPublicBuckets"] is False
    statements = res["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allows = [st for st in statements if st["Effect"] == "Allow"]
    assert allows == [{"Sid": "PublicReadOfAppPrefixes", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": [{"Fn::Sub": f"${{DataBucket.Arn}}/{p}*"} for p in public]}]
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
    assert embedded == userdata.render(pipeline, userdata.cloudformation_env(pipeline), for_cloudformation=True,
                                       log_group=f"/specfleet/${{AWS::StackName}}/{pipeline}")


def test_stack_creates_in_moto_and_its_outputs_work(settings: Settings, tmp_path: Path) -> None:
    stack = deploy_emulated(settings, tmp_path)
    name, prefix, outputs = stack.name, stack.prefix, stack.outputs
    ec2 = client("ec2", settings)
    assert any("CREATE_COMPLETE" in e for e in stack.events)  # deploy raises unless the stack completed
    cfn = client("cloudformation", settings)
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"

    env = deploy.outputs_to_env(outputs, settings.region)
    assert env["SPECFLEET_QUEUE_PREFIX"] == prefix
    deployed = stack.settings
    assert deployed.bucket == env["SPECFLEET_BUCKET"]
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
    autoscaling = client("autoscaling", settings)
    groups = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[outputs[f"{k}GroupName"] for k in ASG_PIPELINES]
    )["AutoScalingGroups"]
    assert len(groups) == len(ASG_PIPELINES) and all(g["DesiredCapacity"] == 0 and g["MaxSize"] == 30 for g in groups)
    assert all({"Key": "specfleet:prefix", "Value": prefix} in [{"Key": t["Key"], "Value": t["Value"]}
                                                                for t in g["Tags"]] for g in groups)
    # scaling policies and alarms (moto's CloudFormation skips them; the emulator deploy creates them from the
    # template): each group's target is the rendered one, read back from Auto Scaling
    for stem, pipeline in ASG_PIPELINES.items():
        policies = autoscaling.describe_policies(AutoScalingGroupName=outputs[f"{stem}GroupName"])["ScalingPolicies"]
        tracking = [p for p in policies if p["PolicyType"] == "TargetTrackingScaling"]
        assert [p["TargetTrackingConfiguration"]["TargetValue"] for p in tracking] == [
            rule_for(template.defaults(), pipeline).target_backlog]
        metrics = tracking[0]["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]["Metrics"]
        dims = [d for m in metrics if "MetricStat" in m for d in m["MetricStat"]["Metric"]["Dimensions"]]
        assert {"Name": "QueueName", "Value": job_queue(deployed, pipeline).name} in dims
        assert {"Name": "AutoScalingGroupName", "Value": outputs[f"{stem}GroupName"]} in dims
    alarms = client("cloudwatch", settings).describe_alarms(AlarmNamePrefix=f"{name}-")["MetricAlarms"]
    assert len(alarms) == len(ASG_PIPELINES)
    assert all(a["AlarmActions"][0].startswith("arn:aws:autoscaling:") for a in alarms)
    # the status writer: both functions, and one disabled trigger per status queue (the local poller consumes)
    lam = client("lambda", settings)
    writer = lam.get_function(FunctionName=outputs["StatusWriterFunctionName"])["Configuration"]
    assert writer["Handler"] == "lambdas.status_writer.handler.lambda_handler" and writer["Timeout"] == 60
    mappings = lam.list_event_source_mappings(FunctionName=outputs["StatusWriterFunctionName"])["EventSourceMappings"]
    assert sorted(m["EventSourceArn"].rsplit(":", 1)[1] for m in mappings) == sorted(
        status_queue(deployed, s.name).name for s in specs())
    assert {m["State"] for m in mappings} == {"Disabled"}
    # log groups, with the template's retention
    logs = client("logs", settings).describe_log_groups(logGroupNamePrefix=f"/specfleet/{name}/")["logGroups"]
    assert sorted(g["logGroupName"] for g in logs) == sorted(f"/specfleet/{name}/{s.name}" for s in specs())
    assert {g.get("retentionInDays") for g in logs} == {30}
    # Everything the template holds was created, except what needs a real VPC and RDS (the database, its secret,
    # the endpoints, the writer's security groups) and the bucket policy moto does not model.
    loaded = cfn_yaml.load(str(TEMPLATE))
    leave_out = {k for k, v in loaded["Resources"].items() if v.get("Condition") in ("OnAws", "WithDatabase")}
    assert leave_out == {"DataBucketPolicy", "WriterSecurityGroup", "DatabaseSecurityGroup", "EndpointSecurityGroup",
                         "SecretsManagerEndpoint", "SnsEndpoint", "DatabaseSecret", "DatabaseSubnetGroup",
                         "DatabaseParameters", "Database", "DatabaseSecretAttachment"}
    # (moto also lists a blank summary for each resource it left out)
    logical = {r["LogicalResourceId"] for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
               if r["LogicalResourceId"]}
    filled_in = {k for k, v in loaded["Resources"].items() if v["Type"] in moto_gaps.FILLED_IN}
    assert logical | filled_in == set(loaded["Resources"]) - leave_out

    assert deploy.destroy(FleetSettings.over(settings), stack_name=name) == "DELETE_COMPLETE"
    assert client("cloudwatch", settings).describe_alarms(AlarmNamePrefix=f"{name}-")["MetricAlarms"] == []


@pytest.mark.slow
def test_lambda_package_contains_the_handler_and_imports_from_the_zip(tmp_path: Path) -> None:
    first = deploy.build_package(tmp_path / "a", with_dependencies=False)
    second = deploy.build_package(tmp_path / "b", with_dependencies=False)
    assert first.name == second.name  # content-addressed and reproducible
    names = set(zipfile.ZipFile(first).namelist())
    assert {"lambdas/status_writer/handler.py", "lambdas/migrate/handler.py", "specfleet/status_writer.py"} <= names
    assert any(n.startswith("specfleet/schema/") and n.endswith(".sql") for n in names)
    assert not any("__pycache__" in n for n in names)
    # the writer's core only: no pipeline worker, CLI, fleet tools or stand-ins, and small
    code = [n for n in names if n.startswith("specfleet/") and n.endswith(".py")]
    assert not [n for n in code if n.startswith(("specfleet/cli/", "specfleet/fleet/", "specfleet/standins/",
                                                  "specfleet/demo/", "specfleet/local/"))], code
    assert not [n for n in code if n.endswith(("/worker.py", "/dsp.py", "/kernels.py"))], code
    assert first.stat().st_size < 250_000, first.stat().st_size
    # every specfleet module the handlers load comes from the zip, none from this checkout
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import lambdas.status_writer.handler as h, lambdas.migrate.handler as m;"
        "assert h.__file__.startswith(sys.argv[1]) and callable(h.lambda_handler) and callable(m.lambda_handler);"
        "outside = [n for n, mod in sys.modules.items() if n.split('.')[0] in ('specfleet', 'lambdas')"
        "           and not (getattr(mod, '__file__', None) or sys.argv[1]).startswith(sys.argv[1])];"
        "assert not outside, outside;"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(first)], capture_output=True, text=True, cwd=tmp_path)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


def test_infra_deploy_cli_in_the_emulator_writes_a_sourceable_env_file(settings: Settings, tmp_path: Path) -> None:
    """`infra deploy --emulator` finds moto's VPC, subnets and a stand-in image
    itself, and its env file survives `set -a; . ./file` (JSON lists quoted)."""
    tag = uuid.uuid4().hex[:8]
    env_file = tmp_path / "stack.env"
    env = {**os.environ, "SPECFLEET_ENDPOINT_URL": settings.endpoint_url or ""}
    deployed = subprocess.run(
        [sys.executable, "-m", "specfleet.cli.main", "infra", "deploy", "--region", settings.region, "--emulator",
         "--data-bucket", f"cli-{tag}-data", "--artifact-bucket", f"cli-{tag}-artifacts", "--queue-prefix",
         f"cli{tag}_", "--stack-name", f"cli-{tag}", "--env-file", str(env_file)],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert deployed.returncode == 0, deployed.stderr[-2000:]
    probe = (f"set -a; . {env_file}; set +a; {sys.executable} -c "
             "'from specfleet.fleet.settings import FleetSettings; s = FleetSettings(); "
             "print(s.fleet_stack_name, s.queue_prefix, len(s.fleet_security_group_ids))'")
    sourced = subprocess.run(["bash", "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert sourced.stdout.split() == [f"cli-{tag}", f"cli{tag}_", "1"], sourced.stderr[-2000:]
    assert deploy.destroy(FleetSettings.over(settings), stack_name=f"cli-{tag}") == "DELETE_COMPLETE"


def test_guided_deploy_saves_answers_that_later_commands_read(settings: Settings, tmp_path: Path) -> None:
    """`infra deploy --guided` asks once and writes specfleet.toml; a plain
    `infra deploy` reuses the answers, and other commands read the stack's
    settings from it (here: `dlq list` names the stack's prefixed queues)."""
    import tomllib

    tag = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECFLEET_")}
    env.update({"SPECFLEET_ENDPOINT_URL": settings.endpoint_url or "", "AWS_ENDPOINT_URL": settings.endpoint_url or "",
                "COLUMNS": "200"})
    answers = [settings.region, f"g-{tag}", "y", "", "", "", f"g{tag}_", "", "", "", "y"]  # ..., deploy the change set

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "specfleet.cli.main", *args], input=stdin, env=env,
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)

    guided = cli("infra", "deploy", "--guided", stdin="\n".join(answers) + "\n")
    assert guided.returncode == 0, guided.stderr[-3000:]
    saved = tomllib.loads((tmp_path / "specfleet.toml").read_text())
    assert saved["deploy"]["region"] == settings.region and saved["deploy"]["stack_name"] == f"g-{tag}"
    assert saved["deploy"]["emulator"] is True and saved["deploy"]["data_bucket"] == f"g-{tag}-data"
    assert saved["env"]["SPECFLEET_QUEUE_PREFIX"] == f"g{tag}_"
    assert saved["env"]["SPECFLEET_FLEET_STACK_NAME"] == f"g-{tag}"
    assert not [k for k in saved["env"] if "DSN" in k or "PASSWORD" in k]  # names and ids only

    again = cli("infra", "deploy", "--json")  # no options: the saved answers
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["env"]["SPECFLEET_QUEUE_PREFIX"] == f"g{tag}_"
    listed = cli("dlq", "list")
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert f"g{tag}_jobs_hydro" in listed.stdout and "using specfleet.toml" in listed.stderr

    (tmp_path / "specfleet.toml").write_text(saved_text := "[deploy]\nregoin = 'x'\n")
    broken = cli("status")
    assert broken.returncode != 0 and "Traceback" not in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1 and "deploy.regoin" in broken.stderr, (saved_text, broken.stderr)
    assert deploy.destroy(FleetSettings.over(settings), stack_name=f"g-{tag}") == "DELETE_COMPLETE"
