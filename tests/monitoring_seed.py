"""A small, hand-checkable status history for the monitoring tests.

Every expected number in tests/test_monitoring_views.py was worked out by
hand from the rows below (times are UTC on 2024-05-01).
"""

from __future__ import annotations

import datetime as dt
import itertools

from specfleet.db import connect
from specfleet.settings import Settings

DAY = dt.datetime(2024, 5, 1)


def t(hhmmss: str) -> dt.datetime:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return DAY.replace(hour=h, minute=m, second=s)


# (instance_id, stat, job_id, date, reason)
ECHO = [
    ("i-a", 1, "e1", "10:00:05", None),
    ("i-a", 1, "e2", "10:00:40", None),
    ("i-a", 1, "e3", "10:01:10", None),
    ("i-a", 0, "e4", "10:01:20", "timeout"),
    ("i-b", 1, "e5", "10:00:10", None),
    ("i-b", 2, "e6", "10:00:20", "already done"),
    ("i-b", 0, "e7", "10:02:00", None),
]
# download, table "status": (instance_id, stat, track_id, date, reason)
DOWNLOAD = [
    ("i-c", 1, "tr1", "10:00:00", None),
    ("i-c", 0, "tr2", "10:00:30", "HTTP 403"),
    ("i-c", 0, "tr3", "10:00:50", "HTTP 403"),
    ("i-c", -1, "tr4", "10:01:00", "banned after 3 failures"),
    ("i-c", 1, "tr9", "10:05:00", None),  # a row after the ban: should not happen
    ("i-d", 1, "tr5", "10:00:15", None),
    ("i-d", 0, "tr6", "10:03:00", "video unavailable"),
]
# spectrogram: (instance_id, stat, track_id, win, date, reason)
SPECTO = [
    ("i-e", 1, "A", 0, "10:00:01", None),
    ("i-e", 1, "A", 1, "10:00:02", None),
    ("i-e", 1, "A", 2, "10:00:03", None),
    ("i-e", 1, "B", 0, "10:01:05", None),
    ("i-e", 1, "B", 1, "10:01:06", None),
    ("i-e", 1, "B", 1, "10:01:07", None),  # same window reported twice (distinct message)
    ("i-f", 1, "A", 0, "10:02:00", None),
    ("i-f", 0, "C", 0, "10:02:30", "mp3 too large"),
]
# (pipeline, sampled_at, visible, in_flight, dlq)
DEPTHS = [
    ("echo", "10:00:00", 100, 10, 0),
    ("echo", "10:01:00", 70, 10, 1),
    ("echo", "10:03:00", 20, 5, 1),
    ("download", "10:00:30", 5, 0, 0),
]


def seed_status_history(settings: Settings) -> None:
    keys = (f"k{i}" for i in itertools.count())
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            for inst, stat, job, when, reason in ECHO:
                cur.execute(
                    "INSERT INTO status_echo (msg_key, instance_id, stat, job_id, date, reason)"
                    " VALUES (%s,%s,%s,%s,%s,%s)",
                    (next(keys), inst, stat, job, t(when), reason),
                )
            for inst, stat, track, when, reason in DOWNLOAD:
                cur.execute(
                    "INSERT INTO status (msg_key, instance_id, stat, track_id, yt_url, date, reason)"
                    " VALUES (%s,%s,%s,%s,%s,%s,%s)",
                    (next(keys), inst, stat, track, f"https://video.test/{track}", t(when), reason),
                )
            for inst, stat, track, win, when, reason in SPECTO:
                cur.execute(
                    "INSERT INTO status_specto (msg_key, instance_id, stat, track_id, win, ini, fin, rows, cols,"
                    " date, reason) VALUES (%s,%s,%s,%s,%s,%s,%s,256,938,%s,%s)",
                    (next(keys), inst, stat, track, win, 20 * win, 20 * win + 30, t(when), reason),
                )
            for pipeline, when, visible, in_flight, dlq in DEPTHS:
                cur.execute(
                    "INSERT INTO queue_depth_history (pipeline, sampled_at, visible, in_flight, dlq)"
                    " VALUES (%s, %s::timestamp AT TIME ZONE 'UTC', %s, %s, %s)",
                    (pipeline, t(when), visible, in_flight, dlq),
                )
    finally:
        conn.close()
