"""moto's server with IAM enforcement, evaluating requests the way AWS does
for the calls the fleet makes: ``python tests/iam_moto_server.py PORT``.

moto enforces IAM (after ``INITIAL_NO_AUTH_ACTION_COUNT`` requests; the test
resets the count to 0 through ``/moto-api/reset-auth`` once its fixtures
exist, as moto's own server-mode decorator does) but, for most services,
checks every action against the resource ``*``, and names SQS batch calls
as actions IAM does not have. With that, a least-privilege policy scoped to
ARNs would be refused everything, and a policy granting ``*`` would pass:
the test would prove nothing. So this launcher gives moto the resource AWS
authorizes each of these calls against, and nothing else:

* SQS ``GetQueueUrl``: the queue's ARN (moto reads only ``QueueUrl``);
* SQS ``SendMessageBatch``/``DeleteMessageBatch``/``ChangeMessageVisibilityBatch``:
  authorized as ``sqs:SendMessage``/``DeleteMessage``/``ChangeMessageVisibility``
  (IAM has no batch actions);
* SNS ``Publish``/``CreateTopic``: the topic's ARN;
* Secrets Manager: the secret's ARN;
* Auto Scaling ``SetInstanceProtection``: the group's ARN;
* S3: anonymous object reads judged by the bucket policy alone, and the
  bucket's Object Ownership and Block Public Access settings applied (see
  the section below).

Loopback only; AWS managed policies are loaded so roles carry exactly the
policies the template attaches.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from moto.autoscaling.responses import AutoScalingResponse  # noqa: E402
from moto.iam import access_control  # noqa: E402
from moto.secretsmanager.responses import SecretsManagerResponse  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402
from moto.sns.responses import SNSResponse  # noqa: E402
from moto.sqs.responses import SQSResponse  # noqa: E402

SQS_BATCH_ACTIONS = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
                     "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}


def _sqs_queue_name(self: SQSResponse) -> str:
    for param in ("QueueUrl", "QueueName"):
        value = self._get_param(param)
        if isinstance(value, str) and value:
            return value.rstrip("/").rsplit("/", 1)[-1]
    return str(self.path.split("/")[-1])


def _sns_resource(self: SNSResponse) -> str:
    arn = self._get_param("TopicArn") or self._get_param("TargetArn")
    if arn:
        return str(arn)
    name = self._get_param("Name")
    if self._get_action() == "CreateTopic" and name:
        return f"arn:aws:sns:{self.region}:{self.current_account}:{name}"
    return "*"


def _secret_resource(self: SecretsManagerResponse) -> str:
    secret_id = self._get_param("SecretId")
    if not secret_id:
        return "*"
    try:
        return str(self.backend.describe_secret(secret_id).arn)
    except Exception:  # unknown secret: AWS answers ResourceNotFound after authorizing the name
        return f"arn:aws:secretsmanager:{self.region}:{self.current_account}:secret:{secret_id}"


def _asg_resource(self: AutoScalingResponse) -> str:
    if self._get_action() != "SetInstanceProtection":
        return "*"
    group = self.autoscaling_backend.autoscaling_groups.get(self._get_param("AutoScalingGroupName"))
    return str(group.arn) if group is not None else "*"


_original_init = access_control.IAMRequestBase.__init__


def _init(self: access_control.IAMRequestBase, account_id: str, method: str, path: str, data: dict, body: bytes,
          headers: dict, action: str) -> None:
    scope = headers.get("Authorization", "")
    if "/sqs/aws4_request" in scope and isinstance(action, str):
        action = SQS_BATCH_ACTIONS.get(action, action)
    _original_init(self, account_id, method, path, data, body, headers, action)


SQSResponse._get_queue_name = _sqs_queue_name  # type: ignore[method-assign]
SNSResponse._determine_resource = _sns_resource  # type: ignore[attr-defined]
SecretsManagerResponse._determine_resource = _secret_resource  # type: ignore[attr-defined]
AutoScalingResponse._determine_resource = _asg_resource  # type: ignore[attr-defined]
access_control.IAMRequestBase.__init__ = _init  # type: ignore[method-assign]


# --- S3: anonymous reads, Object Ownership, Block Public Access ----------------------------------
# moto authenticates every S3 request once IAM enforcement is on (an anonymous
# one fails its signature check) and models neither S3 Object Ownership nor
# Block Public Access. AWS (S3 User Guide, "Controlling ownership of objects
# and disabling ACLs for your bucket" and "Blocking public access to your
# Amazon S3 storage"): an anonymous request is judged by the bucket policy
# alone; with ObjectOwnership=BucketOwnerEnforced a request that sets an ACL
# other than bucket-owner-full-control fails with AccessControlListNotSupported;
# BlockPublicPolicy refuses a PutBucketPolicy that grants public access;
# RestrictPublicBuckets ignores public grants of the bucket policy. And a
# listing is authorized as s3:ListBucket (moto names it ListObjectsV2).
from moto.iam.access_control import PermissionResult  # noqa: E402
from moto.s3.exceptions import S3ClientError  # noqa: E402
from moto.s3.models import FakeBucket, S3Backend  # noqa: E402
from moto.s3.responses import S3Response  # noqa: E402

#: moto names S3's listing calls as actions IAM does not have; AWS authorizes both as s3:ListBucket.
S3_LIST_ACTIONS = {"ListObjectsV2": "ListBucket", "ListObjects": "ListBucket"}
_original_s3_request_init = access_control.S3IAMRequest.__init__


def _s3_request_init(self: access_control.S3IAMRequest, account_id: str, method: str, path: str, data: dict,
                     body: bytes, headers: dict, action: str) -> None:
    action = S3_LIST_ACTIONS.get(action, action) if isinstance(action, str) else action
    _original_s3_request_init(self, account_id, method, path, data, body, headers, action)


_original_s3_auth = S3Response._authenticate_and_authorize_s3_action
_original_put_object = S3Response.put_object
_original_put_bucket_policy = S3Backend.put_bucket_policy
_original_get_permission = FakeBucket.get_permission


def _anonymous(self: S3Response) -> bool:
    return "Authorization" not in self.headers and "X-Amz-Signature" not in str(getattr(self, "uri", ""))


def _s3_auth(self: S3Response, bucket_name: str | None = None, key_name: str | None = None) -> None:
    if _anonymous(self):
        # No principal for IAM: reading an object is left to the bucket policy
        # (moto's key handler checks it for unsigned requests); nothing else is allowed.
        if key_name and self.method in ("GET", "HEAD"):
            return
        raise S3ClientError("AccessDenied", "Access Denied")
    _original_s3_auth(self, bucket_name=bucket_name, key_name=key_name)


def _put_object(self: S3Response) -> object:
    acl = self.headers.get("x-amz-acl")
    bucket = self.backend.get_bucket(self.bucket_name)
    if acl and acl != "bucket-owner-full-control" and "BucketOwnerEnforced" in str(bucket.ownership_rule):
        raise S3ClientError("AccessControlListNotSupported", "The bucket does not allow ACLs")
    return _original_put_object(self)


def _public(policy: bytes) -> bool:
    import json

    for statement in json.loads(policy).get("Statement", []):
        principal = statement.get("Principal")
        if statement.get("Effect") == "Allow" and (principal == "*" or principal == {"AWS": "*"}):
            return True
    return False


def _put_bucket_policy(self: S3Backend, bucket_name: str, policy: bytes) -> None:
    block = self.get_bucket(bucket_name).public_access_block
    if block is not None and block.block_public_policy and _public(policy):
        raise S3ClientError("AccessDenied", "Access Denied (BlockPublicPolicy)")
    _original_put_bucket_policy(self, bucket_name, policy)


def _get_permission(self: FakeBucket, action: str, resource: str) -> object:
    found = _original_get_permission(self, action, resource)
    block = self.public_access_block
    if found == PermissionResult.PERMITTED and block is not None and block.restrict_public_buckets:
        return PermissionResult.NEUTRAL  # moto's bucket policies grant only Principal "*": public grants
    return found


access_control.S3IAMRequest.__init__ = _s3_request_init  # type: ignore[method-assign]
S3Response._authenticate_and_authorize_s3_action = _s3_auth  # type: ignore[method-assign]
S3Response.put_object = _put_object  # type: ignore[method-assign,assignment]
S3Backend.put_bucket_policy = _put_bucket_policy  # type: ignore[method-assign]
FakeBucket.get_permission = _get_permission  # type: ignore[method-assign]


def main() -> None:
    port = int(sys.argv[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"ready on 127.0.0.1:{port}", flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin
    finally:
        server.stop()


if __name__ == "__main__":
    main()
