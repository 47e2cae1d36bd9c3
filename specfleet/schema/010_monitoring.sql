-- Monitoring views beyond the basic ones in 001_core.sql.
--
-- Times: every status table's `date` is the worker's UTC clock when it
-- finished the job (timestamp without time zone, UTC). Throughput and
-- "alive" questions use `date`, i.e. when work happened, not when the
-- writer stored the row (`received_at`), so a backlog in the status queue
-- does not show up as a burst of work.

-- One row per status record with the key of the *job* that produced it.
-- The spectrogram pipeline reports one row per window, so its job key is
-- the track; every other pipeline reports one row per job.
CREATE VIEW status_jobs AS
    SELECT 'echo' AS pipeline, instance_id, stat, job_id AS job_key, date, reason, received_at FROM status_echo
    UNION ALL
    SELECT 'hydrophone', instance_id, stat, file_url, date, reason, received_at FROM status_hydro
    UNION ALL
    SELECT 'search', instance_id, stat, track_id, date, reason, received_at FROM status_search
    UNION ALL
    SELECT 'download', instance_id, stat, track_id, date, reason, received_at FROM status
    UNION ALL
    SELECT 'spectrogram', instance_id, stat, track_id, date, reason, received_at FROM status_specto;

-- Throughput per minute per instance and pipeline (status rows by outcome).
CREATE VIEW v_throughput_per_minute AS
    SELECT pipeline,
           instance_id,
           date_trunc('minute', date)                AS minute,
           count(*)                                  AS rows,
           count(*) FILTER (WHERE stat = 1)          AS done,
           count(*) FILTER (WHERE stat = 0)          AS failed,
           count(*) FILTER (WHERE stat = 2)          AS skipped,
           count(*) FILTER (WHERE stat = -1)         AS banned,
           count(DISTINCT job_key)                   AS jobs
    FROM status_jobs
    GROUP BY pipeline, instance_id, date_trunc('minute', date);

-- Failures (stat 0) and bans (stat -1) grouped by the reason the worker sent.
CREATE VIEW v_failure_reasons AS
    SELECT pipeline,
           stat,
           coalesce(nullif(reason, ''), '(no reason given)') AS reason,
           count(*)                                         AS rows,
           count(DISTINCT instance_id)                      AS instances,
           min(date)                                        AS first_seen,
           max(date)                                        AS last_seen
    FROM status_jobs
    WHERE stat IN (0, -1)
    GROUP BY pipeline, stat, coalesce(nullif(reason, ''), '(no reason given)');

-- Activity per instance: what it did and when it was last heard from.
CREATE VIEW v_instance_activity AS
    SELECT pipeline,
           instance_id,
           count(*)                          AS rows,
           count(*) FILTER (WHERE stat = 1)  AS done,
           count(*) FILTER (WHERE stat = 0)  AS failed,
           count(*) FILTER (WHERE stat = 2)  AS skipped,
           count(*) FILTER (WHERE stat = -1) AS banned,
           min(date)                         AS first_seen,
           max(date)                         AS last_seen
    FROM status_jobs
    GROUP BY pipeline, instance_id;

-- Instances that reported stat -1 (banned; the worker stopped).
-- `after_ban` counts rows the instance sent later than its last ban, which
-- should be 0: a banned worker exits.
CREATE VIEW v_banned_instances AS
    SELECT b.pipeline,
           b.instance_id,
           b.bans,
           b.first_banned_at,
           b.last_banned_at,
           a.last_seen,
           (SELECT count(*) FROM status_jobs s
             WHERE s.pipeline = b.pipeline AND s.instance_id = b.instance_id
               AND s.stat <> -1 AND s.date > b.last_banned_at) AS after_ban
    FROM (SELECT pipeline, instance_id, count(*) AS bans,
                 min(date) AS first_banned_at, max(date) AS last_banned_at
            FROM status_jobs WHERE stat = -1
           GROUP BY pipeline, instance_id) b
    JOIN v_instance_activity a USING (pipeline, instance_id);

-- Totals per pipeline.
CREATE VIEW v_pipeline_totals AS
    SELECT pipeline,
           count(*)                                  AS rows,
           count(*) FILTER (WHERE stat = 1)          AS done,
           count(*) FILTER (WHERE stat = 0)          AS failed,
           count(*) FILTER (WHERE stat = 2)          AS skipped,
           count(*) FILTER (WHERE stat = -1)         AS banned,
           count(DISTINCT job_key)                   AS jobs,
           count(DISTINCT instance_id)               AS instances,
           max(date)                                 AS last_seen
    FROM status_jobs
    GROUP BY pipeline;

-- ---------------------------------------------------------------------------
-- Queue backlog history. SQS keeps no history, so someone has to sample it:
-- the single writer is specfleet.monitoring.record_queue_depths(), called
-- on every refresh of `specfleet status` (and `status --watch`) and once
-- by `specfleet report`. Run `specfleet status --watch` (or a cron'd
-- `specfleet status --json`) during a run to get a continuous history.
CREATE TABLE queue_depth_history (
    pipeline   text        NOT NULL,
    sampled_at timestamptz NOT NULL DEFAULT now(),
    visible    integer     NOT NULL CHECK (visible >= 0),
    in_flight  integer     NOT NULL CHECK (in_flight >= 0),
    dlq        integer     NOT NULL CHECK (dlq >= 0),
    PRIMARY KEY (pipeline, sampled_at)
);

-- The latest sample per pipeline.
CREATE VIEW v_queue_backlog AS
    SELECT DISTINCT ON (pipeline)
           pipeline, sampled_at, visible, in_flight, dlq, visible + in_flight AS backlog
    FROM queue_depth_history
    ORDER BY pipeline, sampled_at DESC;

-- Backlog change between consecutive samples: a negative `drained_per_min`
-- means the queue is growing faster than the fleet works it off.
CREATE VIEW v_queue_backlog_trend AS
    SELECT pipeline,
           sampled_at,
           visible + in_flight AS backlog,
           dlq,
           (lag(visible + in_flight) OVER w) - (visible + in_flight) AS drained,
           CASE WHEN extract(epoch FROM sampled_at - lag(sampled_at) OVER w) > 0
                THEN round(((lag(visible + in_flight) OVER w) - (visible + in_flight))
                           * 60.0 / extract(epoch FROM sampled_at - lag(sampled_at) OVER w)::numeric, 2)
           END AS drained_per_min
    FROM queue_depth_history
    WINDOW w AS (PARTITION BY pipeline ORDER BY sampled_at);
