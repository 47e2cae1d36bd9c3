"""The consumer runtime against the real moto server and Postgres: crashes,
retries into the DLQ, heartbeats, graceful shutdown."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading

import pytest

from helpers import count, query, wait_for
from specfleet.local.stack import Namespace
from specfleet.pipelines import get_spec, job_queue
from specfleet.queues import dead_letter_queue
from specfleet.runtime import Heartbeat, Metrics, Worker


def spawn_worker(ns: Namespace, instance_id: str, **env: str) -> subprocess.Popen[bytes]:
    full_env = {
        **os.environ,
        **ns.env(),
        "SPECFLEET_INSTANCE_ID": instance_id,
        "SPECFLEET_WAIT_TIME_S": "1",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "specfleet.cli.main", "work", "echo", "--concurrency", "4"],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_job_survives_worker_killed_mid_job(namespace: Namespace):
    s = namespace.settings
    q = job_queue(s, "echo")
    ids = [f"k{i}" for i in range(4)]
    q.send_json({"job_id": j, "sleep_s": 2.0} for j in ids)
    victim = spawn_worker(namespace, "victim", SPECFLEET_VISIBILITY_TIMEOUT_S="3")
    try:
        wait_for(lambda: q.depth()["in_flight"] == 4, timeout=60, what="the victim to take all 4 jobs")
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    assert count(s, "status_echo") == 0, "killed before any job finished"

    survivor = Worker(s.model_copy(update={"visibility_timeout_s": 3, "instance_id": "survivor"}),
                      get_spec("echo"), concurrency=4, idle_exit_s=8)
    assert survivor.run() == 0
    wait_for(lambda: count(s, "status_echo") >= 4, what="4 status rows")
    rows = query(s, "SELECT job_id, instance_id, stat FROM status_echo ORDER BY job_id")
    assert rows == [(j, "survivor", 1) for j in ids]  # each job done once, by the survivor
    assert q.depth() == {"visible": 0, "in_flight": 0, "delayed": 0}
    assert dead_letter_queue(q).depth()["visible"] == 0


def test_always_failing_job_lands_in_dlq(stack):
    ns = Namespace(stack, wait_time_s=1, visibility_timeout_s=30, max_receives=2)
    try:
        s = ns.settings
        q = job_queue(s, "echo")
        q.send_json([{"job_id": "doomed", "fail": True}, {"job_id": "fine"}])
        worker = Worker(s, get_spec("echo"), concurrency=2, idle_exit_s=6)
        worker.run()
        dlq = dead_letter_queue(q)
        wait_for(lambda: dlq.depth()["visible"] == 1, timeout=20, what="the failing job in the DLQ")
        assert worker.metrics()["retry"] == 1 and worker.metrics()["dead"] == 1
        [msg] = dlq.receive(1, wait_s=1)
        assert '"doomed"' in msg.body
        wait_for(lambda: count(s, "status_echo") == 2, what="2 status rows")
        [(stat, reason)] = query(s, "SELECT stat, reason FROM status_echo WHERE job_id = 'doomed'")
        assert stat == 0 and "gave up after 2 attempts" in reason
        assert query(s, "SELECT stat FROM status_echo WHERE job_id = 'fine'") == [(1,)]
    finally:
        ns.close()


def test_heartbeat_keeps_long_job_invisible(namespace: Namespace):
    s = namespace.settings.model_copy(update={"visibility_timeout_s": 2})
    q = job_queue(s, "echo")
    q.send_json([{"job_id": "long", "sleep_s": 7.0}])
    heartbeats = [Heartbeat(2, interval_s=0.5), Heartbeat(2, interval_s=0.5)]
    metrics = [Metrics(), Metrics()]
    workers = [
        Worker(s.model_copy(update={"instance_id": f"w{i}"}), get_spec("echo"), concurrency=1, idle_exit_s=4,
               middleware=[heartbeats[i], metrics[i]])
        for i in range(2)
    ]
    threads = [threading.Thread(target=w.run) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # 7 s of work under a 2 s visibility timeout: without the heartbeat the
    # other worker would have received it too.
    assert sum(m.outcomes["done"] for m in metrics) == 1
    assert sum(h.beats for h in heartbeats) >= 8
    wait_for(lambda: count(s, "status_echo") == 1, what="one status row")
    assert count(s, "status_echo") == 1


def test_sigterm_hands_in_flight_jobs_back_at_once(namespace: Namespace):
    s = namespace.settings
    q = job_queue(s, "echo")
    q.send_json([{"job_id": "held", "sleep_s": 120.0}])
    proc = spawn_worker(namespace, "term", SPECFLEET_VISIBILITY_TIMEOUT_S="300")
    wait_for(lambda: q.depth()["in_flight"] == 1, timeout=60, what="the worker to take the job")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    # With a 300 s visibility timeout the job could only be visible now if
    # the worker handed it back.
    got = q.receive(1, wait_s=2)
    assert len(got) == 1 and '"held"' in got[0].body
    assert got[0].receive_count == 2
    assert count(s, "status_echo") == 0


@pytest.mark.slow
@pytest.mark.parametrize(("queue_count", "setting"), [(2, 4), (4, 2)], ids=["queue-lower", "queue-higher"])
def test_the_queue_s_redrive_count_decides_when_a_job_is_dead(stack, caplog, queue_count, setting):
    # The queue dead-letters after ``queue_count`` receives; the worker's setting says otherwise.
    ns = Namespace(stack, wait_time_s=1, visibility_timeout_s=30, max_receives=queue_count)
    try:
        s = ns.settings.model_copy(update={"max_receives": setting})
        q = job_queue(s, "echo")
        assert q.max_receive_count() == queue_count
        doomed = ["doomed1", "doomed2", "doomed3"]
        q.send_json([*({"job_id": j, "fail": True} for j in doomed), {"job_id": "fine"}])
        # Idle longer than the longest retry delay (2 ** (queue_count - 1) s), so
        # the worker is still there when each job comes back.
        worker = Worker(s, get_spec("echo"), concurrency=4, idle_exit_s=2 ** queue_count + 4)
        with caplog.at_level(logging.WARNING, logger="specfleet.runtime"):
            worker.run()
        assert worker.policy.max_receives == queue_count
        assert any(f"{q.name} dead-letters a job after {queue_count} receives" in r.getMessage()
                   and f"not {setting}" in r.getMessage() for r in caplog.records)
        dlq = dead_letter_queue(q)
        wait_for(lambda: dlq.depth()["visible"] == len(doomed), timeout=30, what="every failing job in the DLQ")
        assert sorted(m.body for m in dlq.receive(10, wait_s=1, visibility_s=30)) == sorted(
            f'{{"job_id":"{j}","fail":true}}' for j in doomed)
        # Every dead job has its one failed row in Postgres, written when SQS was
        # about to dead-letter it (after the queue's count, not the setting's).
        wait_for(lambda: count(s, "status_echo") == len(doomed) + 1, what="a status row per job")
        rows = query(s, "SELECT job_id, stat, reason FROM status_echo ORDER BY job_id")
        assert [(j, stat) for j, stat, _ in rows] == [*((j, 0) for j in doomed), ("fine", 1)]
        assert all(f"gave up after {queue_count} attempts" in reason for _, stat, reason in rows if stat == 0)
        assert worker.metrics()["dead"] == len(doomed)
        assert worker.metrics()["retry"] == len(doomed) * (queue_count - 1)
    finally:
        ns.close()
