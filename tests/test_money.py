"""Nothing that costs money starts without the user seeing what it costs:
`fleet launch` shows the plan for the waiting jobs and asks first."""

from __future__ import annotations

from typer.testing import CliRunner

from specfleet.cli.main import app
from specfleet.fleet import instances
from specfleet.pipelines import job_queue
from specfleet.settings import Settings


def _env(s: Settings) -> dict[str, str]:
    return {"SPECFLEET_ENDPOINT_URL": s.endpoint_url or "", "SPECFLEET_QUEUE_PREFIX": s.queue_prefix,
            "SPECFLEET_REGION": s.region, "COLUMNS": "120"}


def _live(s: Settings) -> int:
    return len(instances.list_instances(s, "echo", states=instances.LIVE_STATES))


def test_launch_shows_the_plan_and_starts_nothing_when_declined(settings: Settings) -> None:
    job_queue(settings, "echo").send_json({"job_id": f"m{i}"} for i in range(40))
    runner = CliRunner(env=_env(settings))
    declined = runner.invoke(app, ["fleet", "launch", "--pipeline", "echo", "--count", "3"], input="n\n")
    assert declined.exit_code == 1, declined.output
    out = declined.output
    assert "3 x " in out and "40 echo jobs waiting" in out  # the plan is for this backlog on 3 instances
    for line in ("compute spot ($)", "S3 PUTs ($)", "results out of AWS", "fixed costs", "total, spot ($)"):
        assert line in out, line
    assert "start 3 echo instance(s)?" in out and "nothing started" in out
    assert _live(settings) == 0

    accepted = runner.invoke(app, ["fleet", "launch", "--pipeline", "echo", "--count", "2"], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "launched 2 echo workers" in accepted.output
    assert _live(settings) == 2


def test_launch_yes_skips_the_question_for_scripts(settings: Settings) -> None:
    result = CliRunner(env=_env(settings)).invoke(app, ["fleet", "launch", "--pipeline", "echo", "--yes"], input="")
    assert result.exit_code == 0, result.output
    assert "?" not in result.output and "launched 1 echo workers" in result.output
    assert _live(settings) == 1
