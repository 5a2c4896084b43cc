-- Provenance of every committed hour (warehouse/audit.py; `gridflex verify`, `gridflex explain`): what the
-- plan was decided from, hashed, and a hash chain across consecutive hours. Written by
-- pipelines.lib.plan.plan_hour in the same transaction as the plan; a restatement removes the later hours'
-- rows together with their plans. Hashes are sha256 hex digests; the JSON columns hold the detail.
CREATE TABLE IF NOT EXISTS plans.audit (
    plan_hour          TIMESTAMPTZ PRIMARY KEY,  -- t0 of the plan (plans.runs.plan_hour)
    decided_at         TIMESTAMPTZ NOT NULL,     -- wall clock when the plan was written
    dagster_run_id     VARCHAR,                  -- the Dagster run that planned it (NULL outside Dagster)
    code_version       VARCHAR,                  -- importlib.metadata.version('gridflex')
    git_commit         VARCHAR,                  -- `git rev-parse HEAD` of the checkout that ran it, if any
    fleet_hash         VARCHAR NOT NULL,         -- the validated fleet as canonical JSON (sorted keys)
    solver             JSON NOT NULL,            -- HiGHS options, mip_gap and time limit of the solve
    status             VARCHAR NOT NULL,         -- the plan's solver status (= plans.runs.status)
    termination        VARCHAR,
    mip_gap            DOUBLE,
    inputs_hash        VARCHAR NOT NULL,         -- = plans.runs.inputs_hash (Instance.fingerprint + state + solver)
    received_at_cutoff TIMESTAMPTZ,              -- the latest received_at among the staging rows read
    staging_hash       VARCHAR NOT NULL,         -- over the per-input hashes in `inputs`
    inputs             JSON NOT NULL,            -- per input: table, series, hour range, rows, hash, cut-off, per-day hashes
    forecast_hash      VARCHAR NOT NULL,         -- over the forecast rows planned on and the model checkpoints
    forecast           JSON NOT NULL,            -- issued_at, policy, models, per-target row hashes, checkpoint hashes
    decision_hash      VARCHAR NOT NULL,         -- the committed dispatch and routing rows and the job starts
    decision           JSON NOT NULL,            -- what decision_hash covers (tables, columns, part hashes)
    chain_start        BOOLEAN NOT NULL,         -- first hour of a chain (a fresh start, or no audited hour before)
    prev_chain_hash    VARCHAR NOT NULL,         -- the previous hour's chain_hash ('' at a chain start)
    record_hash        VARCHAR NOT NULL,         -- sha256 of this row's fields above as canonical JSON
    chain_hash         VARCHAR NOT NULL          -- sha256(prev_chain_hash || record_hash)
);
