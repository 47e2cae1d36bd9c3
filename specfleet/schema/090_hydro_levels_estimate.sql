-- The estimate made before the run beside what the day cost (issue 27): the
-- fleet plan's price for the day's files (`fleet plan` / `produce hydrophone
-- --dry-run`: the measured jobs per instance-hour on the fleet's instance
-- type at spot, and the S3 and SQS requests per job, from the same price
-- table), computed by the daily reduce and kept with the day. Storage,
-- egress and the stack's fixed costs are in neither figure. NULL when the
-- plan had no figure (estimate_basis says why) and for days reduced before
-- this migration.
ALTER TABLE hydro_levels_day
    ADD COLUMN estimate_usd   double precision,
    ADD COLUMN estimate_basis text NOT NULL DEFAULT '';

-- New columns go last: CREATE OR REPLACE VIEW keeps the existing ones in place.
CREATE OR REPLACE VIEW v_hydro_levels_cost AS
    SELECT hydrophone, day, audio_hours, compute_cpu_s + coalesce(reduce_cpu_s, 0) AS cpu_s, cost_usd,
           CASE WHEN audio_hours > 0 THEN cost_usd / audio_hours END AS cost_per_audio_hour_usd, cost_basis,
           estimate_usd,
           CASE WHEN audio_hours > 0 THEN estimate_usd / audio_hours END AS estimate_per_audio_hour_usd,
           estimate_basis, cardinality(source_files) AS files, created_at
    FROM hydro_levels_day;
