"""The status writer through the real Lambda handler: every record of a
batch, rejects kept with reasons, idempotency, DB outages, verbatim storage
and rate-limited SNS alerts (received on a real moto SQS subscription)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import psycopg2
import pytest

from helpers import count, query, wait_for
from lambdas.status_writer.handler import build_handler
from specfleet.aws import client
from specfleet.local.poller import sqs_event
from specfleet.local.postgres import EmbeddedPostgres
from specfleet.pipelines import get_spec, status_queue
from specfleet.pipelines.download.models import DownloadStatus
from specfleet.pipelines.schema import migrate
from specfleet.queues import Message, ensure_queue
from specfleet.runtime.status_sender import StatusSender
from specfleet.status import Stat
from specfleet.status_writer import StatusWriter


def test_batch_with_malformed_records_keeps_every_record(settings):
    q = status_queue(settings, "download")
    good = [f"i-1::1::track{i}::https://youtu.be/v{i}::2024-01-02 03:04:05" for i in range(7)]
    bad = [
        "i-1::1::only-three-fields",
        "i-1::yes::t::u::2024-01-02 03:04:05",
        "i-1::1::t::u::not a date",
    ]
    q.send(good[:3] + bad[:1] + good[3:5] + bad[1:] + good[5:])  # one batch of 10, interleaved
    wait_for(lambda: count(settings, "status") + count(settings, "status_rejects") == 10, what="10 records stored")
    assert sorted(r[0] for r in query(settings, "SELECT track_id FROM status")) == sorted(f"track{i}" for i in range(7))
    rejects = query(settings, "SELECT body, reason, queue FROM status_rejects ORDER BY body")
    assert [r[0] for r in rejects] == sorted(bad)
    reasons = {r[0]: r[1] for r in rejects}
    assert "needs 5" in reasons["i-1::1::only-three-fields"]
    assert "stat" in reasons["i-1::yes::t::u::2024-01-02 03:04:05"]
    assert "date" in reasons["i-1::1::t::u::not a date"]
    assert {r[2] for r in rejects} == {q.name}


def test_hostile_and_unicode_values_are_stored_verbatim(settings):
    sender = StatusSender(settings, get_spec("download"))
    values = [
        "Robert'); DROP TABLE status;--",
        "1 OR 1=1",
        "日本語のトラック ✓ 🎵",
        "quote\"s and back\\slashes",
        "%s %(x)s {0}",
    ]
    for i, v in enumerate(values):
        sender.send(DownloadStatus(instance_id=f"i-{i}", stat=Stat.DONE, track_id=v, yt_url=v),
                    reason=f"reason with {v}")
    wait_for(lambda: count(settings, "status") == len(values), what="all rows")
    rows = query(settings, "SELECT track_id, yt_url, reason FROM status ORDER BY instance_id")
    assert rows == [(v, v, f"reason with {v}") for v in values]
    assert query(settings, "SELECT to_regclass('status') IS NOT NULL") == [(True,)]


def test_redelivered_and_deduplicated_messages_add_no_rows(settings):
    sender = StatusSender(settings, get_spec("download"))
    rec = DownloadStatus(instance_id="i-1", stat=Stat.DONE, track_id="t1", yt_url="u")
    for _ in range(3):  # the same job result sent three times (e.g. a redelivered job)
        sender.send(rec, dedupe_key="job-msg-1/0")
    sender.send(rec, dedupe_key="job-msg-2/0")  # a different job: a new row
    wait_for(lambda: status_queue(settings, "download").depth() == {"visible": 0, "in_flight": 0, "delayed": 0},
             what="status queue drained")
    assert count(settings, "status") == 2

    # The very same SQS record handed to the Lambda twice (SQS at-least-once).
    handler = build_handler(lambda: StatusWriter(settings))
    event = sqs_event("arn:aws:sqs:us-east-1:000000000000:" + status_queue(settings, "download").name, "us-east-1",
                      [Message("same-id", "rh", "i-2::1::t2::u::2024-01-01 00:00:00")])
    for _ in range(2):
        assert handler(event) == {"batchItemFailures": []}
    assert count(settings, "status", "track_id = 't2'") == 1


def test_database_down_fails_whole_batch_then_writes_once(tmp_path: Path, settings):
    pg = EmbeddedPostgres(tmp_path / "pg").start()
    try:
        dsn = pg.create_database("writer")
        conn = psycopg2.connect(dsn)
        migrate(conn)
        conn.close()
        s = settings.model_copy(update={"db_dsn": dsn, "db_connect_timeout_s": 2})
        handler = build_handler(lambda: writer)
        writer = StatusWriter(s)
        arn = "arn:aws:sqs:us-east-1:000000000000:" + status_queue(s, "hydrophone").name
        messages = [
            Message(f"m{i}", "rh", f"i-1::1::http://h/f{i}.mseed::60::2024-01-01 00:00:00") for i in range(10)
        ]
        event = sqs_event(arn, "us-east-1", messages)
        # Warm connection first, like a Lambda that has served batches before.
        assert handler(sqs_event(arn, "us-east-1", [Message("warm", "rh", "i-0::1::http://h/w.mseed::60::2024-01-01 00:00:00")])) == {"batchItemFailures": []}
        pg.stop()
        down = handler(event)
        assert sorted(f["itemIdentifier"] for f in down["batchItemFailures"]) == sorted(m.message_id for m in messages)
        pg.start()
        assert handler(event) == {"batchItemFailures": []}
        assert handler(event) == {"batchItemFailures": []}  # redelivered again: no doubles
        conn = psycopg2.connect(dsn)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT file_url) FROM status_hydro")
            assert cur.fetchone() == (11, 11)
        conn.close()
    finally:
        pg.destroy()


def test_alerts_are_coalesced_and_rate_limited(settings):
    # Subscribe a real queue to the topic to see what SNS delivers.
    sns = client("sns", settings)
    topic_arn = sns.create_topic(Name=settings.topic())["TopicArn"]
    inbox = ensure_queue(settings, settings.queue_prefix + "alert_inbox")
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=inbox.arn(), Attributes={"RawMessageDelivery": "false"})

    writer = StatusWriter(settings)  # default interval: 300 s
    arn = "arn:aws:sqs:us-east-1:000000000000:" + status_queue(settings, "download").name

    def batch(stat: int, n: int) -> list:
        from specfleet.status import InboundRecord

        return [InboundRecord(uuid.uuid4().hex, arn.rsplit(":", 1)[-1],
                              f"i-{k}::{stat}::t{k}::u::2024-01-01 00:00:00") for k in range(n)]

    first = writer.write(batch(0, 10))  # ten failures in one batch: one alert
    second = writer.write(batch(0, 5))  # within the interval: held back
    banned = writer.write(batch(-1, 2))  # another subject: its own alert
    assert (first.alerts_sent, first.alerts_suppressed) == (1, 0)
    assert (second.alerts_sent, second.alerts_suppressed) == (0, 5)
    assert (banned.alerts_sent, banned.alerts_suppressed) == (1, 0)

    received = []
    wait_for(lambda: received.extend(inbox.receive(10, wait_s=1)) or len(received) >= 2, what="two alerts")
    assert not inbox.receive(10, wait_s=1)  # and no more
    subjects = sorted(json.loads(m.body)["Subject"] for m in received)
    assert subjects == ["AWSERROR UPLOADING/DOWNLOADING TRACK", "AWSERRORBANNED"]
    failure = next(json.loads(m.body) for m in received if json.loads(m.body)["Subject"].startswith("AWSERROR "))
    assert failure["Message"].count("[download]") == 10

    # After the interval the next alert goes out and mentions what was held back.
    fast = StatusWriter(settings.model_copy(update={"alert_min_interval_s": 0}))
    third = fast.write(batch(0, 1))
    assert third.alerts_sent == 1
    [msg] = wait_for(lambda: inbox.receive(10, wait_s=1), what="third alert")
    assert "5 earlier alerts" in json.loads(msg.body)["Message"]


def test_record_the_database_refuses_is_rejected_not_blocking_the_batch(settings):
    from specfleet.status import InboundRecord

    queue_name = status_queue(settings, "spectrogram").name
    ok = [f"i-1::1::t1::{w}::{20 * w}::{20 * w + 30}::256::938::2024-01-01 00:00:00" for w in range(4)]
    too_big = "i-1::1::t1::99999999999::0::30::256::938::2024-01-01 00:00:00"  # valid text, int overflow in SQL
    batch = [InboundRecord(f"m{i}", queue_name, body) for i, body in enumerate([*ok[:2], too_big, *ok[2:]])]
    result = StatusWriter(settings).write(batch)
    assert (result.written, result.rejected, result.failed_ids) == (4, 1, [])
    assert sorted(r[0] for r in query(settings, "SELECT win FROM status_specto")) == [0, 1, 2, 3]
    [(body, reason)] = query(settings, "SELECT body, reason FROM status_rejects")
    assert body == too_big and "database refused the record" in reason and "out of range" in reason


def test_a_9000_character_dedupe_key_does_not_send_its_batch_to_the_dlq(settings):
    """Issue 14 item 1: the key is outside input; a huge one is stored hashed."""
    from specfleet.status import InboundRecord

    queue_name = status_queue(settings, "download").name
    good = [InboundRecord(f"g{i}", queue_name, f"i-1::1::t{i}::https://youtu.be/v{i}::2024-01-01 00:00:00",
                          {"dedupe_key": f"msg-{i}/done"}) for i in range(8)]
    poison = InboundRecord("p", queue_name, "i-1::1::tp::https://youtu.be/vp::2024-01-01 00:00:00",
                           {"dedupe_key": "k" * 9000})
    writer = StatusWriter(settings)
    result = writer.write([*good[:4], poison, *good[4:]])
    assert (result.written, result.rejected, result.failed_ids) == (9, 0, [])
    again = writer.write([poison])  # redelivered: the hashed key still deduplicates
    assert (again.written, again.duplicates) == (0, 1)
    keys = [k for (k,) in query(settings, "SELECT msg_key FROM status ORDER BY msg_key")]
    assert len(keys) == 9 and max(len(k) for k in keys) <= 200
    assert "sha256:" + __import__("hashlib").sha256(b"k" * 9000).hexdigest() in keys


@pytest.mark.parametrize(
    ("errcode", "isolated"),
    [
        ("program_limit_exceeded", True),  # OperationalError in psycopg2, but the record's own
        ("disk_full", True),
        ("query_canceled", True),
        ("numeric_value_out_of_range", True),
        ("admin_shutdown", False),  # the server going away: the whole batch waits
    ],
)
def test_only_connection_class_errors_fail_the_whole_batch(settings, errcode, isolated):
    """A real PostgreSQL raising each SQLSTATE for one poison record (a trigger)."""
    from specfleet.status import InboundRecord

    conn = psycopg2.connect(settings.db_dsn.get_secret_value())
    with conn, conn.cursor() as cur:
        cur.execute(
            "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.track_id = 'poison' THEN RAISE EXCEPTION 'poisoned record' USING ERRCODE = '{errcode}'; "
            "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cur.execute("CREATE TRIGGER poison BEFORE INSERT ON status FOR EACH ROW EXECUTE FUNCTION poison()")
    conn.close()
    queue_name = status_queue(settings, "download").name
    batch = [InboundRecord(f"m{i}", queue_name, f"i-1::1::{t}::u::2024-01-01 00:00:00")
             for i, t in enumerate(["a", "b", "poison", "c", "d", "e", "f", "g", "h"])]
    result = StatusWriter(settings).write(batch)
    if isolated:
        assert (result.written, result.rejected, result.failed_ids, result.unavailable) == (8, 1, [], False)
        [(body, reason)] = query(settings, "SELECT body, reason FROM status_rejects")
        assert "::poison::" in body and "poisoned record" in reason
    else:
        assert (result.written, sorted(result.failed_ids), result.unavailable) == (0, sorted(r.message_id for r in batch), True)
        assert count(settings, "status") == 0


def test_the_local_event_gives_message_attributes_as_lambda_does(settings):
    # Lambda's SQS event ("Using Lambda with Amazon SQS", example event): String
    # and Number attributes carry stringValue; Binary only binaryValue (base64).
    q = ensure_queue(settings, settings.queue_prefix + "event_shape")
    blob = bytes(range(256))
    q.sqs.send_message(QueueUrl=q.url, MessageBody="b", MessageAttributes={
        "text": {"DataType": "String", "StringValue": "héllo"},
        "count": {"DataType": "Number", "StringValue": "42"},
        "custom": {"DataType": "Number.int", "StringValue": "7"},
        "blob": {"DataType": "Binary", "BinaryValue": blob},
    })
    [m] = q.receive(1, wait_s=5)
    assert m.attributes == {"text": "héllo", "count": "42", "custom": "7"}
    record = sqs_event(q.arn(), settings.region, [m])["Records"][0]
    lists = {"stringListValues": [], "binaryListValues": []}
    assert record["messageAttributes"] == {
        "text": {"stringValue": "héllo", "dataType": "String", **lists},
        "count": {"stringValue": "42", "dataType": "Number", **lists},
        "custom": {"stringValue": "7", "dataType": "Number.int", **lists},
        "blob": {"binaryValue": base64.b64encode(blob).decode(), "dataType": "Binary", **lists},
    }


def test_a_binary_message_attribute_does_not_fail_the_batch(settings):
    q = status_queue(settings, "download")
    bodies = [f"i-1::1::bin{i}::u::2024-01-02 03:04:05" for i in range(3)]
    q.sqs.send_message_batch(QueueUrl=q.url, Entries=[
        {"Id": "0", "MessageBody": bodies[0],
         "MessageAttributes": {"trace": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"}}},
        {"Id": "1", "MessageBody": bodies[1],
         "MessageAttributes": {"trace": {"DataType": "Binary.gzip", "BinaryValue": b"\x1f\x8b"},
                               "dedupe_key": {"DataType": "String", "StringValue": "k-1"}}},
        {"Id": "2", "MessageBody": bodies[2]},
    ])
    # Through the poller (the event Lambda would build) and the handler.
    wait_for(lambda: count(settings, "status", "track_id LIKE 'bin%'") == 3, what="three rows")
    wait_for(lambda: q.depth() == {"visible": 0, "in_flight": 0, "delayed": 0}, what="status queue drained")
    assert count(settings, "status_rejects") == 0

    # The handler alone, given the record exactly as Lambda delivers it.
    handler = build_handler(lambda: StatusWriter(settings))
    event = {"Records": [{
        "messageId": "binary-only", "receiptHandle": "rh", "body": "i-2::1::bin-direct::u::2024-01-02 03:04:05",
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {"trace": {"binaryValue": "AAH/", "stringListValues": [], "binaryListValues": [],
                                        "dataType": "Binary"}},
        "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:" + q.name,
        "awsRegion": "us-east-1",
    }]}
    assert handler(event) == {"batchItemFailures": []}
    assert count(settings, "status", "track_id = 'bin-direct'") == 1
