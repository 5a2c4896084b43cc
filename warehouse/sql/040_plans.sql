-- Receding-horizon plans. Each hourly partition of mpc_plan writes one plans.runs row, the whole horizon
-- (site_hours, job_runs, job_starts, routing), the committed first hour (dispatch*) and the state the next
-- hour starts from. Column meanings follow mpc.results.Result.

-- The sites the fleet plans and the carbon series each one is planned on (written by every plan).
CREATE TABLE IF NOT EXISTS plans.sites (
    site          VARCHAR PRIMARY KEY,
    zone          VARCHAR NOT NULL,
    carbon_series VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS plans.runs (
    plan_hour        TIMESTAMPTZ PRIMARY KEY,   -- t0: the hour the plan was made at
    horizon_h        INTEGER NOT NULL,
    status           VARCHAR NOT NULL,          -- optimal | feasible (time limit, incumbent) | ...
    termination      VARCHAR,
    objective        DOUBLE,                    -- $ over the horizon, objective (1)
    bound            DOUBLE,
    mip_gap          DOUBLE,
    build_s          DOUBLE,
    solve_s          DOUBLE,
    forecast_policy  VARCHAR NOT NULL,          -- the carbon/load forecast model ids, or 'persistence'
    degraded         BOOLEAN NOT NULL,          -- planned on persistence because no fresh model forecast
    degraded_reason  VARCHAR,
    expected_emissions_t DOUBLE,
    expected_cost    DOUBLE,
    budget_left_t    DOUBLE,                    -- carbon budget left for the day at t0 (NULL: no budget)
    window_budget_t  DOUBLE,                    -- the share of it this window may use
    jobs_started     VARCHAR[],                 -- jobs started in the committed hour
    jobs_missed      VARCHAR[],
    created_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS plans.site_hours (
    plan_hour     TIMESTAMPTZ NOT NULL,
    target_time   TIMESTAMPTZ NOT NULL,
    site          VARCHAR NOT NULL,
    it_mw DOUBLE, training_mw DOUBLE, inference_mw DOUBLE, base_mw DOUBLE, facility_mw DOUBLE,
    gen_available_mw DOUBLE, gen_used_mw DOUBLE, import_mw DOUBLE, export_mw DOUBLE,
    charge_mw DOUBLE, discharge_mw DOUBLE, soc_mwh DOUBLE,
    emissions_t DOUBLE, carbon_g_kwh DOUBLE, price_import DOUBLE, price_export DOUBLE, shed_mw DOUBLE,
    import_cap_mw DOUBLE,   -- the grid operator's import limit in force (NULL: none; staging.grid_events)
    stability BOOLEAN,      -- planned stability-first (a grid emergency or flex alert)
    PRIMARY KEY (plan_hour, target_time, site)
);
ALTER TABLE plans.site_hours ADD COLUMN IF NOT EXISTS import_cap_mw DOUBLE;
ALTER TABLE plans.site_hours ADD COLUMN IF NOT EXISTS stability BOOLEAN;

CREATE TABLE IF NOT EXISTS plans.job_runs (
    plan_hour   TIMESTAMPTZ NOT NULL,
    target_time TIMESTAMPTZ NOT NULL,
    job_id      VARCHAR NOT NULL,
    site        VARCHAR NOT NULL,
    power_mw    DOUBLE NOT NULL,
    PRIMARY KEY (plan_hour, target_time, job_id)
);

CREATE TABLE IF NOT EXISTS plans.routing (
    plan_hour   TIMESTAMPTZ NOT NULL,
    target_time TIMESTAMPTZ NOT NULL,
    class       VARCHAR NOT NULL,
    site        VARCHAR NOT NULL,
    units       DOUBLE NOT NULL,
    PRIMARY KEY (plan_hour, target_time, class, site)
);

-- The committed hour as realised (re-balanced against realised demand and intensity where known).
CREATE TABLE IF NOT EXISTS plans.dispatch (
    hour          TIMESTAMPTZ NOT NULL,
    site          VARCHAR NOT NULL,
    it_mw DOUBLE, training_mw DOUBLE, inference_mw DOUBLE, base_mw DOUBLE, facility_mw DOUBLE,
    gen_available_mw DOUBLE, gen_used_mw DOUBLE, import_mw DOUBLE, export_mw DOUBLE,
    charge_mw DOUBLE, discharge_mw DOUBLE, soc_mwh DOUBLE,
    emissions_t DOUBLE, carbon_g_kwh DOUBLE, price_import DOUBLE, price_export DOUBLE, shed_mw DOUBLE,
    cost          DOUBLE,                 -- import cost - export revenue + battery throughput ($; mpc.results.energy_cost)
    jobs_running  VARCHAR[],
    import_cap_mw DOUBLE,
    stability     BOOLEAN,
    PRIMARY KEY (hour, site)
);
ALTER TABLE plans.dispatch ADD COLUMN IF NOT EXISTS import_cap_mw DOUBLE;
ALTER TABLE plans.dispatch ADD COLUMN IF NOT EXISTS stability BOOLEAN;

CREATE TABLE IF NOT EXISTS plans.dispatch_routing (
    hour   TIMESTAMPTZ NOT NULL,
    class  VARCHAR NOT NULL,
    site   VARCHAR NOT NULL,
    units  DOUBLE NOT NULL,
    PRIMARY KEY (hour, class, site)
);

-- What the carbon-agnostic policy (jobs as soon as possible at home, inference at home, passive energy)
-- does in the same hours on the same realised signals: the baseline for savings.
CREATE TABLE IF NOT EXISTS plans.agnostic (
    hour        TIMESTAMPTZ NOT NULL,
    site        VARCHAR NOT NULL,
    facility_mw DOUBLE, import_mw DOUBLE, export_mw DOUBLE,
    emissions_t DOUBLE,
    cost        DOUBLE,
    PRIMARY KEY (hour, site)
);

-- State at the START of each hour (JSON of mpc.receding.State).
CREATE TABLE IF NOT EXISTS plans.state (
    hour        TIMESTAMPTZ PRIMARY KEY,
    state       JSON NOT NULL,
    written_by  TIMESTAMPTZ NOT NULL          -- the plan_hour whose step produced it
);

-- Closed-loop backtests (gridflex backtest / the backtest asset).
CREATE TABLE IF NOT EXISTS plans.backtests (
    backtest_id  VARCHAR NOT NULL,
    policy       VARCHAR NOT NULL,
    hours        INTEGER,
    emissions    DOUBLE,
    cost         DOUBLE,
    objective    DOUBLE,
    missed_deadlines INTEGER,
    unserved_units   DOUBLE,
    savings_vs_agnostic_pct DOUBLE,
    share_of_oracle_savings DOUBLE,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (backtest_id, policy)
);
ALTER TABLE plans.runs ADD COLUMN IF NOT EXISTS inputs_hash VARCHAR;  -- mpc Instance.fingerprint() + the state: same hash, same plan
-- What the plan did with its carbon allocation (mpc.budget): planned and over (slack, t), and the
-- inference it could not serve in the window.
ALTER TABLE plans.runs ADD COLUMN IF NOT EXISTS budget_planned_t DOUBLE;
ALTER TABLE plans.runs ADD COLUMN IF NOT EXISTS budget_over_t DOUBLE;
ALTER TABLE plans.runs ADD COLUMN IF NOT EXISTS unserved_units DOUBLE;
ALTER TABLE plans.site_hours ADD COLUMN IF NOT EXISTS cost DOUBLE;  -- mpc.results.energy_cost ($)
-- Work done by each backtest policy, so savings read like for like (mpc.receding.work_done).
ALTER TABLE plans.backtests ADD COLUMN IF NOT EXISTS training_mwh DOUBLE;
ALTER TABLE plans.backtests ADD COLUMN IF NOT EXISTS jobs_completed INTEGER;
ALTER TABLE plans.backtests ADD COLUMN IF NOT EXISTS g_per_useful_kwh DOUBLE;
ALTER TABLE plans.backtests ADD COLUMN IF NOT EXISTS like_for_like_saving_pct DOUBLE;
ALTER TABLE plans.backtests ADD COLUMN IF NOT EXISTS budget_over_t DOUBLE;

-- The committed hours re-stated on what actually happened, once it is known (the jobs run and the
-- battery target of the committed hour kept, routing and energy re-solved on the actual signals);
-- plans.dispatch keeps what was expected when the hour was committed.
CREATE TABLE IF NOT EXISTS plans.dispatch_realised (
    hour          TIMESTAMPTZ NOT NULL,
    site          VARCHAR NOT NULL,
    it_mw DOUBLE, facility_mw DOUBLE, gen_available_mw DOUBLE, gen_used_mw DOUBLE,
    import_mw DOUBLE, export_mw DOUBLE, charge_mw DOUBLE, discharge_mw DOUBLE, soc_mwh DOUBLE,
    emissions_t DOUBLE, carbon_g_kwh DOUBLE, price_import DOUBLE, price_export DOUBLE, shed_mw DOUBLE,
    cost          DOUBLE,                 -- mpc.results.energy_cost ($)
    restated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (hour, site)
);

-- The re-stated hour's useful compute: inference on the actual demand (plans.dispatch has the plan's,
-- on its forecast), so the marts compare like for like with the counterfactual, which runs on actuals.
ALTER TABLE plans.dispatch_realised ADD COLUMN IF NOT EXISTS training_mw DOUBLE;
ALTER TABLE plans.dispatch_realised ADD COLUMN IF NOT EXISTS inference_mw DOUBLE;

-- The counterfactual's useful compute, so live savings read like for like (marts.emissions_daily).
ALTER TABLE plans.agnostic ADD COLUMN IF NOT EXISTS training_mw DOUBLE;
ALTER TABLE plans.agnostic ADD COLUMN IF NOT EXISTS inference_mw DOUBLE;

-- The carbon-agnostic counterfactual's state at the start of each hour (mpc.baselines.AgnosticState):
-- it advances one hour at a time, like the plans, once the hour's actuals are known.
CREATE TABLE IF NOT EXISTS plans.agnostic_state (
    hour        TIMESTAMPTZ PRIMARY KEY,
    state       JSON NOT NULL
);

-- Fleet-wide KPIs (marts.fleet_daily): each site's GPU power and embodied emissions (fleet file), the
-- fleet's daily budget in force when the hour was planned, and the jobs each policy completed per hour.
ALTER TABLE plans.sites ADD COLUMN IF NOT EXISTS gpu_kw DOUBLE;              -- kW of IT power per GPU
ALTER TABLE plans.sites ADD COLUMN IF NOT EXISTS embodied_t_per_day DOUBLE;  -- t CO2 per day (SCI's M)
ALTER TABLE plans.runs ADD COLUMN IF NOT EXISTS daily_budget_t DOUBLE;       -- t CO2 per day (NULL: none)
ALTER TABLE plans.dispatch ADD COLUMN IF NOT EXISTS jobs_completed VARCHAR[];  -- finished in the hour
ALTER TABLE plans.agnostic ADD COLUMN IF NOT EXISTS jobs_completed VARCHAR[];

-- Grid events (staging.grid_events) the window planned with, checkpointable jobs paused / resumed in the
-- committed hour, and the MWh the window plans above an operator's import limit it could not meet.
ALTER TABLE plans.runs ADD COLUMN IF NOT EXISTS grid_events VARCHAR[];
ALTER TABLE plans.runs ADD COLUMN IF NOT EXISTS jobs_paused VARCHAR[];
ALTER TABLE plans.runs ADD COLUMN IF NOT EXISTS jobs_resumed VARCHAR[];
ALTER TABLE plans.runs ADD COLUMN IF NOT EXISTS import_over_cap_mwh DOUBLE;

-- Revisions of the hour in progress (pipelines.lib.grid_response): a grid event received during the
-- hour re-plans it at once, with the jobs already running held; the hourly plan stays the record and
-- every revision is kept. kind: 'lp' (job decisions fixed, energy and routing re-dispatched) | 'full'
-- (the window re-planned: jobs may move, checkpointable ones pause).
CREATE TABLE IF NOT EXISTS plans.revisions (
    hour             TIMESTAMPTZ NOT NULL,
    revision         INTEGER NOT NULL,
    kind             VARCHAR NOT NULL,
    trigger_events   VARCHAR[],
    event_received_at TIMESTAMPTZ,            -- when the first trigger event reached gridflex
    created_at       TIMESTAMPTZ NOT NULL,     -- when the revised dispatch was stored
    response_s       DOUBLE,                   -- event received -> revised dispatch stored (s)
    solve_s          DOUBLE,
    total_s          DOUBLE,                   -- the revision's own run time (s)
    status           VARCHAR,
    objective        DOUBLE,
    jobs_paused      VARCHAR[],
    jobs_resumed     VARCHAR[],
    import_over_cap_mwh DOUBLE,
    problems         VARCHAR,
    PRIMARY KEY (hour, revision)
);

CREATE TABLE IF NOT EXISTS plans.dispatch_revisions (
    hour          TIMESTAMPTZ NOT NULL,
    revision      INTEGER NOT NULL,
    site          VARCHAR NOT NULL,
    it_mw DOUBLE, training_mw DOUBLE, inference_mw DOUBLE, base_mw DOUBLE, facility_mw DOUBLE,
    gen_available_mw DOUBLE, gen_used_mw DOUBLE, import_mw DOUBLE, export_mw DOUBLE,
    charge_mw DOUBLE, discharge_mw DOUBLE, soc_mwh DOUBLE,
    emissions_t DOUBLE, carbon_g_kwh DOUBLE, price_import DOUBLE, price_export DOUBLE, shed_mw DOUBLE,
    import_cap_mw DOUBLE, stability BOOLEAN,
    cost          DOUBLE,
    jobs_running  VARCHAR[],
    PRIMARY KEY (hour, revision, site)
);

CREATE TABLE IF NOT EXISTS plans.dispatch_routing_revisions (
    hour     TIMESTAMPTZ NOT NULL,
    revision INTEGER NOT NULL,
    class    VARCHAR NOT NULL,
    site     VARCHAR NOT NULL,
    units    DOUBLE NOT NULL,
    PRIMARY KEY (hour, revision, class, site)
);

-- The state the revised hour leads to (the start of hour + 1); pipelines.lib.plan.load_state takes the
-- newest one made after the hourly plan of that hour.
CREATE TABLE IF NOT EXISTS plans.state_revisions (
    hour        TIMESTAMPTZ NOT NULL,
    revision    INTEGER NOT NULL,
    state       JSON NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (hour, revision)
);

-- What was in force for each committed hour: its newest revision made after the hourly plan, else the
-- hourly plan's dispatch. Marts read this, not plans.dispatch.
CREATE OR REPLACE VIEW plans.dispatch_current AS
WITH latest AS (
    SELECT v.hour, max(v.revision) AS revision
    FROM plans.revisions v JOIN plans.runs r ON r.plan_hour = v.hour AND v.created_at >= r.created_at
    GROUP BY v.hour
)
SELECT d.* REPLACE (
           coalesce(x.it_mw, d.it_mw) AS it_mw, coalesce(x.training_mw, d.training_mw) AS training_mw,
           coalesce(x.inference_mw, d.inference_mw) AS inference_mw,
           coalesce(x.facility_mw, d.facility_mw) AS facility_mw,
           coalesce(x.gen_used_mw, d.gen_used_mw) AS gen_used_mw,
           coalesce(x.import_mw, d.import_mw) AS import_mw, coalesce(x.export_mw, d.export_mw) AS export_mw,
           coalesce(x.charge_mw, d.charge_mw) AS charge_mw,
           coalesce(x.discharge_mw, d.discharge_mw) AS discharge_mw,
           coalesce(x.soc_mwh, d.soc_mwh) AS soc_mwh, coalesce(x.emissions_t, d.emissions_t) AS emissions_t,
           coalesce(x.cost, d.cost) AS cost, coalesce(x.jobs_running, d.jobs_running) AS jobs_running,
           coalesce(x.import_cap_mw, d.import_cap_mw) AS import_cap_mw,
           coalesce(x.stability, d.stability) AS stability),
       coalesce(l.revision, 0) AS revision
FROM plans.dispatch d
LEFT JOIN latest l ON l.hour = d.hour
LEFT JOIN plans.dispatch_revisions x ON x.hour = d.hour AND x.revision = l.revision AND x.site = d.site;

-- Inference the committed hour could not serve or deferred, per class (revision 0: the hourly plan;
-- n: plans.revisions). priority: the class's (critical classes are never deferred on purpose).
CREATE TABLE IF NOT EXISTS plans.dispatch_unserved (
    hour     TIMESTAMPTZ NOT NULL,
    revision INTEGER NOT NULL,
    class    VARCHAR NOT NULL,
    priority VARCHAR NOT NULL,
    units    DOUBLE NOT NULL,
    PRIMARY KEY (hour, revision, class)
);

-- The fleet's inference classes as last planned, with their priority (critical | flexible | batch).
CREATE TABLE IF NOT EXISTS plans.classes (
    class    VARCHAR PRIMARY KEY,
    priority VARCHAR NOT NULL
);
-- What a demand-response program pays per MWh of import reduced against the plan in force before an
-- event (the fleet's grid_events.payment_usd_per_mwh; 0 = not paid).
ALTER TABLE plans.sites ADD COLUMN IF NOT EXISTS dr_payment_usd_per_mwh DOUBLE;

-- Inference routing in force per committed hour: the newest revision's (plans.dispatch_current), else
-- the hourly plan's.
CREATE OR REPLACE VIEW plans.dispatch_routing_current AS
SELECT d.hour, r.class, r.site, r.units, 0 AS revision
FROM plans.dispatch_routing r JOIN (SELECT DISTINCT hour, revision FROM plans.dispatch_current) d
  ON d.hour = r.hour AND d.revision = 0
UNION ALL
SELECT d.hour, r.class, r.site, r.units, r.revision
FROM plans.dispatch_routing_revisions r JOIN (SELECT DISTINCT hour, revision FROM plans.dispatch_current) d
  ON d.hour = r.hour AND d.revision = r.revision AND d.revision > 0;
