"""Summaries of the status tables and queues (``specfleet status``)."""

from __future__ import annotations

from typing import Any

from .db import connect
from .queues import dead_letter_queue, job_queue
from .settings import JOB_QUEUES, Settings
from .status import STATUS_MODELS


def summary(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {"pipelines": {}}
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            for pipeline in JOB_QUEUES:
                table = STATUS_MODELS[pipeline].table
                cur.execute(
                    f'SELECT stat, count(*), count(DISTINCT instance_id) FROM "{table}" GROUP BY stat'  # noqa: S608
                )
                by_stat = {row[0]: row[1] for row in cur.fetchall()}
                cur.execute(f'SELECT count(DISTINCT instance_id) FROM "{table}"')  # noqa: S608
                instances = cur.fetchone()[0]
                q = job_queue(settings, pipeline)
                out["pipelines"][pipeline] = {
                    "queue": q.depth(),
                    "dlq": dead_letter_queue(q).depth()["visible"],
                    "done": by_stat.get(1, 0),
                    "failed": by_stat.get(0, 0),
                    "banned": by_stat.get(-1, 0),
                    "skipped": by_stat.get(2, 0),
                    "instances": instances,
                }
            cur.execute("SELECT count(*) FROM status_rejects")
            out["rejects"] = cur.fetchone()[0]
    finally:
        conn.close()
    return out
