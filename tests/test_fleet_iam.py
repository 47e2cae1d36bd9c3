"""Least privilege, proven: the worker role's and the writer role's policies,
rendered from infra/template.yaml, created in a moto server that enforces
IAM; every pipeline's worker runs with credentials bound to exactly the
worker role and its jobs complete (its status written by the writer, which
runs with exactly the writer role), and the calls they must not make are
refused. The roles are assumed before enforcement starts (moto checks a
role's trust policy then); what they may do is the template's, unchanged.

The server (tests/iam_moto_server.py) makes moto authorize these calls
against the resources AWS uses (see its docstring); without that moto checks
most actions against "*", which no ARN-scoped policy matches.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from cfnlint.decode import cfn_yaml

from helpers import count, query, wait_for
from specfleet.fleet.cfn import resolve
from specfleet.fleet.deploy import TEMPLATE
from specfleet.fleet.settings import FleetSettings
from specfleet.fleet.template_shared import WORKER_POLICY, WRITER_POLICY
from specfleet.local.stack import Namespace
from specfleet.pipelines import ensure_all_queues, job_queue, specs, status_queue
from specfleet.pipelines.download.models import DownloadJob
from specfleet.pipelines.hydrophone.producer import produce_day
from specfleet.pipelines.hydrophone.settings import HydroSettings
from specfleet.pipelines.melwindows.models import SpectoJob
from specfleet.pipelines.search.models import SearchJob
from specfleet.standins.imds import StubImds
from specfleet.standins.ooi_archive import OOIServer, write_day
from specfleet.standins.video_site import VideoSite
from specfleet.storage import Storage

ROOT = Path(__file__).resolve().parent
REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "iamstack"
PREFIX = "iam_"
BUCKET = "iam-specfleet-data"
HYDROPHONE = "CE02SHBP/LJ01D/11-HYDBBA106"
DAY = dt.date(2017, 10, 9)


def _client(service: str, url: str, creds: dict[str, str]) -> Any:
    return boto3.client(service, endpoint_url=url, region_name=REGION, **creds)


def _as_env(creds: dict[str, str]) -> dict[str, str]:
    names = {"aws_access_key_id": "AWS_ACCESS_KEY_ID", "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
             "aws_session_token": "AWS_SESSION_TOKEN"}
    return {names[k]: v for k, v in creds.items()}


def _conditions(template: dict[str, Any], parameters: dict[str, Any]) -> dict[str, bool]:
    """The template's conditions evaluated for ``parameters`` (CloudFormation's
    Fn::Equals, Fn::Not, Fn::And, Fn::Or and Condition references)."""
    declared = template.get("Conditions", {})

    def value(v: Any) -> Any:
        return parameters[v["Ref"]] if isinstance(v, dict) and "Ref" in v else v

    def holds(expr: Any) -> bool:
        (fn, arg), = expr.items()
        if fn == "Condition":
            return holds(declared[arg])
        if fn == "Fn::Equals":
            return bool(str(value(arg[0])) == str(value(arg[1])))
        if fn == "Fn::Not":
            return not holds(arg[0])
        if fn == "Fn::And":
            return all(holds(a) for a in arg)
        if fn == "Fn::Or":
            return any(holds(a) for a in arg)
        raise ValueError(f"condition function {fn} is not known here")

    return {name: holds(expr) for name, expr in declared.items()}


def role_policies(template: dict[str, Any], role: str, *, topic_arn: str, secret_arn: str,
                  parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The role's inline policy documents and managed policy ARNs, with every
    reference resolved to this account's names; template parameters not
    named here or in ``parameters`` take their defaults (a deployed stack's
    Emulator is "false")."""
    resources = template["Resources"]
    given = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    given.update({"QueuePrefix": PREFIX, "DataBucketName": BUCKET, **(parameters or {})})
    names = {**given, "AWS::StackName": STACK, "AWS::Region": REGION,
             "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "DataBucket": BUCKET, "StatusTopic": topic_arn,
             "DatabaseSecret": secret_arn}

    def lookup(name: str) -> Any:
        return names[name]

    def get_attr(resource: str, attribute: str) -> Any:
        kind, props = resources[resource]["Type"], resources[resource]["Properties"]
        if (kind, attribute) == ("AWS::SQS::Queue", "Arn"):
            return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{resolve(props['QueueName'], lookup, get_attr)}"
        if (kind, attribute) == ("AWS::S3::Bucket", "Arn"):
            return f"arn:aws:s3:::{BUCKET}"
        if (kind, attribute) == ("AWS::Logs::LogGroup", "Arn"):
            return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{resolve(props['LogGroupName'], lookup, get_attr)}:*"
        raise KeyError(f"{resource}.{attribute}")

    props = resolve(resources[role]["Properties"], lookup, get_attr, _conditions(template, given))
    return {"inline": {p["PolicyName"]: p["PolicyDocument"] for p in props["Policies"]},
            "managed": props.get("ManagedPolicyArns", []), "trust": props["AssumeRolePolicyDocument"]}


def make_operator(url: str) -> dict[str, str]:
    """Credentials of an "operator" user allowed everything (the test's own hands); made before enforcement."""
    iam = _client("iam", url, {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"})
    iam.create_user(UserName="operator")
    iam.put_user_policy(UserName="operator", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="operator")["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def assume_role_with(url: str, operator: dict[str, str], name: str, policies: dict[str, Any]) -> dict[str, str]:
    """Create role ``name`` with exactly ``policies`` (``role_policies``) and return its assumed credentials."""
    iam = _client("iam", url, operator)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(policies["trust"]))["Role"]["Arn"]
    for policy, document in policies["inline"].items():
        iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(document))
    for managed in policies["managed"]:
        iam.attach_role_policy(RoleName=name, PolicyArn=managed)
    assumed = _client("sts", url, operator).assume_role(RoleArn=arn, RoleSessionName=name,
                                                       DurationSeconds=3600)["Credentials"]
    return {"aws_access_key_id": assumed["AccessKeyId"], "aws_secret_access_key": assumed["SecretAccessKey"],
            "aws_session_token": assumed["SessionToken"]}


def _refusal(call: Any, **kwargs: Any) -> str | None:
    """The error code a call is refused with, or None if it succeeds. (moto
    answers SQS's JSON protocol with an XML error, which boto3 reports as
    code "403": the code is read from the body then.)"""
    try:
        call(**kwargs)
    except ClientError as err:
        code = str(err.response["Error"]["Code"])
        if code == "403":
            body = str(err.response["Error"].get("Message", ""))
            found = body.split("<Code>", 1)[-1].split("</Code>", 1)[0] if "<Code>" in body else code
            return found
        return code
    return None


def _denied(call: Any, **kwargs: Any) -> bool:
    """Refused by IAM authorization (not for a bad signature or unknown key)."""
    return _refusal(call, **kwargs) in ("AccessDenied", "AccessDeniedException", "AuthorizationError")


def _work(pipeline: str, env: dict[str, str], *, extra: dict[str, str] | None = None,
          idle_exit_s: float = 3) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SPECFLEET_", "AWS_"))}
    return subprocess.run([sys.executable, "-m", "specfleet.cli.main", "work", pipeline, "--idle-exit",
                           str(idle_exit_s)], env={**base, **env, **(extra or {})}, capture_output=True, text=True,
                          timeout=240)


@pytest.mark.slow
def test_each_worker_completes_its_jobs_with_exactly_the_template_policies_and_nothing_more(
    enforcing_moto: str, namespace: Namespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = enforcing_moto
    boot = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    # --- the operator (the test's own hands), before enforcement ------------------------------------------------
    operator = make_operator(url)
    for k, v in _as_env(operator).items():  # this process's specfleet calls act as the operator
        monkeypatch.setenv(k, v)
    s = FleetSettings(endpoint_url=url, region=REGION, queue_prefix=PREFIX, bucket=BUCKET, fleet_stack_name=STACK,
                 db_dsn=namespace.settings.db_dsn)
    ensure_all_queues(s)
    Storage(s).ensure_bucket()
    sns = _client("sns", url, operator)
    topic = sns.create_topic(Name=f"{PREFIX}status_sns")["TopicArn"]
    other_topic = sns.create_topic(Name="someone-elses-topic")["TopicArn"]
    secrets = _client("secretsmanager", url, operator)
    secret = secrets.create_secret(Name=f"{PREFIX}db", SecretString=json.dumps({
        "username": "postgres", "password": "", "host": "127.0.0.1", "port": namespace.state.pg_port,
        "dbname": namespace.dbname, "sslmode": "disable"}))["ARN"]
    other_secret = secrets.create_secret(Name="unrelated", SecretString="hush")["ARN"]
    Storage(s).put_bytes("private/notes.txt", b"not for workers")
    # an Auto Scaling group of this stack (its instance runs the echo worker) and one of another stack
    ec2 = _client("ec2", url, operator)
    image = ec2.register_image(Name="iam-worker-image", RootDeviceName="/dev/xvda")["ImageId"]
    autoscaling = _client("autoscaling", url, operator)
    for group in (f"{STACK}-echo", "otherstack-echo"):
        ec2.create_launch_template(LaunchTemplateName=group, LaunchTemplateData={"ImageId": image,
                                                                                 "InstanceType": "c6i.large"})
        autoscaling.create_auto_scaling_group(AutoScalingGroupName=group, MinSize=0, MaxSize=2, DesiredCapacity=1,
                                              LaunchTemplate={"LaunchTemplateName": group},
                                              AvailabilityZones=[f"{REGION}a"])
    [echo_instance] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{STACK}-echo"])[
        "AutoScalingGroups"][0]["Instances"]
    [other_instance] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["otherstack-echo"])[
        "AutoScalingGroups"][0]["Instances"]

    # --- the two roles, from the template ------------------------------------------------------------------------
    template = cfn_yaml.load(str(TEMPLATE))
    creds: dict[str, dict[str, str]] = {}
    for role, inline_name in (("WorkerRole", WORKER_POLICY), ("WriterRole", WRITER_POLICY)):
        policies = role_policies(template, role, topic_arn=topic, secret_arn=secret)
        assert list(policies["inline"]) == [inline_name]
        creds[role] = assume_role_with(url, operator, role, policies)
    worker_secret = json.dumps(role_policies(template, "WorkerRole", topic_arn=topic, secret_arn=secret))
    assert "secretsmanager" not in worker_secret and secret not in worker_secret  # not even named

    # --- enforcement on ----------------------------------------------------------------------------------------------
    httpx.post(f"{url}/moto-api/reset-auth", content=b"0").raise_for_status()
    assert _refusal(_client("sqs", url, boot).list_queues) == "InvalidClientTokenId"  # enforcement is on

    worker_env = {**_as_env(creds["WorkerRole"]), "AWS_ENDPOINT_URL": url, "SPECFLEET_ENDPOINT_URL": url,
                  "SPECFLEET_REGION": REGION, "SPECFLEET_QUEUE_PREFIX": PREFIX, "SPECFLEET_BUCKET": BUCKET,
                  "SPECFLEET_WAIT_TIME_S": "1", "SPECFLEET_VISIBILITY_TIMEOUT_S": "30"}
    ran: dict[str, subprocess.CompletedProcess[str]] = {}

    # echo, on its Auto Scaling instance: it protects the instance from scale-in while it works
    job_queue(s, "echo").send_json({"job_id": f"e{i}", "sleep_s": 0.5} for i in range(6))
    imds = StubImds(echo_instance["InstanceId"]).start()
    protected_seen = []
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "specfleet.cli.main", "work", "echo", "--idle-exit", "3"],
            env={**{k: v for k, v in os.environ.items() if not k.startswith(("SPECFLEET_", "AWS_"))}, **worker_env,
                 "SPECFLEET_INSTANCE_ID": echo_instance["InstanceId"], "SPECFLEET_IMDS_URL": imds.url,
                 "SPECFLEET_IMDS_POLL_S": "0.3"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            [state] = autoscaling.describe_auto_scaling_instances(InstanceIds=[echo_instance["InstanceId"]])[
                "AutoScalingInstances"]
            protected_seen.append(state["ProtectedFromScaleIn"])
            time.sleep(0.2)  # sampling the protection flag while the worker runs
        out, err = proc.communicate(timeout=60)
        ran["echo"] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        imds.stop()
    assert True in protected_seen  # SetInstanceProtection allowed on this stack's group ...
    [state] = autoscaling.describe_auto_scaling_instances(InstanceIds=[echo_instance["InstanceId"]])[
        "AutoScalingInstances"]
    assert state["ProtectedFromScaleIn"] is False  # ... and lifted when the worker stopped

    # hydrophone: one clean 5-minute file from the OOI stand-in -> clips under hydrophone/
    ooi = OOIServer(tmp_path / "ooi")
    write_day(tmp_path / "ooi", HYDROPHONE, DAY, clean_files=1, gap_file=False, bad_file=False)
    ooi.start()
    try:
        config = HydroSettings(allowed_hosts=[ooi.netloc])
        assert len(produce_day(s, DAY, base_url=ooi.base_url, hydrophone=HYDROPHONE, config=config).enqueued) == 1
        ran["hydrophone"] = _work("hydrophone", worker_env,
                                  extra={"SPECFLEET_HYDRO_ALLOWED_HOSTS": json.dumps([ooi.netloc]),
                                         "SPECFLEET_HYDRO_BASE_URL": ooi.base_url,
                                         "SPECFLEET_HYDRO_PROCESSES": "1", "SPECFLEET_HYDRO_ARCHIVE": "1"})
    finally:
        ooi.close()
    # the archive copy's FLAC, record and day manifest (written last, after listing the records)
    assert Storage(s).exists("archive/2017/HYDBBA106/2017_10_09/HYDBBA106_20171009_000000.flac"), \
        ran["hydrophone"].stderr[-3000:]
    assert Storage(s).exists("archive/2017/HYDBBA106/2017_10_09/HYDBBA106_20171009_manifest.json"), (
        list(Storage(s).list("archive/")), ran["hydrophone"].stderr[-3000:])

    # search, download, spectrogram: against the local video site; download's mp3 feeds the spectrogram
    site = VideoSite(tmp_path / "site").start()
    try:
        site.add_video("vidA", "Nina Simone - Feeling Good", seconds=30, views=5000)
        site.add_video("vidB", "Queen - Bohemian Rhapsody", seconds=25, views=7000)
        music = {"SPECFLEET_MUSIC_EXTRA_HOSTS": json.dumps([site.host]), "SPECFLEET_MUSIC_SEARCH_URL":
                 site.search_api_url, "SPECFLEET_MUSIC_TMP_DIR": str(tmp_path / "music-tmp")}
        (tmp_path / "music-tmp").mkdir()
        job_queue(s, "search").send([SearchJob(track_id="t1", query="Feeling Good Nina Simone").body(),
                                     SearchJob(track_id="t2", query="Bohemian Rhapsody Queen").body()])
        ran["search"] = _work("search", worker_env, extra=music)
        job_queue(s, "download").send([DownloadJob(track_id="t1", yt_url=site.watch_url("vidA")).body()])
        ran["download"] = _work("download", worker_env, extra=music)
    finally:
        site.close()
    assert Storage(s).exists("audio/t1.mp3"), ran["download"].stderr[-3000:]
    job_queue(s, "spectrogram").send([SpectoJob(track_id="t1").body()])
    ran["spectrogram"] = _work("spectrogram", worker_env, extra={"SPECFLEET_SPECTRO_PROCESSES": "1"})

    for pipeline, result in ran.items():
        assert result.returncode == 0, (pipeline, result.stderr[-3000:])
        assert "AccessDenied" not in result.stderr, (pipeline, result.stderr[-3000:])
    assert {spec.name for spec in specs()} == set(ran)  # every pipeline ran

    # --- the status writer, with exactly the writer role (the poller plays its trigger) -------------------------------
    writer_env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SPECFLEET_", "AWS_"))},
                  **_as_env(creds["WriterRole"]), "AWS_ENDPOINT_URL": url, "SPECFLEET_ENDPOINT_URL": url,
                  "SPECFLEET_REGION": REGION, "SPECFLEET_QUEUE_PREFIX": PREFIX, "SPECFLEET_DB_SECRET_ID": secret}
    writer = subprocess.Popen([sys.executable, "-m", "specfleet.cli.main", "local", "poll"], env=writer_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    db = namespace.settings
    try:
        expected = {"status_echo": 6, "status_hydro": 1, "status_search": 2, "status": 1}
        for table, n in expected.items():
            wait_for(lambda t=table, n=n: count(db, t, "stat = 1") >= n, timeout=90, what=f"{n} rows in {table}")
        wait_for(lambda: count(db, "status_specto", "stat = 1") >= 1, timeout=90, what="spectrogram windows")
        wait_for(lambda: all(status_queue(s, spec.name).depth()["visible"] == 0 for spec in specs()), timeout=60,
                 what="status queues drained by the writer")
    finally:
        writer.terminate()
        _, writer_err = writer.communicate(timeout=60)
    assert "AccessDenied" not in writer_err, writer_err[-3000:]
    assert count(db, "status_echo", "stat <> 1") == 0
    assert query(db, "SELECT clips > 0 FROM status_hydro") == [(True,)]
    assert count(db, "track_url", "track_id IN ('t1', 't2')") == 2  # derived rows, written by the writer
    assert count(db, "status_specto", "stat = 1") >= 1
    assert Storage(s).count("spec/") >= 1 and Storage(s).count(f"hydrophone/{HYDROPHONE}/") >= 2

    # --- what the roles must not do ----------------------------------------------------------------------------------
    w = creds["WorkerRole"]
    w_sqs, w_s3 = _client("sqs", url, w), _client("s3", url, w)
    jobs_url = job_queue(s, "echo").url
    assert _denied(w_sqs.delete_queue, QueueUrl=jobs_url)
    assert _denied(w_sqs.receive_message, QueueUrl=status_queue(s, "echo").url)  # status is the writer's
    assert w_s3.get_object(Bucket=BUCKET, Key="audio/t1.mp3")["ContentLength"] > 0  # its own prefix: yes
    assert _denied(w_s3.get_object, Bucket=BUCKET, Key="private/notes.txt")  # another prefix: no
    assert _denied(w_s3.put_object, Bucket=BUCKET, Key="private/x", Body=b"x")
    assert _denied(_client("sns", url, w).publish, TopicArn=topic, Message="hi")
    assert _denied(_client("secretsmanager", url, w).get_secret_value, SecretId=secret)
    assert _denied(_client("autoscaling", url, w).set_instance_protection, AutoScalingGroupName="otherstack-echo",
                   InstanceIds=[other_instance["InstanceId"]], ProtectedFromScaleIn=True)
    assert _denied(_client("iam", url, w).list_roles)
    r = creds["WriterRole"]
    r_sns = _client("sns", url, r)
    assert r_sns.publish(TopicArn=topic, Subject="probe", Message="allowed")["MessageId"]
    assert _denied(r_sns.publish, TopicArn=other_topic, Message="elsewhere")
    assert _denied(_client("secretsmanager", url, r).get_secret_value, SecretId=other_secret)
    assert _denied(_client("sqs", url, r).receive_message, QueueUrl=jobs_url)
    assert _denied(_client("sqs", url, r).delete_queue, QueueUrl=status_queue(s, "echo").url)
    assert _denied(_client("s3", url, r).get_object, Bucket=BUCKET, Key="audio/t1.mp3")


def _template_bucket_settings(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The data bucket's properties and its policy document, resolved to this account's names."""
    names = {"DataBucketName": BUCKET, "DataBucket": BUCKET, "AWS::Partition": "aws"}

    def get_attr(resource: str, attribute: str) -> Any:
        assert (resource, attribute) == ("DataBucket", "Arn")
        return f"arn:aws:s3:::{BUCKET}"

    resources = template["Resources"]
    bucket = resolve(resources["DataBucket"]["Properties"], names.__getitem__, get_attr, {"OnAws": True})
    policy = resolve(resources["DataBucketPolicy"]["Properties"], names.__getitem__, get_attr, {"OnAws": True})
    return bucket, policy["PolicyDocument"]


@pytest.mark.slow
def test_whaledr_uploads_under_the_template_bucket_and_only_its_prefix_is_public(
    enforcing_moto: str, namespace: Namespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whaledr profile on a bucket set up exactly as the template sets it
    (owner-enforced ACLs, its Block Public Access, its policy), with the worker
    role's policies: every upload and the manifest land, anyone can read a
    clip and the manifest, and nothing else is public. Before, every upload
    carried ACL=public-read, which such a bucket refuses."""
    from botocore import UNSIGNED
    from botocore.config import Config

    url = enforcing_moto
    operator = make_operator(url)
    for k, v in _as_env(operator).items():
        monkeypatch.setenv(k, v)
    s = FleetSettings(endpoint_url=url, region=REGION, queue_prefix=PREFIX, bucket=BUCKET, fleet_stack_name=STACK,
                      db_dsn=namespace.settings.db_dsn)
    ensure_all_queues(s)
    storage = Storage(s)
    storage.ensure_bucket()
    # --- the bucket as the template makes it ----------------------------------------------------------------------
    template = cfn_yaml.load(str(TEMPLATE))
    bucket, policy = _template_bucket_settings(template)
    s3 = _client("s3", url, operator)
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    s3.put_bucket_ownership_controls(Bucket=BUCKET, OwnershipControls=bucket["OwnershipControls"])
    block = bucket["PublicAccessBlockConfiguration"]
    assert block["BlockPublicAcls"] is True and block["IgnorePublicAcls"] is True  # ACLs stay blocked
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=block)
    by_sid = {st["Sid"]: st for st in policy["Statement"]}
    assert by_sid["DenyPlainHttp"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    public = by_sid["PublicReadOfAppPrefixes"]
    assert (public["Action"], public["Principal"]) == ("s3:GetObject", "*")
    assert public["Resource"] == [f"arn:aws:s3:::{BUCKET}/megaptera/*"]
    # This endpoint is plain http (the real bucket is reached over https), so the
    # https-only statement would refuse every request here: the rest is applied as it is.
    # Under the template's Block Public Access the public statement is accepted.
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(
        {**policy, "Statement": [st for st in policy["Statement"] if st["Sid"] != "DenyPlainHttp"]}))
    storage.put_bytes("private/notes.txt", b"not for anyone")
    # --- the worker role, from the template ---------------------------------------------------------------------------
    roles = role_policies(template, "WorkerRole", topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:{PREFIX}status_sns",
                          secret_arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{PREFIX}db")
    worker = assume_role_with(url, operator, "WorkerRole", roles)
    httpx.post(f"{url}/moto-api/reset-auth", content=b"0").raise_for_status()  # enforcement on

    # --- a whaledr job: one 12.5 s file -> 3 clips, the day done -> the manifest published ------------------------
    from specfleet.standins import mseed_synth as synth
    from specfleet.standins.ooi_archive import day_dir, file_name_for

    start = dt.datetime(2017, 10, 9)
    root = tmp_path / "ooi"
    day_dir(root, HYDROPHONE, DAY).joinpath(file_name_for(start)).write_bytes(
        synth.mseed_bytes(synth.realistic_signal(12.5, seed=1), start))
    with OOIServer(root) as ooi:
        config = HydroSettings(allowed_hosts=[ooi.netloc], output="whaledr")
        assert len(produce_day(s, DAY, base_url=ooi.base_url, hydrophone=HYDROPHONE, config=config).enqueued) == 1
        worker_env = {**_as_env(worker), "AWS_ENDPOINT_URL": url, "SPECFLEET_ENDPOINT_URL": url,
                      "SPECFLEET_REGION": REGION, "SPECFLEET_QUEUE_PREFIX": PREFIX, "SPECFLEET_BUCKET": BUCKET,
                      "SPECFLEET_WAIT_TIME_S": "1", "SPECFLEET_VISIBILITY_TIMEOUT_S": "30"}
        ran = _work("hydrophone", worker_env, extra={"SPECFLEET_HYDRO_ALLOWED_HOSTS": json.dumps([ooi.netloc]),
                                                     "SPECFLEET_HYDRO_BASE_URL": ooi.base_url,
                                                     "SPECFLEET_HYDRO_PROCESSES": "1",
                                                     "SPECFLEET_HYDRO_OUTPUT": "whaledr"})
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "AccessDenied" not in ran.stderr and "AccessControlListNotSupported" not in ran.stderr, ran.stderr[-3000:]
    keys = sorted(k for k, _ in storage.list("megaptera/"))
    manifest_key = "megaptera/whalemanifest.json"
    clips = [k for k in keys if k != manifest_key]
    assert manifest_key in keys and len(clips) == 6, keys
    jpgs = [k for k in clips if k.endswith(".jpg")]
    assert json.loads(storage.get_bytes(manifest_key)) == sorted(
        k[len("megaptera/"):].replace("/", "___").split(".")[0] for k in jpgs)

    # --- anyone may read the clips and the manifest, and nothing else --------------------------------------------------
    anonymous = boto3.client("s3", endpoint_url=url, region_name=REGION, config=Config(signature_version=UNSIGNED))
    assert json.loads(anonymous.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read()) == json.loads(
        storage.get_bytes(manifest_key))
    for clip in (jpgs[0], next(k for k in clips if k.endswith(".wav"))):
        assert anonymous.get_object(Bucket=BUCKET, Key=clip)["Body"].read() == storage.get_bytes(clip)
    marker = next(k for k, _ in storage.list("hydrophone-manifests/"))
    refused = {"AccessDenied", "403"}  # moto's bucket-policy refusal is a bare 403 (AWS: AccessDenied)
    for other in (marker, "private/notes.txt"):
        assert _refusal(anonymous.get_object, Bucket=BUCKET, Key=other) in refused, other
    assert _refusal(anonymous.put_object, Bucket=BUCKET, Key="megaptera/x.jpg", Body=b"x") in refused
    assert _refusal(anonymous.list_objects_v2, Bucket=BUCKET, Prefix="megaptera/") in refused
    # What every whaledr upload did before: refused by the template's bucket.
    w_s3 = _client("s3", url, worker)
    assert _refusal(w_s3.put_object, Bucket=BUCKET, Key="megaptera/LJ01D/x.jpg", Body=b"x",
                    ACL="public-read") == "AccessControlListNotSupported"
    # The Block Public Access the template had before would hide the prefix again, or refuse its policy.
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={**block, "RestrictPublicBuckets": True})
    assert _refusal(anonymous.get_object, Bucket=BUCKET, Key=manifest_key) in refused
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={**block, "BlockPublicPolicy": True})
    assert _refusal(s3.put_bucket_policy, Bucket=BUCKET, Policy=json.dumps(policy)) == "AccessDenied"
