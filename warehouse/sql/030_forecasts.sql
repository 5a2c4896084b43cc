-- Trained models: one row per training attempt; status 'ok' rows are usable, the newest 'ok' is in use.
CREATE TABLE IF NOT EXISTS forecasts.models (
    model_id        VARCHAR PRIMARY KEY,
    target          VARCHAR NOT NULL,        -- carbon | load
    checkpoint_path VARCHAR,
    trained_at      TIMESTAMPTZ NOT NULL,
    train_end       TIMESTAMPTZ,             -- last hour of data the model saw
    epochs          INTEGER,
    train_seconds   DOUBLE,
    val_mae         DOUBLE,
    val_mae_persistence DOUBLE,
    status          VARCHAR NOT NULL,        -- ok | failed
    message         VARCHAR
);

-- Forecasts as issued. A later issue never overwrites an earlier one: the key includes issued_at.
-- model: the TFT model_id, or 'persistence' when the pipeline ran in degraded mode.
CREATE TABLE IF NOT EXISTS forecasts.carbon (
    issued_at   TIMESTAMPTZ NOT NULL,
    target_time TIMESTAMPTZ NOT NULL,
    series      VARCHAR NOT NULL,            -- the site whose grid it is, e.g. "sanjose"
    model       VARCHAR NOT NULL,
    p10         DOUBLE,
    p50         DOUBLE NOT NULL,
    p90         DOUBLE,
    degraded    BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (issued_at, target_time, series, model)
);

CREATE TABLE IF NOT EXISTS forecasts.load (
    issued_at   TIMESTAMPTZ NOT NULL,
    target_time TIMESTAMPTZ NOT NULL,
    series      VARCHAR NOT NULL,            -- inference class, e.g. "chat"
    model       VARCHAR NOT NULL,
    p10         DOUBLE,
    p50         DOUBLE NOT NULL,
    p90         DOUBLE,
    degraded    BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (issued_at, target_time, series, model)
);

-- Why an issue was degraded (persistence): which series lagged, how far, or why no model served.
ALTER TABLE forecasts.carbon ADD COLUMN IF NOT EXISTS degraded_reason VARCHAR;
ALTER TABLE forecasts.load ADD COLUMN IF NOT EXISTS degraded_reason VARCHAR;
