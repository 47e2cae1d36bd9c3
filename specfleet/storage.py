"""S3 storage: the only module that speaks S3.

Keys are deterministic (SPEC.md layouts), so a redelivered job overwrites the
same objects instead of adding new ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions

from .aws import aws_retry, client
from .settings import Settings


class PreconditionFailed(Exception):
    """A conditional write lost: the object changed (or appeared) since it was read."""


#: S3's answers to a conditional write that lost a race: 412 when the ETag no
#: longer matches (or the object now exists), 409 when another conditional
#: write to the key is in flight.
_CONDITION_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}


class Storage:
    def __init__(self, settings: Settings, bucket: str | None = None):
        self.settings = settings
        self.bucket = bucket or settings.bucket

    @property
    def s3(self) -> Any:
        return client("s3", self.settings)

    def put_bytes(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        *,
        acl: str | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        """Write ``key``; returns the new ETag. ``if_match`` (an ETag) or
        ``if_none_match`` make it a conditional write (S3 checks and writes
        atomically) that raises ``PreconditionFailed`` when it loses."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": data, "ContentType": content_type}
        if acl:
            kwargs["ACL"] = acl
        if if_match:
            kwargs["IfMatch"] = if_match
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        try:
            return str(aws_retry(self.s3.put_object)(**kwargs).get("ETag", ""))
        except botocore.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") in _CONDITION_CODES:
                raise PreconditionFailed(f"conditional write of {key} lost: {err}") from None
            raise

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        """``(body, ETag)`` of ``key``, or ``None`` when it does not exist."""
        try:
            obj = aws_retry(self.s3.get_object)(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return obj["Body"].read(), str(obj["ETag"])

    def put_file(self, key: str, path: str | Path, content_type: str = "application/octet-stream") -> None:
        aws_retry(self.s3.upload_file)(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type})

    def get_bytes(self, key: str) -> bytes:
        return aws_retry(self.s3.get_object)(Bucket=self.bucket, Key=key)["Body"].read()

    def download(self, key: str, path: str | Path) -> None:
        aws_retry(self.s3.download_file)(self.bucket, key, str(path))

    def size(self, key: str) -> int | None:
        """Object size in bytes, or ``None`` when it does not exist."""
        try:
            head = aws_retry(self.s3.head_object)(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """``(key, size)`` for every object under ``prefix`` (paginated)."""
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"], int(obj["Size"])

    def count(self, prefix: str) -> int:
        return sum(1 for _ in self.list(prefix))

    def ensure_bucket(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError:
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.settings.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.region}
            self.s3.create_bucket(**kwargs)
