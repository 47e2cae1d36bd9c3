"""A sixth pipeline, defined in one package (tests/plugins/specfleet_sixth:
spec, models, handler, its migration, its distribution metadata), gets
queues, CLI ``produce``/``work``, a demo step, user-data, a template section
and status rows without any file of specfleet naming it (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import query, wait_for
from specfleet import pipelines
from specfleet.local.stack import Namespace
from specfleet.queues import dead_letter_queue

PLUGINS = Path(__file__).resolve().parent / "plugins"


@pytest.fixture
def sixth() -> Iterator[None]:
    """The plugin's distribution on the path (as pip would install it)."""
    sys.path.insert(0, str(PLUGINS))
    pipelines.specs.cache_clear()
    try:
        yield
    finally:
        sys.path.remove(str(PLUGINS))
        for name in [m for m in sys.modules if m.startswith("specfleet_sixth")]:
            del sys.modules[name]
        pipelines.specs.cache_clear()


def test_the_registry_finds_the_plugin_only_when_it_is_installed(sixth):
    assert pipelines.names()[-1] == "sixth"
    spec = pipelines.get_spec("sixth")
    assert (spec.job_queue, spec.status_queue, spec.status_model.table) == ("jobs_sixth", "status_sixth", "status_sixth")


def test_without_the_plugin_there_are_five_pipelines():
    assert pipelines.names() == ["echo", "hydrophone", "search", "download", "spectrogram"]


def _env(ns: Namespace) -> dict[str, str]:
    return {**os.environ, **ns.env(), "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")]),
            "SPECFLEET_WAIT_TIME_S": "1", "SPECFLEET_INSTANCE_ID": "sixth-worker"}


def test_queues_cli_worker_and_status_rows(sixth, stack):
    ns = Namespace(stack, wait_time_s=1)  # provisioned after the plugin is installed
    try:
        q = pipelines.job_queue(ns.settings, "sixth")
        assert q.depth() == {"visible": 0, "in_flight": 0, "delayed": 0}  # the queue exists
        assert dead_letter_queue(q).depth()["visible"] == 0  # and its DLQ
        cli = [sys.executable, "-m", "specfleet.cli.main"]
        produced = subprocess.run([*cli, "produce", "sixth", "hello world", "a b c"], env=_env(ns),
                                  capture_output=True, text=True, timeout=120)
        assert produced.returncode == 0, produced.stderr
        worked = subprocess.run([*cli, "work", "sixth", "--idle-exit", "2"], env=_env(ns),
                                capture_output=True, text=True, timeout=120)
        assert worked.returncode == 0, worked.stderr
        wait_for(lambda: len(query(ns.settings, "SELECT 1 FROM status_sixth")) == 2, what="two status rows")
        rows = query(ns.settings, "SELECT text, words, stat, instance_id FROM status_sixth ORDER BY text")
        assert rows == [("a b c", 3, 1, "sixth-worker"), ("hello world", 2, 1, "sixth-worker")]
        # The monitoring views see it too: status_all is rebuilt from the registry.
        assert query(ns.settings, "SELECT job_key FROM status_all WHERE pipeline = 'sixth' ORDER BY 1") == [
            ("a b c",), ("hello world",)]
    finally:
        ns.close()


def test_user_data_for_the_plugin(sixth):
    from specfleet.fleet import userdata

    script = userdata.render("sixth", {"SPECFLEET_REGION": "us-east-1"}, log_group="/specfleet/s/sixth")
    assert userdata.parse(script, "i-1").argv == ["specfleet", "work", "sixth"]


@pytest.mark.slow  # fast lane: over ~2 s (the full suite runs it)
def test_template_section_for_the_plugin(sixth, tmp_path):
    from specfleet.fleet import deploy, template

    document, _ = template.build(template.defaults())
    resources = document["Resources"]
    ours = {"JobsSixthQueue", "JobsSixthDlq", "StatusSixthQueue", "StatusSixthDlq", "StatusSixthTrigger",
            "SixthLogGroup", "SixthLaunchTemplate", "SixthGroup", "SixthBacklogPolicy", "SixthScaleFromZeroPolicy",
            "SixthScaleFromZeroAlarm"}
    assert ours <= set(resources)
    # its target comes from its own FleetProfile figure: 1 job/s x 300 s to drain
    assert resources["SixthBacklogPolicy"]["Properties"]["TargetTrackingConfiguration"]["TargetValue"] == 300
    # the roles cover its queues and log group; the writer's trigger reads its status queue
    worker = str(resources["WorkerRole"])
    assert "JobsSixthQueue.Arn" in worker and "StatusSixthQueue.Arn" in worker and "SixthLogGroup.Arn" in worker
    assert "StatusSixthQueue.Arn" in str(resources["WriterRole"])
    user_data = resources["SixthLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    assert "# specfleet work sixth" in user_data
    # the whole render still lints clean, and elasticmq.conf gets its queues
    path = tmp_path / "template.yaml"
    path.write_text(template.render(template.defaults()))
    assert deploy.validate(path) == []
    assert 'deadLettersQueue { name = "jobs_sixth_dlq"' in template.render_elasticmq(template.defaults())
    # the committed template (rendered without the plugin) has none of it
    assert "Sixth" not in deploy.TEMPLATE.read_text()


@pytest.mark.slow
def test_demo_step(sixth, tmp_path):
    from specfleet.demo import run_demo

    result = run_demo(tmp_path / "demo", only=["sixth"])
    assert result["pipelines"]["sixth"] == {
        "jobs": 3, "ok": 3, "failed": 0, "skipped": 0, "objects": 0, "status_rows": 3, "lost": 0}
    assert json.dumps(result)  # the contract JSON
