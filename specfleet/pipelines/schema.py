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
    only gain columns at the end), so the views built on it stay valid."""
    branches = []
    for spec in specs():
        v = spec.status_view
        # Names and expressions come from our own specs, never from input.
        branches.append(
            f"SELECT '{spec.name}'::text AS pipeline, instance_id, stat, ({v.item})::text AS item, "
            f"({v.track_id})::text AS track_id, date, reason, ({v.job_key})::text AS job_key, received_at "
            f'FROM "{spec.status_model.table}"'
        )
    return "CREATE OR REPLACE VIEW status_all AS\n    " + "\n    UNION ALL\n    ".join(branches) + ";\n"


def migrate(conn: psycopg2.extensions.connection) -> list[str]:
    """Apply every pending migration (core, then each pipeline's) and rebuild
    ``status_all``; return the versions applied now."""
    packages = (CORE_SCHEMA, *[s.schema for s in specs() if s.schema])
    return apply_migrations(conn, packages, finally_sql=status_union_sql())
