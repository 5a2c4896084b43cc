-- Views users query. Re-created on every connection by the writer (CREATE OR REPLACE), so they follow
-- the code's version of the schema.

-- The latest plan, per site and hour of its horizon.
CREATE OR REPLACE VIEW marts.schedule_current AS
WITH latest AS (SELECT max(plan_hour) AS plan_hour FROM plans.runs),
jobs AS (
    SELECT r.target_time, r.site, list(r.job_id ORDER BY r.job_id) AS jobs_running,
           sum(r.power_mw) AS training_mw
    FROM plans.job_runs r JOIN latest USING (plan_hour) GROUP BY ALL
),
inf AS (
    SELECT r.target_time, r.site, sum(r.units) AS inference_units
    FROM plans.routing r JOIN latest USING (plan_hour) GROUP BY ALL
)
SELECT s.plan_hour, s.target_time AS hour, s.site,
       coalesce(j.jobs_running, []) AS jobs_running,
       coalesce(i.inference_units, 0) AS inference_routed,
       s.it_mw, s.facility_mw, s.gen_used_mw, s.import_mw AS grid_import_mw, s.export_mw AS grid_export_mw,
       s.charge_mw, s.discharge_mw, s.soc_mwh AS battery_soc_mwh, s.carbon_g_kwh,
       s.emissions_t AS expected_emissions_t,
       coalesce(s.cost, s.import_mw * s.price_import - s.export_mw * s.price_export) AS expected_cost
FROM plans.site_hours s
JOIN latest USING (plan_hour)
LEFT JOIN jobs j ON j.target_time = s.target_time AND j.site = s.site
LEFT JOIN inf i ON i.target_time = s.target_time AND i.site = s.site
ORDER BY hour, site;

-- What was committed, hour by hour, how it was decided and what the planner could not do.
-- window_net_benefit_usd: objective (1) of the window's plan, higher is better; mip_gap of the problem
-- solved; budget_*: the window's carbon allocation, what the plan planned, and what it had to exceed.
CREATE OR REPLACE VIEW marts.decisions AS
SELECT d.hour, d.site, d.jobs_running, d.it_mw, d.facility_mw, d.gen_used_mw,
       d.import_mw AS grid_import_mw, d.export_mw AS grid_export_mw,
       d.charge_mw, d.discharge_mw, d.soc_mwh AS battery_soc_mwh,
       d.carbon_g_kwh, d.emissions_t, d.cost,
       r.status AS plan_status, r.objective AS window_net_benefit_usd, r.mip_gap, r.solve_s,
       r.forecast_policy, r.degraded, r.degraded_reason, r.jobs_started, r.jobs_missed,
       r.window_budget_t AS budget_allocated_t, r.budget_planned_t, r.budget_over_t,
       r.unserved_units AS window_unserved_units
FROM plans.dispatch d LEFT JOIN plans.runs r ON r.plan_hour = d.hour
ORDER BY d.hour, d.site;

-- Forecasts against the actuals that have arrived since. lead_h = hours from issue to target.
CREATE OR REPLACE VIEW marts.forecast_accuracy AS
WITH carbon AS (
    SELECT 'carbon' AS target, f.series, f.issued_at, f.target_time, f.model, f.degraded,
           f.p10, f.p50, f.p90, c.value AS actual
    FROM forecasts.carbon f
    JOIN plans.sites s ON s.site = f.series
    JOIN staging.carbon_best c ON c.series = s.carbon_series AND c.ts = f.target_time
),
load AS (
    SELECT 'load' AS target, f.series, f.issued_at, f.target_time, f.model, f.degraded,
           f.p10, f.p50, f.p90, l.value AS actual
    FROM forecasts.load f
    JOIN (SELECT series, ts, sum(value) AS value FROM staging.load GROUP BY ALL) l
      ON l.series = f.series AND l.ts = f.target_time
)
SELECT *, (epoch(target_time) - epoch(issued_at)) / 3600 AS lead_h,
       abs(p50 - actual) AS abs_error,
       actual BETWEEN p10 AND p90 AS in_p10_p90
FROM (SELECT * FROM carbon UNION ALL SELECT * FROM load);

-- Realised emissions and cost per site and UTC day, against the carbon-agnostic counterfactual on the same
-- hours: committed hours re-stated on their actuals where known (restated_hours), as committed otherwise.
CREATE OR REPLACE VIEW marts.emissions_daily AS
WITH h AS (
    SELECT d.hour, d.site, r.hour IS NOT NULL AS restated,
           coalesce(r.emissions_t, d.emissions_t) AS emissions_t, coalesce(r.cost, d.cost) AS cost,
           d.emissions_t AS committed_emissions_t, d.training_mw, d.inference_mw,
           a.emissions_t AS a_emissions_t, a.cost AS a_cost, a.training_mw AS a_training_mw,
           a.inference_mw AS a_inference_mw
    FROM plans.dispatch d
    LEFT JOIN plans.dispatch_realised r USING (hour, site)
    LEFT JOIN plans.agnostic a USING (hour, site)
),
d AS (
    SELECT date_trunc('day', hour) AS day, site, count(*) AS hours,
           count(*) FILTER (WHERE restated) AS restated_hours,
           count(a_emissions_t) AS compared_hours,
           sum(emissions_t) AS emissions_t, sum(cost) AS cost,
           sum(committed_emissions_t) AS committed_emissions_t,
           sum(training_mw) AS training_mwh, sum(inference_mw) AS inference_mwh,
           -- the same hours, for the comparison (the counterfactual needs the hour's actuals)
           sum(emissions_t) FILTER (WHERE a_emissions_t IS NOT NULL) AS compared_emissions_t,
           sum(cost) FILTER (WHERE a_emissions_t IS NOT NULL) AS compared_cost,
           sum(training_mw) FILTER (WHERE a_emissions_t IS NOT NULL) AS compared_training_mwh,
           sum(inference_mw) FILTER (WHERE a_emissions_t IS NOT NULL) AS compared_inference_mwh,
           sum(a_emissions_t) AS agnostic_emissions_t, sum(a_cost) AS agnostic_cost,
           sum(a_training_mw) AS agnostic_training_mwh, sum(a_inference_mw) AS agnostic_inference_mwh
    FROM h GROUP BY ALL
)
-- Savings compare the hours both have (compared_hours: the counterfactual advances once an hour's
-- actuals are known). Like for like: emissions per kWh of useful compute (training + inference IT
-- energy; base load and cooling are overhead), as mpc.receding.work_done does for the backtest.
-- Per site and day the two policies run different work (jobs move between sites and hours):
-- marts.savings_daily compares the fleet's totals.
SELECT day, site, hours, restated_hours, compared_hours, emissions_t, cost, agnostic_emissions_t,
       agnostic_cost,
       agnostic_emissions_t - compared_emissions_t AS emissions_saved_t,
       100 * (agnostic_emissions_t - compared_emissions_t) / nullif(agnostic_emissions_t, 0) AS emissions_saved_pct,
       agnostic_cost - compared_cost AS cost_saved,
       training_mwh, agnostic_training_mwh, inference_mwh, agnostic_inference_mwh,
       1e3 * emissions_t / nullif(training_mwh + inference_mwh, 0) AS g_per_useful_kwh,
       compared_emissions_t, compared_cost, compared_training_mwh, compared_inference_mwh
FROM d
ORDER BY day, site;

-- The fleet's realised savings vs carbon-agnostic per day, like for like: the work each did
-- (training and inference MWh of IT energy) next to the emissions, and the saving in emissions per
-- kWh of useful compute, so a day on which gridflex did less work cannot look better for it.
CREATE OR REPLACE VIEW marts.savings_daily AS
WITH f AS (
    SELECT day, sum(hours) AS site_hours, sum(compared_hours) AS compared_site_hours,
           sum(restated_hours) AS restated_site_hours,
           sum(compared_emissions_t) AS emissions_t, sum(agnostic_emissions_t) AS agnostic_emissions_t,
           sum(compared_cost) AS cost, sum(agnostic_cost) AS agnostic_cost,
           sum(compared_training_mwh) AS training_mwh, sum(agnostic_training_mwh) AS agnostic_training_mwh,
           sum(compared_inference_mwh) AS inference_mwh,
           sum(agnostic_inference_mwh) AS agnostic_inference_mwh
    FROM marts.emissions_daily GROUP BY day
)
SELECT *, 100 * (1 - emissions_t / nullif(agnostic_emissions_t, 0)) AS emissions_saved_pct,
       agnostic_cost - cost AS cost_saved,
       1e3 * emissions_t / nullif(training_mwh + inference_mwh, 0) AS g_per_useful_kwh,
       1e3 * agnostic_emissions_t / nullif(agnostic_training_mwh + agnostic_inference_mwh, 0)
           AS agnostic_g_per_useful_kwh,
       100 * (1 - (emissions_t / nullif(training_mwh + inference_mwh, 0))
                / nullif(agnostic_emissions_t / nullif(agnostic_training_mwh + agnostic_inference_mwh, 0), 0))
           AS like_for_like_saved_pct
FROM f WHERE compared_site_hours > 0
ORDER BY day;
