"""Catalog insert speed: bulk upserts as the build writes them (``COPY`` into
a staging table + one ``INSERT ... SELECT ... ON CONFLICT`` per table) vs one
``INSERT ... ON CONFLICT`` per row, same rows, same server, same run. Both
commit once; the difference is round trips and parsing. For reference it
also times the previous bulk path (``execute_values``, a multi-row VALUES
statement). Every method must leave identical tables (checked by digest).

    python benchmarks/catalog.py --json [--rows 20000]

Prints one JSON object last: rows/s of each, ``speedup`` = bulk vs per row
(goal >= 10).
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from psycopg2.extras import execute_values  # noqa: E402

from specfleet.catalog.store import CatalogBatch, row_upsert_sql, upsert_from_sql, upsert_rows  # noqa: E402


def make_rows(n: int, seed: int = 1) -> dict[str, list[tuple[Any, ...]]]:
    """Artists, tracks and artist-track links, merged and ordered by a
    ``CatalogBatch`` exactly as the build writes them."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits

    def sid() -> str:
        return "".join(rng.choice(alphabet) for _ in range(22))

    artists = [(sid(), f"Artist {i}", i % 3 == 0) for i in range(max(1, n // 10))]
    tracks = [
        (sid(), f"Track {i}", date(2017, 1, 1) + timedelta(days=rng.randint(0, 2000)), rng.randint(-1, 10**9))
        for i in range(n)
    ]
    batch = CatalogBatch()
    for i, (track_id, name, peak, streams) in enumerate(tracks):
        artist_id, artist_name, is_main = artists[i % len(artists)]
        batch.add_artist(artist_id, artist_name, is_main)
        batch.add_track(track_id, name, peak, streams)
        batch.link(artist_id, track_id, "main")
    rows = batch.rows()
    return {t: rows[t] for t in ("master_artist", "master_track", "rel_artist_track")}


METHODS = ("copy", "values", "single")
TABLES = ("master_artist", "master_track", "rel_artist_track")


def run(conn: Any, rows: dict[str, list[tuple[Any, ...]]], method: str) -> float:
    """Empty tables, then write all rows in one transaction; seconds taken."""
    with conn.cursor() as cur:
        cur.execute("TRUNCATE rel_artist_track, master_track, master_artist CASCADE")
    conn.commit()
    started = time.perf_counter()
    with conn:
        with conn.cursor() as cur:
            for table, data in rows.items():
                if method == "copy":
                    upsert_rows(cur, table, data)
                elif method == "values":
                    execute_values(cur, upsert_from_sql(table, "VALUES %s"), data, page_size=5000)
                else:
                    one = row_upsert_sql(table)
                    for row in data:
                        cur.execute(one, row)
    return time.perf_counter() - started


def digest(conn: Any) -> str:
    """md5 over the benchmark tables' contents in key order."""
    with conn.cursor() as cur:
        parts = []
        for table in TABLES:
            cur.execute(f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t")
            parts.append(cur.fetchone()[0])
    return ":".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rows", type=int, default=20000, help="Tracks per run (plus links and artists).")
    args = parser.parse_args()

    import psycopg2

    from specfleet.local.postgres import EmbeddedPostgres
    from specfleet.pipelines.schema import migrate

    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg").start()
        try:
            conn = psycopg2.connect(pg.create_database("bench"))
            migrate(conn)
            rows = make_rows(args.rows)
            total = sum(len(v) for v in rows.values())
            seconds: dict[str, float] = {}
            digests: dict[str, str] = {}
            for method in METHODS:
                if method != "single":
                    run(conn, rows, method)  # warm-up: caches, plans, staging table
                # best of 3 for the bulk paths; the per-row baseline once (it is long enough to be stable)
                seconds[method] = min(run(conn, rows, method) for _ in range(3 if method != "single" else 1))
                digests[method] = digest(conn)
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM master_track")
                stored = cur.fetchone()[0]
            conn.close()
        finally:
            pg.stop()
    if len(set(digests.values())) != 1:
        raise SystemExit(f"methods left different tables: {digests}")
    bulk_s, values_s, single_s = seconds["copy"], seconds["values"], seconds["single"]
    result = {
        "benchmark": "catalog_inserts",
        "rows": total,
        "rows_stored_check": stored,
        "same_tables": True,
        "bulk_method": "copy+insert_select",
        "bulk_rows_per_s": round(total / bulk_s, 1),
        "values_rows_per_s": round(total / values_s, 1),
        "single_rows_per_s": round(total / single_s, 1),
        "bulk_s": round(bulk_s, 3),
        "values_s": round(values_s, 3),
        "single_s": round(single_s, 3),
        "speedup": round(single_s / bulk_s, 2),
        "speedup_values": round(single_s / values_s, 2),
        "goal": 10,
    }
    if not args.json:
        print(f"bulk {result['bulk_rows_per_s']} rows/s vs one-by-one {result['single_rows_per_s']} rows/s "
              f"-> speedup x{result['speedup']}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
