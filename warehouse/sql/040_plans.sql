-- One row per hourly plan (the mpc_plan partition): how it was solved and on what.
CREATE TABLE IF NOT EXISTS plans.runs (
    plan_hour        TIMESTAMPTZ PRIMARY KEY,   -- t0: the hour the plan was made for
    horizon_h        INTEGER NOT NULL,
    status           VARCHAR NOT NULL,
    termination      VARCHAR,
    objective        DOUBLE,
    mip_gap          DOUBLE,
    build_s          DOUBLE,
    solve_s          DOUBLE,
    forecast_policy  VARCHAR NOT NULL,          -- tft | persistence (degraded) | perfect
    degraded         BOOLEAN NOT NULL,
    degraded_reason  VARCHAR,
    expected_emissions_t DOUBLE,
    expected_cost    DOUBLE,
    budget_left_t    DOUBLE,
    created_at       TIMESTAMPTZ NOT NULL
);

-- The whole horizon of each plan, per site and hour.
CREATE TABLE IF NOT EXISTS plans.site_hours (
    plan_hour     TIMESTAMPTZ NOT NULL,
    target_time   TIMESTAMPTZ NOT NULL,
    site          VARCHAR NOT NULL,
    it_mw         DOUBLE, facility_mw DOUBLE, generation_mw DOUBLE,
    import_mw     DOUBLE, export_mw DOUBLE,
    charge_mw     DOUBLE, discharge_mw DOUBLE, soc_mwh DOUBLE,
    carbon_g_kwh  DOUBLE, price_import DOUBLE,
    emissions_t   DOUBLE, cost DOUBLE,
    jobs_running  VARCHAR[],
    inference_units DOUBLE,
    PRIMARY KEY (plan_hour, target_time, site)
);

-- Job placements planned at each plan hour (start hour and site per job).
CREATE TABLE IF NOT EXISTS plans.job_starts (
    plan_hour   TIMESTAMPTZ NOT NULL,
    job_id      VARCHAR NOT NULL,
    site        VARCHAR NOT NULL,
    start_time  TIMESTAMPTZ NOT NULL,
    duration_h  INTEGER NOT NULL,
    PRIMARY KEY (plan_hour, job_id)
);

-- Inference routing planned per class, site and hour.
CREATE TABLE IF NOT EXISTS plans.routing (
    plan_hour   TIMESTAMPTZ NOT NULL,
    target_time TIMESTAMPTZ NOT NULL,
    class       VARCHAR NOT NULL,
    site        VARCHAR NOT NULL,
    units       DOUBLE NOT NULL,
    PRIMARY KEY (plan_hour, target_time, class, site)
);

-- The committed first hour, with what was realised (realised carbon intensity and demand).
CREATE TABLE IF NOT EXISTS plans.dispatch (
    hour          TIMESTAMPTZ NOT NULL,
    site          VARCHAR NOT NULL,
    it_mw DOUBLE, facility_mw DOUBLE, generation_mw DOUBLE,
    import_mw DOUBLE, export_mw DOUBLE, charge_mw DOUBLE, discharge_mw DOUBLE, soc_mwh DOUBLE,
    jobs_running  VARCHAR[],
    inference_units DOUBLE,
    carbon_g_kwh  DOUBLE,                 -- realised
    emissions_t   DOUBLE,                 -- realised
    cost          DOUBLE,                 -- realised: import cost - export revenue
    agnostic_emissions_t DOUBLE,          -- the carbon-agnostic policy in the same hour
    agnostic_cost DOUBLE,
    forecast_policy VARCHAR,
    PRIMARY KEY (hour, site)
);

-- State carried from one hour to the next (JSON: SoC per site, running jobs, finished jobs, budget left).
CREATE TABLE IF NOT EXISTS plans.state (
    hour        TIMESTAMPTZ PRIMARY KEY,   -- state at the START of this hour
    state       JSON NOT NULL,
    agnostic_state JSON
);

-- Closed-loop backtest results (gridflex backtest / the backtest asset).
CREATE TABLE IF NOT EXISTS plans.backtests (
    backtest_id  VARCHAR NOT NULL,
    policy       VARCHAR NOT NULL,
    emissions    DOUBLE, cost DOUBLE, missed_deadlines INTEGER,
    savings_vs_agnostic_pct DOUBLE, share_of_oracle_savings DOUBLE,
    hours        INTEGER,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (backtest_id, policy)
);
