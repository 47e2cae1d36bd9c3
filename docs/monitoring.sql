-- specfleet monitoring cookbook: paste into psql.
--
--   psql "$SPECFLEET_DB_DSN"                    -- AWS (RDS) or any stack
--   eval "$(specfleet local env)"; psql "$SPECFLEET_DB_DSN"   -- the local stack
--
-- Tables: status_echo, status_hydro, status_search, status (download),
-- status_specto; status_rejects (malformed messages); queue_depth_history.
-- stat: 1 done, 0 failed, -1 banned / worker stopped, 2 skipped.
-- `date` is the worker's UTC clock (timestamp without time zone).
-- Views come from specfleet/schema/001_core.sql and 010_monitoring.sql.

-- ---------------------------------------------------------------------------
-- The original questions
-- ---------------------------------------------------------------------------

-- Rows per instance (all pipelines).
SELECT * FROM v_rows_per_instance ORDER BY pipeline, rows DESC;

-- Rows with stat != 1, newest first.
SELECT * FROM v_not_done ORDER BY date DESC LIMIT 50;

-- Distinct tracks done per pipeline.
SELECT * FROM v_tracks_done;

-- Spectrogram windows per track per instance.
SELECT * FROM v_windows_per_track ORDER BY windows DESC LIMIT 50;

-- Tracks per instance.
SELECT * FROM v_tracks_per_instance ORDER BY pipeline, tracks DESC;

-- The same questions on the raw download table, as the original asked them:
SELECT instance_id, count(*) FROM status GROUP BY instance_id ORDER BY 2 DESC;
SELECT * FROM status WHERE stat <> 1 ORDER BY date DESC LIMIT 50;
SELECT count(DISTINCT track_id) FROM status WHERE stat = 1;

-- ---------------------------------------------------------------------------
-- Progress and throughput
-- ---------------------------------------------------------------------------

-- Totals per pipeline: rows by outcome, distinct jobs, instances, last row.
SELECT * FROM v_pipeline_totals ORDER BY pipeline;

-- Throughput per minute per instance, last hour.
SELECT * FROM v_throughput_per_minute
WHERE minute > (now() AT TIME ZONE 'UTC') - interval '1 hour'
ORDER BY minute DESC, pipeline, instance_id;

-- Fleet throughput per minute per pipeline (sum over instances).
SELECT pipeline, minute, sum(rows) AS rows, sum(done) AS done, sum(failed) AS failed
FROM v_throughput_per_minute
GROUP BY pipeline, minute
ORDER BY minute DESC, pipeline
LIMIT 60;

-- Jobs per minute per pipeline over the last 10 minutes (what `specfleet status` shows).
SELECT pipeline, round(count(DISTINCT job_key) / 10.0, 1) AS jobs_per_min
FROM status_jobs
WHERE date > (now() AT TIME ZONE 'UTC') - interval '10 minutes'
GROUP BY pipeline;

-- Slowest instances in the last 30 minutes (done rows per minute).
SELECT pipeline, instance_id, round(sum(done) / 30.0, 2) AS done_per_min
FROM v_throughput_per_minute
WHERE minute > (now() AT TIME ZONE 'UTC') - interval '30 minutes'
GROUP BY pipeline, instance_id
ORDER BY done_per_min
LIMIT 20;

-- ---------------------------------------------------------------------------
-- Instances
-- ---------------------------------------------------------------------------

-- Alive: sent a status in the last 5 minutes.
SELECT pipeline, instance_id, last_seen, rows
FROM v_instance_activity
WHERE last_seen > (now() AT TIME ZONE 'UTC') - interval '5 minutes'
ORDER BY pipeline, instance_id;

-- Quiet: worked earlier but nothing for 15 minutes (crashed? stopped? starved?).
SELECT pipeline, instance_id, last_seen, rows
FROM v_instance_activity
WHERE last_seen < (now() AT TIME ZONE 'UTC') - interval '15 minutes'
ORDER BY last_seen DESC;

-- Banned instances (stat -1). after_ban > 0 means the worker kept going: a bug.
SELECT * FROM v_banned_instances ORDER BY last_banned_at DESC;

-- ---------------------------------------------------------------------------
-- Failures
-- ---------------------------------------------------------------------------

-- Failures and bans by reason.
SELECT * FROM v_failure_reasons ORDER BY rows DESC;

-- Failure ratio per pipeline.
SELECT pipeline, failed, rows, round(100.0 * failed / nullif(rows, 0), 1) AS failed_pct
FROM v_pipeline_totals ORDER BY failed_pct DESC NULLS LAST;

-- Jobs that failed and were never done later (candidates for a re-run).
SELECT f.pipeline, f.job_key, max(f.date) AS last_failure, min(f.reason) AS reason
FROM status_jobs f
WHERE f.stat = 0
  AND NOT EXISTS (SELECT 1 FROM status_jobs d
                  WHERE d.pipeline = f.pipeline AND d.job_key = f.job_key AND d.stat = 1)
GROUP BY f.pipeline, f.job_key
ORDER BY last_failure DESC
LIMIT 100;

-- Malformed status messages the writer kept (never dropped).
SELECT queue, reason, left(body, 120) AS body, received_at
FROM status_rejects ORDER BY received_at DESC LIMIT 20;

-- ---------------------------------------------------------------------------
-- Queues (sampled into queue_depth_history by `specfleet status` / `--watch`
-- and by `specfleet report`; SQS itself keeps no history)
-- ---------------------------------------------------------------------------

-- Latest backlog per pipeline.
SELECT * FROM v_queue_backlog ORDER BY pipeline;

-- Backlog trend: drained_per_min < 0 means the queue is growing.
SELECT * FROM v_queue_backlog_trend
WHERE sampled_at > now() - interval '1 hour'
ORDER BY pipeline, sampled_at DESC;

-- Anything in a dead-letter queue recently?
SELECT pipeline, max(dlq) AS max_dlq, max(sampled_at) AS last_sample
FROM queue_depth_history
WHERE sampled_at > now() - interval '1 day'
GROUP BY pipeline HAVING max(dlq) > 0;

-- ---------------------------------------------------------------------------
-- Pipeline-specific
-- ---------------------------------------------------------------------------

-- Hydrophone: files and clips per *recording* day (the file's archive folder,
-- not the day a worker happened to process it). A file redone or retried has
-- several rows: it counts once, with the clips of its latest done row.
SELECT hydro_url_day(file_url)                          AS recording_day,
       count(*) FILTER (WHERE done)                     AS files_done,
       count(*) FILTER (WHERE NOT done)                 AS files_not_done,
       coalesce(sum(clips) FILTER (WHERE done), 0)      AS clips
FROM (SELECT DISTINCT ON (file_url) file_url, stat = 1 AS done, clips
      FROM status_hydro ORDER BY file_url, (stat = 1) DESC, date DESC) f
GROUP BY 1 ORDER BY 1 DESC;

-- Jobs, not rows: per pipeline, each job (file, track) once -- done if any
-- of its rows says so, else its latest row decides (what `specfleet status` shows).
SELECT pipeline, count(*) AS jobs,
       count(*) FILTER (WHERE stat = 1) AS done, count(*) FILTER (WHERE stat = 0) AS failed,
       count(*) FILTER (WHERE stat = 2) AS skipped, sum(rows) AS rows
FROM (SELECT pipeline, job_key, count(*) AS rows,
             CASE WHEN bool_or(stat = 1) THEN 1
                  ELSE (array_agg(stat ORDER BY date DESC))[1] END AS stat
      FROM status_jobs GROUP BY pipeline, job_key) j
GROUP BY pipeline ORDER BY pipeline;

-- Music: tracks searched -> downloaded -> spectrograms (the funnel).
-- (a search that found no matching title is stat 2 with yt_url NOTFOUND)
SELECT (SELECT count(DISTINCT track_id) FROM status_search WHERE stat IN (1, 2)) AS searched,
       (SELECT count(*) FROM track_url WHERE is_found)                     AS with_url,
       (SELECT count(DISTINCT track_id) FROM status WHERE stat = 1)        AS downloaded,
       (SELECT count(DISTINCT track_id) FROM status_specto WHERE stat = 1) AS with_spectrograms;

-- Spectrogram windows per track: distribution.
SELECT windows, count(*) AS tracks
FROM (SELECT track_id, count(DISTINCT win) AS windows FROM status_specto WHERE stat = 1 GROUP BY track_id) t
GROUP BY windows ORDER BY windows;
