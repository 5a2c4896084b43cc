-- What each marts view and column means, in the catalogue, so `gridflex sql`, a DuckDB shell or any
-- client can show it:
--     select table_name, column_name, comment from duckdb_columns() where schema_name = 'marts';
--     select view_name, comment from duckdb_views() where schema_name = 'marts';
--
-- This file runs after 090_marts.sql on every writer connection (warehouse.db applies warehouse/sql/*.sql
-- in name order): CREATE OR REPLACE VIEW drops a view's comments, so they are set again each time.
--
-- Convention (tests/warehouse/test_comments.py checks it for every marts view): every column has a
-- comment; a numeric column ends its comment with its unit in brackets, e.g. [MW], [MWh], [t CO2],
-- [g CO2/kWh], [$], [%], [h], [s], [requests/h], [fraction], [count]. Names ending in _mw, _mwh, _t,
-- _pct, _usd, _h, _s, g_kwh / g_per_*_kwh, and cost columns must carry the matching unit.
-- A new view: add COMMENT ON VIEW and one COMMENT ON COLUMN per column here (a comment on a column
-- that does not exist fails the migration, naming the view and column).

-- ---------------------------------------------------------------------------------------------------
COMMENT ON VIEW marts.schedule_current IS 'The latest plan (max plan_hour in plans.runs), per site and hour of its horizon: what the planner intends to run, how the site is powered, and the expected emissions and cost.';
COMMENT ON COLUMN marts.schedule_current.plan_hour IS 'The hour the plan was made at (t0, UTC hour start); the same on every row: the latest plan';
COMMENT ON COLUMN marts.schedule_current.hour IS 'The planned hour (UTC hour start), from plan_hour to plan_hour + horizon - 1';
COMMENT ON COLUMN marts.schedule_current.site IS 'Fleet site (its name in the fleet file)';
COMMENT ON COLUMN marts.schedule_current.jobs_running IS 'Training jobs the plan runs at the site in this hour (job ids, sorted; empty list: none)';
COMMENT ON COLUMN marts.schedule_current.inference_routed IS 'Inference requests the plan routes to the site in this hour, all classes together [requests/h]';
COMMENT ON COLUMN marts.schedule_current.it_mw IS 'Planned IT power: base load + training + inference [MW]';
COMMENT ON COLUMN marts.schedule_current.facility_mw IS 'Planned facility power = (1 + kappa) x IT power, kappa the cooling overhead from the weather forecast [MW]';
COMMENT ON COLUMN marts.schedule_current.gen_used_mw IS 'Local generation (PV, wind) used on site [MW]';
COMMENT ON COLUMN marts.schedule_current.grid_import_mw IS 'Power imported from the grid [MW]';
COMMENT ON COLUMN marts.schedule_current.grid_export_mw IS 'Power exported to the grid [MW]';
COMMENT ON COLUMN marts.schedule_current.charge_mw IS 'Battery charging power [MW]';
COMMENT ON COLUMN marts.schedule_current.discharge_mw IS 'Battery discharging power [MW]';
COMMENT ON COLUMN marts.schedule_current.battery_soc_mwh IS 'Battery state of charge at the end of the hour [MWh]';
COMMENT ON COLUMN marts.schedule_current.carbon_g_kwh IS 'Grid carbon intensity the plan used for the hour: the p50 of the carbon forecast issued at plan_hour (persistence when the plan is degraded) [g CO2/kWh]';
COMMENT ON COLUMN marts.schedule_current.expected_emissions_t IS 'Expected emissions of the grid import: import x carbon intensity x 1 h (local generation and the battery emit nothing at the site) [t CO2]';
COMMENT ON COLUMN marts.schedule_current.expected_cost IS 'Expected energy cost of the hour: import cost - export revenue + battery throughput cost (mpc.results.energy_cost) [$]';

-- ---------------------------------------------------------------------------------------------------
COMMENT ON VIEW marts.decisions IS 'What was committed, hour by hour and site by site (the first hour of each hourly plan, re-balanced against realised demand and intensity where known at the time), with how the plan that committed it was made and what it could not do.';
COMMENT ON COLUMN marts.decisions.hour IS 'The committed hour (UTC hour start): the first hour of the plan made at that hour';
COMMENT ON COLUMN marts.decisions.site IS 'Fleet site (its name in the fleet file)';
COMMENT ON COLUMN marts.decisions.jobs_running IS 'Training jobs running at the site in the committed hour (job ids)';
COMMENT ON COLUMN marts.decisions.it_mw IS 'IT power committed: base load + training + inference [MW]';
COMMENT ON COLUMN marts.decisions.facility_mw IS 'Facility power committed = (1 + kappa) x IT power, kappa the cooling overhead [MW]';
COMMENT ON COLUMN marts.decisions.gen_used_mw IS 'Local generation (PV, wind) used on site [MW]';
COMMENT ON COLUMN marts.decisions.grid_import_mw IS 'Power imported from the grid [MW]';
COMMENT ON COLUMN marts.decisions.grid_export_mw IS 'Power exported to the grid [MW]';
COMMENT ON COLUMN marts.decisions.charge_mw IS 'Battery charging power [MW]';
COMMENT ON COLUMN marts.decisions.discharge_mw IS 'Battery discharging power [MW]';
COMMENT ON COLUMN marts.decisions.battery_soc_mwh IS 'Battery state of charge at the end of the hour [MWh]';
COMMENT ON COLUMN marts.decisions.carbon_g_kwh IS 'Grid carbon intensity the committed hour was accounted at: realised where known when it was committed, else the forecast [g CO2/kWh]';
COMMENT ON COLUMN marts.decisions.emissions_t IS 'Emissions of the committed hour''s grid import: import x carbon intensity x 1 h [t CO2]';
COMMENT ON COLUMN marts.decisions.cost IS 'Energy cost of the committed hour: import cost - export revenue + battery throughput cost (mpc.results.energy_cost) [$]';
COMMENT ON COLUMN marts.decisions.plan_status IS 'Status of the plan made at this hour: optimal | feasible (time limit or gap, with an incumbent) | infeasible | no_solution | fallback (no incumbent: planned by the carbon-agnostic rule)';
COMMENT ON COLUMN marts.decisions.window_net_benefit_usd IS 'Objective (1) of the plan over its window: revenue - energy cost - carbon cost; higher is better [$]';
COMMENT ON COLUMN marts.decisions.mip_gap IS 'Relative MIP gap of the plan: (bound - objective) / max(1, |objective|); 0.01 = 1 % [fraction]';
COMMENT ON COLUMN marts.decisions.solve_s IS 'HiGHS solve time of the plan (model building not included) [s]';
COMMENT ON COLUMN marts.decisions.forecast_policy IS 'The forecasts the plan used: ''carbon=<model id>; load=<model id>'', or ''persistence''';
COMMENT ON COLUMN marts.decisions.degraded IS 'True when the plan ran on a persistence forecast or filled missing prices or weather, or could not do everything (fallback plan, budget exceeded, jobs missed, inference unserved)';
COMMENT ON COLUMN marts.decisions.degraded_reason IS 'Why the plan is degraded, in words (NULL when it is not)';
COMMENT ON COLUMN marts.decisions.jobs_started IS 'Jobs started in the committed hour (job ids)';
COMMENT ON COLUMN marts.decisions.jobs_missed IS 'Jobs this plan found missed: they can no longer meet their deadline (job ids)';
COMMENT ON COLUMN marts.decisions.budget_allocated_t IS 'The share of the daily carbon budget the plan''s window could use (NULL: no budget) [t CO2]';
COMMENT ON COLUMN marts.decisions.budget_planned_t IS 'Emissions the plan planned over its window, against that allocation [t CO2]';
COMMENT ON COLUMN marts.decisions.budget_over_t IS 'Emissions the plan had to plan beyond the allocation (0 when it fits) [t CO2]';
COMMENT ON COLUMN marts.decisions.window_unserved_units IS 'Inference requests the plan could not serve over its window [requests]';

-- ---------------------------------------------------------------------------------------------------
COMMENT ON VIEW marts.forecast_accuracy IS 'Every stored forecast (carbon per site, load per inference class) against the actual that has arrived since, with the lead time and the error.';
COMMENT ON COLUMN marts.forecast_accuracy.target IS 'What is forecast: carbon (grid intensity of a site) | load (demand of an inference class)';
COMMENT ON COLUMN marts.forecast_accuracy.series IS 'The site (carbon) or the inference class (load)';
COMMENT ON COLUMN marts.forecast_accuracy.issued_at IS 'When the forecast was issued (UTC hour start)';
COMMENT ON COLUMN marts.forecast_accuracy.target_time IS 'The hour forecast (UTC hour start)';
COMMENT ON COLUMN marts.forecast_accuracy.model IS 'The model that issued it: a TFT model id in forecasts.models, or ''persistence''';
COMMENT ON COLUMN marts.forecast_accuracy.degraded IS 'True when the forecast fell back to persistence (no fresh model, or inference failed)';
COMMENT ON COLUMN marts.forecast_accuracy.p10 IS '10 % quantile of the forecast (g CO2/kWh for carbon, requests/h for load) [g CO2/kWh | requests/h]';
COMMENT ON COLUMN marts.forecast_accuracy.p50 IS 'Median of the forecast, the value the planner plans on (g CO2/kWh for carbon, requests/h for load) [g CO2/kWh | requests/h]';
COMMENT ON COLUMN marts.forecast_accuracy.p90 IS '90 % quantile of the forecast (g CO2/kWh for carbon, requests/h for load) [g CO2/kWh | requests/h]';
COMMENT ON COLUMN marts.forecast_accuracy.actual IS 'What happened: the site''s planned carbon series in staging.carbon_best (carbon), or the class''s demand summed over sites in staging.load (load) [g CO2/kWh | requests/h]';
COMMENT ON COLUMN marts.forecast_accuracy.lead_h IS 'Hours from issue to target: target_time - issued_at [h]';
COMMENT ON COLUMN marts.forecast_accuracy.abs_error IS 'Absolute error of the median: |p50 - actual| [g CO2/kWh | requests/h]';
COMMENT ON COLUMN marts.forecast_accuracy.in_p10_p90 IS 'True when the actual lies within the p10-p90 band';
COMMENT ON COLUMN marts.forecast_accuracy.day_rank_corr IS 'Spearman rank correlation of p50 vs actual over the issue''s first 24 hours (leads 0-23 h; the same on each row of the issue, NULL until all 24 actuals have arrived): how well the forecast orders the hours a scheduler chooses between [-1 to 1]';
COMMENT ON COLUMN marts.forecast_accuracy.window_regret IS 'Mean actual over the 4 h window of the issue''s first 24 hours that looked cleanest on p50, minus the mean actual of the cleanest 4 h window that was (>= 0; NULL until all 24 actuals have arrived) [g CO2/kWh | requests/h]';
COMMENT ON COLUMN marts.forecast_accuracy.window_regret_pct IS '100 x window_regret / the mean actual of the cleanest 4 h window [%]';

-- ---------------------------------------------------------------------------------------------------
COMMENT ON VIEW marts.emissions_daily IS 'Realised emissions and cost per site and UTC day (committed hours re-stated on their actuals where known, as committed otherwise), against the carbon-agnostic counterfactual on the hours both have (compared_*). Per site the two policies run different work: compare the fleet in marts.fleet_daily.';
COMMENT ON COLUMN marts.emissions_daily.day IS 'The UTC day (its 00:00 UTC start)';
COMMENT ON COLUMN marts.emissions_daily.site IS 'Fleet site (its name in the fleet file)';
COMMENT ON COLUMN marts.emissions_daily.hours IS 'Committed hours of the site in the day [h]';
COMMENT ON COLUMN marts.emissions_daily.restated_hours IS 'Of those, hours re-stated on what actually happened (plans.dispatch_realised) [h]';
COMMENT ON COLUMN marts.emissions_daily.compared_hours IS 'Of those, hours the carbon-agnostic counterfactual has too (it advances once an hour''s actuals are known) [h]';
COMMENT ON COLUMN marts.emissions_daily.emissions_t IS 'Emissions of the site''s grid import over the day, re-stated where known [t CO2]';
COMMENT ON COLUMN marts.emissions_daily.cost IS 'Energy cost over the day (import cost - export revenue + battery throughput), re-stated where known [$]';
COMMENT ON COLUMN marts.emissions_daily.agnostic_emissions_t IS 'Emissions of the carbon-agnostic counterfactual (jobs as soon as possible at home, inference at home, passive energy) on the compared hours [t CO2]';
COMMENT ON COLUMN marts.emissions_daily.agnostic_cost IS 'Energy cost of the carbon-agnostic counterfactual on the compared hours [$]';
COMMENT ON COLUMN marts.emissions_daily.emissions_saved_t IS 'agnostic_emissions_t - compared_emissions_t: emissions saved against carbon-agnostic on the compared hours [t CO2]';
COMMENT ON COLUMN marts.emissions_daily.emissions_saved_pct IS '100 x emissions_saved_t / agnostic_emissions_t [%]';
COMMENT ON COLUMN marts.emissions_daily.cost_saved IS 'agnostic_cost - compared_cost: energy cost saved against carbon-agnostic on the compared hours [$]';
COMMENT ON COLUMN marts.emissions_daily.training_mwh IS 'IT energy of training jobs at the site over the day, as committed [MWh]';
COMMENT ON COLUMN marts.emissions_daily.agnostic_training_mwh IS 'IT energy of training in the carbon-agnostic counterfactual on the compared hours [MWh]';
COMMENT ON COLUMN marts.emissions_daily.inference_mwh IS 'IT energy of inference served at the site over the day, as committed [MWh]';
COMMENT ON COLUMN marts.emissions_daily.agnostic_inference_mwh IS 'IT energy of inference in the carbon-agnostic counterfactual on the compared hours [MWh]';
COMMENT ON COLUMN marts.emissions_daily.g_per_useful_kwh IS 'Emissions per kWh of useful compute: 1000 x emissions_t / (training_mwh + inference_mwh); base load and cooling are overhead [g CO2/kWh]';
COMMENT ON COLUMN marts.emissions_daily.compared_emissions_t IS 'Emissions on the compared hours only (what emissions_saved_t compares) [t CO2]';
COMMENT ON COLUMN marts.emissions_daily.compared_cost IS 'Energy cost on the compared hours only (what cost_saved compares) [$]';
COMMENT ON COLUMN marts.emissions_daily.compared_training_mwh IS 'Training IT energy on the compared hours only [MWh]';
COMMENT ON COLUMN marts.emissions_daily.compared_inference_mwh IS 'Inference IT energy on the compared hours only [MWh]';

-- ---------------------------------------------------------------------------------------------------
-- marts.fleet_hourly, marts.fleet_daily, marts.fleet_total (the fleet's results and carbon KPIs)
COMMENT ON VIEW marts.fleet_hourly IS 'The fleet hour by hour: committed hours (on actuals where re-stated) next to the carbon-agnostic counterfactual on the site-hours it has, the work done and the quantities the carbon-efficiency KPIs divide by.';
COMMENT ON COLUMN marts.fleet_hourly.hour IS 'The committed hour (UTC hour start)';
COMMENT ON COLUMN marts.fleet_hourly.sites IS 'Sites with a committed row in the hour [count]';
COMMENT ON COLUMN marts.fleet_hourly.restated_sites IS 'Sites whose hour has been re-stated on actuals (plans.dispatch_realised) [count]';
COMMENT ON COLUMN marts.fleet_hourly.compared_sites IS 'Sites the carbon-agnostic counterfactual has for the hour (needs the hour''s actuals) [count]';
COMMENT ON COLUMN marts.fleet_hourly.emissions_t IS 'Realised emissions of the fleet''s grid import, all committed hours, on actuals where re-stated, as committed otherwise [t CO2]';
COMMENT ON COLUMN marts.fleet_hourly.cost IS 'Energy cost: import cost - export revenue + battery throughput (mpc.results.energy_cost), all committed hours [$]';
COMMENT ON COLUMN marts.fleet_hourly.import_mwh IS 'Grid import energy [MWh]';
COMMENT ON COLUMN marts.fleet_hourly.it_mwh IS 'IT energy: base load + training + inference [MWh]';
COMMENT ON COLUMN marts.fleet_hourly.training_mwh IS 'Training IT energy, all committed hours [MWh]';
COMMENT ON COLUMN marts.fleet_hourly.inference_mwh IS 'Inference IT energy, all committed hours [MWh]';
COMMENT ON COLUMN marts.fleet_hourly.inference_requests IS 'Inference requests served (plans.dispatch_routing units) [requests]';
COMMENT ON COLUMN marts.fleet_hourly.jobs_completed IS 'Training jobs that finished (ran their last hour) [count]';
COMMENT ON COLUMN marts.fleet_hourly.training_emissions_t IS 'Emissions attributed to training by its share of useful IT energy (training + inference) [t CO2]';
COMMENT ON COLUMN marts.fleet_hourly.inference_emissions_t IS 'Emissions attributed to inference by its share of useful IT energy [t CO2]';
COMMENT ON COLUMN marts.fleet_hourly.training_gpu_hours IS 'GPU-hours of training: training MWh x 1000 / sites.gpu_kw [GPU-h]';
COMMENT ON COLUMN marts.fleet_hourly.gpu_hours IS 'GPU-hours of useful compute: (training + inference) MWh x 1000 / sites.gpu_kw [GPU-h]';
COMMENT ON COLUMN marts.fleet_hourly.embodied_t IS 'Embodied emissions allocated to the period: sites.embodied_t_per_day / 24 per site-hour (0 unless the fleet sets it) [t CO2]';
COMMENT ON COLUMN marts.fleet_hourly.compared_emissions_t IS 'gridflex''s emissions over the compared site-hours [t CO2]';
COMMENT ON COLUMN marts.fleet_hourly.compared_cost IS 'gridflex''s energy cost over the compared site-hours [$]';
COMMENT ON COLUMN marts.fleet_hourly.compared_training_mwh IS 'gridflex''s training IT energy over the compared site-hours [MWh]';
COMMENT ON COLUMN marts.fleet_hourly.compared_inference_mwh IS 'gridflex''s inference IT energy over the compared site-hours [MWh]';
COMMENT ON COLUMN marts.fleet_hourly.compared_jobs_completed IS 'Jobs gridflex finished in the compared hours [count]';
COMMENT ON COLUMN marts.fleet_hourly.agnostic_emissions_t IS 'Carbon-agnostic counterfactual''s emissions over the compared site-hours, on the same actuals [t CO2]';
COMMENT ON COLUMN marts.fleet_hourly.agnostic_cost IS 'Carbon-agnostic counterfactual''s energy cost over the compared site-hours [$]';
COMMENT ON COLUMN marts.fleet_hourly.agnostic_training_mwh IS 'Carbon-agnostic counterfactual''s training IT energy over the compared site-hours [MWh]';
COMMENT ON COLUMN marts.fleet_hourly.agnostic_inference_mwh IS 'Carbon-agnostic counterfactual''s inference IT energy over the compared site-hours [MWh]';
COMMENT ON COLUMN marts.fleet_hourly.agnostic_jobs_completed IS 'Jobs the carbon-agnostic counterfactual finished in the same hours [count]';
COMMENT ON COLUMN marts.fleet_hourly.daily_budget_t IS 'The fleet''s daily carbon budget in force when the hour was planned (NULL: none) [t CO2]';
COMMENT ON COLUMN marts.fleet_hourly.window_budget_over_t IS 'How far the hour''s window plan had to exceed its carbon allocation (slack) [t CO2]';
COMMENT ON COLUMN marts.fleet_hourly.jobs_missed IS 'Jobs found missed by the hour''s plan (plans.runs.jobs_missed) [count]';
COMMENT ON COLUMN marts.fleet_hourly.degraded IS 'Whether the hour was planned in degraded mode (see marts.decisions.degraded_reason)';
COMMENT ON COLUMN marts.fleet_hourly.plan_status IS 'Solver status of the hour''s plan (optimal | feasible | fallback | ...)';
COMMENT ON VIEW marts.fleet_daily IS 'The fleet per UTC day: realised emissions and cost, the saving vs carbon-agnostic on the hours both have (absolute and like for like), work done, jobs completed and missed, the daily budget and its overrun, and carbon-efficiency KPIs (g CO2 per kWh of IT energy, per GPU-hour of training, per 1,000 requests, SCI).';
COMMENT ON COLUMN marts.fleet_daily.day IS 'The UTC day (its 00:00 UTC start)';
COMMENT ON COLUMN marts.fleet_daily.hours IS 'Committed fleet hours [count]';
COMMENT ON COLUMN marts.fleet_daily.site_hours IS 'Committed site-hours [count]';
COMMENT ON COLUMN marts.fleet_daily.restated_site_hours IS 'Site-hours re-stated on actuals (plans.dispatch_realised) [count]';
COMMENT ON COLUMN marts.fleet_daily.compared_site_hours IS 'Site-hours the carbon-agnostic counterfactual has (savings compare only these) [count]';
COMMENT ON COLUMN marts.fleet_daily.emissions_t IS 'Realised emissions of the fleet''s grid import, all committed hours, on actuals where re-stated, as committed otherwise [t CO2]';
COMMENT ON COLUMN marts.fleet_daily.cost IS 'Energy cost: import cost - export revenue + battery throughput (mpc.results.energy_cost), all committed hours [$]';
COMMENT ON COLUMN marts.fleet_daily.agnostic_emissions_t IS 'Carbon-agnostic counterfactual''s emissions over the compared site-hours, on the same actuals [t CO2]';
COMMENT ON COLUMN marts.fleet_daily.compared_emissions_t IS 'gridflex''s emissions over the compared site-hours [t CO2]';
COMMENT ON COLUMN marts.fleet_daily.emissions_saved_t IS 'agnostic_emissions_t - compared_emissions_t: emissions saved vs carbon-agnostic on the compared hours [t CO2]';
COMMENT ON COLUMN marts.fleet_daily.emissions_saved_pct IS 'Emissions saved vs carbon-agnostic on the compared hours, relative to carbon-agnostic [%]';
COMMENT ON COLUMN marts.fleet_daily.cost_saved IS 'agnostic cost - gridflex''s cost over the compared hours [$]';
COMMENT ON COLUMN marts.fleet_daily.it_mwh IS 'IT energy: base load + training + inference [MWh]';
COMMENT ON COLUMN marts.fleet_daily.training_mwh IS 'Training IT energy, all committed hours [MWh]';
COMMENT ON COLUMN marts.fleet_daily.inference_mwh IS 'Inference IT energy, all committed hours [MWh]';
COMMENT ON COLUMN marts.fleet_daily.compared_training_mwh IS 'gridflex''s training IT energy over the compared site-hours [MWh]';
COMMENT ON COLUMN marts.fleet_daily.compared_inference_mwh IS 'gridflex''s inference IT energy over the compared site-hours [MWh]';
COMMENT ON COLUMN marts.fleet_daily.agnostic_training_mwh IS 'Carbon-agnostic counterfactual''s training IT energy over the compared site-hours [MWh]';
COMMENT ON COLUMN marts.fleet_daily.agnostic_inference_mwh IS 'Carbon-agnostic counterfactual''s inference IT energy over the compared site-hours [MWh]';
COMMENT ON COLUMN marts.fleet_daily.jobs_completed IS 'Training jobs that finished (ran their last hour) [count]';
COMMENT ON COLUMN marts.fleet_daily.compared_jobs_completed IS 'Jobs gridflex finished in the compared hours [count]';
COMMENT ON COLUMN marts.fleet_daily.agnostic_jobs_completed IS 'Jobs the carbon-agnostic counterfactual finished in the same hours [count]';
COMMENT ON COLUMN marts.fleet_daily.jobs_missed IS 'Jobs that could no longer meet their deadline (plans.runs.jobs_missed) [count]';
COMMENT ON COLUMN marts.fleet_daily.inference_requests IS 'Inference requests served (plans.dispatch_routing units) [requests]';
COMMENT ON COLUMN marts.fleet_daily.training_gpu_hours IS 'GPU-hours of training: training MWh x 1000 / sites.gpu_kw [GPU-h]';
COMMENT ON COLUMN marts.fleet_daily.gpu_hours IS 'GPU-hours of useful compute: (training + inference) MWh x 1000 / sites.gpu_kw [GPU-h]';
COMMENT ON COLUMN marts.fleet_daily.budget_t IS 'The fleet''s daily carbon budget (fleet_total: summed over the days; NULL: no budget) [t CO2]';
COMMENT ON COLUMN marts.fleet_daily.budget_over_t IS 'Realised emissions above the daily budget: max(emissions_t - budget_t, 0) per day [t CO2]';
COMMENT ON COLUMN marts.fleet_daily.windows_over_budget IS 'Hours whose window plan exceeded its carbon allocation [count]';
COMMENT ON COLUMN marts.fleet_daily.degraded_hours IS 'Hours planned in degraded mode [count]';
COMMENT ON COLUMN marts.fleet_daily.g_per_it_kwh IS 'Carbon efficiency: emissions per kWh of IT energy (= kg CO2/MWh) [g CO2/kWh]';
COMMENT ON COLUMN marts.fleet_daily.g_per_useful_kwh IS 'Emissions per kWh of useful compute (training + inference IT energy) over the compared hours [g CO2/kWh]';
COMMENT ON COLUMN marts.fleet_daily.agnostic_g_per_useful_kwh IS 'Carbon-agnostic counterfactual''s emissions per kWh of useful compute, same hours [g CO2/kWh]';
COMMENT ON COLUMN marts.fleet_daily.like_for_like_saved_pct IS 'Saving in emissions per kWh of useful compute vs carbon-agnostic: a policy doing less work cannot look better for it [%]';
COMMENT ON COLUMN marts.fleet_daily.g_per_training_gpu_hour IS 'Training''s attributed emissions per GPU-hour of training [g CO2/GPU-h]';
COMMENT ON COLUMN marts.fleet_daily.g_per_1k_requests IS 'Inference''s attributed emissions per 1,000 requests served [g CO2/1k requests]';
COMMENT ON COLUMN marts.fleet_daily.embodied_t IS 'Embodied emissions allocated to the period: sites.embodied_t_per_day / 24 per site-hour (0 unless the fleet sets it) [t CO2]';
COMMENT ON COLUMN marts.fleet_daily.embodied_accounted IS 'Whether any embodied emissions are included (false: the fleet sets none, so SCI is operational only)';
COMMENT ON COLUMN marts.fleet_daily.sci_g_per_gpu_hour IS 'Software Carbon Intensity (ISO/IEC 21031) SCI = (E*I + M) / R with R = GPU-hours of useful compute, M = embodied_t [g CO2/GPU-h]';
COMMENT ON VIEW marts.fleet_total IS 'Everything stored in one row: the columns of marts.fleet_daily over all days.';
COMMENT ON COLUMN marts.fleet_total.first_day IS 'First UTC day with a committed hour';
COMMENT ON COLUMN marts.fleet_total.last_day IS 'Last UTC day with a committed hour';
COMMENT ON COLUMN marts.fleet_total.days IS 'UTC days with a committed hour [count]';
COMMENT ON COLUMN marts.fleet_total.hours IS 'Committed fleet hours [count]';
COMMENT ON COLUMN marts.fleet_total.site_hours IS 'Committed site-hours [count]';
COMMENT ON COLUMN marts.fleet_total.restated_site_hours IS 'Site-hours re-stated on actuals (plans.dispatch_realised) [count]';
COMMENT ON COLUMN marts.fleet_total.compared_site_hours IS 'Site-hours the carbon-agnostic counterfactual has (savings compare only these) [count]';
COMMENT ON COLUMN marts.fleet_total.emissions_t IS 'Realised emissions of the fleet''s grid import, all committed hours, on actuals where re-stated, as committed otherwise [t CO2]';
COMMENT ON COLUMN marts.fleet_total.cost IS 'Energy cost: import cost - export revenue + battery throughput (mpc.results.energy_cost), all committed hours [$]';
COMMENT ON COLUMN marts.fleet_total.agnostic_emissions_t IS 'Carbon-agnostic counterfactual''s emissions over the compared site-hours, on the same actuals [t CO2]';
COMMENT ON COLUMN marts.fleet_total.compared_emissions_t IS 'gridflex''s emissions over the compared site-hours [t CO2]';
COMMENT ON COLUMN marts.fleet_total.emissions_saved_t IS 'agnostic_emissions_t - compared_emissions_t: emissions saved vs carbon-agnostic on the compared hours [t CO2]';
COMMENT ON COLUMN marts.fleet_total.emissions_saved_pct IS 'Emissions saved vs carbon-agnostic on the compared hours, relative to carbon-agnostic [%]';
COMMENT ON COLUMN marts.fleet_total.cost_saved IS 'agnostic cost - gridflex''s cost over the compared hours [$]';
COMMENT ON COLUMN marts.fleet_total.it_mwh IS 'IT energy: base load + training + inference [MWh]';
COMMENT ON COLUMN marts.fleet_total.training_mwh IS 'Training IT energy, all committed hours [MWh]';
COMMENT ON COLUMN marts.fleet_total.inference_mwh IS 'Inference IT energy, all committed hours [MWh]';
COMMENT ON COLUMN marts.fleet_total.compared_training_mwh IS 'gridflex''s training IT energy over the compared site-hours [MWh]';
COMMENT ON COLUMN marts.fleet_total.compared_inference_mwh IS 'gridflex''s inference IT energy over the compared site-hours [MWh]';
COMMENT ON COLUMN marts.fleet_total.agnostic_training_mwh IS 'Carbon-agnostic counterfactual''s training IT energy over the compared site-hours [MWh]';
COMMENT ON COLUMN marts.fleet_total.agnostic_inference_mwh IS 'Carbon-agnostic counterfactual''s inference IT energy over the compared site-hours [MWh]';
COMMENT ON COLUMN marts.fleet_total.jobs_completed IS 'Training jobs that finished (ran their last hour) [count]';
COMMENT ON COLUMN marts.fleet_total.compared_jobs_completed IS 'Jobs gridflex finished in the compared hours [count]';
COMMENT ON COLUMN marts.fleet_total.agnostic_jobs_completed IS 'Jobs the carbon-agnostic counterfactual finished in the same hours [count]';
COMMENT ON COLUMN marts.fleet_total.jobs_missed IS 'Jobs that could no longer meet their deadline (plans.runs.jobs_missed) [count]';
COMMENT ON COLUMN marts.fleet_total.inference_requests IS 'Inference requests served (plans.dispatch_routing units) [requests]';
COMMENT ON COLUMN marts.fleet_total.training_gpu_hours IS 'GPU-hours of training: training MWh x 1000 / sites.gpu_kw [GPU-h]';
COMMENT ON COLUMN marts.fleet_total.gpu_hours IS 'GPU-hours of useful compute: (training + inference) MWh x 1000 / sites.gpu_kw [GPU-h]';
COMMENT ON COLUMN marts.fleet_total.budget_t IS 'The fleet''s daily carbon budget (fleet_total: summed over the days; NULL: no budget) [t CO2]';
COMMENT ON COLUMN marts.fleet_total.budget_over_t IS 'Realised emissions above the daily budget: max(emissions_t - budget_t, 0) per day [t CO2]';
COMMENT ON COLUMN marts.fleet_total.days_over_budget IS 'Days whose realised emissions exceeded the daily budget [count]';
COMMENT ON COLUMN marts.fleet_total.windows_over_budget IS 'Hours whose window plan exceeded its carbon allocation [count]';
COMMENT ON COLUMN marts.fleet_total.degraded_hours IS 'Hours planned in degraded mode [count]';
COMMENT ON COLUMN marts.fleet_total.g_per_it_kwh IS 'Carbon efficiency: emissions per kWh of IT energy (= kg CO2/MWh) [g CO2/kWh]';
COMMENT ON COLUMN marts.fleet_total.g_per_useful_kwh IS 'Emissions per kWh of useful compute (training + inference IT energy) over the compared hours [g CO2/kWh]';
COMMENT ON COLUMN marts.fleet_total.agnostic_g_per_useful_kwh IS 'Carbon-agnostic counterfactual''s emissions per kWh of useful compute, same hours [g CO2/kWh]';
COMMENT ON COLUMN marts.fleet_total.like_for_like_saved_pct IS 'Saving in emissions per kWh of useful compute vs carbon-agnostic: a policy doing less work cannot look better for it [%]';
COMMENT ON COLUMN marts.fleet_total.g_per_training_gpu_hour IS 'Training''s attributed emissions per GPU-hour of training [g CO2/GPU-h]';
COMMENT ON COLUMN marts.fleet_total.g_per_1k_requests IS 'Inference''s attributed emissions per 1,000 requests served [g CO2/1k requests]';
COMMENT ON COLUMN marts.fleet_total.embodied_t IS 'Embodied emissions allocated to the period: sites.embodied_t_per_day / 24 per site-hour (0 unless the fleet sets it) [t CO2]';
COMMENT ON COLUMN marts.fleet_total.embodied_accounted IS 'Whether any embodied emissions are included (false: the fleet sets none, so SCI is operational only)';
COMMENT ON COLUMN marts.fleet_total.sci_g_per_gpu_hour IS 'Software Carbon Intensity (ISO/IEC 21031) SCI = (E*I + M) / R with R = GPU-hours of useful compute, M = embodied_t [g CO2/GPU-h]';
