-- One row per ingest (asset materialization or CLI import): what came in, what was written, what was repaired.
CREATE TABLE IF NOT EXISTS raw.ingest_log (
    ingest_id     VARCHAR PRIMARY KEY,
    source        VARCHAR NOT NULL,      -- e.g. electricitymaps_csv:/path/GB_2022_hourly.csv (never a token)
    target_table  VARCHAR NOT NULL,
    partition_key VARCHAR,
    window_start  TIMESTAMPTZ,
    window_end    TIMESTAMPTZ,
    rows_in       BIGINT NOT NULL,
    inserted      BIGINT NOT NULL,
    updated       BIGINT NOT NULL,
    deleted       BIGINT NOT NULL,
    unchanged     BIGINT NOT NULL,
    repairs       JSON,                  -- {"dst_duplicate_dropped": 1, ...}
    notes         VARCHAR,
    finished_at   TIMESTAMPTZ NOT NULL
);
-- When the file (or answer) itself was last modified, where the source says: a file's mtime. Its rows'
-- received_at is when gridflex received them.
ALTER TABLE raw.ingest_log ADD COLUMN IF NOT EXISTS source_modified_at TIMESTAMPTZ;
