-- One list of the status tables.
--
-- status_all (001) and status_jobs (010) each listed every pipeline's status
-- table, so a new pipeline had to be added to both. status_all now also
-- carries each row's job key and received_at, and status_jobs is a
-- projection of it: a new status table is added to status_all only.
--
-- CREATE OR REPLACE VIEW may only append columns, so status_all keeps its
-- columns in their old order with job_key and received_at at the end, and
-- status_jobs keeps exactly its old columns.

CREATE OR REPLACE VIEW status_all AS
    SELECT 'echo' AS pipeline, instance_id, stat, job_id AS item, NULL::text AS track_id, date, reason,
           job_id AS job_key, received_at
    FROM status_echo
    UNION ALL
    SELECT 'hydrophone', instance_id, stat, file_url, NULL, date, reason, file_url, received_at FROM status_hydro
    UNION ALL
    SELECT 'search', instance_id, stat, track_id, track_id, date, reason, track_id, received_at FROM status_search
    UNION ALL
    SELECT 'download', instance_id, stat, track_id, track_id, date, reason, track_id, received_at FROM status
    UNION ALL
    -- one row per window (item = track#win), one job per track (job_key = track)
    SELECT 'spectrogram', instance_id, stat, track_id || '#' || win, track_id, date, reason, track_id, received_at
    FROM status_specto;

CREATE OR REPLACE VIEW status_jobs AS
    SELECT pipeline, instance_id, stat, job_key, date, reason, received_at FROM status_all;
