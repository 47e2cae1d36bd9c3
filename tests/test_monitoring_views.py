"""Every monitoring view against a seeded status history (tests/monitoring_seed.py):
the expected numbers are worked out by hand from those rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from helpers import query
from monitoring_seed import seed_status_history, t
from specfleet.local.stack import Namespace
from specfleet.monitoring import MonitorSettings, summary
from specfleet.pipelines import job_queue
from specfleet.queues import dead_letter_queue


@pytest.fixture(scope="module")
def seeded(stack):
    """One seeded namespace for the whole module: the views only read it.
    (No status poller: nothing here sends status messages.)"""
    ns = Namespace(stack, poller=False, wait_time_s=1)
    seed_status_history(ns.settings)
    try:
        yield ns.settings
    finally:
        ns.close()


def test_core_views_answer_the_original_questions(seeded):
    assert sorted(query(seeded, "SELECT pipeline, instance_id, rows FROM v_rows_per_instance")) == [
        ("download", "i-c", 5), ("download", "i-d", 2),
        ("echo", "i-a", 4), ("echo", "i-b", 3),
        ("spectrogram", "i-e", 6), ("spectrogram", "i-f", 2),
    ]
    assert sorted(query(seeded, "SELECT pipeline, count(*) FROM v_not_done GROUP BY pipeline")) == [
        ("download", 4), ("echo", 3), ("spectrogram", 1),
    ]
    assert sorted(query(seeded, "SELECT pipeline, tracks FROM v_tracks_done")) == [
        ("download", 3), ("spectrogram", 2),
    ]
    assert sorted(query(seeded, "SELECT instance_id, track_id, windows FROM v_windows_per_track")) == [
        ("i-e", "A", 3), ("i-e", "B", 2), ("i-f", "A", 1),
    ]
    assert sorted(query(seeded, "SELECT pipeline, instance_id, tracks FROM v_tracks_per_instance")) == [
        ("download", "i-c", 5), ("download", "i-d", 2), ("spectrogram", "i-e", 2), ("spectrogram", "i-f", 2),
    ]


def test_status_tables_are_listed_once(seeded):
    """status_jobs is a projection of status_all, so a new pipeline's status
    table is added in one place; every status row is in both, one for one."""
    uses = query(
        seeded,
        "SELECT view_name, table_name FROM information_schema.view_table_usage"
        " WHERE view_name IN ('status_all', 'status_jobs') ORDER BY 1, 2",
    )
    assert [u for u in uses if u[0] == "status_jobs"] == [("status_jobs", "status_all")]
    assert {u[1] for u in uses if u[0] == "status_all"} == {
        "status", "status_echo", "status_hydro", "status_search", "status_specto",
    }
    per_view = query(
        seeded,
        "SELECT a.pipeline, a.n, j.n FROM (SELECT pipeline, count(*) n FROM status_all GROUP BY 1) a"
        " FULL JOIN (SELECT pipeline, count(*) n FROM status_jobs GROUP BY 1) j USING (pipeline) ORDER BY 1",
    )
    assert per_view == [("download", 7, 7), ("echo", 7, 7), ("spectrogram", 8, 8)]
    # The spectrogram's item is the window, its job key the track.
    assert sorted(query(seeded, "SELECT DISTINCT item, job_key FROM status_all WHERE pipeline = 'spectrogram'")) == [
        ("A#0", "A"), ("A#1", "A"), ("A#2", "A"), ("B#0", "B"), ("B#1", "B"), ("C#0", "C"),
    ]


def test_throughput_per_minute(seeded):
    rows = query(
        seeded,
        "SELECT pipeline, instance_id, minute, rows, done, failed, skipped, banned, jobs"
        " FROM v_throughput_per_minute ORDER BY pipeline, instance_id, minute",
    )
    assert rows == [
        ("download", "i-c", t("10:00:00"), 3, 1, 2, 0, 0, 3),
        ("download", "i-c", t("10:01:00"), 1, 0, 0, 0, 1, 1),
        ("download", "i-c", t("10:05:00"), 1, 1, 0, 0, 0, 1),
        ("download", "i-d", t("10:00:00"), 1, 1, 0, 0, 0, 1),
        ("download", "i-d", t("10:03:00"), 1, 0, 1, 0, 0, 1),
        ("echo", "i-a", t("10:00:00"), 2, 2, 0, 0, 0, 2),
        ("echo", "i-a", t("10:01:00"), 2, 1, 1, 0, 0, 2),
        ("echo", "i-b", t("10:00:00"), 2, 1, 0, 1, 0, 2),
        ("echo", "i-b", t("10:02:00"), 1, 0, 1, 0, 0, 1),
        # spectrogram: one row per window, one job per track
        ("spectrogram", "i-e", t("10:00:00"), 3, 3, 0, 0, 0, 1),
        ("spectrogram", "i-e", t("10:01:00"), 3, 3, 0, 0, 0, 1),
        ("spectrogram", "i-f", t("10:02:00"), 2, 1, 1, 0, 0, 2),
    ]


def test_failure_reasons(seeded):
    rows = query(
        seeded,
        "SELECT pipeline, stat, reason, rows, instances, first_seen, last_seen FROM v_failure_reasons"
        " ORDER BY pipeline, stat, reason",
    )
    assert rows == [
        ("download", -1, "banned after 3 failures", 1, 1, t("10:01:00"), t("10:01:00")),
        ("download", 0, "HTTP 403", 2, 1, t("10:00:30"), t("10:00:50")),
        ("download", 0, "video unavailable", 1, 1, t("10:03:00"), t("10:03:00")),
        ("echo", 0, "(no reason given)", 1, 1, t("10:02:00"), t("10:02:00")),
        ("echo", 0, "timeout", 1, 1, t("10:01:20"), t("10:01:20")),
        ("spectrogram", 0, "mp3 too large", 1, 1, t("10:02:30"), t("10:02:30")),
    ]


def test_banned_instances_and_activity(seeded):
    assert query(seeded, "SELECT pipeline, instance_id, bans, first_banned_at, last_banned_at, last_seen, after_ban"
                         " FROM v_banned_instances") == [
        ("download", "i-c", 1, t("10:01:00"), t("10:01:00"), t("10:05:00"), 1),
    ]
    assert query(
        seeded,
        "SELECT rows, done, failed, skipped, banned, first_seen, last_seen FROM v_instance_activity"
        " WHERE pipeline = 'echo' AND instance_id = 'i-b'",
    ) == [(3, 1, 1, 1, 0, t("10:00:10"), t("10:02:00"))]


def test_pipeline_totals(seeded):
    rows = query(
        seeded,
        "SELECT pipeline, rows, done, failed, skipped, banned, jobs, instances, last_seen"
        " FROM v_pipeline_totals ORDER BY pipeline",
    )
    assert rows == [
        ("download", 7, 3, 3, 0, 1, 7, 2, t("10:05:00")),
        ("echo", 7, 4, 2, 1, 0, 7, 2, t("10:02:00")),
        ("spectrogram", 8, 7, 1, 0, 0, 3, 2, t("10:02:30")),
    ]


def test_queue_backlog_history(seeded):
    latest = query(
        seeded,
        "SELECT pipeline, sampled_at AT TIME ZONE 'UTC', visible, in_flight, dlq, backlog"
        " FROM v_queue_backlog ORDER BY pipeline",
    )
    assert latest == [("download", t("10:00:30"), 5, 0, 0, 5), ("echo", t("10:03:00"), 20, 5, 1, 25)]
    trend = query(
        seeded,
        "SELECT backlog, drained, drained_per_min FROM v_queue_backlog_trend WHERE pipeline = 'echo'"
        " ORDER BY sampled_at",
    )
    # 110 -> 80 in 1 min, then 80 -> 25 in 2 min
    assert trend == [(110, None, None), (80, 30, Decimal("30.00")), (25, 55, Decimal("27.50"))]


def test_summary_rate_eta_alive_and_banned(seeded):
    s, config = seeded, MonitorSettings(rate_window_min=2.0, alive_window_min=2.0)
    echo = job_queue(s, "echo")
    echo.send_json({"job_id": f"q{i}"} for i in range(6))
    taken = echo.receive(2, wait_s=1, visibility_s=300)  # two jobs "in flight"
    assert len(taken) == 2
    dead_letter_queue(echo).send(["dead-1", "dead-2", "dead-3"])
    job_queue(s, "hydrophone").send_json([{"url": "http://archive.test/a.mseed"}] * 2)

    snap = summary(s, record=True, now=t("10:03:30"), config=config)
    p = snap["pipelines"]
    # window (10:01:30, 10:03:30]: echo has one row (10:02:00), covering 1.5 min
    assert p["echo"]["queue"] == {"visible": 4, "in_flight": 2, "delayed": 0}
    assert p["echo"]["dlq"] == 3 and p["echo"]["backlog"] == 6
    assert p["echo"]["jobs_per_min"] == pytest.approx(1 / 1.5, abs=1e-3)
    assert p["echo"]["eta_s"] == pytest.approx(6 / (1 / 1.5) * 60)  # 540 s
    # download: one row at 10:03:00 (0.5 min ago, counted as one minute); the
    # 10:05:00 row lies after "now" and is ignored
    assert p["download"]["rate_per_min"] == pytest.approx(1.0)
    assert p["download"]["eta_s"] == 0.0  # nothing queued
    # spectrogram: two rows (10:02:00 and 10:02:30), two tracks, over 1.5 min
    assert p["spectrogram"]["rate_per_min"] == pytest.approx(2 / 1.5, abs=1e-3)
    assert p["spectrogram"]["jobs_per_min"] == pytest.approx(2 / 1.5, abs=1e-3)
    assert p["hydrophone"]["backlog"] == 2 and p["hydrophone"]["eta_s"] is None  # stalled
    assert (p["echo"]["done"], p["echo"]["failed"], p["echo"]["skipped"], p["echo"]["banned"]) == (4, 2, 1, 0)
    assert (p["download"]["done"], p["download"]["failed"], p["download"]["banned"]) == (3, 3, 1)
    assert p["echo"]["instances_alive"] == ["i-b"]
    assert p["download"]["instances_alive"] == ["i-d"]
    assert p["spectrogram"]["instances_alive"] == ["i-f"]
    assert p["download"]["instances_banned"] == ["i-c"]
    assert snap["instances"] == {"alive": ["i-b", "i-d", "i-f"], "banned": ["i-c"]}

    # record=True appended one sample per pipeline with the same figures
    sampled = dict(
        (r[0], r[1:]) for r in query(
            s,
            "SELECT pipeline, visible, in_flight, dlq FROM queue_depth_history"
            " WHERE sampled_at > now() - interval '1 minute'",
        )
    )
    assert sampled == {
        name: (v["queue"]["visible"], v["queue"]["in_flight"], v["dlq"]) for name, v in p.items()
    }
    assert sampled["echo"] == (4, 2, 3)
    assert isinstance(dt.datetime.strptime(snap["generated_at"], "%Y-%m-%d %H:%M:%S"), dt.datetime)


def test_cookbook_queries_all_run(seeded):
    """Every query in docs/monitoring.sql runs against the real schema."""
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "monitoring.sql").read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    statements = [s.strip() for s in code.split(";") if s.strip()]
    assert len(statements) >= 20
    for sql in statements:
        query(seeded, sql)  # raises on any error
    # spot-check one cookbook answer against the seeded history
    funnel = query(seeded, next(s for s in statements if "AS with_spectrograms" in s))
    assert funnel == [(0, 0, 3, 2)]
