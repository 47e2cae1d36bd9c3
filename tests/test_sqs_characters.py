"""SQS's character rules (issue 24): the embedded stack refuses what AWS
refuses (``InvalidMessageContents``: anything outside #x9 #xA #xD
#x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF, in a body or a String
attribute; one such entry fails a whole SendMessageBatch), and every status
field and attribute is cleaned where statuses are built, so the row arrives
and the other messages of its batch are unaffected."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from helpers import count, query, wait_for
from specfleet.aws import error_code
from specfleet.pipelines import get_spec
from specfleet.pipelines.download.models import DownloadStatus
from specfleet.queues import OutgoingMessage
from specfleet.runtime import StatusSender
from specfleet.status import Stat, sqs_clean

#: One character of each class SQS refuses.
REFUSED = {
    "NUL": "\x00",
    "C0 control": "\x07",
    "vertical tab": "\x0b",
    "form feed": "\x0c",
    "unit separator": "\x1f",
    "lone surrogate": "\ud800",
    "U+FFFE": "\ufffe",
    "U+FFFF": "\uffff",
}


def test_sqs_clean_keeps_what_sqs_accepts():
    accepted = "tab\there\nCR\r é 中 \ue000 \ufffd \U0001f3b5"
    assert sqs_clean(accepted) == accepted
    assert sqs_clean("a" + "".join(REFUSED.values()) + "b") == "a" + "\ufffd" * len(REFUSED) + "b"


@pytest.mark.parametrize("name", sorted(set(REFUSED) - {"lone surrogate"}))  # boto3 cannot even encode that one
def test_embedded_stack_refuses_like_aws_and_fails_the_whole_batch(settings, name):
    queue = get_spec("download").statuses(settings)
    bad = REFUSED[name]
    with pytest.raises(ClientError) as body_error:
        queue.send([OutgoingMessage(f"i-1::1::t::u{bad}::2024-01-01 00:00:00")])
    assert error_code(body_error.value) == "InvalidMessageContents"
    with pytest.raises(ClientError) as attr_error:
        queue.send([OutgoingMessage("i-1::1::ok1::u::2024-01-01 00:00:00"),
                    OutgoingMessage("i-1::1::ok2::u::2024-01-01 00:00:00", {"reason": f"see{bad}"})])
    assert error_code(attr_error.value) == "InvalidMessageContents"
    assert queue.depth()["visible"] == 0, "nothing of the refused batch was taken"


def test_status_field_and_attribute_with_each_refused_class_arrive_cleaned_batch_unaffected(settings):
    sender = StatusSender(settings, get_spec("download"))
    messages = [sender.message(DownloadStatus(instance_id="i-chars", stat=Stat.DONE, track_id="before",
                                              yt_url="https://www.youtube.com/watch?v=a"), dedupe_key="before")]
    for i, (name, char) in enumerate(REFUSED.items()):
        # pydantic already refuses a lone surrogate in a field: that class only in the attributes
        in_field = "" if name == "lone surrogate" else char
        record = DownloadStatus(instance_id="i-chars", stat=Stat.FAILED, track_id=f"bad{i}",
                                yt_url=f"https://www.youtube.com/watch?v=x{in_field}y")
        messages.append(sender.message(record, dedupe_key=f"bad{i}{char}", reason=f"{name}: quoted {char} here",
                                       attributes={"query": f"q{char}"}))
    messages.append(sender.message(DownloadStatus(instance_id="i-chars", stat=Stat.DONE, track_id="after",
                                                  yt_url="https://www.youtube.com/watch?v=b"), dedupe_key="after"))
    sender.send_many(messages)  # batches of ten: the refused characters share a batch with good rows

    total = len(REFUSED) + 2
    wait_for(lambda: count(settings, "status", "instance_id = 'i-chars'") == total, what=f"{total} rows")
    assert count(settings, "status_rejects") == 0
    rows = {t: (stat, url, reason) for t, stat, url, reason in
            query(settings, "SELECT track_id, stat, yt_url, reason FROM status WHERE instance_id = 'i-chars'")}
    assert rows["before"][0] == rows["after"][0] == 1
    for i, name in enumerate(REFUSED):
        stat, url, reason = rows[f"bad{i}"]
        assert stat == 0
        assert f"{name}: quoted \ufffd here" in reason
        if name == "lone surrogate":
            continue
        assert url == "https://www.youtube.com/watch?v=x\ufffdy", "the field arrives cleaned, not replaced"
        assert "characters SQS refuses" in reason
