"""No pipeline can lose its status row to a field value (issue 14, item 4):
one guard where status messages are built, for every pipeline."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from helpers import count, query, wait_for
from specfleet.pipelines import get_spec, job_queue, names, specs
from specfleet.queues import Message, dead_letter_queue
from specfleet.runtime import JobContext, StatusSender, Worker
from specfleet.settings import Settings
from specfleet.status import Stat, sqs_clean

STATUS_MODELS = {spec.name: spec.status_model for spec in specs()}

#: Any text at all, framing characters included.
hostile_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@pytest.mark.parametrize("pipeline", sorted(STATUS_MODELS))
@hsettings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_field_values_still_make_a_sendable_status_message(pipeline: str, data):
    model = STATUS_MODELS[pipeline]
    values = {}
    for name, info in model.model_fields.items():
        if name in ("stat", "date"):
            continue
        values[name] = data.draw(hostile_text if info.annotation is str else st.integers(0, 1000), label=name)
    record = model(stat=Stat.DONE, **values)
    out = StatusSender(Settings(), get_spec(pipeline)).message(record, reason="why")
    decoded = model.decode(out.body)  # the writer can read it: right count, right types
    for name, value in values.items():
        got = getattr(decoded, name)
        # kept, cleaned of what SQS refuses, or (breaking the framing) replaced
        assert got in (value, sqs_clean(value) if isinstance(value, str) else value, model.PLACEHOLDER)
        if got != value:
            assert f"status field {name}" in out.attributes["reason"]
    assert out.attributes["reason"].endswith("why")
    assert all(sqs_clean(text) == text for text in (out.body, *out.attributes.values())), "only what SQS accepts"


@pytest.mark.parametrize("pipeline", names())
def test_every_pipeline_phrases_an_unreadable_job_as_a_sendable_status(pipeline: str):
    spec = get_spec(pipeline)
    message = Message("m-1", "rh", '{"garbage": "::\\n"}')
    ctx = JobContext(Settings(), message, "i-1", StatusSender(Settings(), get_spec(pipeline)), threading.Event())
    for stat in (Stat.FAILED, Stat.SKIPPED, Stat.BANNED):
        record = spec.failure_status(None, ctx, stat)
        assert STATUS_MODELS[pipeline].decode(ctx.sender.message(record).body).stat == stat


def test_hydrophone_url_ending_in_a_colon_gets_its_row_once_and_leaves_the_queue(settings):
    """The issue's case: today the job is done 5 times and drifts to the DLQ."""
    bad_url = "https://rawdata.oceanobservatories.org/files/x/OO-HYVM1--YDH-2017-10-09T00:00:00.000000.mseed:"
    queue = job_queue(settings, "hydrophone")
    queue.send_json([{"file_url": bad_url}])
    worker = Worker(settings, get_spec("hydrophone"), idle_exit_s=2)
    assert worker.run() == 0
    assert worker.metrics()["rejected"] == 1
    wait_for(lambda: count(settings, "status_hydro") == 1, what="the status row")
    [(stat, url, reason)] = query(settings, "SELECT stat, file_url, reason FROM status_hydro")
    assert (stat, url) == (0, "invalid") and "may not end with ':'" in reason
    assert queue.depth() == {"visible": 0, "in_flight": 0, "delayed": 0}
    assert dead_letter_queue(queue).depth()["visible"] == 0
