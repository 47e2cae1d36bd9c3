"""`infra deploy --guided` on a par with SAM's (issue 26), in the emulator:
a bad answer is said so and asked again; the change set is shown and
nothing changes without a yes; the answers are saved before anything is
deployed; stack events are printed as they come; a failed create is
reported with CloudFormation's reason and deleted; `infra destroy` reads
the saved region and stack."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import boto3
import pytest

from specfleet.settings import Settings


def _cli(settings: Settings, cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPECFLEET_", "AWS_"))}
    env.update({"SPECFLEET_ENDPOINT_URL": settings.endpoint_url or "", "AWS_ENDPOINT_URL": settings.endpoint_url or "",
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "COLUMNS": "200"})
    return subprocess.run([sys.executable, "-m", "specfleet.cli.main", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def _status(settings: Settings, name: str) -> str:
    """The live stack's status, or "absent" (deleted stacks are not described by name)."""
    cfn = boto3.client("cloudformation", endpoint_url=settings.endpoint_url, region_name=settings.region,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except cfn.exceptions.ClientError as err:
        assert "does not exist" in str(err)
        return "absent"


@pytest.mark.slow
def test_guided_deploy_reasks_shows_the_change_set_and_asks_before_changing(settings: Settings, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    stack = f"gd-{tag}"
    answers = [settings.region, stack, "y",
               "Results_Bucket", "",                      # a bad bucket name, then the default
               "",                                        # the artifact bucket's default
               "-",                                       # no Lambda zip
               "lambda/status-writer-1.zip", f"gd{tag}_",  # a zip key as the queue prefix: asked again
               "", "", "",                                # the emulator's VPC, subnets, image
               "n"]                                       # do not deploy the change set
    first = _cli(settings, tmp_path, "infra", "deploy", "--guided", stdin="\n".join(answers) + "\n")
    out = first.stdout + first.stderr
    assert first.returncode != 0, out[-3000:]
    assert "Error: 'Results_Bucket' is not a bucket name" in out, out[-3000:]
    assert "Error: 'lambda/status-writer-1.zip' is not a queue name prefix" in out, out[-3000:]
    # the change set, as SAM shows it, and a question before anything changes
    assert f"(create stack {stack})" in out and "+ Add" in out and "AWS::SQS::Queue" in out, out[-3000:]
    assert "Deploy this change set?" in out and "nothing changed" in out, out[-3000:]
    assert _status(settings, stack) == "absent"
    # the answers were saved before the deploy: the next run offers them
    saved = tomllib.loads((tmp_path / "specfleet.toml").read_text())["deploy"]
    assert (saved["stack_name"], saved["data_bucket"], saved["queue_prefix"]) == (stack, f"{stack}-data", f"gd{tag}_")

    second = _cli(settings, tmp_path, "infra", "deploy", "--guided", stdin="\n" * 10 + "y\n")  # ten questions, the saved answers; then yes
    assert second.returncode == 0, second.stderr[-3000:]
    assert "CREATE_COMPLETE" in second.stderr  # the stack's events, printed as they came
    assert _status(settings, stack) == "CREATE_COMPLETE"

    gone = _cli(settings, tmp_path, "infra", "destroy", "--yes")  # region and stack from specfleet.toml
    assert gone.returncode == 0, gone.stderr[-3000:]
    assert _status(settings, stack) == "absent"


@pytest.mark.slow
def test_a_failed_create_is_reported_and_cleaned_up(settings: Settings, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    stack, taken = f"gf-{tag}", f"gf-{tag}-taken"
    boto3.client("s3", endpoint_url=settings.endpoint_url, region_name=settings.region, aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=taken)  # someone else's bucket name
    answers = [settings.region, stack, "y", taken, "", "", f"gf{tag}_", "", "", "", "y"]
    ran = _cli(settings, tmp_path, "infra", "deploy", "--guided", stdin="\n".join(answers) + "\n")
    assert ran.returncode != 0, ran.stderr[-3000:]
    [line] = [x for x in ran.stderr.splitlines() if x.startswith("error:")]
    assert f"creating stack {stack} failed" in line and "BucketAlreadyExists" in line, line
    assert "the stack was deleted" in line
    assert _status(settings, stack) == "absent"  # not left CREATE_IN_PROGRESS
    assert tomllib.loads((tmp_path / "specfleet.toml").read_text())["deploy"]["data_bucket"] == taken  # kept to fix


def test_options_are_checked_as_the_questions_are(settings: Settings, tmp_path: Path) -> None:
    ran = _cli(settings, tmp_path, "infra", "deploy", "--region", settings.region, "--emulator", "--data-bucket",
               "ok-bucket-1", "--artifact-bucket", "ok-bucket-2", "--queue-prefix", "lambda/status-writer-1.zip")
    assert ran.returncode == 2
    [line] = [x for x in ran.stderr.splitlines() if x.strip()]
    assert line.startswith("error: queue prefix: 'lambda/status-writer-1.zip' is not a queue name prefix"), line
