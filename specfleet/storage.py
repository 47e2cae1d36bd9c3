"""S3 storage: the only module that speaks S3.

Keys are deterministic (SPEC.md layouts), so a redelivered job overwrites the
same objects instead of adding new ones.

``put_many`` writes a job's objects concurrently on upload threads shared by
every job of the process (``Settings.upload_threads``): a request to S3
waits tens of milliseconds for its answer, so one job's 120 objects one
after another would take seconds of waiting; on shared threads they take a
fraction of that, and at most that many bodies are read into memory at once.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions

from .aws import client, error_code
from .settings import Settings


class PreconditionFailed(Exception):
    """A conditional write lost: the object changed (or appeared) since it was read."""


#: S3's answers to a conditional write that lost a race: 412 when the ETag no
#: longer matches (or the object now exists), 409 when another conditional
#: write to the key is in flight.
_CONDITION_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}
#: S3's answers for a key that does not exist (HEAD gives a bare 404).
NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True)
class Put:
    """One object for ``put_many``: its body as bytes, or a file read when its
    upload starts."""

    key: str
    body: bytes | Path
    content_type: str = "application/octet-stream"

    def data(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else Path(self.body).read_bytes()


_uploaders: dict[tuple[int, int], ThreadPoolExecutor] = {}
_uploaders_lock = threading.Lock()


def uploader(threads: int) -> ThreadPoolExecutor:
    """This process's upload threads (one pool per process: a forked child makes its own)."""
    key = (os.getpid(), threads)
    with _uploaders_lock:
        pool = _uploaders.get(key)
        if pool is None:
            pool = _uploaders[key] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="s3-upload")
        return pool


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
            return str(self.s3.put_object(**kwargs).get("ETag", ""))
        except botocore.exceptions.ClientError as err:
            if error_code(err) in _CONDITION_CODES:
                raise PreconditionFailed(f"conditional write of {key} lost: {err}") from None
            raise

    def merge_json_list(self, key: str, names: Iterable[str], *, attempts: int = 30) -> list[str]:
        """Add ``names`` to the JSON list of strings at ``key``; returns the
        list. Read with its ETag, write the union back only if unchanged
        (``If-Match``, or ``If-None-Match: *`` when new), else read again
        after a jittered backoff; ``PreconditionFailed`` once ``attempts``
        writes lost. A damaged list is rebuilt from the names that land."""
        wanted = set(names)
        for attempt in range(attempts):
            current = self.get_with_etag(key)
            listed: list[str] = []
            if current is not None:
                try:
                    got = json.loads(current[0])
                    listed = [n for n in got if isinstance(n, str)] if isinstance(got, list) else []
                except ValueError:
                    listed = []
                if wanted <= set(listed):
                    return listed
            body = json.dumps(sorted({*listed, *wanted})).encode()
            try:
                if current is None:
                    self.put_bytes(key, body, "application/json", if_none_match=True)
                else:
                    self.put_bytes(key, body, "application/json", if_match=current[1])
            except PreconditionFailed:
                time.sleep(random.uniform(0.0, min(1.0, 0.02 * 2**attempt)))
        raise PreconditionFailed(f"could not add {len(wanted)} name(s) to {key}: {attempts} conditional writes lost")

    def put_many(self, objects: Iterable[Put], *, acl: str | None = None) -> list[str]:
        """Write ``objects`` concurrently on the process's upload threads;
        returns their ETags in order. Waits for all of them; the first error
        is raised once none is still running (each write is idempotent, so a
        retried job writes them all again)."""
        pool = uploader(self.settings.upload_threads)
        futures = [pool.submit(lambda p: self.put_bytes(p.key, p.data(), p.content_type, acl=acl), o)
                   for o in objects]
        wait(futures)
        return [f.result() for f in futures]

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        """``(body, ETag)`` of ``key``, or ``None`` when it does not exist."""
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as err:
            if error_code(err) in NOT_FOUND_CODES:
                return None
            raise
        return obj["Body"].read(), str(obj["ETag"])

    def put_file(self, key: str, path: str | Path, content_type: str = "application/octet-stream") -> None:
        self.s3.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type})

    def get_bytes(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def download(self, key: str, path: str | Path) -> None:
        self.s3.download_file(self.bucket, key, str(path))

    def size(self, key: str) -> int | None:
        """Object size in bytes, or ``None`` when it does not exist."""
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as err:
            if error_code(err) in NOT_FOUND_CODES:
                return None
            raise
        return int(head["ContentLength"])

    def etag(self, key: str) -> str | None:
        """The ETag of ``key`` (for a later ``if_match``), or ``None`` when it
        does not exist. Read by listing (``s3:ListBucket``), not by HEAD: a
        HEAD on a missing key answers 404 or 403 depending on the caller's
        rights and the store, a listing answers the same everywhere."""
        page = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        for obj in page.get("Contents", []):  # the key itself sorts first among keys it prefixes
            if obj["Key"] == key:
                return str(obj["ETag"])
        return None

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """``(key, size)`` for every object under ``prefix`` (paginated)."""
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"], int(obj["Size"])

    def list_etags(self, prefix: str) -> dict[str, str]:
        """``{key: ETag}`` of every object under ``prefix`` (paginated)."""
        paginator = self.s3.get_paginator("list_objects_v2")
        return {obj["Key"]: str(obj["ETag"])
                for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix) for obj in page.get("Contents", [])}

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
