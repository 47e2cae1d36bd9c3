from helpers import count, wait_for
from specfleet.pipelines import get_spec, job_queue
from specfleet.runtime import Worker


def test_echo_jobs_flow_to_postgres(settings):
    job_queue(settings, "echo").send_json({"job_id": f"j{i}"} for i in range(12))
    worker = Worker(settings, get_spec("echo"), concurrency=4, idle_exit_s=1)
    assert worker.run() == 0
    assert worker.metrics()["done"] == 12
    wait_for(lambda: count(settings, "status_echo") == 12, what="12 status rows")
    assert count(settings, "status_echo", "stat = 1") == 12
