"""Planning assets: the hourly receding-horizon plan (self-dependent: each hour starts from the state the
previous hour left), the committed dispatch with its carbon-agnostic comparison, and the marts."""

import dagster as dg
import pandas as pd

from pipelines.defs.common import hour_window, png, preview
from pipelines.defs.forecast.assets import carbon_forecast, load_forecast
from pipelines.defs.ingest.assets import generation, grid_events, job_queue, prices, weather
from pipelines.defs.partitions import HOURLY, PER_HOUR
from pipelines.defs.resources import FleetResource, WarehouseResource
from pipelines.lib import plan as pl
from pipelines.lib.plots import fleet_emissions_frame, fleet_figure, plan_figure, plan_plot_inputs

HOUR = pd.Timedelta(hours=1)
PREVIOUS_HOUR = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)


class PlanConfig(dg.Config):
    """How to treat the plan chain (each hour starts from the state the previous hour left).

    ``restate``: re-plan hours that later plans build on, removing those later plans in the same
    transaction (then plan them again in order). ``fresh_start``: start a new chain at the first hour
    of the run from the fleet's initial state (batteries at soc0, nothing running), e.g. after a
    pause longer than the plans' horizon."""

    restate: bool = False
    fresh_start: bool = False


@dg.asset(
    partitions_def=HOURLY,
    backfill_policy=PER_HOUR,
    group_name="plan",
    kinds={"pyomo", "highs", "duckdb"},
    pool="duckdb_writer",
    deps=[
        carbon_forecast,
        load_forecast,
        prices,
        generation,
        weather,
        job_queue,
        grid_events,
        dg.AssetDep("mpc_plan", partition_mapping=PREVIOUS_HOUR),
    ],
    description="Receding-horizon MILP plan for [t0, t0+H) from the forecasts issued at t0 and the state "
    "left by t0-1; commits t0 and stores the whole horizon -> plans.*",
    check_specs=[
        dg.AssetCheckSpec(
            "plan_is_sound",
            asset="mpc_plan",
            blocking=True,
            description="Every hour of the partition solved (optimal, or feasible within the gap "
            "limit) and its committed hour keeps every battery and import within bounds",
        )
    ],
)
def mpc_plan(
    context: dg.AssetExecutionContext,
    config: PlanConfig,
    warehouse: WarehouseResource,
    fleet: FleetResource,
):
    wh, f = warehouse.get(), fleet.load()
    start, end = hour_window(context)
    hours = pd.date_range(start, end - HOUR, freq="h", tz="UTC")
    outcomes = []
    for i, t0 in enumerate(hours):  # in order: each hour needs the state the previous one wrote
        try:
            o = pl.plan_hour(
                wh,
                f,
                t0,
                restate=config.restate and i == 0,
                fresh_start=config.fresh_start and i == 0,
                run_id=context.run.run_id,
            )
        except pl.PlanError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        outcomes.append(o)
        if o.unchanged:
            context.log.info(
                f"plan {t0:%Y-%m-%d %H:%M}: already planned from the same inputs; unchanged"
            )
            continue
        if o.restated_hours:
            context.log.warning(
                f"plan {t0:%Y-%m-%d %H:%M}: restated; {o.restated_hours} later plan(s) removed"
            )
        if o.forecast.degraded:
            context.log.warning(
                f"plan {t0:%Y-%m-%d %H:%M}: DEGRADED — {'; '.join(o.forecast.reasons)}"
            )
        if o.status != "optimal":
            context.log.warning(f"plan {t0:%Y-%m-%d %H:%M}: status {o.status}, gap {o.gap:.4f}")
        if o.forecast.grid_events:
            context.log.info(
                f"plan {t0:%Y-%m-%d %H:%M}: grid events in force: {', '.join(o.forecast.grid_events)}"
            )
        context.log.info(
            f"plan {i + 1}/{len(hours)} at {t0:%Y-%m-%d %H:%M}: {o.status}, objective "
            f"{o.objective:,.0f} $, gap {o.gap:.2%}, solve {o.solve_s:.2f}s, "
            f"started {o.jobs_started or '-'}"
        )
    last = outcomes[-1]
    md = {
        "plan_hour": str(last.t0),
        "hours_planned": len(outcomes),
        "hours_unchanged": sum(o.unchanged for o in outcomes),
        "status": last.status,
        "window_net_benefit_usd": round(float(last.objective), 0),
        "mip_gap_pct": round(100 * float(last.gap), 3),
        "build_s": round(last.build_s, 3),
        "solve_s": round(last.solve_s, 3),
        "tick_s": round(last.total_s, 2),
        "expected_emissions_t": round(last.expected_emissions_t, 2),
        "expected_cost_usd": round(last.expected_cost, 0),
        "committed_emissions_t": round(last.committed_emissions_t, 3),
        "forecast_policy": last.forecast.policy,
        "degraded": bool(last.forecast.degraded),
        "degraded_reason": "; ".join(last.forecast.reasons) or "-",
        "degraded_hours": sum(bool(o.forecast.degraded) for o in outcomes),
        "jobs_started": ", ".join(last.jobs_started) or "-",
        "jobs_missed": ", ".join(j for o in outcomes for j in o.jobs_missed) or "-",
        "budget_allocated_t": _round(last.budget_allocated_t, 2),
        "budget_planned_t": _round(last.budget_planned_t, 2),
        "budget_over_t": _round(last.budget_over_t, 2),
        "realised_hour_known": last.realised_known,
        "restated_later_plans": sum(o.restated_hours for o in outcomes),
        "plan": png(
            plan_figure(
                last.plan_site_hours,
                f"plan at {last.t0:%Y-%m-%d %H:%M} UTC",
                **plan_plot_inputs(wh, f, last.t0),
            )
        ),
    }
    if last.forecast.grid_events or last.forecast.notes:
        grid = pl.grid_summary(wh, last.t0, last.forecast)
        if "grid_limits" in grid:
            grid["grid_limits"] = preview(grid["grid_limits"], 48)
        md.update(grid)
    md.update(pl.audit_summary(wh, last.t0))
    if len(outcomes) > 1:
        md["note"] = (
            f"a ranged run of {len(outcomes)} hours: Dagster gives every partition of it this record "
            "(the last hour's); each hour's own numbers are in plans.runs. Backfills and ticks run "
            "one hour per run."
        )
    yield dg.MaterializeResult(metadata=md)
    yield _plan_sound(wh, f, start, end)


def _round(v, n):
    return None if v is None else round(float(v), n)


def _plan_sound(wh, fleet, start, end) -> dg.AssetCheckResult:
    runs = wh.query(
        "select plan_hour, status, mip_gap from plans.runs where plan_hour >= ? and plan_hour < ?",
        [start.to_pydatetime(), end.to_pydatetime()],
    )
    neg = wh.query(
        "select count(*) n from plans.dispatch where hour >= ? and hour < ? "
        "and (soc_mwh < -1e-6 or import_mw < -1e-6)",
        [start.to_pydatetime(), end.to_pydatetime()],
    ).n[0]
    bad = runs[~runs.status.isin(["optimal", "feasible"])]
    expected = int((end - start) / HOUR)
    ok = len(runs) == expected and bad.empty and int(neg) == 0
    return dg.AssetCheckResult(
        check_name="plan_is_sound",
        passed=bool(ok),
        metadata={
            "hours": len(runs),
            "hours_expected": expected,
            "not_solved": ", ".join(f"{r.plan_hour:%H:%M} {r.status}" for r in bad.itertuples())
            or "none",
            "max_mip_gap_pct": round(100 * float(runs.mip_gap.max()), 3) if len(runs) else None,
            "negative_values": int(neg),
        },
    )


@dg.asset(
    partitions_def=HOURLY,
    backfill_policy=PER_HOUR,
    group_name="plan",
    kinds={"duckdb"},
    pool="duckdb_writer",
    deps=[mpc_plan],
    description="The committed hour(s) per site, with what the carbon-agnostic policy would have done in "
    "the same hours (plans.dispatch, plans.agnostic)",
)
def dispatch(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
) -> dg.MaterializeResult:
    wh, f = warehouse.get(), fleet.load()
    start, end = hour_window(context)
    d = wh.query(
        "select * from marts.decisions where hour >= ? and hour < ? order by hour, site",
        [start.to_pydatetime(), end.to_pydatetime()],
    )
    if d.empty:
        raise dg.Failure(f"no committed hour in {start}..{end}: mpc_plan did not run for it")
    # the counterfactual advances over the hours whose actuals are known (O(1) per hour), and the
    # committed hours of the last two days are re-stated on their actuals
    agn = pl.advance_counterfactual(wh, f, end)
    restated = pl.restate_dispatch(wh, f, end)
    md = {
        "dagster/row_count": len(d),
        "hours": int(d.hour.nunique()),
        "expected_emissions_t": round(float(d.emissions_t.sum()), 3),
        "expected_cost_usd": round(float(d.cost.sum()), 0),
        "counterfactual_hours_advanced": int(agn.hour.nunique()) if len(agn) else 0,
        "hours_restated_on_actuals": int(restated.hour.nunique()) if len(restated) else 0,
        "committed": preview(
            d[
                [
                    "hour",
                    "site",
                    "jobs_running",
                    "grid_import_mw",
                    "battery_soc_mwh",
                    "emissions_t",
                    "forecast_policy",
                ]
            ],
            n=12,
        ),
    }
    cmp = wh.query(
        """select sum(coalesce(r.emissions_t, d.emissions_t)) em, sum(a.emissions_t) agn,
                  count(r.hour) restated, count(*) n
           from plans.dispatch d join plans.agnostic a using (hour, site)
           left join plans.dispatch_realised r using (hour, site)
           where d.hour >= ? and d.hour < ?""",
        [start.to_pydatetime(), end.to_pydatetime()],
    ).iloc[0]
    if cmp.n and cmp.agn:
        md["realised_emissions_t"] = round(float(cmp.em), 3)
        md["agnostic_emissions_t"] = round(float(cmp.agn), 3)
        md["emissions_vs_agnostic_pct"] = round(float(100 * (cmp.agn - cmp.em) / cmp.agn), 2)
        md["hours_on_actuals"] = int(cmp.restated)
    else:
        md["agnostic"] = "actuals not yet known for these hours (restated when they arrive)"
    return dg.MaterializeResult(metadata=md)


@dg.asset(
    group_name="plan",
    kinds={"duckdb"},
    deps=[dispatch, carbon_forecast, load_forecast],
    description="DuckDB views users query: marts.schedule_current, marts.decisions, "
    "marts.forecast_accuracy, marts.emissions_daily, marts.fleet_hourly/_daily/_total (fleet-wide "
    "savings, work done and carbon-efficiency KPIs)",
)
def marts(warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    wh.ensure_schema()  # (re)creates the views
    daily = wh.query("select * from marts.emissions_daily")
    acc = wh.query(
        "select target, model, count(*) n, avg(abs_error) mae, avg(in_p10_p90::int) coverage "
        "from marts.forecast_accuracy group by all order by target, model"
    )
    sched = wh.query("select * from marts.schedule_current")
    md = {
        "schedule_current_rows": len(sched),
        "decisions_rows": int(wh.query("select count(*) n from marts.decisions").n[0]),
        "emissions_daily": preview(daily, n=12),
        "fleet_daily": preview(
            wh.query(
                "select day::date as day, round(emissions_t, 1) emissions_t, "
                "round(agnostic_emissions_t, 1) agnostic_t, round(emissions_saved_pct, 1) saved_pct, "
                "round(like_for_like_saved_pct, 1) like_for_like_pct, jobs_completed, jobs_missed, "
                "round(g_per_it_kwh) g_per_it_kwh from marts.fleet_daily order by day"
            ),
            n=14,
        ),
        "forecast_accuracy": preview(acc, n=12),
        "fleet_emissions": png(fleet_figure(fleet_emissions_frame(wh))),
    }
    md.update(pl.fleet_summary(wh))
    grid = wh.query(
        "select event_id, site, payload_types, first_hour::varchar first_hour, hours_committed, "
        "round(import_limit_mw, 1) limit_mw, hours_over_limit, round(energy_reduced_mwh, 1) "
        "reduced_mwh, round(critical_served_pct, 1) critical_served_pct, "
        "array_to_string(jobs_paused, ', ') jobs_paused, round(revenue_usd) revenue_usd, "
        "round(lp_response_s, 2) lp_response_s, round(full_response_s, 2) full_response_s "
        "from marts.grid_event_delivery order by first_hour, event_id"
    )
    if len(grid):  # demand response delivered per grid event
        md["grid_event_delivery"] = preview(grid, n=20)
    return dg.MaterializeResult(metadata=md)


PLAN_ASSETS = [mpc_plan, dispatch, marts]
