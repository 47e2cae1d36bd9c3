"""Small helpers for tests: wait for a condition (never a bare sleep) and
read tables."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from specfleet.db import connect
from specfleet.settings import Settings

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {value!r})")
        time.sleep(interval)


def query(settings: Settings, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def count(settings: Settings, table: str, where: str = "TRUE", params: Any = None) -> int:
    return int(query(settings, f'SELECT count(*) FROM "{table}" WHERE {where}', params)[0][0])


def lock_entries(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) from a pip requirements file with
    hashes (requirements/dev.lock, ami/requirements.lock); names canonical."""
    import re

    from packaging.utils import canonicalize_name

    entries: dict[str, tuple[str, list[str]]] = {}
    for line in text.replace("\\\n", " ").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        spec, *options = line.split(" --hash=")
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", spec.strip())
        assert match, f"lock line is not pinned with ==: {spec!r}"
        entries[canonicalize_name(match.group(1))] = (match.group(2), [o.split("#")[0].strip() for o in options])
    return entries
