"""``gridflex demo``: the whole loop on the built-in demo grid, as real Dagster runs of the code
location's own jobs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from pipelines.lib.demo_source import DEMO_EPOCH

#: the demo trains on three weeks of history and plans the day after
PLAN_START = DEMO_EPOCH + pd.Timedelta(days=21)
HOUR = pd.Timedelta(hours=1)

EXAMPLE_QUERIES = {
    "What runs where in the current plan (first hours)": """
        select hour, site, array_to_string(jobs_running, ', ') as jobs, round(grid_import_mw, 1) as import_mw,
               round(battery_soc_mwh, 1) as soc_mwh, round(expected_emissions_t, 2) as emissions_t
        from marts.schedule_current order by hour, site limit 9""",
    "Realised savings vs carbon-agnostic, like for like: the work each did (MWh) and gCO2 per kWh of it": """
        select day::date as day, compared_site_hours as site_hours, round(emissions_t, 1) as emissions_t,
               round(agnostic_emissions_t, 1) as agnostic_t, round(emissions_saved_pct, 1) as saved_pct,
               round(training_mwh) as training_mwh, round(agnostic_training_mwh) as agnostic_training_mwh,
               round(g_per_useful_kwh) as g_per_kwh, round(agnostic_g_per_useful_kwh) as agnostic_g_per_kwh,
               round(like_for_like_saved_pct, 1) as like_for_like_pct, round(cost_saved) as cost_saved_usd
        from marts.savings_daily order by day""",
    "Forecast accuracy so far (MAE, p10-p90 coverage) by target and model": """
        select target, model, count(*) as points, round(avg(abs_error), 1) as mae,
               round(avg(in_p10_p90::int), 2) as coverage
        from marts.forecast_accuracy group by all order by target, model""",
}


def plan_line(row) -> str:
    """One committed hour as the terminal shows it: status, the window's net benefit, the gap, the
    carbon allocation and what the plan used of it (and had to exceed), jobs started and missed."""
    budget = ""
    if row.window_budget_t is not None and not pd.isna(row.window_budget_t):
        budget = f"  budget {row.budget_planned_t:,.1f}/{row.window_budget_t:,.1f} t"
        if row.budget_over_t and row.budget_over_t > 1e-6:
            budget += f" OVER by {row.budget_over_t:,.1f} t"
    missed = f"  MISSED: {', '.join(row.jobs_missed)}" if len(row.jobs_missed or []) else ""
    return (
        f"{row.plan_hour:%Y-%m-%d %H:%M}  {row.status:8s} net benefit {row.objective:>10,.0f} $  "
        f"gap {row.mip_gap:6.2%}  solve {row.solve_s:5.2f}s{budget}  "
        f"started: {', '.join(row.jobs_started) or '-'}{missed}"
        + (f"  DEGRADED: {row.degraded_reason}" if row.degraded else "")
    )


def run_demo(
    *,
    db: Path,
    hours: int,
    profile: str,
    models_dir: Path,
    echo: Callable[[str], None],
    verbose: bool = False,
) -> dict:
    """The demo through the code location's own jobs (:class:`pipelines.runner.Runner`): the ingest
    assets over three weeks of history, the ``retrain_models`` job, then ``hourly_tick`` for
    ``hours`` hours in one run (planned in order), then the marts."""
    from tabulate import tabulate

    from pipelines.runner import Runner
    from warehouse import Warehouse

    t_all = time.perf_counter()
    runner = Runner(
        db=db,
        models_dir=models_dir,
        profile=profile,
        echo=echo,
        log_level="DEBUG" if verbose else "CRITICAL",
    )
    wh = Warehouse(db)
    first, last = PLAN_START, PLAN_START + (hours - 1) * HOUR
    later = wh.query("select max(plan_hour) t from plans.runs").t[0]
    if later is not None and not pd.isna(later) and pd.Timestamp(later) > last:
        raise RuntimeError(
            f"{db} holds plans up to {pd.Timestamp(later):%Y-%m-%d %H:%M} UTC, after the demo's day: "
            "the demo would have to remove them to re-plan its day. Use another warehouse "
            "(--db) for the demo."
        )
    timings = {}

    def step(name, fn):
        t = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t
        return out

    echo(
        f"[1/4] bootstrap: the ingest assets over the demo grid {DEMO_EPOCH:%Y-%m-%d} .. "
        f"{PLAN_START:%Y-%m-%d %H:%M} UTC (one Dagster run) into {db}"
    )
    step(
        "bootstrap",
        lambda: runner.ingest(DEMO_EPOCH, PLAN_START - HOUR, tags={"gridflex/demo": "bootstrap"}),
    )
    counts = wh.query(
        """select 'staging.' || t as "table", n as rows from (
             select 'carbon_intensity' t, count(*) n from staging.carbon_intensity union all
             select 'weather_observed', count(*) from staging.weather_observed union all
             select 'weather_forecast', count(*) from staging.weather_forecast union all
             select 'prices', count(*) from staging.prices union all
             select 'generation', count(*) from staging.generation union all
             select 'load', count(*) from staging.load union all
             select 'jobs', count(*) from staging.jobs)"""
    )
    echo(tabulate(counts, headers="keys", tablefmt="github", showindex=False))

    echo(
        f"[2/4] train carbon and load forecasters on data before {PLAN_START:%Y-%m-%d %H:%M} "
        f"({profile} profile)"
    )
    step("train", lambda: runner.train(PLAN_START, tags={"gridflex/demo": "train"}))
    models = wh.query(
        "select target, model_id, val_mae, val_mae_persistence, epochs, train_seconds "
        "from forecasts.models where status = 'ok' and train_end = ? order by trained_at desc",
        [PLAN_START.to_pydatetime()],
    ).drop_duplicates("target")
    for m in models.itertuples():
        echo(
            f"      {m.target} model {m.model_id}: validation MAE {m.val_mae:,.1f} vs persistence "
            f"{m.val_mae_persistence:,.1f} ({m.epochs} epochs, {m.train_seconds:.0f} s)"
        )

    echo(
        f"[3/4] {hours} hourly ticks {first:%Y-%m-%d %H:%M} .. {last:%H:%M} UTC: one run of the "
        "hourly_tick job (ingest -> forecast -> plan -> dispatch), hours planned in order"
    )
    step("ticks", lambda: runner.tick(first, last, restate=True, tags={"gridflex/demo": "ticks"}))
    runs = wh.query(
        "select plan_hour, status, objective, mip_gap, solve_s, degraded, jobs_started, jobs_missed, "
        "window_budget_t, budget_planned_t, budget_over_t, degraded_reason from plans.runs "
        "where plan_hour >= ? and plan_hour <= ? order by plan_hour",
        [first.to_pydatetime(), last.to_pydatetime()],
    )
    for row in runs.itertuples():
        echo("      " + plan_line(row))

    echo("[4/4] refresh marts")
    step("marts", lambda: runner.marts(tags={"gridflex/demo": "marts"}))

    echo(
        f'\nWarehouse: {Path(db).resolve()}   (query it: .venv/bin/gridflex sql "select ..." --db {db})'
    )
    for title, sql in EXAMPLE_QUERIES.items():
        df = wh.query(sql)
        echo(f"\n-- {title}\n{sql.strip()}\n")
        echo(tabulate(df, headers="keys", tablefmt="github", showindex=False, floatfmt=".2f"))
    total = time.perf_counter() - t_all
    summary = {"total_s": round(total, 1), **{k: round(v, 1) for k, v in timings.items()}}
    echo(
        f"\ndemo done in {total:.0f} s: bootstrap {timings['bootstrap']:.0f} s, training "
        f"{timings['train']:.0f} s, {hours} ticks {timings['ticks']:.0f} s in one run"
    )
    echo("See it in the UI: make dev  ->  http://127.0.0.1:3000 (same instance: .dagster_home)")
    echo(
        "Run the live loop on today's hours: `.venv/bin/gridflex bootstrap --days 21` (history, "
        "models and a first plan for the current hour), then turn on hourly_tick_schedule in the UI."
    )
    return summary
