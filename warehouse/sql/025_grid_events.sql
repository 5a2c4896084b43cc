-- Grid events (OpenADR 3 demand-response, price and alert events from a grid operator's VTN).
-- Written by warehouse/grid_events.py (store_events): raw rows are appended and never changed;
-- staging.grid_events holds the tidy intervals of the latest version of each event, and rows a later
-- version dropped or a deletion cancelled stay, marked cancelled (nothing stored is ever deleted).

-- Every event payload as received (poll answers and pushed notifications), one row per distinct payload.
CREATE TABLE IF NOT EXISTS raw.openadr_events (
    event_id        VARCHAR NOT NULL,        -- the VTN's event id ('' when the payload has none)
    program_id      VARCHAR,
    modification_dt TIMESTAMPTZ NOT NULL,    -- the event's modificationDateTime (1970-01-01 when missing or unreadable)
    operation       VARCHAR NOT NULL,        -- GET (polled) | POST | PUT | DELETE (notification operation)
    via             VARCHAR NOT NULL CHECK (via IN ('poll', 'push')),
    payload_sha256  VARCHAR NOT NULL,        -- of payload: two different payloads under one key are both kept
    received_at     TIMESTAMPTZ NOT NULL,    -- when gridflex first received this payload
    as_of           TIMESTAMPTZ NOT NULL,    -- the hour (poll) or time (push) it was received for
    payload         VARCHAR NOT NULL,        -- the event (or notification) JSON text exactly as received
    PRIMARY KEY (event_id, modification_dt, operation, via, payload_sha256)
);

-- The version of each event gridflex applied, and whether the VTN deleted (cancelled) it.
CREATE TABLE IF NOT EXISTS staging.grid_event_state (
    event_id     VARCHAR PRIMARY KEY,
    program_id   VARCHAR,
    event_name   VARCHAR,
    modified_at  TIMESTAMPTZ,                -- modificationDateTime of the version applied
    deleted      BOOLEAN NOT NULL DEFAULT false,
    deleted_at   TIMESTAMPTZ,                -- modificationDateTime carried by the deletion (else when received)
    n_rows       INTEGER NOT NULL,           -- interval rows the applied version gave (0: none for this fleet)
    received_at  TIMESTAMPTZ NOT NULL,
    as_of        TIMESTAMPTZ NOT NULL
);

-- Tidy intervals: one row per (event, interval, sub-interval, payload type, fleet site).
CREATE TABLE IF NOT EXISTS staging.grid_events (
    event_id      VARCHAR NOT NULL,
    program_id    VARCHAR,
    event_name    VARCHAR,
    priority      INTEGER,                   -- lower = higher priority (OpenADR)
    site          VARCHAR NOT NULL,          -- fleet site the event applies to
    target        VARCHAR NOT NULL,          -- what matched it, e.g. 'RESOURCE_NAME:oakland' ('*': untargeted event)
    payload_type  VARCHAR NOT NULL,          -- IMPORT_CAPACITY_LIMIT, PRICE, GHG, SIMPLE, ALERT_GRID_EMERGENCY, ...
    interval_id   INTEGER NOT NULL,
    sub_interval  INTEGER NOT NULL DEFAULT 0, -- index into a multi-valued payload (its interval split evenly)
    start         TIMESTAMPTZ NOT NULL,      -- UTC
    "end"         TIMESTAMPTZ NOT NULL,      -- exclusive, UTC (open-ended 'P9999Y' intervals end 2200-01-01)
    value         DOUBLE,                    -- normalised: MW, <currency>/MWh, g CO2/kWh, level 0-3, 1 = alert in force
    unit          VARCHAR NOT NULL,          -- the unit of value: MW | USD/MWh (currency/MWh) | gCO2/kWh | level | alert
    currency      VARCHAR,
    source_value  VARCHAR,                   -- the payload value as received (JSON)
    source_unit   VARCHAR,                   -- the payloadDescriptor's units as received (KW, MW, KWH, ...)
    text          VARCHAR,                   -- the message of an ALERT_* payload
    modified_at   TIMESTAMPTZ NOT NULL,      -- modificationDateTime of the event version the row comes from
    received_at   TIMESTAMPTZ NOT NULL,
    as_of         TIMESTAMPTZ NOT NULL,      -- first known as of (the ingest hour, or the push's receive time)
    cancelled     BOOLEAN NOT NULL DEFAULT false,
    cancel_reason VARCHAR CHECK (cancel_reason IN ('deleted', 'superseded')),
    superseded_at TIMESTAMPTZ,               -- modificationDateTime of the version (or deletion) that cancelled it
    PRIMARY KEY (event_id, interval_id, sub_interval, payload_type, site)
);

-- What could not be used as received: malformed payloads, unknown payload types, targets naming no fleet
-- site, events already over, cancellations of unknown events, versions older than the one applied.
CREATE TABLE IF NOT EXISTS staging.grid_event_problems (
    event_id    VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,
    problem     VARCHAR NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    as_of       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (event_id, problem)
);

COMMENT ON TABLE raw.openadr_events IS 'Every OpenADR 3 event payload as received from the VTN (poll or push), appended, never changed';
COMMENT ON TABLE staging.grid_event_state IS 'Per OpenADR event: the version applied (modificationDateTime) and whether it was deleted';
COMMENT ON TABLE staging.grid_events IS 'OpenADR 3 event intervals per fleet site, normalised (MW, currency/MWh, gCO2/kWh); planner reads rows where not cancelled';
COMMENT ON TABLE staging.grid_event_problems IS 'OpenADR event payloads or notifications that could not be used as received, and why';
COMMENT ON COLUMN staging.grid_events.value IS 'Normalised value: MW for capacity limits and setpoints, currency/MWh for prices, g CO2/kWh for GHG, 0-3 for SIMPLE, 1 for an alert in force [MW | USD/MWh | g CO2/kWh | level]';
COMMENT ON COLUMN staging.grid_events."end" IS 'Interval end, exclusive, UTC';
COMMENT ON COLUMN staging.grid_events.cancelled IS 'true: deleted by the VTN or dropped by a later version of the event (kept, never deleted)';
