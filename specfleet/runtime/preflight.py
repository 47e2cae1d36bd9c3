"""Pre-flight: what a worker checks before it takes its first job.

A configuration mistake (no credentials, a role that may not read what its
jobs read, a host the pipeline is not allowed to fetch from, a missing
JavaScript runtime) would otherwise surface job after job, each one retried
or rejected as if the data were at fault. So the worker runs these checks
first and, when one fails, exits with ``EXIT_CONFIG`` and one line saying
what is wrong and how to fix it -- before it receives a message, so every
job stays on its queue for a worker that is set up right.

A check is a plain function ``check(settings, config)``: the core settings
and the pipeline's own settings (``ctx.config``). It raises ``ConfigError``
when the configuration is wrong. An endpoint that does not answer is an
outage, not a configuration mistake: the worker waits it out and checks
again (``Worker.preflight``).

The core checks every pipeline gets:

* credentials resolve (the default chain: environment, profile, instance
  profile);
* the job and status queues exist and this principal may use them, and it
  may read the job queue's redrive policy (``Worker.adopt_redrive_policy``:
  without ``sqs:GetQueueAttributes`` it could not tell when SQS dead-letters
  a job);
* for every S3 prefix the pipeline reads or writes (its fleet profile's
  ``bucket_prefixes``: "is it already there?" reads happen there), a HEAD
  of a key that does not exist answers "not found". S3 says
  404 for a missing key only to a principal allowed ``s3:ListBucket`` on the
  bucket, and 403 to any other -- the same answer as "you may not read it" --
  so a worker without that right would take every job's "not there yet" for
  an unexpected failure and retry it until the dead-letter queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from ..aws import client, error_code
from ..settings import Settings
from ..storage import NOT_FOUND_CODES

if TYPE_CHECKING:
    from .spec import PipelineSpec

#: Exit code of a worker that refused to start on a configuration mistake
#: (sysexits' EX_CONFIG). systemd does not restart it: restarting cannot fix it.
EXIT_CONFIG = 78

PreflightCheck = Callable[[Settings, Any], None]

_DENIED = {"403", "AccessDenied", "AccessDeniedException", "Forbidden", "AllAccessDisabled",
           "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidClientTokenId",
           "UnrecognizedClientException"}


def denied_code(err: BaseException) -> str | None:
    """The error code when ``err`` is AWS refusing this principal (a role
    without the permission, bad or expired keys), else None."""
    if isinstance(err, botocore.exceptions.ClientError) and error_code(err) in _DENIED:
        return error_code(err)
    return None


class ConfigError(Exception):
    """A worker is set up wrong: ``what`` is wrong, ``hint`` how to fix it."""

    def __init__(self, what: str, hint: str = ""):
        super().__init__(what)
        self.what = what
        self.hint = hint

    def line(self) -> str:
        return f"{self.what} ({self.hint})" if self.hint else self.what


def check_credentials(settings: Settings, _config: Any = None) -> None:
    """The default credential chain finds credentials (a local endpoint takes any)."""
    import boto3

    try:
        found = boto3.session.Session(region_name=settings.region).get_credentials()
    except botocore.exceptions.PartialCredentialsError as err:
        raise ConfigError(f"incomplete AWS credentials: {err}", "set both the key id and the secret") from None
    if found is None:
        raise ConfigError(
            "no AWS credentials found",
            "on EC2 attach the instance profile; elsewhere `aws configure`, AWS_PROFILE, or "
            "`eval \"$(specfleet local env)\"` for the local stack",
        )


def check_queues(settings: Settings, spec: PipelineSpec, _config: Any = None) -> None:
    """The pipeline's job and status queues exist and may be used."""
    sqs = client("sqs", settings)
    for name in (settings.queue_prefix + spec.job_queue, settings.queue_prefix + spec.status_queue):
        try:
            sqs.get_queue_url(QueueName=name)
        except botocore.exceptions.ClientError as err:
            code = error_code(err)
            if "NonExistentQueue" in code or "QueueDoesNotExist" in code:
                raise ConfigError(
                    f"queue {name} does not exist",
                    "deploy the stack or start the local one; SPECFLEET_QUEUE_PREFIX must match it",
                ) from None
            if code in _DENIED:
                raise ConfigError(f"may not use queue {name}: {code}", "check the worker role's SQS policy") from None
            raise


def check_existence_reads(settings: Settings, prefixes: Iterable[str]) -> None:
    """The bucket is there, and a HEAD of a key that does not exist answers
    404 under each prefix. (A HEAD's error has no body: a missing bucket and
    a missing key are both a bare 404, so the bucket is asked about first.)"""
    s3 = client("s3", settings)
    bucket = settings.bucket
    try:
        s3.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as err:
        code = error_code(err)
        if code in NOT_FOUND_CODES or code == "NoSuchBucket":
            raise ConfigError(f"bucket {bucket} does not exist",
                              "set SPECFLEET_BUCKET to the stack's data bucket") from None
        if code in _DENIED:
            raise ConfigError(f"may not list bucket {bucket}: {code}",
                              f"grant s3:ListBucket on arn:aws:s3:::{bucket} (the template's worker role does)") from None
        raise
    for prefix in prefixes:
        key = f"{prefix.rstrip('/')}/.specfleet-preflight-{uuid.uuid4().hex}"
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as err:
            code = error_code(err)
            if code in NOT_FOUND_CODES:
                continue
            if code in _DENIED:
                raise ConfigError(
                    f"s3://{bucket}/{prefix}: a missing object answers {code}, not 404, so this worker "
                    "cannot tell 'not there yet' from 'not allowed'",
                    f"grant s3:ListBucket on arn:aws:s3:::{bucket} and s3:GetObject on {prefix}* "
                    "(the template's worker role does)",
                ) from None
            raise
        raise ConfigError(f"s3://{bucket}/{key} exists, but nothing writes it",
                          "the bucket or endpoint is not the one this worker expects")


def core_checks(spec: PipelineSpec) -> list[tuple[str, PreflightCheck]]:
    """The checks every worker of ``spec`` runs, named for the log."""
    checks: list[tuple[str, PreflightCheck]] = [
        ("credentials", check_credentials),
        ("queues", lambda s, c: check_queues(s, spec, c)),
    ]
    if spec.fleet.bucket_prefixes:
        prefixes = spec.fleet.bucket_prefixes
        checks.append(("bucket reads", lambda s, c: check_existence_reads(s, prefixes)))
    for ref in spec.preflight:
        checks.append((ref.target.rsplit(":", 1)[-1], ref.load()))
    return checks
