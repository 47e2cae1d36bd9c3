"""A Debian root file system for tests: built with mmdebstrap from Debian's
repositories, commands run in it with chroot.

Every command runs in a mount namespace of its own (``unshare --mount``):
/proc, /dev and the read-only bind mounts exist only there and vanish with
the process, so nothing is left mounted on the host even when a test dies.
The network namespace is the host's: a worker in the root file system
reaches the local stack on 127.0.0.1.
"""

from __future__ import annotations

import ast
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: systemd's default PATH for services.
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# $1 root, $2 number of read-only binds, then the bind directories, then the command.
_ENTER = r"""
set -eu
root=$1; binds=$2; shift 2
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
while [ "$binds" -gt 0 ]; do
  mkdir -p "$root$1"
  mount --bind -o ro "$1" "$root$1"
  shift; binds=$((binds - 1))
done
exec chroot "$root" "$@"
"""


class RootfsError(RuntimeError):
    pass


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


class Rootfs:
    """A directory holding a Debian system, and ways to run commands in it."""

    def __init__(self, path: Path, binds: Sequence[Path] = ()):
        self.path = Path(path)
        self.binds = [Path(b) for b in binds]

    @staticmethod
    def start_build(path: Path, log: Path, *, suite: str = "bookworm", include: Sequence[str] = ("systemd",)) -> subprocess.Popen[bytes]:
        """Start mmdebstrap (variant minbase: Essential + apt) building ``suite``
        with ``include`` added; ``finish_build`` waits for it."""
        mmdebstrap = shutil.which("mmdebstrap")
        if not mmdebstrap:
            raise RootfsError("mmdebstrap is not installed (apt-get install -y mmdebstrap; ./dev test installs it)")
        if os.geteuid() != 0:
            raise RootfsError("building a root file system and chrooting into it needs root")
        # In a mount namespace of its own: what mmdebstrap mounts while it works
        # cannot outlive it, even if it is killed.
        argv = ["unshare", "--mount", "--propagation", "private", "--",
                mmdebstrap, "--variant=minbase", "--mode=root", "--format=directory"]
        if include:
            argv.append("--include=" + ",".join(include))
        argv += [suite, str(path)]
        with open(log, "wb") as out:
            return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    @staticmethod
    def finish_build(proc: subprocess.Popen[bytes], path: Path, log: Path, timeout_s: float = 900) -> None:
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            Rootfs.stop_build(proc)
            raise RootfsError(f"mmdebstrap took over {timeout_s}s:\n{_tail(log)}") from None
        if code != 0 or not (Path(path) / "usr/bin/apt-get").exists():
            raise RootfsError(f"mmdebstrap failed ({code}):\n{_tail(log)}")

    @staticmethod
    def stop_build(proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
        """Stop an unfinished build (SIGTERM lets mmdebstrap clean up), then
        whatever it started that is still running."""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        Rootfs.stop(proc)

    def argv(self, command: Sequence[str]) -> list[str]:
        """``command`` run inside the root file system (as root)."""
        return [
            "unshare", "--mount", "--propagation", "private", "--",
            "sh", "-c", _ENTER, "enter-rootfs", str(self.path), str(len(self.binds)),
            *(str(b) for b in self.binds), *command,
        ]

    def popen(self, command: Sequence[str], *, env: Mapping[str, str], stdout: Any) -> subprocess.Popen[bytes]:
        """Start ``command`` with exactly ``env``, in a session of its own so
        ``stop`` can end everything it started inside the root file system."""
        return subprocess.Popen(
            self.argv(command), env=dict(env), stdout=stdout, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

    @staticmethod
    def stop(proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
        """Kill the process and every process of its session still running."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=timeout_s)

    def run(self, command: Sequence[str], *, env: Mapping[str, str], timeout_s: float, log: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run to completion (output in ``log`` if given); on any failure,
        timeout or interrupt, nothing it started is left running."""
        if log is None:
            handle, name = tempfile.mkstemp(prefix="rootfs-", suffix=".log")
            os.close(handle)
        out_path = log or Path(name)
        try:
            with open(out_path, "wb") as out:
                proc = self.popen(command, env=env, stdout=out)
                try:
                    code = proc.wait(timeout=timeout_s)
                finally:
                    self.stop(proc)
            output = out_path.read_text(errors="replace")
        finally:
            if log is None:
                out_path.unlink(missing_ok=True)
        return subprocess.CompletedProcess(proc.args, code, output if log is None else _tail(out_path, 60), "")

    def host_path(self, inside: str) -> Path:
        return self.path / inside.lstrip("/")

    def mounts_inside(self) -> list[str]:
        """Host mount points under the root file system (there should be none)."""
        prefix = str(self.path.resolve()) + "/"
        points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        return [p for p in points if p.startswith(prefix) or p == prefix[:-1]]

    def remove(self) -> None:
        """Delete the tree; unmount first if anything leaked onto the host."""
        for point in sorted(self.mounts_inside(), key=len, reverse=True):
            subprocess.run(["umount", "--lazy", point], check=False)
        shutil.rmtree(self.path, ignore_errors=True)


def service_settings(unit_text: str, instance: str) -> dict[str, list[str]]:
    """The [Service] section of a systemd unit as key -> values (in order),
    with ``%i`` replaced by ``instance``."""
    section = ""
    settings: dict[str, list[str]] = {}
    for raw in unit_text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip().replace("%i", instance))
    return settings


def read_env_file(text: str) -> dict[str, str]:
    """systemd EnvironmentFile= lines (KEY=value; comments and blanks skipped)."""
    env = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith(("#", ";")):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


#: pip settings that say where packages come from; the rest of the host's pip
#: configuration (e.g. a host-wide constraint file) is not the image's business.
PIP_SOURCE_KEYS = ("index-url", "extra-index-url", "find-links", "trusted-host", "cert", "timeout", "default-timeout")


def host_pip_sources() -> dict[str, str]:
    """This machine's effective pip settings (files, then PIP_* variables) for
    ``PIP_SOURCE_KEYS``, as `pip config list` reports them."""
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    found: dict[str, str] = {}
    # `pip config list` prints files before the environment; the environment wins.
    for line in sorted(listing, key=lambda item: item.startswith(":env:")):
        key, sep, value = line.partition("=")
        name = key.partition(".")[2]
        if sep and name in PIP_SOURCE_KEYS:
            found[name] = str(ast.literal_eval(value))
    return found


def local_paths(pip_sources: Mapping[str, str]) -> list[Path]:
    """Directories on this machine that the pip sources point at (file://
    indexes, find-links). An index named ``.../simple`` gives its parent: a
    mirror keeps the files its pages link to (``../../files/...``) beside it."""
    paths = []
    for key in ("index-url", "extra-index-url", "find-links"):
        for item in pip_sources.get(key, "").split():
            if not item.startswith(("file://", "/")):
                continue
            path = Path(item.removeprefix("file://")).resolve()
            if key != "find-links" and path.name == "simple":
                path = path.parent
            if path.is_dir() and path not in paths:
                paths.append(path)
    return paths
