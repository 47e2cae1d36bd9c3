"""boto3 clients, one per call class, and what counts as a transient AWS error.

Clients use the default credential chain; only the endpoint and region come
from settings (so the same code talks to AWS, moto or ElasticMQ). Who
retries a failed call, and each call's timeouts: ``retries.py`` (its table).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
import botocore.exceptions

from .retries import CONTROL, S3, CallClass, botocore_config, timeouts
from .settings import Settings

_TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "SlowDown",
    "RequestTimeout",
    "AWS.SimpleQueueService.ServiceUnavailable",
}

_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def is_transient_aws_error(exc: BaseException) -> bool:
    if isinstance(
        exc,
        (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ConnectTimeoutError,
        ),
    ):
        return True
    if isinstance(exc, botocore.exceptions.ClientError):
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _TRANSIENT_CODES or status >= 500
    return False


def error_code(err: botocore.exceptions.ClientError) -> str:
    """The service's error code of a ``ClientError`` ("" when it has none)."""
    return str(err.response.get("Error", {}).get("Code", ""))


def client(service: str, settings: Settings, *, call: CallClass | None = None, **kwargs: Any) -> Any:
    """A boto3 client for ``service`` making ``call``-class calls (default:
    ``S3`` for s3, else ``CONTROL``; their timeouts and retries are in
    ``retries.py``), shared by all threads of this process.

    boto3 clients are thread-safe; building one parses the service model
    (~20 ms of CPU), which per job thread would dominate short jobs. Sessions
    are not thread-safe, so clients are built under a lock, each from its
    own session, and cached per process (a forked child builds its own).
    """
    call = call or (S3 if service == "s3" else CONTROL)
    # One client per class and per timeouts (they follow the settings).
    key = (os.getpid(), service, settings.endpoint_url, settings.region, call.name, timeouts(call, settings),
           tuple(sorted(kwargs.items())) if kwargs else ())
    found = _clients.get(key)
    if found is not None:
        return found
    with _clients_lock:
        if key not in _clients:
            session = boto3.session.Session()
            extra = dict(kwargs)
            if settings.endpoint_url:
                # One endpoint for everything (moto). Without it botocore honours
                # per-service variables such as AWS_ENDPOINT_URL_SQS (ElasticMQ).
                extra["endpoint_url"] = settings.endpoint_url
            _clients[key] = session.client(service, region_name=settings.region,
                                           config=botocore_config(call, settings), **extra)
        return _clients[key]
