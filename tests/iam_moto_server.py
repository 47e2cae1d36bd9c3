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
* S3 calls: authorized as the IAM action AWS documents for the operation
  ("Required permissions for Amazon S3 API operations": ``HeadObject`` needs
  ``s3:GetObject``, ``ListObjectsV2`` and ``HeadBucket`` ``s3:ListBucket``,
  multipart uploads ``s3:PutObject``...). moto 5.2.6 started naming S3 calls
  by their API operation (``s3:HeadObject``, an action IAM does not have), so
  with the template's policy a HEAD was refused where AWS allows it.

And one answer AWS gives that moto does not: a HEAD of a missing key is 404
only to a principal allowed ``s3:ListBucket`` on the bucket, 403 to any
other (S3 API reference, HeadObject, "Permissions"), so a role without it
cannot tell "not there yet" from "not allowed".
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

from moto import settings as moto_settings  # noqa: E402
from moto.autoscaling.responses import AutoScalingResponse  # noqa: E402
from moto.core.authorization import ActionAuthenticatorMixin  # noqa: E402
from moto.iam import access_control  # noqa: E402
from moto.s3.responses import S3Response  # noqa: E402
from moto.secretsmanager.responses import SecretsManagerResponse  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402
from moto.sns.responses import SNSResponse  # noqa: E402
from moto.sqs.responses import SQSResponse  # noqa: E402

SQS_BATCH_ACTIONS = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
                     "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}
#: S3 API operations whose IAM action has another name (AWS's S3 user guide,
#: "Required permissions for Amazon S3 API operations"); the others share it.
S3_OPERATION_ACTIONS = {
    "HeadObject": "GetObject", "HeadBucket": "ListBucket", "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket", "ListObjectVersions": "ListBucketVersions", "DeleteObjects": "DeleteObject",
    "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject", "CompleteMultipartUpload": "PutObject",
    "CopyObject": "PutObject", "ListParts": "ListMultipartUploadParts",
    "ListMultipartUploads": "ListBucketMultipartUploads", "GetObjectAttributes": "GetObject",
}


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
    if "/s3/aws4_request" in scope and isinstance(action, str):
        action = S3_OPERATION_ACTIONS.get(action, action)
    _original_init(self, account_id, method, path, data, body, headers, action)


def _may_list(response: S3Response, bucket_name: str) -> bool:
    """Whether the caller of ``response``'s request may ``s3:ListBucket`` the bucket."""
    if ActionAuthenticatorMixin.request_count < moto_settings.INITIAL_NO_AUTH_ACTION_COUNT:
        return True  # enforcement is not on yet
    request = access_control.S3IAMRequest(
        account_id=response.current_account, method="GET", path=f"/{bucket_name}", data={}, body=b"",
        headers=response.headers, action="ListBucket")
    try:
        request.check_action_permitted(f"arn:aws:s3:::{bucket_name}")
    except Exception:  # moto's AccessDenied classes
        return False
    return True


_original_head_object = S3Response.head_object


def _head_object(self: S3Response, bucket_name: str, *args: object, **kwargs: object) -> object:
    status, headers, body = _original_head_object(self, bucket_name, *args, **kwargs)
    if status == 404 and not _may_list(self, bucket_name):
        return 403, headers, ""
    return status, headers, body


SQSResponse._get_queue_name = _sqs_queue_name  # type: ignore[method-assign]
SNSResponse._determine_resource = _sns_resource  # type: ignore[attr-defined]
SecretsManagerResponse._determine_resource = _secret_resource  # type: ignore[attr-defined]
AutoScalingResponse._determine_resource = _asg_resource  # type: ignore[attr-defined]
access_control.IAMRequestBase.__init__ = _init  # type: ignore[method-assign]
S3Response.head_object = _head_object  # type: ignore[method-assign,assignment]


# --- S3: anonymous reads, Object Ownership, Block Public Access ----------------------------------
# moto authenticates every S3 request once IAM enforcement is on (an anonymous
# one fails its signature check) and models neither S3 Object Ownership nor
# Block Public Access. AWS (S3 User Guide, "Controlling ownership of objects
# and disabling ACLs for your bucket" and "Blocking public access to your
# Amazon S3 storage"): an anonymous request is judged by the bucket policy
# alone; with ObjectOwnership=BucketOwnerEnforced a request that sets an ACL
# other than bucket-owner-full-control fails with AccessControlListNotSupported;
# BlockPublicPolicy refuses a PutBucketPolicy that grants public access;
# RestrictPublicBuckets ignores public grants of the bucket policy. (Listings
# are authorized as s3:ListBucket by S3_OPERATION_ACTIONS above.)
from moto.iam.access_control import PermissionResult  # noqa: E402
from moto.s3.exceptions import S3ClientError  # noqa: E402
from moto.s3.models import FakeBucket, S3Backend  # noqa: E402

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
