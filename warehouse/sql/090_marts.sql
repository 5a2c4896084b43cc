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
WITH d AS (
    SELECT date_trunc('day', d.hour) AS day, d.site, count(*) AS hours,
           count(r.hour) AS restated_hours,
           sum(coalesce(r.emissions_t, d.emissions_t)) AS emissions_t,
           sum(coalesce(r.cost, d.cost)) AS cost,
           sum(d.emissions_t) AS committed_emissions_t
    FROM plans.dispatch d LEFT JOIN plans.dispatch_realised r USING (hour, site) GROUP BY ALL
),
a AS (
    SELECT date_trunc('day', hour) AS day, site,
           sum(emissions_t) AS agnostic_emissions_t, sum(cost) AS agnostic_cost
    FROM plans.agnostic a WHERE a.hour IN (SELECT hour FROM plans.dispatch) GROUP BY ALL
)
SELECT d.day, d.site, d.hours, d.restated_hours, d.emissions_t, d.cost, a.agnostic_emissions_t,
       a.agnostic_cost,
       a.agnostic_emissions_t - d.emissions_t AS emissions_saved_t,
       100 * (a.agnostic_emissions_t - d.emissions_t) / nullif(a.agnostic_emissions_t, 0) AS emissions_saved_pct,
       a.agnostic_cost - d.cost AS cost_saved
FROM d LEFT JOIN a USING (day, site)
ORDER BY d.day, d.site;
