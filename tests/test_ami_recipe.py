"""The AMI recipe (ami/provision.sh) run for real, and what keeps it honest:
one source for the worker's systemd unit, a hashed lock for its Python
packages.

The slow test builds a Debian 12 root file system from Debian's
repositories (mmdebstrap), runs the user-data ``specfleet ami bake`` would
give an EC2 builder in it (chroot), checks the result, then starts the unit's
ExecStart the way systemd would (its user, working directory, environment
file) against the local stack and watches it process jobs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from helpers import count, lock_entries, wait_for
from rootfs import SERVICE_PATH, Rootfs, host_pip_sources, local_paths, read_env_file, service_settings
from specfleet.fleet import userdata
from specfleet.fleet.ami import (
    BAKE_UNIT_PATH,
    LOCK_FILE,
    PROVISION_SCRIPT,
    UNIT_FILE,
    USER_DATA_LIMIT,
    BakeError,
    bake_user_data,
    lock_source,
    wheel_source,
)
from specfleet.local.stack import EMULATOR_CREDENTIALS
from specfleet.pipelines import job_queue, specs
from specfleet.pipelines.music.settings import MusicSettings
from specfleet.standins.imds import StubImds

ROOT = Path(__file__).resolve().parent.parent
WHEEL_URL = "specfleet @ https://example.invalid/specfleet-0.1.0-py3-none-any.whl?X-Amz=1&b=2#sha256=" + "0" * 64
LOCK_URL = "https://example.invalid/requirements.lock?X-Amz=1"


# --- one source for the unit ----------------------------------------------------------
def _unit_settings(text: str) -> set[str]:
    """The unit's `Key=value` lines (its sections and comments are not settings)."""
    return {line.strip() for line in text.splitlines() if re.match(r"^[A-Z][A-Za-z]+=", line.strip())}


def _copies_of_unit(files: list[Path], settings: set[str], threshold: int = 4) -> list[Path]:
    """Files carrying at least ``threshold`` of the unit's settings: a copy.
    (A test asserting one or two of them is not.)"""
    copies = []
    for path in files:
        try:
            text = path.read_text()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        if len(settings & _unit_settings(text)) >= threshold:
            copies.append(path)
    return copies


def test_the_unit_file_is_the_only_copy_of_the_unit(tmp_path: Path) -> None:
    settings = _unit_settings(UNIT_FILE.read_text())
    assert len(settings) >= 10
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    files = [ROOT / name for name in tracked.stdout.split("\0") if name]
    assert PROVISION_SCRIPT in files
    assert _copies_of_unit(files, settings) == [UNIT_FILE]
    # The check finds a heredoc copy like the one provision.sh used to carry.
    heredoc = tmp_path / "copy.sh"
    heredoc.write_text(f"cat > /etc/systemd/system/x.service <<'UNIT'\n{UNIT_FILE.read_text()}UNIT\n")
    assert _copies_of_unit([heredoc], settings) == [heredoc]


def test_bake_user_data_carries_the_unit_file_verbatim() -> None:
    script = bake_user_data(WHEEL_URL, LOCK_URL, pipelines=["echo", "spectrogram"])
    opening = re.search(r"^cat > \"\$SPECFLEET_UNIT_FILE\" <<'(\w+)'\n", script, re.M)
    assert opening, script[:800]
    body_start = opening.end()
    body_end = script.index("\n" + opening.group(1) + "\n", body_start)
    assert script[body_start:body_end] + "\n" == UNIT_FILE.read_text()
    assert f"export SPECFLEET_UNIT_FILE={BAKE_UNIT_PATH}" in script
    assert "export SPECFLEET_PIPELINES='echo spectrogram'" in script
    assert "export SPECFLEET_EXTRAS=spectrogram" in script  # from the spec's fleet profile
    assert f"export SPECFLEET_LOCK='{LOCK_URL}'" in script
    # provision.sh follows the header whole (without its shebang).
    assert script.endswith(PROVISION_SCRIPT.read_text().split("\n", 1)[1])
    assert len(script.encode()) <= USER_DATA_LIMIT


def test_bake_user_data_passes_shellcheck(tmp_path: Path) -> None:
    assert shutil.which("shellcheck"), "shellcheck must be installed (apt-get install -y shellcheck)"
    path = tmp_path / "user-data.sh"
    path.write_text(bake_user_data(WHEEL_URL, LOCK_URL))
    result = subprocess.run(["shellcheck", "--shell=bash", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pipelines": ["echo", "nope"]}, "unknown pipeline 'nope'"),
        ({"script": "#!/bin/bash\n" + "true\n" * USER_DATA_LIMIT}, "EC2 takes at most"),
        ({"unit": "[Service]\nSPECFLEET_UNIT_FILE_END\n"}, "ends the heredoc"),
        ({"agent_debs": ["https://example.invalid/a.deb"]}, "must look like URL#sha256="),
        ({"agent_debs": ["https://example.invalid/a.deb#sha256=abc"]}, "must look like URL#sha256="),
    ],
)
def test_bake_user_data_refuses_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(BakeError, match=message):
        bake_user_data(WHEEL_URL, LOCK_URL, **kwargs)


def _install_agents(tmp_path: Path, debs: str) -> subprocess.CompletedProcess[str]:
    """provision.sh's install_agents alone (the script without its last
    line, `main`), with apt-get recording what it was asked to install."""
    functions = "\n".join(PROVISION_SCRIPT.read_text().splitlines()[:-1])
    probe = (f"{functions}\napt-get() {{ printf '%s\\n' \"$@\" > {shlex.quote(str(tmp_path / 'apt.args'))}; }}\n"
             "install_agents\n")
    return subprocess.run(["bash", "-c", probe], env={"PATH": SERVICE_PATH, "SPECFLEET_AGENT_DEBS": debs},
                          capture_output=True, text=True, timeout=60)


def test_provision_installs_an_agent_package_only_if_its_hash_matches(tmp_path: Path) -> None:
    deb = tmp_path / "amazon-cloudwatch-agent.deb"
    deb.write_bytes(b"!<arch>\n" + os.urandom(256))  # the content does not matter to the check
    digest = hashlib.sha256(deb.read_bytes()).hexdigest()
    wrong = _install_agents(tmp_path, f"file://{deb}#sha256={'0' * 64}")
    assert wrong.returncode == 2 and "sha256 does not match" in wrong.stderr
    assert not (tmp_path / "apt.args").exists()  # dpkg never saw the file
    malformed = _install_agents(tmp_path, f"file://{deb}")
    assert malformed.returncode == 2 and "must look like URL#sha256=" in malformed.stderr
    right = _install_agents(tmp_path, f"file://{deb}#sha256={digest}")
    assert right.returncode == 0, right.stderr
    args = (tmp_path / "apt.args").read_text().split()
    assert args[:3] == ["install", "-y", "--no-install-recommends"] and args[3].endswith(".deb")
    none = _install_agents(tmp_path, "")
    assert none.returncode == 0 and "logs stay on the instance" in none.stderr


def test_provision_names_an_unknown_pipeline() -> None:
    # Checked before anything else (even the root check): nothing is installed.
    result = subprocess.run(
        ["bash", str(PROVISION_SCRIPT)], env={"PATH": SERVICE_PATH, "SPECFLEET_PIPELINES": "echo,nope"},
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "unknown pipeline 'nope'" in result.stderr


def _packages_for(pipelines: str) -> list[str]:
    result = subprocess.run(
        ["bash", str(PROVISION_SCRIPT), "--list-packages"], env={"PATH": SERVICE_PATH, "SPECFLEET_PIPELINES": pipelines},
        capture_output=True, text=True, timeout=30, check=True,
    )
    return result.stdout.split()


def _debian_package_owning(path: str) -> str:
    """The installed Debian package that ships ``path`` (dpkg -S), without its architecture."""
    result = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"no installed Debian package ships {path} (./dev test installs them): {result.stderr}"
    return result.stdout.split(":")[0]


def test_each_pipeline_gets_the_debian_packages_its_code_uses() -> None:
    """The packages provision.sh installs per pipeline are the ones that ship
    the files the code loads (the settings' Chromium paths, libmpg123), and
    the echo pipeline gets none of them."""
    base = _packages_for("echo")
    assert set(base) >= {"python3", "python3-venv"}
    defaults = MusicSettings()
    search = set(_packages_for("search")) - set(base)
    assert search == {_debian_package_owning(defaults.chromium_path),
                      _debian_package_owning(os.path.realpath(defaults.chromedriver_path))}
    assert set(_packages_for("spectrogram")) - set(base) == {_debian_package_owning("libmpg123.so.0")}
    for pipeline in ("hydrophone", "download"):
        assert _packages_for(pipeline) == base
    # The recipe installs what each pipeline's spec says it needs.
    for spec in specs():
        if spec.name in ("echo", "hydrophone", "search", "download", "spectrogram"):
            assert set(_packages_for(spec.name)) - set(base) == set(spec.fleet.apt_packages), spec.name
    assert set(_packages_for("echo,search spectrogram")) == set(base) | search | {_debian_package_owning("libmpg123.so.0")}


def _tiny_wheel(directory: Path) -> Path:
    wheel = directory / "specfleet-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("specfleet-0.1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: specfleet\nVersion: 0.1.0\n")
        archive.writestr(
            "specfleet-0.1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr("specfleet-0.1.0.dist-info/RECORD", "")
    return wheel


@pytest.mark.slow
def test_the_wheel_hash_in_the_bake_source_is_enforced(tmp_path: Path) -> None:
    """wheel_source's `specfleet @ URL#sha256=...`, fetched the way provision.sh
    fetches it: a wheel that is not the one hashed is refused."""
    wheel = _tiny_wheel(tmp_path)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()

    def fetch(hexdigest: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-cache-dir", "--no-deps", "--no-index",
             "-d", str(tmp_path / "dist"), f"specfleet @ {wheel.as_uri()}#sha256={hexdigest}"],
            capture_output=True, text=True, timeout=120,
        )

    refused = fetch("0" * 64)
    assert refused.returncode != 0 and f"Got        {digest}" in refused.stderr
    assert fetch(digest).returncode == 0
    assert (tmp_path / "dist" / wheel.name).read_bytes() == wheel.read_bytes()


# --- the recipe, run ---------------------------------------------------------------------
def _pip_env(rootfs: Rootfs) -> dict[str, str]:
    """PIP_* variables giving pip in the root file system this machine's
    package sources; their local directories are bind-mounted read-only and
    the CA bundle pip trusts here is copied in (a site's TLS proxy)."""
    env: dict[str, str] = {}
    sources = host_pip_sources()
    for key, value in sources.items():
        if key == "cert":
            inside = "/usr/local/share/specfleet-test/pip-cert.pem"
            rootfs.host_path(inside).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(value, rootfs.host_path(inside))
            value = inside
        env["PIP_" + key.upper().replace("-", "_")] = value
    rootfs.binds = local_paths(sources)
    return env


def _service_env(rootfs: Rootfs, service: dict[str, list[str]], env_file: str) -> dict[str, str]:
    """What systemd gives the service: its default PATH, the User='s identity,
    Environment= and EnvironmentFile=. Plus the emulator's credentials, standing
    in for the instance profile (IMDS credentials are off: loopback only)."""
    user = service["User"][0]
    passwd = {line.split(":")[0]: line.split(":") for line in rootfs.host_path("/etc/passwd").read_text().splitlines()}
    env = {"PATH": SERVICE_PATH, "USER": user, "LOGNAME": user, "HOME": passwd[user][5], "SHELL": passwd[user][6]}
    for assignments in service.get("Environment", []):
        for item in shlex.split(assignments):
            key, _, value = item.partition("=")
            env[key] = value
    env.update(read_env_file(rootfs.host_path(env_file).read_text()))
    env.update(EMULATOR_CREDENTIALS)
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def _as_service(service: dict[str, list[str]]) -> list[str]:
    """ExecStart as systemd runs it: in WorkingDirectory=, as User=/Group=,
    with NoNewPrivileges= (setpriv and sh exec, so the signal reaches the worker)."""
    privileges = ["setpriv", f"--reuid={service['User'][0]}", f"--regid={service['Group'][0]}", "--init-groups"]
    if service.get("NoNewPrivileges", ["false"])[0] == "true":
        privileges.append("--no-new-privs")
    return ["/bin/sh", "-c", 'cd "$1" && shift && exec "$@"', "service", service["WorkingDirectory"][0],
            *privileges, *shlex.split(service["ExecStart"][0])]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_recipe_provisions_a_debian_rootfs_whose_worker_processes_jobs(namespace, tmp_path, record_property) -> None:
    settings = namespace.settings
    pipeline = "echo"
    timings: dict[str, float] = {}
    rootfs = Rootfs(tmp_path / "rootfs")
    build: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    imds = StubImds(f"i-0rootfs{uuid.uuid4().hex[:8]}").start()
    try:
        build = Rootfs.start_build(rootfs.path, tmp_path / "mmdebstrap.log")
        # Meanwhile, what `ami bake` uploads: this checkout's wheel and the lock.
        bucket = f"{namespace.name}-artifacts"
        source = wheel_source(settings, bucket=bucket)
        lock = lock_source(settings, bucket=bucket)
        assert source.startswith("specfleet @ http://127.0.0.1:") and "#sha256=" in source
        timings["wheel_and_lock_upload_s"] = time.monotonic() - started
        Rootfs.finish_build(build, rootfs.path, tmp_path / "mmdebstrap.log")
        timings["mmdebstrap_s"] = time.monotonic() - started

        # The bake's user-data, run as root in the root file system.
        mark = time.monotonic()
        env = {"PATH": SERVICE_PATH, "HOME": "/root", "LANG": "C.UTF-8", **_pip_env(rootfs)}
        rootfs.host_path("/root/user-data.sh").write_text(bake_user_data(source, lock, pipelines=[pipeline]))
        provisioned = rootfs.run(["bash", "/root/user-data.sh"], env=env, timeout_s=1500, log=tmp_path / "provision.log")
        timings["provision_s"] = time.monotonic() - mark
        assert provisioned.returncode == 0, provisioned.stdout
        assert "systemd is not running here: not powering off" in provisioned.stdout

        # The unit: the repository's file, and systemd finds nothing wrong with it.
        unit_text = rootfs.host_path("/etc/systemd/system/specfleet-worker@.service").read_text()
        assert unit_text == UNIT_FILE.read_text()
        verify = rootfs.run(
            ["systemd-analyze", "verify", f"/etc/systemd/system/specfleet-worker@{pipeline}.service"],
            env={"PATH": SERVICE_PATH}, timeout_s=120,
        )
        assert (verify.returncode, verify.stdout + verify.stderr) == (0, "")

        # The venv (not this checkout) imports specfleet and the pipeline, as the service user.
        imports = rootfs.run(
            ["setpriv", "--reuid=specfleet", "--regid=specfleet", "--init-groups", "/opt/specfleet/venv/bin/python", "-c",
             "import sys, specfleet; from specfleet.pipelines import get_spec; "
             "print(specfleet.__file__, get_spec(sys.argv[1]).handler.load().__module__)", pipeline],
            env={"PATH": SERVICE_PATH, "HOME": "/opt/specfleet"}, timeout_s=120,
        )
        assert imports.returncode == 0, imports.stdout
        # The handler is loaded from the installed package: its module is the pipeline's own.
        assert imports.stdout.split() == ["/opt/specfleet/venv/lib/python3.11/site-packages/specfleet/__init__.py",
                                          f"specfleet.pipelines.{pipeline}"]

        # yt-dlp, in the provisioned venv, sees the JS runtime YouTube needs
        # (the lock's deno wheel and yt-dlp-ejs), as the service user.
        js = rootfs.run(
            ["setpriv", "--reuid=specfleet", "--regid=specfleet", "--init-groups", "/opt/specfleet/venv/bin/python", "-c",
             "from specfleet.pipelines.music.jsruntime import seen_runtime; "
             "from specfleet.pipelines.music.settings import MusicSettings; "
             "r = seen_runtime(MusicSettings()); print(r.name, r.path, bool(r.ejs)) if r else print('none')"],
            env={"PATH": SERVICE_PATH, "HOME": "/opt/specfleet"}, timeout_s=120,
        )
        assert js.returncode == 0, js.stdout
        assert js.stdout.split() == ["deno", "/opt/specfleet/venv/bin/deno", "True"], js.stdout

        # Exactly the lock's pins (plus Debian's pip and the wheel); Debian packages recorded.
        locked = {name: version for name, (version, _) in lock_entries(LOCK_FILE.read_text()).items()}
        frozen = rootfs.host_path("/opt/specfleet/manifest/python-packages.txt").read_text().splitlines()
        installed = dict(
            (canonicalize_name(line.split("==")[0]), line.split("==")[1]) for line in frozen if "==" in line
        )
        assert [line for line in frozen if "==" not in line] == [
            "specfleet @ file:///opt/specfleet/dist/specfleet-0.1.0-py3-none-any.whl"
        ]
        assert {k: v for k, v in installed.items() if k != "pip"} == locked
        debian = dict(
            line.split("=", 1)
            for line in rootfs.host_path("/opt/specfleet/manifest/debian-packages.txt").read_text().splitlines()
        )
        assert {"python3", "python3-venv", "ca-certificates", "curl"} <= debian.keys()
        assert debian["python3"].startswith("3.11.")
        # Only what the echo pipeline needs: no Chromium, no libmpg123.
        assert not {"chromium", "chromium-driver", "libmpg123-0"} & debian.keys()

        # The unit's ExecStart, with the env file the user-data writes, against the local stack.
        service = service_settings(unit_text, pipeline)
        script = userdata.render(pipeline, userdata.worker_env(settings, imds_url=imds.url),
                                 log_group=userdata.log_group_name("specfleet", pipeline))
        parsed = userdata.parse(script, imds.instance_id)
        env_file = service["EnvironmentFile"][0]
        assert env_file == f"/etc/specfleet/{pipeline}.env"
        rootfs.host_path(env_file).parent.mkdir(parents=True, exist_ok=True)
        rootfs.host_path(env_file).write_text("".join(f"{k}={v}\n" for k, v in parsed.env.items()))
        jobs = [{"job_id": f"rootfs-{i}"} for i in range(3)]
        job_queue(settings, pipeline).send_json(jobs)
        mark = time.monotonic()
        service_env = _service_env(rootfs, service, env_file)
        # Loopback only: every endpoint the worker is given is on 127.0.0.1.
        urls = [value for value in service_env.values() if "://" in value]
        assert urls and all(url.startswith("http://127.0.0.1:") for url in urls), urls
        with open(tmp_path / "worker.log", "wb") as log:
            worker = rootfs.popen(_as_service(service), env=service_env, stdout=log)
        done = f"instance_id = %s AND stat = 1 AND job_id IN ({', '.join(['%s'] * len(jobs))})"
        wait_for(
            lambda: count(settings, "status_echo", done, (imds.instance_id, *(j["job_id"] for j in jobs))) == len(jobs)
            or worker.poll() is not None,
            timeout=180, what="the rootfs worker's status rows",
        )
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        timings["worker_three_jobs_s"] = time.monotonic() - mark
        wait_for(lambda: imds.requests > 0, timeout=60, what="the worker polling the IMDS named in its env file")
        worker.send_signal(signal.Signals[service["KillSignal"][0]])
        code = worker.wait(timeout=float(service["TimeoutStopSec"][0]))
        assert code == 0, (tmp_path / "worker.log").read_text()[-3000:]
        assert job_queue(settings, pipeline).depth() == {"visible": 0, "in_flight": 0, "delayed": 0}
        assert not rootfs.mounts_inside()
    finally:
        if build:
            Rootfs.stop_build(build)
        if worker:
            Rootfs.stop(worker)
        imds.stop()
        rootfs.remove()
        timings["total_s"] = time.monotonic() - started
        for key, value in timings.items():
            record_property(key, round(value, 1))
        print("ami recipe timings:", {k: round(v, 1) for k, v in timings.items()},
              "loadavg:", Path("/proc/loadavg").read_text().split()[:3])
    assert not rootfs.path.exists()
