"""Lambda that applies specfleet's database migrations (core and each pipeline's).

The database is private to the VPC, so `specfleet infra deploy` invokes this
function once after each create/update instead of connecting itself.
"""

from __future__ import annotations

from typing import Any

from specfleet.db import connect
from specfleet.pipelines.schema import migrate
from specfleet.settings import Settings


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    conn = connect(Settings())
    try:
        applied = migrate(conn)
    finally:
        conn.close()
    return {"applied": applied}
