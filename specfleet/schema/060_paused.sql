-- Pauses (issue 24): a worker whose session the source rate-limits (YouTube's
-- per-session limit) hands its jobs back and waits; it reports each pause
-- once as a stat 3 row (not a job outcome: the job is done later). The
-- totals count them so `specfleet status` shows them; CREATE OR REPLACE VIEW
-- may only append columns, so `paused` comes last.
CREATE OR REPLACE VIEW v_pipeline_totals AS
    SELECT pipeline,
           count(*)                                  AS rows,
           count(*) FILTER (WHERE stat = 1)          AS done,
           count(*) FILTER (WHERE stat = 0)          AS failed,
           count(*) FILTER (WHERE stat = 2)          AS skipped,
           count(*) FILTER (WHERE stat = -1)         AS banned,
           count(DISTINCT job_key)                   AS jobs,
           count(DISTINCT instance_id)               AS instances,
           max(date)                                 AS last_seen,
           count(*) FILTER (WHERE stat = 3)          AS paused
    FROM status_jobs
    GROUP BY pipeline;
