"""The database schema as the registry sees it: the core migrations, each
pipeline's own migrations (``spec.schema``), and the ``status_all`` view,
one ``UNION ALL`` branch per registered pipeline, rebuilt after every
migration run so a new pipeline's rows show up in every monitoring view
without anyone editing a view."""

from __future__ import annotations

import psycopg2.extensions

from ..db import CORE_SCHEMA
from ..db import migrate as apply_migrations
from . import specs


def status_union_sql() -> str:
    """``CREATE OR REPLACE VIEW status_all`` over every pipeline's status
    table. Its columns keep the order and types of migration 030 (a view may
    only gain columns at the end), so the views built on it stay valid.

    Each status table gets a ``deployment`` column first: the queue prefix
    of the status queue a row came through (the status writer fills it), so
    one database serving several deployments (stacks, test namespaces) keeps
    their rows apart. Rows stored before it have ``''`` (deployment unknown).
    ``status_all`` and ``status_jobs`` carry it as their last column."""
    branches, columns = [], []
    for spec in specs():
        v = spec.status_view
        table = spec.status_model.table
        # Names and expressions come from our own specs, never from input.
        columns.append(f'ALTER TABLE "{table}" ADD COLUMN IF NOT EXISTS deployment text NOT NULL DEFAULT \'\';')
        branches.append(
            f"SELECT '{spec.name}'::text AS pipeline, instance_id, stat, ({v.item})::text AS item, "
            f"({v.track_id})::text AS track_id, date, reason, ({v.job_key})::text AS job_key, received_at, "
            f'deployment FROM "{table}"'
        )
    return ("\n".join(columns) + "\nCREATE OR REPLACE VIEW status_all AS\n    "
            + "\n    UNION ALL\n    ".join(branches) + ";\n"
            "CREATE OR REPLACE VIEW status_jobs AS\n"
            "    SELECT pipeline, instance_id, stat, job_key, date, reason, received_at, deployment FROM status_all;\n")


def migrate(conn: psycopg2.extensions.connection) -> list[str]:
    """Apply every pending migration (core, then each pipeline's) and rebuild
    ``status_all``; return the versions applied now."""
    packages = (CORE_SCHEMA, *[s.schema for s in specs() if s.schema])
    return apply_migrations(conn, packages, finally_sql=status_union_sql())
