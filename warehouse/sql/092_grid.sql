-- Demand-response accounting: what each grid event asked for and what the fleet delivered, against the
-- plan that was in force before gridflex received the event (the newest hourly plan made before it).
-- Committed hours are read from plans.dispatch_current (the newest revision of an hour, else its hourly
-- dispatch), so a revision made within seconds of an event counts for the hour it revised.

CREATE OR REPLACE VIEW marts.grid_event_hours AS
WITH ev AS (
    SELECT event_id, site,
           string_agg(DISTINCT payload_type, ', ' ORDER BY payload_type) AS payload_types,
           min(start) AS event_start, max("end") AS event_end,
           min(value) FILTER (WHERE payload_type = 'IMPORT_CAPACITY_LIMIT') AS import_limit_mw,
           bool_or(payload_type IN ('ALERT_GRID_EMERGENCY', 'ALERT_FLEX_ALERT')) AS alert,
           min(received_at) AS received_at
    FROM staging.grid_events WHERE NOT cancelled
    GROUP BY event_id, site
),
hours AS (
    SELECT ev.*, d.hour, d.import_mw, d.training_mw, d.inference_mw, d.emissions_t, d.cost,
           d.stability, d.revision
    FROM ev JOIN plans.dispatch_current d
      ON d.site = ev.site AND d.hour + INTERVAL 1 HOUR > ev.event_start AND d.hour < ev.event_end
),
before AS (
    SELECT h.event_id, h.site, h.hour, max(r.plan_hour) AS baseline_plan_hour,
           arg_max(s.import_mw, r.plan_hour) AS import_before_mw,
           arg_max(s.training_mw, r.plan_hour) AS training_before_mw,
           arg_max(s.inference_mw, r.plan_hour) AS inference_before_mw
    FROM hours h
    JOIN plans.runs r ON r.created_at < h.received_at AND r.plan_hour <= h.hour
    JOIN plans.site_hours s ON s.plan_hour = r.plan_hour AND s.site = h.site AND s.target_time = h.hour
    GROUP BY ALL
),
crit AS (
    SELECT u.hour, sum(u.units) AS unserved FROM plans.dispatch_unserved u
    JOIN (SELECT DISTINCT hour, revision FROM plans.dispatch_current) d
      ON d.hour = u.hour AND d.revision = u.revision
    WHERE u.priority = 'critical' GROUP BY u.hour
),
served AS (
    SELECT r.hour, sum(r.units) AS served FROM plans.dispatch_routing_current r
    JOIN plans.classes c USING (class) WHERE c.priority = 'critical' GROUP BY r.hour
)
SELECT h.event_id, h.site, h.hour, h.payload_types, h.import_limit_mw, h.alert,
       h.import_mw, b.import_before_mw, b.import_before_mw - h.import_mw AS import_reduced_mw,
       greatest(h.import_mw - h.import_limit_mw, 0) AS import_over_limit_mw,
       h.training_mw, b.training_before_mw, h.inference_mw, b.inference_before_mw,
       h.emissions_t, h.cost, h.stability, h.revision, b.baseline_plan_hour,
       coalesce(s.served, 0) AS critical_served_requests, coalesce(c.unserved, 0) AS critical_unserved_requests,
       h.received_at
FROM hours h
LEFT JOIN before b USING (event_id, site, hour)
LEFT JOIN crit c ON c.hour = h.hour
LEFT JOIN served s ON s.hour = h.hour
ORDER BY h.event_id, h.site, h.hour;

CREATE OR REPLACE VIEW marts.grid_event_delivery AS
WITH paused AS (
    SELECT e.event_id, e.site,
           list_distinct(flatten(list(coalesce(r.jobs_paused, [])) || list(coalesce(v.jobs_paused, [])))) AS paused,
           list_distinct(flatten(list(coalesce(r.jobs_resumed, [])) || list(coalesce(v.jobs_resumed, [])))) AS resumed
    FROM marts.grid_event_hours e
    LEFT JOIN plans.runs r ON r.plan_hour = e.hour
    LEFT JOIN plans.revisions v ON v.hour = e.hour
    GROUP BY ALL
),
resp AS (  -- the first revision each event triggered, and how long it took from receipt
    SELECT t.event_id, min(v.response_s) FILTER (WHERE v.kind = 'lp') AS lp_response_s,
           min(v.response_s) FILTER (WHERE v.kind = 'full') AS full_response_s
    FROM plans.revisions v, unnest(v.trigger_events) AS t(event_id)
    GROUP BY t.event_id
)
SELECT e.event_id, e.site, any_value(e.payload_types) AS payload_types,
       min(e.hour) AS first_hour, max(e.hour) AS last_hour, count(*) AS hours_committed,
       any_value(e.import_limit_mw) AS import_limit_mw,
       max(e.import_mw) AS max_import_mw,
       max(e.import_over_limit_mw) AS max_over_limit_mw,
       count(*) FILTER (WHERE e.import_over_limit_mw > 1e-6) AS hours_over_limit,
       avg(e.import_reduced_mw) AS mean_reduced_mw,
       sum(e.import_reduced_mw) AS energy_reduced_mwh,
       sum(e.training_before_mw - e.training_mw) AS training_shifted_mwh,
       sum(e.inference_before_mw - e.inference_mw) AS inference_shifted_mwh,
       100 * sum(e.critical_served_requests)
           / nullif(sum(e.critical_served_requests + e.critical_unserved_requests), 0) AS critical_served_pct,
       any_value(p.paused) AS jobs_paused, any_value(p.resumed) AS jobs_resumed,
       sum(e.emissions_t) AS emissions_t, sum(e.cost) AS cost,
       greatest(sum(e.import_reduced_mw), 0) * coalesce(any_value(s.dr_payment_usd_per_mwh), 0) AS revenue_usd,
       any_value(r.lp_response_s) AS lp_response_s, any_value(r.full_response_s) AS full_response_s,
       min(e.received_at) AS received_at
FROM marts.grid_event_hours e
LEFT JOIN paused p USING (event_id, site)
LEFT JOIN resp r USING (event_id)
LEFT JOIN plans.sites s USING (site)
GROUP BY e.event_id, e.site
ORDER BY first_hour, e.event_id, e.site;

COMMENT ON VIEW marts.grid_event_hours IS 'Each committed hour a grid event (staging.grid_events, not cancelled) covered at a site: the operator''s limit, the import committed (its newest revision), what the plan in force before the event was received expected, and the critical inference served fleet-wide.';
COMMENT ON COLUMN marts.grid_event_hours.event_id IS 'OpenADR event id';
COMMENT ON COLUMN marts.grid_event_hours.site IS 'Fleet site the event targets';
COMMENT ON COLUMN marts.grid_event_hours.hour IS 'Committed hour (UTC hour start) the event covers, in part or whole';
COMMENT ON COLUMN marts.grid_event_hours.payload_types IS 'The event''s payload types, e.g. IMPORT_CAPACITY_LIMIT, ALERT_GRID_EMERGENCY';
COMMENT ON COLUMN marts.grid_event_hours.import_limit_mw IS 'The import capacity limit the event sets (NULL: none) [MW]';
COMMENT ON COLUMN marts.grid_event_hours.alert IS 'The event is a grid emergency or flex alert (the hour was planned stability-first)';
COMMENT ON COLUMN marts.grid_event_hours.import_mw IS 'Grid import committed in the hour (newest revision, else the hourly dispatch) [MW]';
COMMENT ON COLUMN marts.grid_event_hours.import_before_mw IS 'Grid import the plan in force before the event was received expected for the hour (NULL: the hour was beyond its horizon) [MW]';
COMMENT ON COLUMN marts.grid_event_hours.import_reduced_mw IS 'import_before_mw - import_mw: the demand response delivered [MW]';
COMMENT ON COLUMN marts.grid_event_hours.import_over_limit_mw IS 'Import above the event''s limit (0: met) [MW]';
COMMENT ON COLUMN marts.grid_event_hours.training_mw IS 'Training load committed [MW]';
COMMENT ON COLUMN marts.grid_event_hours.training_before_mw IS 'Training load the plan in force before the event expected [MW]';
COMMENT ON COLUMN marts.grid_event_hours.inference_mw IS 'Inference load committed [MW]';
COMMENT ON COLUMN marts.grid_event_hours.inference_before_mw IS 'Inference load the plan in force before the event expected [MW]';
COMMENT ON COLUMN marts.grid_event_hours.emissions_t IS 'Emissions of the committed hour at the site (as committed; re-stated figures are in marts.decisions) [t CO2]';
COMMENT ON COLUMN marts.grid_event_hours.cost IS 'Energy cost of the committed hour at the site [$]';
COMMENT ON COLUMN marts.grid_event_hours.stability IS 'The committed hour was planned stability-first';
COMMENT ON COLUMN marts.grid_event_hours.revision IS 'Revision of the hour in force (0: the hourly plan; plans.revisions) [count]';
COMMENT ON COLUMN marts.grid_event_hours.baseline_plan_hour IS 'The hourly plan the delivery is measured against (the newest made before the event was received)';
COMMENT ON COLUMN marts.grid_event_hours.critical_served_requests IS 'Critical inference served in the hour, fleet-wide [requests]';
COMMENT ON COLUMN marts.grid_event_hours.critical_unserved_requests IS 'Critical inference not served in the hour, fleet-wide (never on purpose) [requests]';
COMMENT ON COLUMN marts.grid_event_hours.received_at IS 'When gridflex first received the event (UTC)';

COMMENT ON VIEW marts.grid_event_delivery IS 'Demand-response delivery per grid event and site: the limit and how well it was met, the import reduced against the plan in force before the event, the work shifted or paused, the critical inference served, what the program pays, and how fast gridflex revised the hour in progress.';
COMMENT ON COLUMN marts.grid_event_delivery.event_id IS 'OpenADR event id';
COMMENT ON COLUMN marts.grid_event_delivery.site IS 'Fleet site the event targets';
COMMENT ON COLUMN marts.grid_event_delivery.payload_types IS 'The event''s payload types';
COMMENT ON COLUMN marts.grid_event_delivery.first_hour IS 'First committed hour the event covers (UTC)';
COMMENT ON COLUMN marts.grid_event_delivery.last_hour IS 'Last committed hour the event covers so far (UTC)';
COMMENT ON COLUMN marts.grid_event_delivery.hours_committed IS 'Committed hours the event covered so far [h]';
COMMENT ON COLUMN marts.grid_event_delivery.import_limit_mw IS 'The import capacity limit the event sets (NULL: none) [MW]';
COMMENT ON COLUMN marts.grid_event_delivery.max_import_mw IS 'Highest committed import in the event''s hours [MW]';
COMMENT ON COLUMN marts.grid_event_delivery.max_over_limit_mw IS 'Largest import above the limit in an hour (0: always met) [MW]';
COMMENT ON COLUMN marts.grid_event_delivery.hours_over_limit IS 'Hours whose import exceeded the limit (the load that may not be shed was above it) [h]';
COMMENT ON COLUMN marts.grid_event_delivery.mean_reduced_mw IS 'Mean import reduction against the plan in force before the event [MW]';
COMMENT ON COLUMN marts.grid_event_delivery.energy_reduced_mwh IS 'Import energy reduced against the plan in force before the event [MWh]';
COMMENT ON COLUMN marts.grid_event_delivery.training_shifted_mwh IS 'Training energy moved out of the event''s hours at the site (to other hours or sites) [MWh]';
COMMENT ON COLUMN marts.grid_event_delivery.inference_shifted_mwh IS 'Inference energy moved out of the site in the event''s hours (routed elsewhere or deferred) [MWh]';
COMMENT ON COLUMN marts.grid_event_delivery.critical_served_pct IS 'Critical inference served in the event''s hours, fleet-wide (100: all) [%]';
COMMENT ON COLUMN marts.grid_event_delivery.jobs_paused IS 'Checkpointable jobs paused in the event''s hours (hourly plans and revisions)';
COMMENT ON COLUMN marts.grid_event_delivery.jobs_resumed IS 'Checkpointable jobs resumed from a checkpoint in the event''s hours';
COMMENT ON COLUMN marts.grid_event_delivery.emissions_t IS 'Emissions at the site in the event''s hours, as committed [t CO2]';
COMMENT ON COLUMN marts.grid_event_delivery.cost IS 'Energy cost at the site in the event''s hours, as committed [$]';
COMMENT ON COLUMN marts.grid_event_delivery.revenue_usd IS 'What the program pays: energy reduced x the site''s dr_payment_usd_per_mwh (0 when not paid) [$]';
COMMENT ON COLUMN marts.grid_event_delivery.lp_response_s IS 'Event received -> first revised dispatch stored, fast path (LP re-dispatch, jobs held) [s]';
COMMENT ON COLUMN marts.grid_event_delivery.full_response_s IS 'Event received -> first fully re-planned dispatch stored (MILP, running jobs held) [s]';
COMMENT ON COLUMN marts.grid_event_delivery.received_at IS 'When gridflex first received the event (UTC)';
