"""notebooks/feed_and_watch.ipynb runs top to bottom with nbclient against
the embedded stack; its target comes from the namespace's environment."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from helpers import count, wait_for
from specfleet.pipelines import job_queue

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "feed_and_watch.ipynb"


def test_feed_and_watch_notebook_runs(namespace, settings, monkeypatch):
    for key, value in namespace.env().items():
        monkeypatch.setenv(key, value)  # the kernel inherits this environment
    monkeypatch.setenv("FEED_JOBS", "16")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent.parent)}}
    )
    client.execute()

    outputs = "".join(
        o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    )
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert f"queue: {job_queue(settings, 'echo').name}" in outputs  # it used our namespace, not a default
    assert "sent 16 jobs" in outputs
    assert "done= 16" in outputs  # the watch loop saw the work finish
    # the jobs really flowed through the stack into this namespace's Postgres
    wait_for(lambda: count(settings, "status_echo", "stat = 1 AND job_id LIKE 'nb-%%'") == 16, what="16 rows")
    # watch() records one sample per refresh; a fast run may finish before the second
    assert count(settings, "queue_depth_history", "pipeline = 'echo'") >= 1
