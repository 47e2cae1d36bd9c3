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
* Auto Scaling ``SetInstanceProtection``: the group's ARN.

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
