-- Status tables: one per pipeline, columns in wire order, plus
--   msg_key     idempotency key (SQS message id, or the sender's dedupe key)
--   reason      why a job failed or was skipped (message attribute, optional)
--   received_at when the writer stored the row
CREATE TABLE status_echo (
    id          bigserial PRIMARY KEY,
    msg_key     text NOT NULL UNIQUE,
    instance_id text NOT NULL,
    stat        smallint NOT NULL,
    job_id      text NOT NULL,
    date        timestamp NOT NULL,
    reason      text,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE status_hydro (
    id          bigserial PRIMARY KEY,
    msg_key     text NOT NULL UNIQUE,
    instance_id text NOT NULL,
    stat        smallint NOT NULL,
    file_url    text NOT NULL,
    clips       integer NOT NULL,
    date        timestamp NOT NULL,
    reason      text,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE status_search (
    id          bigserial PRIMARY KEY,
    msg_key     text NOT NULL UNIQUE,
    instance_id text NOT NULL,
    stat        smallint NOT NULL,
    track_id    text NOT NULL,
    yt_url      text NOT NULL,
    views       bigint NOT NULL,
    date        timestamp NOT NULL,
    reason      text,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- The download pipeline's table keeps the original name.
CREATE TABLE status (
    id          bigserial PRIMARY KEY,
    msg_key     text NOT NULL UNIQUE,
    instance_id text NOT NULL,
    stat        smallint NOT NULL,
    track_id    text NOT NULL,
    yt_url      text NOT NULL,
    date        timestamp NOT NULL,
    reason      text,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE status_specto (
    id          bigserial PRIMARY KEY,
    msg_key     text NOT NULL UNIQUE,
    instance_id text NOT NULL,
    stat        smallint NOT NULL,
    track_id    text NOT NULL,
    win         integer NOT NULL,
    ini         integer NOT NULL,
    fin         integer NOT NULL,
    rows        integer NOT NULL,
    cols        integer NOT NULL,
    date        timestamp NOT NULL,
    reason      text,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX ON status_echo (instance_id);
CREATE INDEX ON status_hydro (instance_id);
CREATE INDEX ON status_search (track_id);
CREATE INDEX ON status (track_id);
CREATE INDEX ON status_specto (track_id, win);

-- Messages the writer could not decode: kept with the reason, never dropped.
CREATE TABLE status_rejects (
    id          bigserial PRIMARY KEY,
    msg_key     text NOT NULL UNIQUE,
    queue       text NOT NULL,
    body        text NOT NULL,
    reason      text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Search results (one row per track; a later search overwrites).
CREATE TABLE track_url (
    track_id   text PRIMARY KEY,
    href       text NOT NULL,
    views      bigint NOT NULL DEFAULT -1,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Alert rate limiting: at most one SNS message per subject per window.
CREATE TABLE status_alerts (
    subject     text PRIMARY KEY,
    last_sent   timestamptz NOT NULL,
    suppressed  integer NOT NULL DEFAULT 0
);

-- ---------------------------------------------------------------------------
-- Monitoring views (the questions the original answered with ad-hoc SQL).
CREATE VIEW status_all AS
    SELECT 'echo' AS pipeline, instance_id, stat, job_id AS item, NULL::text AS track_id, date, reason FROM status_echo
    UNION ALL
    SELECT 'hydrophone', instance_id, stat, file_url, NULL, date, reason FROM status_hydro
    UNION ALL
    SELECT 'search', instance_id, stat, track_id, track_id, date, reason FROM status_search
    UNION ALL
    SELECT 'download', instance_id, stat, track_id, track_id, date, reason FROM status
    UNION ALL
    SELECT 'spectrogram', instance_id, stat, track_id || '#' || win, track_id, date, reason FROM status_specto;

-- rows per instance
CREATE VIEW v_rows_per_instance AS
    SELECT pipeline, instance_id, count(*) AS rows
    FROM status_all GROUP BY pipeline, instance_id;

-- rows with stat != 1
CREATE VIEW v_not_done AS
    SELECT pipeline, instance_id, stat, item, reason, date
    FROM status_all WHERE stat <> 1;

-- distinct tracks done
CREATE VIEW v_tracks_done AS
    SELECT pipeline, count(DISTINCT track_id) AS tracks
    FROM status_all WHERE stat = 1 AND track_id IS NOT NULL GROUP BY pipeline;

-- windows per track per instance
CREATE VIEW v_windows_per_track AS
    SELECT instance_id, track_id, count(DISTINCT win) AS windows
    FROM status_specto WHERE stat = 1 GROUP BY instance_id, track_id;

-- tracks per instance
CREATE VIEW v_tracks_per_instance AS
    SELECT pipeline, instance_id, count(DISTINCT track_id) AS tracks
    FROM status_all WHERE track_id IS NOT NULL GROUP BY pipeline, instance_id;
