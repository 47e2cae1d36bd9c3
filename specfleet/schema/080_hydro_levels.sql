-- Hydrophone sound levels (issue 27): one row per daily product, with what
-- made it, so a changed calibration or code version finds exactly the days
-- (and their source files) it touched: `specfleet reprocess --pipeline
-- hydrophone --where ...`. Written by the daily reduce (`hydrophone levels-day`).

CREATE TABLE hydro_levels_day (
    hydrophone             text             NOT NULL,
    day                    date             NOT NULL,
    -- The day's NetCDF in the bucket.
    product_key            text             NOT NULL,
    code_version           text             NOT NULL,
    params_hash            text             NOT NULL,
    params                 jsonb            NOT NULL,
    -- The calibration file's name ('' when uncalibrated), its deployment and content hash.
    calibration            text             NOT NULL DEFAULT '',
    calibration_deployment text             NOT NULL DEFAULT '',
    calibration_sha256     text             NOT NULL DEFAULT '',
    units                  text             NOT NULL,
    source_files           text[]           NOT NULL,
    minutes_with_audio     integer          NOT NULL CHECK (minutes_with_audio >= 0),
    minutes_missing        integer          NOT NULL CHECK (minutes_missing >= 0),
    coverage               double precision NOT NULL CHECK (coverage BETWEEN 0 AND 1),
    -- What the day cost: the files' CPU seconds (measured by their workers)
    -- and the reduce's, the S3 and SQS requests, priced by the fleet's price
    -- table (cost_basis says which instance type and price).
    compute_cpu_s          double precision NOT NULL DEFAULT 0,
    reduce_cpu_s           double precision,
    audio_hours            double precision NOT NULL DEFAULT 0,
    s3_put_requests        integer          NOT NULL DEFAULT 0,
    s3_get_requests        integer          NOT NULL DEFAULT 0,
    sqs_requests           integer          NOT NULL DEFAULT 0,
    cost_usd               double precision,
    cost_basis             text             NOT NULL DEFAULT '',
    created_at             timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (hydrophone, day)
);
CREATE INDEX ON hydro_levels_day (calibration);
CREATE INDEX ON hydro_levels_day (code_version);

-- Cost per audio-hour and per day, as `status`/the report would show them.
CREATE VIEW v_hydro_levels_cost AS
    SELECT hydrophone, day, audio_hours, compute_cpu_s + coalesce(reduce_cpu_s, 0) AS cpu_s, cost_usd,
           CASE WHEN audio_hours > 0 THEN cost_usd / audio_hours END AS cost_per_audio_hour_usd, cost_basis
    FROM hydro_levels_day;
