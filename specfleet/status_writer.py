"""Status writer: decode status messages and store them in Postgres.

The Lambda in ``lambdas/status_writer`` and the local event-source poller
both call ``StatusWriter.write``. Per batch it

* decodes every record (the original read only the first);
* stores malformed ones in ``status_rejects`` with the reason;
* inserts the rest with one parameterised multi-row INSERT per table in one
  transaction, ``ON CONFLICT (msg_key) DO NOTHING`` so a redelivered message
  (same SQS message id, or the same sender dedupe key) adds no row;
* isolates a record the database refuses (e.g. a number out of range) and
  stores it in ``status_rejects`` instead of failing the batch;
* returns the message ids it could not store (the caller reports them as
  ``batchItemFailures`` so SQS redelivers only those);
* raises SNS alerts for newly stored stat 0 / -1 / 3 (paused) rows, coalesced into one
  message per subject per batch and rate-limited to one per subject per
  ``alert_min_interval_s`` through the ``status_alerts`` table; alerts held
  back are counted and mentioned in the next one sent.

Connections are reused across batches (a warm Lambda keeps its connection),
unlike the original's new connection per message.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from .aws import client
from .db import connect, is_db_unavailable, is_transient_db_error
from .pipelines import UnknownPipeline, get_spec, pipeline_for_queue
from .settings import Settings
from .status import InboundRecord, Stat, StatusFormatError, StatusRecord

log = logging.getLogger("specfleet.status_writer")

SUBJECTS = {
    Stat.FAILED: "AWSERROR UPLOADING/DOWNLOADING TRACK",
    Stat.BANNED: "AWSERRORBANNED",
    # One row per pause (a session rate limit): the fleet is slower, nothing failed.
    Stat.PAUSED: "AWSWARNINGPAUSED",
}
ALERT_LINES = 20


def retry_after_s(receive_count: int) -> int:
    """How long a record that could not be stored waits before its next try:
    5 s doubling per receive, at most 15 minutes (with the status queues'
    ``status_max_receives`` of 20, hours of database outage fit before the DLQ)."""
    return int(min(900, 5 * 2 ** max(0, min(receive_count - 1, 10))))


@dataclass
class WriteResult:
    written: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed_ids: list[str] = field(default_factory=list)
    #: True when the database could not be reached: the caller should wait
    #: before trying again (the records themselves are fine).
    unavailable: bool = False
    alerts_sent: int = 0
    alerts_suppressed: int = 0


def deployment_of(queue_name: str, status_queue: str) -> str:
    """The deployment a status message came from: its queue's prefix
    (``n1a2b_status_hydro`` -> ``n1a2b_``), so rows of several stacks in one
    database stay apart."""
    return queue_name[: -len(status_queue)] if queue_name.endswith(status_queue) else ""


class StatusWriter:
    def __init__(
        self,
        settings: Settings,
        connect_fn: Callable[[], psycopg2.extensions.connection] | None = None,
        publish_fn: Callable[[str, str], None] | None = None,
    ):
        self.settings = settings
        self._connect = connect_fn or (lambda: connect(settings))
        self._publish = publish_fn or self._sns_publish
        self._conn: psycopg2.extensions.connection | None = None
        self._topic_arn: str | None = None
        #: Set while the database cannot be reached (the last batch failed for
        #: it); a caller that polls should wait and ``reachable()`` first.
        self.unavailable = False

    # --- entry point ----------------------------------------------------------
    def write(self, records: list[InboundRecord]) -> WriteResult:
        result = WriteResult()
        good: dict[str, list[tuple[InboundRecord, StatusRecord]]] = defaultdict(list)
        rejects: list[tuple[InboundRecord, str]] = []
        for rec in records:
            try:
                spec, kind = pipeline_for_queue(rec.queue_name, self.settings.queue_prefix)
                if kind != "status":
                    raise StatusFormatError(f"queue {rec.queue_name!r} is a job queue, not a status queue")
                good[spec.name].append((rec, spec.status_model.decode(rec.body)))
            except (StatusFormatError, UnknownPipeline) as err:
                reason = str(err).strip("'\"")
                rejects.append((rec, reason))
                log.warning("rejecting status message %s: %s", rec.message_id, reason)

        try:
            conn = self._connection()
            try:
                inserted = self._insert_all(conn, good, rejects)
            except psycopg2.Error as err:
                if is_transient_db_error(err):
                    raise
                # A record the database refuses (a number out of range, an
                # index row too big, a cancelled statement...) must not hold
                # the whole batch hostage: find it, reject it.
                log.warning("batch insert refused (%s); retrying record by record", str(err).strip()[:300])
                good, rejects = self._isolate_refused(conn, good, rejects)
                inserted = self._insert_all(conn, good, rejects)
        except psycopg2.Error as err:
            result.unavailable = self.unavailable = is_db_unavailable(err)
            if result.unavailable:
                log.error("database unavailable, failing the whole batch: %s", str(err).strip()[:300])
            else:
                log.error("batch could not be stored (%s: %s); it will be redelivered",
                          type(err).__name__, str(err).strip()[:300])
            self._drop_connection()
            result.failed_ids = [r.message_id for r in records]
            return result

        self.unavailable = False
        new_keys = {key for keys in inserted.values() for key in keys}
        for items in good.values():
            for rec, _ in items:
                if rec.key in new_keys:
                    result.written += 1
                else:
                    result.duplicates += 1
        result.rejected = len(rejects)
        try:
            self._alert(conn, good, new_keys, result)
        except Exception:  # rows are stored; an alert problem must not redeliver them
            log.exception("sending alerts failed")
            self._drop_connection()
        return result

    # --- database ---------------------------------------------------------------
    def reachable(self) -> bool:
        """Can the database be reached now? (One connect + ``SELECT 1``.)"""
        try:
            with self._connection().cursor() as cur:
                cur.execute("SELECT 1")
            self._conn.rollback()  # type: ignore[union-attr]
        except psycopg2.Error:
            self._drop_connection()
            return False
        self.unavailable = False
        return True

    def _connection(self) -> psycopg2.extensions.connection:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
        self._conn = None

    def _insert_all(
        self,
        conn: psycopg2.extensions.connection,
        good: dict[str, list[tuple[InboundRecord, StatusRecord]]],
        rejects: list[tuple[InboundRecord, str]],
    ) -> dict[str, list[str]]:
        with conn:
            with conn.cursor() as cur:
                return self._insert_rows(cur, good, rejects)

    def _insert_rows(
        self,
        cur: psycopg2.extensions.cursor,
        good: dict[str, list[tuple[InboundRecord, StatusRecord]]],
        rejects: list[tuple[InboundRecord, str]],
    ) -> dict[str, list[str]]:
        inserted: dict[str, list[str]] = {}
        for pipeline, items in good.items():
            spec = get_spec(pipeline)
            model = spec.status_model
            columns = ["msg_key", *model.wire_fields(), "reason", "deployment"]
            rows = []
            for rec, status in items:
                values = status.row()
                rows.append((rec.key, *[values[c] for c in model.wire_fields()], rec.reason,
                             deployment_of(rec.queue_name, spec.status_queue)))
            # Table and column names come from our own models, never from input.
            sql = (
                f'INSERT INTO "{model.table}" ({", ".join(columns)}) VALUES %s '
                "ON CONFLICT (msg_key) DO NOTHING RETURNING msg_key"
            )
            got = psycopg2.extras.execute_values(cur, sql, rows, page_size=1000, fetch=True)
            inserted[pipeline] = [r[0] for r in got]
            if spec.derived_rows is not None:
                # Rows of other tables derived from newly stored records only (a
                # redelivered message derives nothing twice), in this transaction.
                new = set(inserted[pipeline])
                spec.derived_rows.load()(cur, [item for item in items if item[0].key in new])
        if rejects:
            psycopg2.extras.execute_values(
                cur,
                "INSERT INTO status_rejects (msg_key, queue, body, reason) VALUES %s "
                "ON CONFLICT (msg_key) DO NOTHING",
                [(rec.key, rec.queue_name, rec.body.replace("\x00", "\\x00"), reason) for rec, reason in rejects],
            )
        return inserted

    def _isolate_refused(
        self,
        conn: psycopg2.extensions.connection,
        good: dict[str, list[tuple[InboundRecord, StatusRecord]]],
        rejects: list[tuple[InboundRecord, str]],
    ) -> tuple[dict[str, list[tuple[InboundRecord, StatusRecord]]], list[tuple[InboundRecord, str]]]:
        """Try each record alone (rolled back); move the refused ones to rejects."""
        kept: dict[str, list[tuple[InboundRecord, StatusRecord]]] = defaultdict(list)
        rejects = list(rejects)
        for pipeline, items in good.items():
            for item in items:
                try:
                    with conn.cursor() as cur:
                        self._insert_rows(cur, {pipeline: [item]}, [])
                    kept[pipeline].append(item)
                except psycopg2.Error as err:
                    if is_transient_db_error(err):
                        raise
                    rejects.append((item[0], f"database refused the record: {str(err).strip()[:500]}"))
                finally:
                    conn.rollback()  # a trial only; the real insert follows
        return kept, rejects

    # --- alerts -------------------------------------------------------------------
    def _alert(
        self,
        conn: psycopg2.extensions.connection,
        good: dict[str, list[tuple[InboundRecord, StatusRecord]]],
        new_keys: set[str],
        result: WriteResult,
    ) -> None:
        lines: dict[Stat, list[str]] = defaultdict(list)
        for pipeline, items in good.items():
            for rec, status in items:
                if status.stat in SUBJECTS and rec.key in new_keys:
                    reason = rec.reason or ""
                    lines[status.stat].append(f"[{pipeline}] {rec.body}" + (f"  ({reason})" if reason else ""))
        for stat, texts in lines.items():
            subject = SUBJECTS[stat]
            send, held_back = self._take_alert_slot(conn, subject, len(texts))
            if not send:
                result.alerts_suppressed += len(texts)
                continue
            body = "\n".join(texts[:ALERT_LINES])
            if len(texts) > ALERT_LINES:
                body += f"\n... and {len(texts) - ALERT_LINES} more in this batch"
            if held_back:
                body += f"\n({held_back} earlier alerts with this subject were held back by the rate limit)"
            self._publish(subject, body)
            result.alerts_sent += 1

    def _take_alert_slot(self, conn: psycopg2.extensions.connection, subject: str, count: int) -> tuple[bool, int]:
        """Atomically decide whether this subject may alert now.

        Returns ``(send, held_back_before)``."""
        with conn:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_advisory_xact_lock(hashtext(%s))", (subject,))
                cur.execute(
                    "SELECT last_sent > now() - make_interval(secs => %s), suppressed "
                    "FROM status_alerts WHERE subject = %s",
                    (self.settings.alert_min_interval_s, subject),
                )
                row = cur.fetchone()
                if row is not None and row[0]:
                    cur.execute(
                        "UPDATE status_alerts SET suppressed = suppressed + %s WHERE subject = %s", (count, subject)
                    )
                    return False, 0
                cur.execute(
                    "INSERT INTO status_alerts (subject, last_sent, suppressed) VALUES (%s, now(), 0) "
                    "ON CONFLICT (subject) DO UPDATE SET last_sent = now(), suppressed = 0",
                    (subject,),
                )
                return True, (row[1] if row else 0)

    def _sns_publish(self, subject: str, body: str) -> None:
        sns = client("sns", self.settings)
        if self._topic_arn is None:
            self._topic_arn = sns.create_topic(Name=self.settings.topic())["TopicArn"]
        sns.publish(TopicArn=self._topic_arn, Subject=subject[:100], Message=body[:250_000])

