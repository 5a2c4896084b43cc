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
