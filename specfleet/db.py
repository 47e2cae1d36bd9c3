"""Postgres access: DSN resolution, connections, migrations.

The DSN comes from ``SPECFLEET_DB_DSN`` or from a Secrets Manager secret
(``SPECFLEET_DB_SECRET_ID``) holding either a DSN string or the RDS-style JSON
``{"username", "password", "host", "port", "dbname"}``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any
from urllib.parse import quote

import psycopg2
import psycopg2.extensions

from .aws import client
from .retries import db_connect_timeout_s
from .settings import Settings

#: SQLSTATEs that mean the server cannot serve anyone right now (the error
#: says nothing about the statement): admin/crash shutdown, starting up,
#: too many connections. Class 08 (connection exception) counts too.
_UNAVAILABLE_CODES = {"57P01", "57P02", "57P03", "53300"}


def is_db_unavailable(err: BaseException) -> bool:
    """The database could not be reached or dropped the connection.

    Only these are "wait and retry the whole batch". Every other error --
    a value out of range, an index row too big (``ProgramLimitExceeded``),
    ``DiskFull``, ``QueryCanceled`` -- belongs to what was sent, even when
    psycopg2 files it under ``OperationalError``."""
    if isinstance(err, psycopg2.InterfaceError):
        return True
    if isinstance(err, psycopg2.OperationalError):
        code = err.pgcode
        # No SQLSTATE: libpq failed before the server said anything (refused, reset, timeout).
        return code is None or code.startswith("08") or code in _UNAVAILABLE_CODES
    return False


def is_transient_db_error(err: BaseException) -> bool:
    """Worth retrying the same transaction: the database is unavailable, or
    it aborted the transaction for a conflict (serialization failure,
    deadlock: SQLSTATE class 40) that a second try resolves."""
    if is_db_unavailable(err):
        return True
    code: str | None = getattr(err, "pgcode", None)
    return isinstance(err, psycopg2.Error) and code is not None and code.startswith("40")


class DatabaseNotConfigured(RuntimeError):
    pass


def resolve_dsn(settings: Settings) -> str:
    if settings.db_dsn is not None:
        dsn = settings.db_dsn  # SecretStr, or str after Settings.model_copy(update=...)
        return dsn.get_secret_value() if hasattr(dsn, "get_secret_value") else str(dsn)
    if settings.db_secret_id:
        raw = client("secretsmanager", settings).get_secret_value(SecretId=settings.db_secret_id)["SecretString"]
        return dsn_from_secret(raw)
    raise DatabaseNotConfigured("set SPECFLEET_DB_DSN or SPECFLEET_DB_SECRET_ID (see README: configuration)")


def dsn_from_secret(raw: str) -> str:
    raw = raw.strip()
    if raw.startswith("postgres"):
        return raw
    secret = json.loads(raw)
    user = quote(secret["username"], safe="")
    password = quote(secret.get("password", ""), safe="")
    host = secret["host"]
    port = secret.get("port", 5432)
    dbname = secret.get("dbname", "specfleet")
    sslmode = secret.get("sslmode", "require")
    return f"postgresql://{user}:{password}@{host}:{port}/{dbname}?sslmode={sslmode}"


def connect(settings: Settings, dsn: str | None = None) -> psycopg2.extensions.connection:
    """One connection: one attempt within ``db_connect_timeout_s``. The
    caller owns retrying (``retries.py``): the status poller waits out an
    unreachable database, the status Lambda fails the batch with a backoff."""
    return psycopg2.connect(dsn or resolve_dsn(settings), connect_timeout=db_connect_timeout_s(settings))


#: The core schema (status tables of the built-in pipelines, monitoring, catalog).
CORE_SCHEMA = "specfleet.schema"


def migrate(conn: psycopg2.extensions.connection, packages: tuple[str, ...] = (CORE_SCHEMA,),
            finally_sql: str = "") -> list[str]:
    """Apply the ``NNN_*.sql`` files of ``packages`` not yet applied, each
    package in order, then ``finally_sql`` (derived views), in one
    transaction under an advisory lock. A core file's version is its stem;
    another package's is ``package:stem``."""
    applied_now = []
    with conn:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(74231)")  # one migrator at a time
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT version FROM schema_migrations")
            done = {r[0] for r in cur.fetchall()}
            for package in packages:
                files = sorted(
                    (f for f in resources.files(package).iterdir() if f.name.endswith(".sql")),
                    key=lambda f: f.name,
                )
                for f in files:
                    stem = f.name.removesuffix(".sql")
                    version = stem if package == CORE_SCHEMA else f"{package}:{stem}"
                    if version in done:
                        continue
                    cur.execute(f.read_text(encoding="utf-8"))
                    cur.execute("INSERT INTO schema_migrations(version) VALUES (%s)", (version,))
                    applied_now.append(version)
            if finally_sql:
                cur.execute(finally_sql)
    return applied_now


def fetch_all(conn: psycopg2.extensions.connection, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()
