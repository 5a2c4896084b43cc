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
FROM plans.dispatch_current d LEFT JOIN plans.runs r ON r.plan_hour = d.hour
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
),
scored AS (
    SELECT *, (epoch(target_time) - epoch(issued_at)) / 3600 AS lead_h,
           abs(p50 - actual) AS abs_error,
           actual BETWEEN p10 AND p90 AS in_p10_p90
    FROM (SELECT * FROM carbon UNION ALL SELECT * FROM load)
),
-- Decision scores of each issue's first day (leads 0-23 h, only once all 24 actuals are in): the
-- Spearman correlation of forecast vs actual hours, and the regret of running a 4 h block in the
-- window that looked cleanest on p50 instead of the one that was (forecasting.metrics, k = 4).
day1 AS (
    SELECT target, series, issued_at, target_time, p50, actual,
           count(*) OVER issue AS n_hours,
           rank() OVER (PARTITION BY target, series, issued_at ORDER BY p50) AS r_fc,
           rank() OVER (PARTITION BY target, series, issued_at ORDER BY actual) AS r_act,
           avg(p50) OVER win AS fc_win, avg(actual) OVER win AS act_win,
           count(*) OVER win AS win_n
    FROM scored WHERE lead_h < 24
    WINDOW issue AS (PARTITION BY target, series, issued_at),
           win AS (PARTITION BY target, series, issued_at ORDER BY target_time
                   ROWS BETWEEN CURRENT ROW AND 3 FOLLOWING)
),
per_issue AS (
    SELECT target, series, issued_at,
           corr(r_fc, r_act) AS day_rank_corr,
           arg_min(act_win, fc_win) FILTER (WHERE win_n = 4)
             - min(act_win) FILTER (WHERE win_n = 4) AS window_regret,
           min(act_win) FILTER (WHERE win_n = 4) AS best_window
    FROM day1 WHERE n_hours = 24
    GROUP BY ALL
)
SELECT s.*, p.day_rank_corr, p.window_regret,
       100 * p.window_regret / nullif(p.best_window, 0) AS window_regret_pct
FROM scored s
LEFT JOIN per_issue p USING (target, series, issued_at);

-- Realised emissions and cost per site and UTC day, against the carbon-agnostic counterfactual on the same
-- hours: committed hours re-stated on their actuals where known (restated_hours), as committed otherwise.
CREATE OR REPLACE VIEW marts.emissions_daily AS
WITH h AS (
    SELECT d.hour, d.site, r.hour IS NOT NULL AS restated,
           coalesce(r.emissions_t, d.emissions_t) AS emissions_t, coalesce(r.cost, d.cost) AS cost,
           d.emissions_t AS committed_emissions_t,
           -- the work re-stated on the actual demand where known (the plan's is on its forecast)
           coalesce(r.training_mw, d.training_mw) AS training_mw,
           coalesce(r.inference_mw, d.inference_mw) AS inference_mw,
           a.emissions_t AS a_emissions_t, a.cost AS a_cost, a.training_mw AS a_training_mw,
           a.inference_mw AS a_inference_mw
    FROM plans.dispatch_current d
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
-- marts.fleet_daily compares the fleet's totals.
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

-- (marts.savings_daily, an earlier name of the fleet's days, is marts.fleet_daily now.)
DROP VIEW IF EXISTS marts.savings_daily;

-- The fleet hour by hour: what gridflex did (committed hours, re-stated on actuals where known) next
-- to the carbon-agnostic counterfactual on the hours it has (compared_*), the work each did, and the
-- quantities the carbon-efficiency KPIs divide by. Emissions are attributed to training and inference
-- by their share of useful IT energy (training + inference; base load and cooling are overhead shared
-- pro rata). GPU-hours = useful IT MWh x 1000 / sites.gpu_kw; embodied = sites.embodied_t_per_day / 24.
CREATE OR REPLACE VIEW marts.fleet_hourly AS
WITH req AS (
    SELECT hour, site, sum(units) AS requests FROM plans.dispatch_routing GROUP BY ALL
),
h AS (
    SELECT d.hour, d.site, r.hour IS NOT NULL AS restated, a.hour IS NOT NULL AS compared,
           coalesce(r.emissions_t, d.emissions_t) AS emissions_t, coalesce(r.cost, d.cost) AS cost,
           coalesce(r.it_mw, d.it_mw) AS it_mw,
           coalesce(r.training_mw, d.training_mw) AS training_mw,
           coalesce(r.inference_mw, d.inference_mw) AS inference_mw,
           coalesce(r.import_mw, d.import_mw) AS import_mw,
           coalesce(q.requests, 0) AS requests,
           len(coalesce(d.jobs_completed, [])) AS jobs_completed,
           s.gpu_kw, coalesce(s.embodied_t_per_day, 0) / 24 AS embodied_t,
           a.emissions_t AS a_emissions_t, a.cost AS a_cost, a.training_mw AS a_training_mw,
           a.inference_mw AS a_inference_mw, len(coalesce(a.jobs_completed, [])) AS a_jobs_completed
    FROM plans.dispatch_current d
    LEFT JOIN plans.dispatch_realised r USING (hour, site)
    LEFT JOIN plans.agnostic a USING (hour, site)
    LEFT JOIN req q USING (hour, site)
    LEFT JOIN plans.sites s USING (site)
),
f AS (
    SELECT hour, count(*) AS sites, count(*) FILTER (WHERE restated) AS restated_sites,
           count(*) FILTER (WHERE compared) AS compared_sites,
           sum(emissions_t) AS emissions_t, sum(cost) AS cost, sum(import_mw) AS import_mwh,
           sum(it_mw) AS it_mwh, sum(training_mw) AS training_mwh, sum(inference_mw) AS inference_mwh,
           sum(requests) AS inference_requests, sum(jobs_completed) AS jobs_completed,
           sum(emissions_t * training_mw / nullif(training_mw + inference_mw, 0)) AS training_emissions_t,
           sum(emissions_t * inference_mw / nullif(training_mw + inference_mw, 0)) AS inference_emissions_t,
           sum(1e3 * training_mw / gpu_kw) AS training_gpu_hours,
           sum(1e3 * (training_mw + inference_mw) / gpu_kw) AS gpu_hours,
           sum(embodied_t) AS embodied_t,
           sum(emissions_t) FILTER (WHERE compared) AS compared_emissions_t,
           sum(cost) FILTER (WHERE compared) AS compared_cost,
           sum(training_mw) FILTER (WHERE compared) AS compared_training_mwh,
           sum(inference_mw) FILTER (WHERE compared) AS compared_inference_mwh,
           sum(jobs_completed) FILTER (WHERE compared) AS compared_jobs_completed,
           sum(a_emissions_t) AS agnostic_emissions_t, sum(a_cost) AS agnostic_cost,
           sum(a_training_mw) AS agnostic_training_mwh, sum(a_inference_mw) AS agnostic_inference_mwh,
           sum(a_jobs_completed) AS agnostic_jobs_completed
    FROM h GROUP BY hour
)
SELECT f.*, r.daily_budget_t, r.budget_over_t AS window_budget_over_t,
       len(coalesce(r.jobs_missed, [])) AS jobs_missed, r.degraded, r.status AS plan_status
FROM f LEFT JOIN plans.runs r ON r.plan_hour = f.hour
ORDER BY hour;

-- The fleet per UTC day (marts.fleet_daily) and over everything stored (marts.fleet_total): realised
-- emissions and cost, the saving vs carbon-agnostic on the hours both have, like for like (the work
-- each did, and the saving in emissions per kWh of useful compute, so a policy that did less work
-- cannot look better for it), jobs completed and missed, the daily budget and its overrun, and the
-- carbon-efficiency KPIs: g CO2 per kWh of IT energy, per GPU-hour of training, per 1,000 inference
-- requests, and the Software Carbon Intensity (ISO/IEC 21031) SCI = (E*I + M) / R with R = GPU-hours of
-- useful compute and M the sites' embodied emissions (0 unless the fleet sets embodied_t_per_day).
CREATE OR REPLACE VIEW marts.fleet_daily AS
WITH d AS (
    SELECT date_trunc('day', hour) AS day, count(*) AS hours, sum(sites) AS site_hours,
           sum(restated_sites) AS restated_site_hours, sum(compared_sites) AS compared_site_hours,
           sum(emissions_t) AS emissions_t, sum(cost) AS cost, sum(import_mwh) AS import_mwh,
           sum(it_mwh) AS it_mwh, sum(training_mwh) AS training_mwh, sum(inference_mwh) AS inference_mwh,
           sum(inference_requests) AS inference_requests, sum(jobs_completed) AS jobs_completed,
           sum(jobs_missed) AS jobs_missed, sum(training_emissions_t) AS training_emissions_t,
           sum(inference_emissions_t) AS inference_emissions_t,
           sum(training_gpu_hours) AS training_gpu_hours, sum(gpu_hours) AS gpu_hours,
           sum(embodied_t) AS embodied_t,
           sum(compared_emissions_t) AS compared_emissions_t, sum(compared_cost) AS compared_cost,
           sum(compared_training_mwh) AS compared_training_mwh,
           sum(compared_inference_mwh) AS compared_inference_mwh,
           sum(compared_jobs_completed) AS compared_jobs_completed,
           sum(agnostic_emissions_t) AS agnostic_emissions_t, sum(agnostic_cost) AS agnostic_cost,
           sum(agnostic_training_mwh) AS agnostic_training_mwh,
           sum(agnostic_inference_mwh) AS agnostic_inference_mwh,
           sum(agnostic_jobs_completed) AS agnostic_jobs_completed,
           max(daily_budget_t) AS budget_t,
           count(*) FILTER (WHERE window_budget_over_t > 1e-6) AS windows_over_budget,
           count(*) FILTER (WHERE degraded) AS degraded_hours
    FROM marts.fleet_hourly GROUP BY ALL
)
SELECT day, hours, site_hours, restated_site_hours, compared_site_hours,
       emissions_t, cost, agnostic_emissions_t, compared_emissions_t,
       agnostic_emissions_t - compared_emissions_t AS emissions_saved_t,
       100 * (1 - compared_emissions_t / nullif(agnostic_emissions_t, 0)) AS emissions_saved_pct,
       agnostic_cost - compared_cost AS cost_saved,
       it_mwh, training_mwh, inference_mwh, compared_training_mwh, compared_inference_mwh,
       agnostic_training_mwh, agnostic_inference_mwh,
       jobs_completed, compared_jobs_completed, agnostic_jobs_completed, jobs_missed,
       inference_requests, training_gpu_hours, gpu_hours,
       budget_t, greatest(emissions_t - budget_t, 0) AS budget_over_t, windows_over_budget,
       degraded_hours,
       1e3 * emissions_t / nullif(it_mwh, 0) AS g_per_it_kwh,
       1e3 * compared_emissions_t / nullif(compared_training_mwh + compared_inference_mwh, 0)
           AS g_per_useful_kwh,
       1e3 * agnostic_emissions_t / nullif(agnostic_training_mwh + agnostic_inference_mwh, 0)
           AS agnostic_g_per_useful_kwh,
       100 * (1 - (compared_emissions_t / nullif(compared_training_mwh + compared_inference_mwh, 0))
                / nullif(agnostic_emissions_t / nullif(agnostic_training_mwh + agnostic_inference_mwh, 0), 0))
           AS like_for_like_saved_pct,
       1e6 * training_emissions_t / nullif(training_gpu_hours, 0) AS g_per_training_gpu_hour,
       1e6 * inference_emissions_t / nullif(inference_requests / 1e3, 0) AS g_per_1k_requests,
       embodied_t, embodied_t > 0 AS embodied_accounted,
       1e6 * (emissions_t + embodied_t) / nullif(gpu_hours, 0) AS sci_g_per_gpu_hour
FROM d
ORDER BY day;

-- Everything stored in one row: the same columns as marts.fleet_daily (daily budget rows summed).
CREATE OR REPLACE VIEW marts.fleet_total AS
WITH t AS (
    SELECT min(day) AS first_day, max(day) AS last_day, count(*) AS days, sum(hours) AS hours,
           sum(site_hours) AS site_hours, sum(restated_site_hours) AS restated_site_hours,
           sum(compared_site_hours) AS compared_site_hours,
           sum(emissions_t) AS emissions_t, sum(cost) AS cost,
           sum(agnostic_emissions_t) AS agnostic_emissions_t,
           sum(compared_emissions_t) AS compared_emissions_t,
           sum(cost_saved) AS cost_saved,
           sum(it_mwh) AS it_mwh, sum(training_mwh) AS training_mwh, sum(inference_mwh) AS inference_mwh,
           sum(compared_training_mwh) AS compared_training_mwh,
           sum(compared_inference_mwh) AS compared_inference_mwh,
           sum(agnostic_training_mwh) AS agnostic_training_mwh,
           sum(agnostic_inference_mwh) AS agnostic_inference_mwh,
           sum(jobs_completed) AS jobs_completed, sum(compared_jobs_completed) AS compared_jobs_completed,
           sum(agnostic_jobs_completed) AS agnostic_jobs_completed, sum(jobs_missed) AS jobs_missed,
           sum(inference_requests) AS inference_requests,
           sum(training_gpu_hours) AS training_gpu_hours, sum(gpu_hours) AS gpu_hours,
           sum(budget_t) AS budget_t, sum(budget_over_t) AS budget_over_t,
           count(*) FILTER (WHERE budget_over_t > 1e-6) AS days_over_budget,
           sum(windows_over_budget) AS windows_over_budget, sum(degraded_hours) AS degraded_hours,
           sum(embodied_t) AS embodied_t,
           sum(g_per_training_gpu_hour * training_gpu_hours) AS training_g,
           sum(g_per_1k_requests * inference_requests / 1e3) AS inference_g
    FROM marts.fleet_daily
)
SELECT first_day, last_day, days, hours, site_hours, restated_site_hours, compared_site_hours,
       emissions_t, cost, agnostic_emissions_t, compared_emissions_t,
       agnostic_emissions_t - compared_emissions_t AS emissions_saved_t,
       100 * (1 - compared_emissions_t / nullif(agnostic_emissions_t, 0)) AS emissions_saved_pct,
       cost_saved, it_mwh, training_mwh, inference_mwh, compared_training_mwh, compared_inference_mwh,
       agnostic_training_mwh, agnostic_inference_mwh, jobs_completed, compared_jobs_completed,
       agnostic_jobs_completed, jobs_missed, inference_requests, training_gpu_hours, gpu_hours,
       budget_t, budget_over_t, days_over_budget, windows_over_budget, degraded_hours,
       1e3 * emissions_t / nullif(it_mwh, 0) AS g_per_it_kwh,
       1e3 * compared_emissions_t / nullif(compared_training_mwh + compared_inference_mwh, 0)
           AS g_per_useful_kwh,
       1e3 * agnostic_emissions_t / nullif(agnostic_training_mwh + agnostic_inference_mwh, 0)
           AS agnostic_g_per_useful_kwh,
       100 * (1 - (compared_emissions_t / nullif(compared_training_mwh + compared_inference_mwh, 0))
                / nullif(agnostic_emissions_t / nullif(agnostic_training_mwh + agnostic_inference_mwh, 0), 0))
           AS like_for_like_saved_pct,
       training_g / nullif(training_gpu_hours, 0) AS g_per_training_gpu_hour,
       inference_g / nullif(inference_requests / 1e3, 0) AS g_per_1k_requests,
       embodied_t, embodied_t > 0 AS embodied_accounted,
       1e6 * (emissions_t + embodied_t) / nullif(gpu_hours, 0) AS sci_g_per_gpu_hour
FROM t WHERE days > 0;
