"""Small helpers for tests: wait for a condition (never a bare sleep) and
read tables."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Container, Iterable
from types import ModuleType
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


def module_functions(module: ModuleType) -> list[tuple[str, Callable[..., Any]]]:
    """The functions ``module`` itself defines (lru_cache-wrapped ones too)."""
    return [(name, fn) for name, fn in vars(module).items()
            if callable(fn) and not isinstance(fn, type) and getattr(fn, "__module__", None) == module.__name__]


def keyword_defaults(modules: Iterable[ModuleType], declared: Container[str],
                     aliases: dict[str, str] | None = None) -> list[tuple[str, str, str, Any]]:
    """``(function, keyword, declared name, default)`` of every keyword
    default, in the functions ``modules`` define, whose keyword names a
    declared parameter (directly or through ``aliases``): what a
    parameter-drift test compares with the declaration."""
    aliases = aliases or {}
    found = []
    for module in modules:
        for fname, fn in module_functions(module):
            for p in inspect.signature(fn).parameters.values():
                name = aliases.get(p.name, p.name)
                if p.default is not inspect.Parameter.empty and name in declared:
                    found.append((fname, p.name, name, p.default))
    return found


def whole_parameter_defaults(modules: Iterable[ModuleType], keyword: str = "params") -> list[Any]:
    """The defaults of every ``keyword`` argument (a whole parameter set) in the functions ``modules`` define."""
    return [p.default for m in modules for _n, fn in module_functions(m)
            for p in inspect.signature(fn).parameters.values() if p.name == keyword and p.default is not p.empty]
