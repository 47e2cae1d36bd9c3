"""boto3 clients and the retry policy for transient AWS errors.

Clients use the default credential chain; only the endpoint and region come
from settings (so the same code talks to AWS, moto or ElasticMQ).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter

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


#: Decorator for calls that should ride out a short AWS hiccup.
aws_retry = retry(
    retry=retry_if_exception(is_transient_aws_error),
    wait=wait_exponential_jitter(initial=0.2, max=5),
    stop=stop_after_attempt(6),
    reraise=True,
)


def client(service: str, settings: Settings, **kwargs: Any) -> Any:
    """A boto3 client for ``service``, shared by all threads of this process.

    boto3 clients are thread-safe; building one parses the service model
    (~20 ms of CPU), which per job thread would dominate short jobs. Sessions
    are not thread-safe, so clients are built under a lock, each from its
    own session, and cached per process (a forked child builds its own).
    """
    key = (os.getpid(), service, settings.endpoint_url, settings.region, tuple(sorted(kwargs.items())))
    found = _clients.get(key)
    if found is not None:
        return found
    with _clients_lock:
        if key not in _clients:
            config = botocore.config.Config(
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=5,
                read_timeout=max(30, settings.wait_time_s + 10),
                max_pool_connections=64,
            )
            session = boto3.session.Session()
            extra = dict(kwargs)
            if settings.endpoint_url:
                # One endpoint for everything (moto). Without it botocore honours
                # per-service variables such as AWS_ENDPOINT_URL_SQS (ElasticMQ).
                extra["endpoint_url"] = settings.endpoint_url
            _clients[key] = session.client(service, region_name=settings.region, config=config, **extra)
        return _clients[key]
