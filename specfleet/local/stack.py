"""The embedded local stack (the default everywhere): moto's server for
SQS/S3/SNS/EC2/CloudFormation, a pip-installed PostgreSQL, the queues,
bucket, topic and tables, and the status poller playing Lambda.

With ``SPECFLEET_LOCAL_AWS_ENDPOINT`` set to an AWS emulator already running
on loopback (LocalStack: ``./dev test --localstack``), the stack uses it
instead of starting moto's server; PostgreSQL and the poller stay the same.
This is the one place the backend is chosen.

``specfleet local up`` runs ``serve`` in a detached process and records its
state in ``<dir>/state.json``; ``local env`` prints the environment that
points specfleet at it; ``local down`` stops it. Tests start the same
process once per session and carve out a namespace (queue prefix + database)
per test with ``Namespace``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ..settings import Settings
from .postgres import EmbeddedPostgres, create_database, free_port

log = logging.getLogger("specfleet.local")

STATE_FILE = "state.json"
DEFAULT_DB = "specfleet"
#: Dummy credentials for the emulator only (moto accepts anything). Real AWS
#: always uses the default credential chain.
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
#: An AWS emulator already running on loopback (e.g. LocalStack's
#: ``http://127.0.0.1:4566``) to use instead of starting moto's server.
AWS_ENDPOINT_ENV = "SPECFLEET_LOCAL_AWS_ENDPOINT"


def external_endpoint() -> str | None:
    """The endpoint ``SPECFLEET_LOCAL_AWS_ENDPOINT`` names, or None when it is
    unset (then the stack starts moto's server). Refuses anything but an
    http URL on a loopback address: the local stack never reaches out."""
    from urllib.parse import urlsplit

    from ..outbound import is_loopback_host

    raw = os.environ.get(AWS_ENDPOINT_ENV, "").strip()
    if not raw:
        return None
    url = urlsplit(raw)
    if url.scheme != "http" or not is_loopback_host(url.hostname or "") or url.port is None:
        raise ValueError(f"{AWS_ENDPOINT_ENV}={raw!r}: expected http://127.0.0.1:PORT (an emulator on loopback)")
    return f"http://{url.netloc}"


@dataclass
class StackState:
    pid: int
    endpoint_url: str
    pg_port: int
    region: str = "us-east-1"

    def server_dsn(self, dbname: str = DEFAULT_DB) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{dbname}"

    def env(self, prefix: str = "", dbname: str = DEFAULT_DB) -> dict[str, str]:
        return {
            **EMULATOR_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "SPECFLEET_QUEUE_PREFIX": prefix,
            "SPECFLEET_BUCKET": f"{prefix.replace('_', '-').lower()}specfleet-data",
            "SPECFLEET_DB_DSN": self.server_dsn(dbname),
        }

    def settings(self, prefix: str = "", dbname: str = DEFAULT_DB, **overrides: Any) -> Settings:
        env = self.env(prefix, dbname)
        for k in EMULATOR_CREDENTIALS:
            os.environ.setdefault(k, EMULATOR_CREDENTIALS[k])
        return Settings(
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region=self.region,
            queue_prefix=prefix,
            bucket=env["SPECFLEET_BUCKET"],
            db_dsn=SecretStr(env["SPECFLEET_DB_DSN"]),
            **overrides,
        )


def _alive(pid: int) -> bool:
    """True for a running process (a zombie child that exited counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        return finished == 0
    except ChildProcessError:
        return True


def read_state(root: Path) -> StackState | None:
    path = Path(root) / STATE_FILE
    if not path.exists():
        return None
    state = StackState(**json.loads(path.read_text()))
    return state if _alive(state.pid) else None


def provision(settings: Settings) -> None:
    """Create queues (+DLQs), bucket, topic and tables for one namespace."""
    from ..aws import client
    from ..db import connect
    from ..pipelines import ensure_all_queues
    from ..pipelines.schema import migrate
    from ..storage import Storage

    ensure_all_queues(settings)
    Storage(settings).ensure_bucket()
    client("sns", settings).create_topic(Name=settings.topic())
    conn = connect(settings)
    try:
        migrate(conn)
    finally:
        conn.close()


class Namespace:
    """An isolated slice of a running stack: its own queue prefix, bucket and
    database, and its own status poller. Used by tests and the demo."""

    def __init__(self, state: StackState, name: str | None = None, poller: bool = True, **overrides: Any):
        self.state = state
        self.name = name or f"n{uuid.uuid4().hex[:10]}"
        self.prefix = f"{self.name}_"
        self.dbname = self.name
        _create_database(state, self.dbname)
        self.settings = state.settings(self.prefix, self.dbname, **overrides)
        provision(self.settings)
        self.poller = None
        if poller:
            from .poller import StatusPoller

            self.poller = StatusPoller(self.settings).start()

    def env(self) -> dict[str, str]:
        return self.state.env(self.prefix, self.dbname)

    def close(self) -> None:
        if self.poller:
            self.poller.stop()


def _create_database(state: StackState, name: str) -> None:
    create_database(state.server_dsn("postgres"), name)


def stop_on_signals() -> threading.Event:
    """An event SIGTERM and SIGINT set (call from the main thread)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def wait_until(stop: threading.Event) -> None:
    """Block the main thread until ``stop`` is set."""
    while not stop.wait(0.5):  # a bare wait() would not wake for signals
        pass


# --- the stack process ---------------------------------------------------------
def serve(root: Path, moto_port: int = 0, pg_port: int = 0, poller: bool = True) -> None:
    from moto.server import ThreadedMotoServer

    from .moto_sqs import install as install_indexed_sqs

    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    for k, v in EMULATOR_CREDENTIALS.items():
        os.environ.setdefault(k, v)
    endpoint_url = external_endpoint()
    moto = None
    if endpoint_url is None:
        moto_port = moto_port or free_port()
        install_indexed_sqs()  # moto's SQS scans the whole queue per message: see moto_sqs.py
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
        moto.start()
        endpoint_url = f"http://127.0.0.1:{moto_port}"
    # moto keeps S3 and SQS in memory: they start empty, and so must the
    # database (left over from a stack that was killed), or its status rows
    # would describe objects and jobs that no longer exist.
    pg = EmbeddedPostgres(root / "postgres", port=pg_port)
    pg.destroy()
    pg.start()
    state = StackState(pid=os.getpid(), endpoint_url=endpoint_url, pg_port=pg.port)
    _create_database(state, DEFAULT_DB)
    settings = state.settings()
    provision(settings)
    status_poller = None
    if poller:
        from .poller import StatusPoller

        status_poller = StatusPoller(settings).start()

    stop = stop_on_signals()
    tmp = root / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(state)))
    tmp.replace(root / STATE_FILE)
    log.info("local stack up: %s", state)
    try:
        wait_until(stop)
    finally:
        (root / STATE_FILE).unlink(missing_ok=True)
        if status_poller:
            status_poller.stop(timeout=5)
        pg.destroy()  # wiped with moto's in-memory S3 and SQS
        if moto is not None:
            moto.stop()


def start_detached(root: Path, timeout_s: float = 120, poller: bool = True) -> StackState:
    """Start ``serve`` in its own session and wait until it is ready."""
    root = Path(root).resolve()
    existing = read_state(root)
    if existing:
        return existing
    root.mkdir(parents=True, exist_ok=True)
    (root / STATE_FILE).unlink(missing_ok=True)
    logfile = open(root / "stack.log", "ab")
    cmd = [sys.executable, "-m", "specfleet.local.stack", "serve", "--dir", str(root)]
    if not poller:
        cmd.append("--no-poller")
    proc = subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True, cwd=os.getcwd())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = read_state(root)
        if state:
            return state
        if proc.poll() is not None:
            raise RuntimeError(f"local stack exited with {proc.returncode}; see {root / 'stack.log'}")
        time.sleep(0.1)  # polling a child's readiness file, not synchronising work
    proc.terminate()
    raise TimeoutError(f"local stack not ready after {timeout_s}s; see {root / 'stack.log'}")


def stop_detached(root: Path, timeout_s: float = 60) -> bool:
    state = read_state(Path(root))
    if not state:
        return False
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(state.pid):
            return True
        time.sleep(0.1)
    os.kill(state.pid, signal.SIGKILL)
    return True


def destroy_data(root: Path) -> None:
    """Delete a stopped stack's data, including PostgreSQL's files, which may
    live outside ``root`` (see ``EmbeddedPostgres.server_dir``)."""
    import shutil

    root = Path(root)
    pointer = root / "postgres" / "server_dir"
    if pointer.exists():
        shutil.rmtree(pointer.read_text().strip(), ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m specfleet.local.stack")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--dir", required=True)
    s.add_argument("--moto-port", type=int, default=0)
    s.add_argument("--pg-port", type=int, default=0)
    s.add_argument("--no-poller", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    serve(Path(args.dir), args.moto_port, args.pg_port, poller=not args.no_poller)


if __name__ == "__main__":
    main()
