-- gridflex warehouse: one DuckDB file, five schemas.
--   raw       what was received and what each ingest did (provenance, repairs)
--   staging   clean, hourly, UTC, flagged signals keyed by (series, ts, source)
--   forecasts model forecasts keyed by (issued_at, target_time, series, model); never overwritten by a later issue
--   plans     receding-horizon plans (whole horizon per hourly partition), committed dispatch, carried state
--   marts     views users query
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS forecasts;
CREATE SCHEMA IF NOT EXISTS plans;
CREATE SCHEMA IF NOT EXISTS marts;
