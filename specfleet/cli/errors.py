"""One clear line, and a hint, for every failure a user can cause or meet.

``explain(err)`` turns an exception that escaped a command into the line the
terminal shows; the traceback goes to the log file (and to the terminal
only with ``--debug``). The mapping is a table, like ``runtime/errors.py``:
the error's class (and, for AWS, its code) decides the message and the hint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import urlsplit

import botocore.exceptions


def fail(message: str, hint: str = "", code: int = 1) -> NoReturn:
    """Print one ``error: message -- hint`` line and end the command with ``code``."""
    import typer
    from rich.console import Console
    from rich.markup import escape

    # escaped: a message may quote "[env]" or a list, which rich would read as markup; and no emoji
    # codes: a Secrets Manager ARN's ":secret:" would print as a pictogram
    line = escape(Explained(message, hint).line())
    Console(stderr=True).print(f"[red]error[/]: {line}", highlight=False, soft_wrap=True, emoji=False)
    raise typer.Exit(code)


@dataclass(frozen=True)
class Explained:
    message: str
    hint: str = ""
    exit_code: int = 1

    def line(self) -> str:
        return f"{self.message}" + (f" -- {self.hint}" if self.hint else "")


def _is_local(url: str) -> bool:
    from ..outbound import is_loopback_host  # lazily, as explain() does: httpx is not needed to start

    return is_loopback_host(urlsplit(url).hostname or "")


def endpoint_hint(url: str) -> str:
    if _is_local(url):
        return "is the local stack running? start it with `specfleet local up`"
    return "check the network and AWS_ENDPOINT_URL / the region (`specfleet` uses the default AWS endpoints when unset)"


def explain(err: BaseException) -> Explained:
    """The one-line message for ``err`` (never raises)."""
    from ..jobs import JobValidationError
    from ..outbound import OutboundRefused
    from ..pipelines import UnknownPipeline
    from ..runtime.errors import JobError

    found = _explain_aws(err) or _explain_db(err) or _explain_settings(err)
    if found is not None:
        return found
    if isinstance(err, UnknownPipeline):
        return Explained(str(err), exit_code=2)
    if isinstance(err, (JobError, JobValidationError, OutboundRefused)):
        return Explained(str(err))
    if isinstance(err, FileNotFoundError):
        return Explained(f"no such file: {err.filename}")
    if isinstance(err, PermissionError):
        return Explained(f"permission denied: {err.filename}")
    if isinstance(err, KeyboardInterrupt):
        return Explained("interrupted", exit_code=130)
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return Explained(f"{type(err).__name__}: {text}" if text else type(err).__name__,
                     "run again with --debug for the traceback (also in the log file)")


def _explain_aws(err: BaseException) -> Explained | None:
    if isinstance(err, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)):
        url = str(err.kwargs.get("endpoint_url", ""))
        return Explained(f"cannot reach the AWS endpoint {url or '(default)'}", endpoint_hint(url))
    if isinstance(err, (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectionClosedError)):
        url = str(err.kwargs.get("endpoint_url", ""))
        return Explained(f"the AWS endpoint {url} stopped answering", endpoint_hint(url))
    if isinstance(err, (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError)):
        return Explained(
            "no AWS credentials found",
            "configure them (`aws configure`, AWS_PROFILE, an instance profile) or use the local stack (`specfleet local up`)",
        )
    if isinstance(err, botocore.exceptions.NoRegionError):
        return Explained("no AWS region set", "set AWS_REGION (or SPECFLEET_REGION)")
    if isinstance(err, botocore.exceptions.ClientError):
        return _explain_client_error(err)
    return None


def _settings_class(title: str) -> type | None:
    """The settings model (a ``BaseSettings``) a validation error names."""
    from pydantic_settings import BaseSettings

    todo: list[type] = [BaseSettings]
    for _ in range(1000):  # bounded walk of the subclass tree
        if not todo:
            return None
        cls = todo.pop()
        if cls.__name__ == title and cls is not BaseSettings:
            return cls
        todo.extend(cls.__subclasses__())
    return None


def _explain_settings(err: BaseException) -> Explained | None:
    """A setting out of its bounds is a configuration mistake: exit 78
    (EX_CONFIG, as the worker's pre-flight), naming the variable."""
    import pydantic

    if not isinstance(err, pydantic.ValidationError):
        return None
    cls = _settings_class(err.title)
    if cls is None:
        return None
    first = err.errors()[0]
    name = str(first["loc"][0]) if first.get("loc") else ""
    prefix = str(getattr(cls, "model_config", {}).get("env_prefix", ""))
    variable = f"{prefix}{name}".upper() if name else cls.__name__
    return Explained(f"setting {variable}: {first['msg']} (got {first.get('input')!r})",
                     "fix the environment variable (on an instance: the stack parameter that sets it)",
                     exit_code=78)


def _explain_client_error(err: botocore.exceptions.ClientError) -> Explained:
    from ..aws import error_code

    code = error_code(err)
    text = err.response.get("Error", {}).get("Message", "") or str(err)
    if "NonExistentQueue" in code or "QueueDoesNotExist" in code:
        return Explained(
            f"a queue does not exist ({text})",
            "deploy the stack (`specfleet infra deploy`) or start the local one (`specfleet local up`); "
            "SPECFLEET_QUEUE_PREFIX must match",
        )
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "InvalidClientTokenId",
                "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch"):
        return Explained(f"AWS refused the call: {code}: {text}", "check which credentials are in use (`aws sts get-caller-identity`)")
    return Explained(f"AWS error {code}: {text}")


def _explain_db(err: BaseException) -> Explained | None:
    import psycopg2

    from ..db import DatabaseNotConfigured, is_db_unavailable

    if isinstance(err, DatabaseNotConfigured):
        return Explained(str(err), "or start the local stack (`specfleet local up`)")
    if not isinstance(err, psycopg2.Error):
        return None
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if is_db_unavailable(err):
        return Explained(
            f"the database is unreachable ({first})",
            "on AWS the database is private: open `specfleet db tunnel`; locally: `specfleet local up`",
        )
    return Explained(f"database error: {first}")
