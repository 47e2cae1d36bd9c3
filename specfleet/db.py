"""Postgres access: DSN resolution, connections with retry, migrations.

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
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from .aws import client
from .settings import Settings

#: Errors worth retrying: the server is unreachable, restarting, or dropped us.
TRANSIENT_DB_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


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
    """One connection, retried briefly while the server is unreachable."""

    @retry(
        retry=retry_if_exception_type(TRANSIENT_DB_ERRORS),
        wait=wait_exponential_jitter(initial=0.2, max=2),
        stop=stop_after_attempt(3),
        reraise=True,
    )
    def _connect() -> psycopg2.extensions.connection:
        return psycopg2.connect(dsn or resolve_dsn(settings), connect_timeout=settings.db_connect_timeout_s)

    return _connect()


def migrate(conn: psycopg2.extensions.connection) -> list[str]:
    """Apply ``specfleet/schema/NNN_*.sql`` files not yet applied, in order."""
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
            files = sorted(
                (f for f in resources.files("specfleet.schema").iterdir() if f.name.endswith(".sql")),
                key=lambda f: f.name,
            )
            for f in files:
                version = f.name.removesuffix(".sql")
                if version in done:
                    continue
                cur.execute(f.read_text(encoding="utf-8"))
                cur.execute("INSERT INTO schema_migrations(version) VALUES (%s)", (version,))
                applied_now.append(version)
    return applied_now


def fetch_all(conn: psycopg2.extensions.connection, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()
