-- Carbon intensity, always gCO2eq/kWh. signal: average (Electricity Maps) | marginal (WattTime) -- different
-- quantities, kept apart by series. factor: direct | lifecycle (averages) or the WattTime signal type.
CREATE TABLE IF NOT EXISTS staging.carbon_intensity (
    series            VARCHAR NOT NULL,   -- "<zone>:<signal>:<factor>", e.g. "GB:average:direct"
    zone              VARCHAR NOT NULL,
    ts                TIMESTAMPTZ NOT NULL, -- hour start, UTC
    value             DOUBLE NOT NULL CHECK (value >= 0),
    unit              VARCHAR NOT NULL DEFAULT 'gCO2eq/kWh',
    signal            VARCHAR NOT NULL CHECK (signal IN ('average', 'marginal')),
    factor            VARCHAR NOT NULL,
    source            VARCHAR NOT NULL,
    is_estimated      BOOLEAN NOT NULL DEFAULT false,
    estimation_method VARCHAR,
    received_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (series, ts, source)
);

-- Forecasts published by a source (Electricity Maps forecast, WattTime forecast[/historical]).
CREATE TABLE IF NOT EXISTS staging.carbon_forecast_external (
    series            VARCHAR NOT NULL,
    zone              VARCHAR NOT NULL,
    ts                TIMESTAMPTZ NOT NULL,
    issued_at         TIMESTAMPTZ NOT NULL,
    value             DOUBLE NOT NULL CHECK (value >= 0),
    unit              VARCHAR NOT NULL DEFAULT 'gCO2eq/kWh',
    signal            VARCHAR NOT NULL CHECK (signal IN ('average', 'marginal')),
    factor            VARCHAR NOT NULL,
    source            VARCHAR NOT NULL,
    is_estimated      BOOLEAN NOT NULL DEFAULT false,
    estimation_method VARCHAR,
    received_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (series, ts, source, issued_at)
);

-- Weather that happened (reanalysis / archive / station). Units: degC, %, %, km/h, km/h, W/m2.
CREATE TABLE IF NOT EXISTS staging.weather_observed (
    location             VARCHAR NOT NULL,
    ts                   TIMESTAMPTZ NOT NULL,
    temperature_2m       DOUBLE,
    relative_humidity_2m DOUBLE,
    cloud_cover          DOUBLE,
    wind_speed_10m       DOUBLE,
    wind_speed_100m      DOUBLE,
    shortwave_radiation  DOUBLE,
    source               VARCHAR NOT NULL,
    received_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (location, ts, source)
);

-- Weather forecasts as issued: the only weather a forecast model may use as a known-future input.
CREATE TABLE IF NOT EXISTS staging.weather_forecast (
    location             VARCHAR NOT NULL,
    ts                   TIMESTAMPTZ NOT NULL,
    issued_at            TIMESTAMPTZ NOT NULL,
    temperature_2m       DOUBLE,
    relative_humidity_2m DOUBLE,
    cloud_cover          DOUBLE,
    wind_speed_10m       DOUBLE,
    wind_speed_100m      DOUBLE,
    shortwave_radiation  DOUBLE,
    source               VARCHAR NOT NULL,
    received_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (location, ts, source, issued_at)
);

CREATE TABLE IF NOT EXISTS staging.prices (
    zone        VARCHAR NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    price       DOUBLE NOT NULL,          -- per MWh, may be negative
    currency    VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (zone, ts, source)
);

-- Local generation availability as capacity factors (0..1); MW = factor x the site's capacity (fleet file).
CREATE TABLE IF NOT EXISTS staging.generation (
    site        VARCHAR NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    pv_cf       DOUBLE CHECK (pv_cf BETWEEN 0 AND 1),
    wind_cf     DOUBLE CHECK (wind_cf BETWEEN 0 AND 1),
    source      VARCHAR NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (site, ts, source)
);

-- Data-centre load: inference demand per class, GPU demand per cluster, IT power per site.
CREATE TABLE IF NOT EXISTS staging.load (
    site        VARCHAR NOT NULL,
    series      VARCHAR NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    value       DOUBLE NOT NULL CHECK (value >= 0),
    unit        VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (site, series, ts, source)
);

-- Training-job queue. release/deadline: UTC hour starts; the job must have finished by the end of the
-- deadline hour.
CREATE TABLE IF NOT EXISTS staging.jobs (
    job_id         VARCHAR NOT NULL,
    power_mw       DOUBLE NOT NULL CHECK (power_mw > 0),
    duration_h     INTEGER NOT NULL CHECK (duration_h > 0),
    release        TIMESTAMPTZ NOT NULL,
    deadline       TIMESTAMPTZ NOT NULL,
    value          DOUBLE NOT NULL,
    eligible_sites VARCHAR[] NOT NULL,
    source         VARCHAR NOT NULL,
    received_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (job_id, source)
);

-- Added columns (ALTER ... IF NOT EXISTS: warehouses made by an earlier version gain them).
-- WattTime rows are stored under the site's zone series; the WattTime region they came from:
ALTER TABLE staging.carbon_intensity ADD COLUMN IF NOT EXISTS region VARCHAR;
-- Generation is computed from weather (mpc.physics): from which quality of observation, and what had to
-- be derived (shortwave from cloud cover, 100 m wind from 10 m).
ALTER TABLE staging.generation ADD COLUMN IF NOT EXISTS weather_quality VARCHAR;
ALTER TABLE staging.generation ADD COLUMN IF NOT EXISTS derived VARCHAR;

-- The best weather observation of each (location, hour): what happened as well as it is known now.
-- quality: 'observed' (reanalysis archive, a weather file, the demo grid) > 'analysis' (a forecast run's
-- own past hours) > 'forecast' (the latest forecast issued at or before the hour). When the archive catches
-- up, the better value wins and what was computed from the worse one is restated.
CREATE OR REPLACE VIEW staging.weather_best AS
WITH candidates AS (
    SELECT location, ts, temperature_2m, relative_humidity_2m, cloud_cover, wind_speed_10m,
           wind_speed_100m, shortwave_radiation, source, received_at,
           CASE WHEN source = 'openmeteo_analysis' THEN 'analysis' ELSE 'observed' END AS quality,
           CASE WHEN source = 'openmeteo_analysis' THEN 2 ELSE 1 END AS rank
    FROM staging.weather_observed
    UNION ALL
    SELECT location, ts,
           arg_max(temperature_2m, issued_at), arg_max(relative_humidity_2m, issued_at),
           arg_max(cloud_cover, issued_at), arg_max(wind_speed_10m, issued_at),
           arg_max(wind_speed_100m, issued_at), arg_max(shortwave_radiation, issued_at),
           arg_max(source, issued_at), arg_max(received_at, issued_at), 'forecast', 3
    FROM staging.weather_forecast WHERE issued_at <= ts GROUP BY location, ts
)
SELECT * EXCLUDE (rank) FROM candidates
QUALIFY row_number() OVER (PARTITION BY location, ts ORDER BY rank, received_at DESC) = 1;

-- One value per (series, hour) when several sources stored it (an imported export and the live API, say):
-- a measured value beats an estimate, then the most recently received wins. Planning and forecasting read
-- this view, never staging.carbon_intensity directly.
CREATE OR REPLACE VIEW staging.carbon_best AS
SELECT * FROM staging.carbon_intensity
QUALIFY row_number() OVER (PARTITION BY series, ts ORDER BY is_estimated, received_at DESC, source) = 1;
