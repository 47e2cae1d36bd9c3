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
