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
    -- CPU seconds of the reduce itself (the files' own compute is in their status rows' jobs).
    reduce_cpu_s           double precision,
    created_at             timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (hydrophone, day)
);
CREATE INDEX ON hydro_levels_day (calibration);
CREATE INDEX ON hydro_levels_day (code_version);
