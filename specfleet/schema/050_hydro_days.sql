-- Hydrophone days (issue 18): each day as complete / partial (n of the files
-- listed) / failed, the list the original kept by hand in its README.
--
-- The status rows say which files are done; only the producer knows how many
-- files a day has. It records each day listing it reads (hydro_day) and the
-- files in it (hydro_day_file), all of them, including files it did not
-- enqueue (outside a --start/--end time range, or already done): a day is
-- complete only when every file the archive lists for it is done. Days the
-- archive does not have are recorded with files_listed = 0.

CREATE TABLE hydro_day (
    hydrophone   text        NOT NULL,
    day          date        NOT NULL,
    day_url      text        NOT NULL,
    files_listed integer     NOT NULL CHECK (files_listed >= 0),
    -- From the listing's size column; NULL when it shows no size for some file.
    bytes_listed bigint      CHECK (bytes_listed >= 0),
    listed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hydrophone, day)
);

-- A re-listing replaces the day's rows (files appear in the archive later).
CREATE TABLE hydro_day_file (
    file_url   text   PRIMARY KEY,
    hydrophone text   NOT NULL,
    day        date   NOT NULL,
    bytes      bigint CHECK (bytes >= 0),
    FOREIGN KEY (hydrophone, day) REFERENCES hydro_day (hydrophone, day) ON DELETE CASCADE
);
CREATE INDEX ON hydro_day_file (hydrophone, day);
CREATE INDEX ON status_hydro (file_url);

-- A date or NULL: file URLs come from outside, and a bad date in one must
-- not break the view for everyone (to_date raises on 2017/02/30).
CREATE FUNCTION hydro_url_day(url text) RETURNS date
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN to_date(substring(url FROM '/(\d{4}/\d{2}/\d{2})/[^/]*$'), 'YYYY/MM/DD');
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

-- One row per file that has status rows: its best outcome so far. Done wins
-- over everything (a retry that succeeded), then skipped, then failed
-- (stat 0). Stat -1 (the worker was banned mid-job) hands the job back, so
-- alone it leaves the file pending.
CREATE VIEW v_hydro_file_outcome AS
    SELECT file_url,
           CASE WHEN bool_or(stat = 1) THEN 'done'
                WHEN bool_or(stat = 2) THEN 'skipped'
                WHEN bool_or(stat = 0) THEN 'failed'
                ELSE 'pending' END              AS outcome,
           max(clips) FILTER (WHERE stat = 1)   AS clips,
           max(date)                            AS last_date
    FROM status_hydro
    GROUP BY file_url;

-- Every file of every day: the producer's listings, plus files that have
-- status rows but no listing on record (produced before this table existed,
-- or by other means), placed by the archive layout of their URL
-- ({root}/files/{hydrophone}/YYYY/MM/DD/{file}).
CREATE VIEW v_hydro_day_files AS
    SELECT f.hydrophone, f.day, f.file_url, coalesce(o.outcome, 'pending') AS outcome, o.clips, o.last_date
    FROM hydro_day_file f
    LEFT JOIN v_hydro_file_outcome o USING (file_url)
    UNION ALL
    SELECT coalesce(substring(o.file_url FROM '^[a-zA-Z]+://[^/]+/(?:files/)?(.+)/\d{4}/\d{2}/\d{2}/[^/]*$'), '?'),
           hydro_url_day(o.file_url), o.file_url, o.outcome, o.clips, o.last_date
    FROM v_hydro_file_outcome o
    WHERE NOT EXISTS (SELECT 1 FROM hydro_day_file f WHERE f.file_url = o.file_url);

-- One row per hydrophone day. files_expected: a whole day of 5-minute files.
-- state:
--   'no data'  the archive has no files for the day
--   'complete' every listed file is done (or skipped); without a listing on
--              record, all 288 files of a day
--   'failed'   some file failed and has not been done since
--   'partial'  some files done, others not yet (or never enqueued)
--   'pending'  listed, nothing reported yet
CREATE VIEW v_hydro_days AS
    WITH counts AS (
        SELECT hydrophone, day,
               count(*)                                  AS files_known,
               count(*) FILTER (WHERE outcome = 'done')    AS done,
               count(*) FILTER (WHERE outcome = 'skipped') AS skipped,
               count(*) FILTER (WHERE outcome = 'failed')  AS failed,
               sum(clips)                                AS clips,
               max(last_date)                            AS last_date
        FROM v_hydro_day_files
        GROUP BY hydrophone, day
    ), days AS (
        SELECT coalesce(d.hydrophone, c.hydrophone)       AS hydrophone,
               coalesce(d.day, c.day)                     AS day,
               d.day_url,
               d.files_listed,
               288                                        AS files_expected,
               coalesce(c.done, 0)::integer               AS done,
               coalesce(c.skipped, 0)::integer            AS skipped,
               coalesce(c.failed, 0)::integer             AS failed,
               coalesce(c.clips, 0)::bigint               AS clips,
               d.bytes_listed,
               d.listed_at,
               c.last_date
        FROM hydro_day d
        FULL JOIN counts c ON c.hydrophone = d.hydrophone AND c.day = d.day
    )
    SELECT hydrophone, day, day_url, files_listed, files_expected, done, skipped, failed,
           greatest(coalesce(files_listed, files_expected) - done - skipped - failed, 0) AS pending,
           clips, bytes_listed, listed_at, last_date,
           CASE WHEN files_listed = 0 AND done + skipped + failed = 0 THEN 'no data'
                WHEN done + skipped >= coalesce(files_listed, files_expected) THEN 'complete'
                WHEN failed > 0 THEN 'failed'
                WHEN done + skipped > 0 THEN 'partial'
                ELSE 'pending' END AS state
    FROM days;
