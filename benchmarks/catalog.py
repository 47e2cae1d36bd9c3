"""Catalog insert speed: bulk upserts (``execute_values``, as the build
writes) vs one ``INSERT ... ON CONFLICT`` per row, same rows, same server,
same run. Both commit once; the difference is round trips and parsing.

    python benchmarks/catalog.py --json [--rows 20000]

Prints one JSON object last: rows/s of each, ``speedup`` (goal >= 10).
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

from specfleet.catalog.store import CatalogBatch, upsert_rows, upsert_sql  # noqa: E402


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


def run(conn: Any, rows: dict[str, list[tuple[Any, ...]]], bulk: bool) -> float:
    with conn.cursor() as cur:
        cur.execute("TRUNCATE rel_artist_track, master_track, master_artist CASCADE")
    conn.commit()
    started = time.perf_counter()
    with conn:
        with conn.cursor() as cur:
            for table, data in rows.items():
                if bulk:
                    upsert_rows(cur, table, data)
                else:
                    one = upsert_sql(table).replace("VALUES %s", "VALUES (" + ", ".join(["%s"] * len(data[0])) + ")")
                    for row in data:
                        cur.execute(one, row)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rows", type=int, default=20000, help="Tracks per run (plus links and artists).")
    args = parser.parse_args()

    from specfleet.db import migrate
    from specfleet.local.postgres import EmbeddedPostgres

    import psycopg2

    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg").start()
        try:
            conn = psycopg2.connect(pg.create_database("bench"))
            migrate(conn)
            rows = make_rows(args.rows)
            total = sum(len(v) for v in rows.values())
            run(conn, rows, bulk=True)  # warm-up: caches, plans
            bulk_s = min(run(conn, rows, bulk=True) for _ in range(3))
            single_s = run(conn, rows, bulk=False)
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM master_track")
                stored = cur.fetchone()[0]
            conn.close()
        finally:
            pg.stop()
    result = {
        "benchmark": "catalog_inserts",
        "rows": total,
        "rows_stored_check": stored,
        "bulk_rows_per_s": round(total / bulk_s, 1),
        "single_rows_per_s": round(total / single_s, 1),
        "bulk_s": round(bulk_s, 3),
        "single_s": round(single_s, 3),
        "speedup": round(single_s / bulk_s, 2),
        "goal": 10,
    }
    if not args.json:
        print(f"bulk {result['bulk_rows_per_s']} rows/s vs one-by-one {result['single_rows_per_s']} rows/s "
              f"-> speedup x{result['speedup']}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
