"""Pre-flight checks (specfleet/runtime/preflight.py): a worker set up
wrong says so in one line and exits 78 before it receives a job, so every
job stays on its queue -- a configuration mistake is never a data error.

A role that may not read its job queue's redrive policy
(``sqs:GetQueueAttributes``) is one such line too; an endpoint that drops
that read is an outage, waited out.

The S3 case is the one AWS makes subtle: a HEAD of a missing key answers 404
only to a principal allowed ``s3:ListBucket``, and 403 to any other, so a
worker without it would take each track's "not downloaded yet" for an
unexpected failure and retry every job until the dead-letter queue. The
enforcing moto server (tests/iam_moto_server.py) answers as S3 does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
import pytest
from cfnlint.decode import cfn_yaml

from specfleet.local.stack import Namespace
from specfleet.pipelines import ensure_all_queues, get_spec, job_queue
from specfleet.pipelines.download.models import DownloadJob
from specfleet.runtime import Worker
from specfleet.runtime.outage import is_outage
from specfleet.runtime.preflight import EXIT_CONFIG, ConfigError
from specfleet.settings import Settings
from specfleet.standins.faults import FaultProxy
from specfleet.storage import Storage
from test_fleet_iam import ACCOUNT, BUCKET, PREFIX, REGION, role_policies

BOOT = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _work(pipeline: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SPECFLEET_", "AWS_"))}
    return subprocess.run([sys.executable, "-m", "specfleet.cli.main", "work", pipeline, "--idle-exit", "2"],
                          env={**base, "COLUMNS": "300", **env}, cwd=cwd, capture_output=True, text=True, timeout=120)


def _queued_download_jobs(url: str, count: int) -> list[str]:
    """The stack's queues and bucket, and ``count`` download jobs waiting (their bodies)."""
    s = Settings(endpoint_url=url, region=REGION, queue_prefix=PREFIX, bucket=BUCKET)
    ensure_all_queues(s)
    Storage(s).ensure_bucket()
    jobs = [DownloadJob(track_id=f"t{i}", yt_url=f"https://www.youtube.com/watch?v=abcdefghij{i}").body()
            for i in range(count)]
    job_queue(s, "download").send(jobs)
    return jobs


def _error_lines(stderr: str) -> list[str]:
    """The terminal's lines but the worker's start banner."""
    return [line for line in stderr.splitlines() if line.strip() and " worker " not in line.split(":")[0]]


def test_a_role_without_list_bucket_refuses_to_start_and_leaves_every_job_queued(
    enforcing_moto: str, tmp_path: Path
) -> None:
    url = enforcing_moto
    jobs = _queued_download_jobs(url, 3)

    # The template's worker policy, less the statement that grants s3:ListBucket.
    def without_list_bucket(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = [st for st in statements if st.get("Sid") != "ListResults"]
        assert len(kept) == len(statements) - 1  # the statement is there to remove
        return kept

    env, operator = _enforced_worker(url, without_list_bucket)
    ran = _work("download", env, tmp_path)

    assert ran.returncode == EXIT_CONFIG, ran.stderr[-2000:]
    [line] = _error_lines(ran.stderr)
    assert line.startswith("error: ") and f"grant s3:ListBucket on arn:aws:s3:::{BUCKET}" in line, line
    assert "job" not in ran.stdout.lower().replace("jobs at once", "")  # no job line: none was taken
    # Every job still waits, never received: the operator's receive is each one's first.
    _assert_never_received(url, operator, jobs)


@pytest.mark.slow
def test_a_role_that_may_not_read_the_redrive_policy_refuses_to_start_naming_permission_and_queue(
    enforcing_moto: str, tmp_path: Path
) -> None:
    """The worker reads its job queue's ``maxReceiveCount`` at start
    (``Worker.adopt_redrive_policy``); without ``sqs:GetQueueAttributes``
    that is a configuration mistake, said in one line, not a traceback."""
    url = enforcing_moto
    jobs = _queued_download_jobs(url, 2)

    # The template's worker policy, less GetQueueAttributes on the job queues (the status queues keep theirs).
    def without_job_queue_attributes(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
        [jobs_st] = [st for st in statements if st.get("Sid") == "ConsumeAndChainJobs"]
        assert "sqs:GetQueueAttributes" in jobs_st["Action"]
        jobs_st["Action"] = [a for a in jobs_st["Action"] if a != "sqs:GetQueueAttributes"]
        return statements

    env, operator = _enforced_worker(url, without_job_queue_attributes)
    ran = _work("download", env, tmp_path)

    assert ran.returncode == EXIT_CONFIG, ran.stderr[-2000:]
    assert "Traceback" not in ran.stderr, ran.stderr[-2000:]
    [line] = _error_lines(ran.stderr)
    assert line.startswith("error: ") and f"queue {PREFIX}jobs_download" in line, line
    assert "sqs:GetQueueAttributes" in line, line
    assert "job" not in ran.stdout.lower().replace("jobs at once", "")  # no job line: none was taken
    _assert_never_received(url, operator, jobs)


def _enforced_worker(
    url: str, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
) -> tuple[dict[str, str], dict[str, str]]:
    """A worker user holding the template's worker policy as ``edit`` leaves
    it, and an operator allowed everything; then IAM is enforced. Returns the
    worker's environment and the operator's keys."""
    from specfleet.fleet.deploy import TEMPLATE

    iam = boto3.client("iam", endpoint_url=url, region_name=REGION, **BOOT)
    template = cfn_yaml.load(str(TEMPLATE))
    policies = role_policies(template, "WorkerRole", topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:t",
                             secret_arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:x")
    [(name, document)] = policies["inline"].items()
    worker = edit(list(document["Statement"]))
    for user, statements in (("worker", worker), ("operator", [{"Effect": "Allow", "Action": "*", "Resource": "*"}])):
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName=name, PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": statements}))
    keys = {user: iam.create_access_key(UserName=user)["AccessKey"] for user in ("worker", "operator")}
    httpx.post(f"{url}/moto-api/reset-auth", content=b"0").raise_for_status()
    env = {"AWS_ACCESS_KEY_ID": keys["worker"]["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": keys["worker"]["SecretAccessKey"],
           "AWS_ENDPOINT_URL": url, "SPECFLEET_ENDPOINT_URL": url, "SPECFLEET_REGION": REGION,
           "SPECFLEET_QUEUE_PREFIX": PREFIX, "SPECFLEET_BUCKET": BUCKET, "SPECFLEET_WAIT_TIME_S": "1"}
    return env, keys["operator"]


def _assert_never_received(url: str, operator: dict[str, str], jobs: list[str]) -> None:
    """Every job still waits, never received: the operator's receive is each one's first."""
    sqs = boto3.client("sqs", endpoint_url=url, region_name=REGION, aws_access_key_id=operator["AccessKeyId"],
                       aws_secret_access_key=operator["SecretAccessKey"])
    queue_url = sqs.get_queue_url(QueueName=f"{PREFIX}jobs_download")["QueueUrl"]
    got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                              MessageSystemAttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert sorted(m["Body"] for m in got) == sorted(jobs)
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in got} == {"1"}


def test_a_missing_bucket_is_one_line_before_any_job(namespace: Namespace, tmp_path: Path) -> None:
    s = namespace.settings
    job_queue(s, "download").send([DownloadJob(track_id="t1", yt_url="https://www.youtube.com/watch?v=abcdefghijk")
                                   .body()])
    ran = _work("download", {**namespace.env(), "SPECFLEET_BUCKET": "no-such-specfleet-bucket",
                             "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}, tmp_path)
    assert ran.returncode == EXIT_CONFIG, ran.stderr[-2000:]
    [line] = _error_lines(ran.stderr)
    assert "bucket no-such-specfleet-bucket does not exist" in line and "SPECFLEET_BUCKET" in line
    assert job_queue(s, "download").depth() == {"visible": 1, "in_flight": 0, "delayed": 0}


def test_no_credentials_is_one_line_and_no_request(tmp_path: Path) -> None:
    """No credentials anywhere in the chain (environment, files, and the
    instance metadata turned off: no request leaves loopback)."""
    env = {"HOME": str(tmp_path), "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true",
           "SPECFLEET_ENDPOINT_URL": "http://127.0.0.1:9", "SPECFLEET_REGION": REGION}
    ran = _work("echo", env, tmp_path)
    assert ran.returncode == EXIT_CONFIG, ran.stderr[-2000:]
    [line] = _error_lines(ran.stderr)
    assert line.startswith("error: no AWS credentials found"), line


def test_an_outage_while_reading_the_redrive_policy_is_an_outage_not_a_config_error(namespace: Namespace) -> None:
    """Only a refusal is a configuration mistake: an endpoint that drops the
    GetQueueAttributes is an outage, which ``Worker.preflight`` waits out."""
    s = namespace.settings
    endpoint = urlsplit(s.endpoint_url)
    with FaultProxy((endpoint.hostname or "127.0.0.1", int(endpoint.port or 0))) as proxy:
        worker = Worker(s.model_copy(update={"endpoint_url": proxy.url}), get_spec("echo"), concurrency=1)
        assert worker.queue.url  # the queue is found while the endpoint answers
        proxy.cut()
        with pytest.raises(Exception) as dropped:  # noqa: PT011 - which botocore class is the point of the test
            worker.adopt_redrive_policy()
        assert not isinstance(dropped.value, ConfigError) and is_outage(dropped.value), repr(dropped.value)
        proxy.restore()
        worker.adopt_redrive_policy()
    assert worker.policy.max_receives == job_queue(s, "echo").max_receive_count()
