"""One renderer for every data command (issue 25): a table by default, one
JSON document with ``--output json`` (``--json`` the same), never both;
and the settings resolved once per command line.

Commands that need AWS run against the embedded stack; ``fleet plan`` needs
none. Both a pipe (as a script reads it) and a pseudo-terminal (as a person
sees it) are checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from specfleet.cli import context
from specfleet.cli.main import app
from specfleet.fleet.plan import plan
from specfleet.fleet.settings import FleetSettings
from specfleet.pipelines import job_queue, status_queue
from specfleet.queues import dead_letter_queue
from test_demo import run_in_terminal

PLAN = ["fleet", "plan", "--pipeline", "hydrophone", "--jobs", "500", "--read-out", "0"]
#: What only a rich table draws.
TABLE_CHARS = ("┏", "┃", "└")


def _json_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith(("{", "["))]


def _specfleet(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "specfleet.cli.main", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def _offline_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "SPECFLEET_"))}
    # Nothing to reach: fleet plan reads files only; a closed loopback port keeps it on this machine.
    return {**env, "SPECFLEET_HOME": str(tmp_path / "home"), "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "COLUMNS": "120"}


@pytest.mark.slow  # subprocesses / the stack: a few seconds
def test_fleet_plan_prints_a_table_or_one_json_document_never_both(tmp_path: Path) -> None:
    env = _offline_env(tmp_path)
    as_json = _specfleet(*PLAN, "--output", "json", env=env, cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)  # the whole of stdout is one document
    assert len(as_json.stdout.strip().splitlines()) == 1
    assert data == plan(FleetSettings(), "hydrophone", 500, read_out=0.0).model_dump(mode="json")
    assert not any(c in as_json.stdout + as_json.stderr for c in TABLE_CHARS)

    alias = _specfleet(*PLAN, "--json", env=env, cwd=tmp_path)
    assert alias.returncode == 0, alias.stderr
    assert alias.stdout == as_json.stdout

    table = _specfleet(*PLAN, env=env, cwd=tmp_path)  # a pipe: not a terminal
    assert table.returncode == 0, table.stderr
    assert _json_lines(table.stdout + table.stderr) == []
    assert "total, spot ($)" in table.stdout and str(data["total_spot_usd"]) in table.stdout
    assert "plan: 500 hydrophone jobs on " + data["instance_type"] in table.stdout

    upper = _specfleet(*PLAN, "--output", "JSON", env=env, cwd=tmp_path)
    assert upper.returncode == 0 and json.loads(upper.stdout) == data
    bad = _specfleet(*PLAN, "--output", "yaml", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "yaml" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow  # subprocesses / the stack: a few seconds
def test_on_a_terminal_the_default_is_the_table_and_json_is_only_json(tmp_path: Path) -> None:
    env = _offline_env(tmp_path)
    code, screen = run_in_terminal([sys.executable, "-m", "specfleet.cli.main", *PLAN], cwd=tmp_path, env=env,
                                   timeout=120)
    assert code == 0, screen
    assert "total, on-demand ($)" in screen and any(c in screen for c in TABLE_CHARS)
    assert _json_lines(screen) == [], screen  # the old `fleet plan` printed its JSON under the table

    code, screen = run_in_terminal([sys.executable, "-m", "specfleet.cli.main", *PLAN, "--json"], cwd=tmp_path,
                                   env=env, timeout=120)
    assert code == 0, screen
    assert not any(c in screen for c in TABLE_CHARS), screen
    [line] = _json_lines(screen)
    assert json.loads(line)["jobs"] == 500


def _cli(namespace: Any, *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={**namespace.env(), "COLUMNS": "200"})


def _both_ways(namespace: Any, *args: str, moving: Callable[[Any], Any] = lambda d: d,
               drawn: bool = True) -> tuple[Any, Any]:
    """The command's JSON (checked to be the whole of stdout, equal under
    both spellings but for what ``moving`` takes out) and its default output
    (checked to hold no JSON; a table unless ``drawn`` is False: a line)."""
    long = _cli(namespace, *args, "--output", "json")
    assert long.exit_code == 0, long.output
    short = _cli(namespace, *args, "--json")
    assert short.exit_code == 0, short.output
    data = json.loads(long.stdout)
    assert moving(json.loads(short.stdout)) == moving(data)
    assert not any(c in long.stdout for c in TABLE_CHARS)
    table = _cli(namespace, *args)
    assert table.exit_code == 0, table.output
    assert _json_lines(table.stdout) == [] and any(c in table.stdout for c in TABLE_CHARS) == drawn, table.stdout
    return data, table.stdout


@pytest.mark.slow  # subprocesses / the stack: a few seconds
def test_dlq_list_and_show_on_the_embedded_stack(namespace: Any, settings: Any) -> None:
    q = job_queue(settings, "echo")
    dlq = dead_letter_queue(q)
    dlq.send(["poison", '{"job_id": "dead-1"}'])

    waiting, shown = _both_ways(namespace, "dlq", "list")
    assert waiting[dlq.name] == 2 and len(waiting) == 2 * 5  # a job and a status DLQ per pipeline
    assert dlq.name in shown

    def receives_aside(d: Any) -> Any:  # each peek is a receive: the count goes up
        return {**d, "messages": sorted((m["message_id"], m["body"]) for m in d["messages"])}

    peeked, shown = _both_ways(namespace, "dlq", "show", "echo", "--limit", "5", moving=receives_aside)
    assert peeked["queue"] == dlq.name
    assert sorted(m["body"] for m in peeked["messages"]) == ["poison", '{"job_id": "dead-1"}']
    assert all(m["receives"] >= 1 and m["message_id"] for m in peeked["messages"])
    assert "poison" in shown and f"{dlq.name}: 2 message(s) shown" in shown
    assert dlq.depth()["visible"] + dlq.depth()["in_flight"] == 2  # a peek leaves them there


def test_status_on_the_embedded_stack(namespace: Any, settings: Any) -> None:
    job_queue(settings, "echo").send_json({"job_id": f"s{i}"} for i in range(3))
    data, shown = _both_ways(namespace, "status", "--no-record", "--pipeline", "echo",
                             moving=lambda d: {k: v for k, v in d.items() if k != "generated_at"})
    assert data["pipelines"]["echo"]["queue"]["visible"] == 3
    assert "echo" in shown


@pytest.mark.slow  # subprocesses / the stack: a few seconds
def test_status_without_a_database_is_queue_depths_in_either_form(namespace: Any, settings: Any) -> None:
    job_queue(settings, "echo").send_json({"job_id": f"q{i}"} for i in range(2))
    env = {**namespace.env(), "SPECFLEET_DB_DSN": "postgresql://postgres@127.0.0.1:9/none", "COLUMNS": "200"}
    long = CliRunner().invoke(app, ["status", "--output", "json"], env=env)
    assert long.exit_code == 0, long.output
    data = json.loads(long.stdout)
    assert data["database"].startswith("unreachable") and data["queues"]["echo"]["visible"] == 2
    table = CliRunner().invoke(app, ["status"], env=env)
    assert table.exit_code == 0, table.output
    assert "queue depths (no database)" in table.stdout and _json_lines(table.stdout) == []


def test_settings_are_resolved_once_per_command_line(namespace: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    resolve = context.resolve_base

    def counted(*, check_endpoint: bool = True) -> Any:
        calls.append(check_endpoint)
        return resolve(check_endpoint=check_endpoint)

    monkeypatch.setattr(context, "resolve_base", counted)
    # dlq show: the source queue, then its DLQ, then the peek; one resolution.
    result = _cli(namespace, "dlq", "show", "echo", "--json")
    assert result.exit_code == 0, result.output
    assert calls == [True]
    # Each command line has its own: a second invocation resolves again (the environment may differ).
    result = _cli(namespace, "dlq", "list", "--json")
    assert result.exit_code == 0, result.output
    assert calls == [True, True]

    inv = context.Invocation()
    assert inv.settings() is inv.settings() and inv.fleet_settings() is inv.fleet_settings()
    assert len(calls) == 3


def test_no_command_module_imports_back_into_main() -> None:
    cli = Path(context.__file__).parent
    offenders = [p.name for p in cli.glob("*.py") if "from .main import" in p.read_text()]
    assert offenders == []


def test_the_demo_summary_keeps_its_contract_as_json_and_draws_the_table_otherwise(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from specfleet.cli.demo import DemoResult, _demo_view
    from specfleet.cli.output import OutputFormat, render

    counts = {"jobs": 5, "ok": 4, "failed": 1, "skipped": 0, "objects": 164, "status_rows": 5, "lost": 0}
    summary = {"pipelines": {"hydrophone": counts, "search": {**counts, "objects": 0}}, "report": "demo/report.html"}
    result = DemoResult.model_validate(summary)
    render(result, _demo_view, OutputFormat.json)
    assert json.loads(capsys.readouterr().out) == summary  # SPEC's shape, key for key
    render(result, _demo_view, as_json=True)
    assert json.loads(capsys.readouterr().out) == summary
    render(result, _demo_view)
    shown = capsys.readouterr().out
    assert [line.split("│")[1].strip() for line in shown.splitlines() if line.startswith("│")] == ["hydrophone", "search"]
    assert _json_lines(shown) == []
    with pytest.raises(ValueError, match="lost"):
        DemoResult.model_validate({"pipelines": {"echo": {k: v for k, v in counts.items() if k != "lost"}},
                                   "report": "r.html"})


@pytest.mark.slow  # launches an instance on moto
def test_fleet_ls_on_the_embedded_stack(namespace: Any, settings: Any) -> None:
    from specfleet.fleet import instances

    s = FleetSettings.over(settings, fleet_spot=False)
    [launched] = instances.launch(s, "echo", 1)
    try:
        listed, shown = _both_ways(namespace, "fleet", "ls", "--pipeline", "echo")
        assert [(i["instance_id"], i["pipeline"]) for i in listed] == [(launched, "echo")]
        assert launched in shown and "specfleet workers" in shown
    finally:
        instances.stop(s, "echo")


def _one_document(result: Any) -> Any:
    """The whole of a command's stdout as its one JSON document (no table, no other line)."""
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 1 and not any(c in result.stdout for c in TABLE_CHARS)
    return json.loads(result.stdout)


def test_dlq_redrive_says_how_many_moved_in_either_form(namespace: Any, settings: Any) -> None:
    q = job_queue(settings, "echo")
    dlq = dead_letter_queue(q)
    dlq.send(["a", "b", "c"])
    # Each run moves what is there: the first moves all three, the next ones none.
    moved, shown = _both_ways(namespace, "dlq", "redrive", "echo", "--yes",
                              moving=lambda d: {k: v for k, v in d.items() if k != "moved"}, drawn=False)
    assert moved == {"dlq": dlq.name, "queue": q.name, "moved": 3}
    assert shown.strip() == f"moved 0 messages back to {q.name}"
    assert q.depth()["visible"] == 3 and dlq.depth()["visible"] == 0


@pytest.mark.slow  # a subprocess: CliRunner echoes typed input into stdout, a real pipe does not
def test_dlq_redrive_asks_on_stderr_so_json_stays_one_document(namespace: Any, settings: Any,
                                                               tmp_path: Path) -> None:
    dead_letter_queue(job_queue(settings, "echo")).send(["x"])
    result = subprocess.run([sys.executable, "-m", "specfleet.cli.main", "dlq", "redrive", "echo", "--json"],
                            input="y\n", env={**os.environ, **namespace.env()}, cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1 and json.loads(result.stdout)["moved"] == 1
    assert "move all messages" in result.stderr


def test_dlq_purge_prints_its_line_or_one_json_document(namespace: Any, settings: Any) -> None:
    # SQS allows one purge per queue a minute: each form purges a queue of its own.
    jobs_dlq = dead_letter_queue(job_queue(settings, "echo"))
    statuses_dlq = dead_letter_queue(status_queue(settings, "echo"))
    other_dlq = dead_letter_queue(job_queue(settings, "hydrophone"))
    for dlq in (jobs_dlq, statuses_dlq, other_dlq):
        dlq.send(["p1", "p2"])
    long = _one_document(_cli(namespace, "dlq", "purge", "echo", "--yes", "--output", "json"))
    assert long == {"dlq": jobs_dlq.name, "messages": 2}
    short = _one_document(_cli(namespace, "dlq", "purge", "echo", "--status", "--yes", "--json"))
    assert short == {"dlq": statuses_dlq.name, "messages": 2}
    line = _cli(namespace, "dlq", "purge", "hydrophone", "--yes")
    assert line.exit_code == 0, line.output
    assert line.stdout.strip() == f"purged {other_dlq.name} (2 messages)" and _json_lines(line.stdout) == []


def test_produce_echo_says_what_it_enqueued_in_either_form(namespace: Any, settings: Any) -> None:
    q = job_queue(settings, "echo")
    enqueued, shown = _both_ways(namespace, "produce", "echo", "--count", "3", drawn=False)
    assert enqueued == {"queue": q.name, "jobs": 3}
    assert shown.strip() == f"enqueued 3 echo jobs on {q.name}"
    assert q.depth()["visible"] == 9  # three runs, three jobs each


def test_catalog_queries_says_what_it_wrote_in_either_form(namespace: Any, tmp_path: Path) -> None:
    out = tmp_path / "queries.csv"
    written, shown = _both_ways(namespace, "catalog", "queries", "--out", str(out), drawn=False)
    assert written == {"out": str(out), "queries": 0}  # an empty catalog: the header only
    assert out.read_text().splitlines()[0].startswith("track_id,query")
    assert shown.strip() == f"wrote 0 queries to {out} (feed it to `specfleet produce search`)"


@pytest.mark.slow  # three reports (matplotlib): a few seconds
def test_report_names_the_file_in_either_form(namespace: Any, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    # Each run samples the queues again, so the size moves: the last run's JSON is checked against the file.
    written, shown = _both_ways(namespace, "report", str(out), moving=lambda d: d["path"], drawn=False)
    assert written["path"] == str(out) and written["bytes"] > 1000
    assert shown.strip().startswith(f"report written: {out} (") and shown.strip().endswith(" MB)")
    assert _one_document(_cli(namespace, "report", str(out), "--json")) == {"path": str(out),
                                                                              "bytes": out.stat().st_size}


def test_local_init_says_what_it_provisioned_in_either_form(namespace: Any, settings: Any) -> None:
    made, shown = _both_ways(namespace, "local", "init", drawn=False)  # provisioning again changes nothing
    assert made == {"queue_prefix": settings.queue_prefix, "bucket": settings.bucket, "topic": settings.topic()}
    assert shown.strip() == (f"provisioned: queues {settings.queue_prefix}*, bucket {settings.bucket}, "
                             f"topic {settings.topic()}, tables")


def test_local_down_with_nothing_running_in_either_form(namespace: Any, tmp_path: Path) -> None:
    empty = tmp_path / "no-stack"
    said, shown = _both_ways(namespace, "local", "down", "--dir", str(empty), drawn=False)
    assert said == {"dir": str(empty.resolve()), "stopped": False}
    assert shown.strip() == f"no local stack was running (looked in {empty.resolve()})"


#: Streams and servers: they print as they go (or shell ``export`` lines) and have no result to render.
STREAMS = {"work", "logs", "dashboard", "local up", "local env", "local poll", "local ooi-archive", "fleet emulate",
           "catalog fake-sources"}


def test_every_command_but_the_streams_takes_output_json() -> None:
    import typer

    def leaves(command: Any, path: tuple[str, ...] = ()) -> dict[str, Any]:
        subs = getattr(command, "commands", None)
        if not subs:
            return {" ".join(path): command}
        return {k: v for name, sub in subs.items() for k, v in leaves(sub, (*path, name)).items()}

    commands = leaves(typer.main.get_command(app))
    without = {name for name, c in commands.items()
               if not {"--output", "--json"} <= {opt for param in c.params for opt in param.opts}}
    assert without == STREAMS
    assert len(commands) > len(STREAMS) + 30  # the walk reached the whole tree
