"""The locks: one source (pyproject.toml), one command (``./dev lock`` =
requirements/lock.sh), locks that cannot drift -- the development and
CI venv's (requirements/dev.lock), checkov's (requirements/tools.lock),
LocalStack's (requirements/localstack.lock, ``./dev test --localstack``) and
the worker image's (ami/requirements.lock, resolved within the dev lock's
pins) -- and the venv the tests run in holding exactly the dev lock's
versions, so a release published today cannot turn main red."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers import lock_entries
from specfleet.pipelines import specs

ROOT = Path(__file__).resolve().parent.parent
DEV_LOCK = ROOT / "requirements" / "dev.lock"
TOOLS_LOCK = ROOT / "requirements" / "tools.lock"
AMI_LOCK = ROOT / "ami" / "requirements.lock"
LOCALSTACK_LOCK = ROOT / "requirements" / "localstack.lock"
LOCK_SH = ROOT / "requirements" / "lock.sh"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _extras_closure(extras: list[str]) -> list[str]:
    """The requirements of pyproject.toml's core plus ``extras``, following
    self-references (``specfleet[demo,graph]``)."""
    wanted, seen, todo = list(PROJECT["dependencies"]), set(), list(extras)
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for dependency in PROJECT["optional-dependencies"][extra]:
            requirement = Requirement(dependency)
            if canonicalize_name(requirement.name) == "specfleet":
                todo.extend(requirement.extras)
            else:
                wanted.append(dependency)
    return wanted


def _assert_pinned_and_hashed(entries: dict[str, tuple[str, list[str]]], lock: Path) -> None:
    for name, (version, hashes) in entries.items():
        assert hashes, f"{lock.name}: {name}=={version} has no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), (name, hashes)


@pytest.mark.parametrize(("lock", "extras"), [(DEV_LOCK, ["test"]), (AMI_LOCK, None)], ids=["dev", "ami"])
def test_lock_pins_and_hashes_everything_pyproject_asks_for(lock: Path, extras: list[str] | None) -> None:
    entries = lock_entries(lock.read_text())
    _assert_pinned_and_hashed(entries, lock)
    if extras is None:  # the image: the core and the extras of every pipeline an image may serve
        extras = sorted({extra for spec in specs() for extra in spec.fleet.extras})
        assert extras == ["hydrophone", "music", "spectrogram"]
    for dependency in _extras_closure(extras):
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{requirement.name} (pyproject.toml) is not in {lock.name}: run ./dev lock"
        assert requirement.specifier.contains(entries[name][0], prereleases=True), (
            f"{lock.name} pins {name}=={entries[name][0]}, pyproject.toml wants {requirement}: run ./dev lock"
        )


def test_the_image_runs_exactly_the_versions_the_tests_ran() -> None:
    dev, ami = lock_entries(DEV_LOCK.read_text()), lock_entries(AMI_LOCK.read_text())
    assert len(ami) >= 30
    drift = {name: (version, dev.get(name, ("missing", []))[0]) for name, (version, _) in ami.items()
             if dev.get(name, ("", []))[0] != version}
    assert drift == {}, f"ami/requirements.lock differs from requirements/dev.lock (ami, dev): {drift}"


def test_checkov_is_locked_with_its_dependencies() -> None:
    entries = lock_entries(TOOLS_LOCK.read_text())
    _assert_pinned_and_hashed(entries, TOOLS_LOCK)
    assert entries["checkov"][0] == "3.3.30"
    assert len(entries) > 20  # its dependencies too, not checkov alone


def _lock_sh_value(name: str) -> list[str]:
    """A variable of requirements/lock.sh: ``NAME=value`` or ``NAME=("a" "b")``."""
    match = re.search(rf"^{name}=(\(.*\)|\S+)$", LOCK_SH.read_text(), re.MULTILINE)
    assert match, f"requirements/lock.sh sets no {name}"
    value = match.group(1)
    return re.findall(r'"([^"]+)"', value) if value.startswith("(") else [value]


def test_localstack_is_locked_with_what_its_venv_runs() -> None:
    """``./dev test --localstack`` builds .venv-localstack (CPython 3.13)
    from requirements/localstack.lock: the lock pins, with hashes, every
    requirement lock.sh asks for (localstack-core 4.14 with its base runtime,
    and the pins it needs), and what ./dev starts it with."""
    entries = lock_entries(LOCALSTACK_LOCK.read_text())
    _assert_pinned_and_hashed(entries, LOCALSTACK_LOCK)
    wanted = _lock_sh_value("LOCALSTACK")
    assert wanted[0] == "localstack-core[base-runtime]==4.14.0"
    for dependency in wanted:
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{dependency} (requirements/lock.sh) is not in {LOCALSTACK_LOCK.name}: run ./dev lock"
        assert requirement.specifier.contains(entries[name][0]), (dependency, entries[name][0])
    # localstack-core's base runtime, and the gateway ./dev runs it with (hypercorn binds the
    # address it is given; the default, twisted, listens on every interface).
    dev = (ROOT / "dev").read_text()
    assert "GATEWAY_SERVER=hypercorn" in dev and 'GATEWAY_LISTEN="127.0.0.1:$port"' in dev
    for name in ("hypercorn", "boto3", "botocore", "plux", "rolo", "werkzeug", "xmltodict", "cbor2", "pyopenssl"):
        assert name in entries, f"{LOCALSTACK_LOCK.name} lacks {name}"
    assert len(entries) > 50  # the whole runtime, not localstack-core alone
    assert _lock_sh_value("LOCALSTACK_PYTHON") == ["3.13"]
    assert "CPython 3.13" in LOCALSTACK_LOCK.read_text().splitlines()[0]
    assert "sys.version_info[:2] == (3, 13)" in dev


def test_this_venv_holds_exactly_the_dev_lock() -> None:
    """What ./dev installed (and CI runs on) is the lock: every locked
    version installed, and nothing installed that the lock does not name
    (but pip itself and the project)."""
    locked = {name: version for name, (version, _) in lock_entries(DEV_LOCK.read_text()).items()}
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    assert {name: installed.get(name) for name in locked} == locked
    assert set(installed) - set(locked) == {"pip", "specfleet"}


def test_lock_reader_refuses_an_unpinned_line() -> None:
    with pytest.raises(AssertionError, match="not pinned"):
        lock_entries("numpy>=1.26 \\\n    --hash=sha256:" + "a" * 64 + "\n")


def test_pip_sees_no_conflict_in_the_venv() -> None:
    checked = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
