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
    "The fleet per day: realised emissions vs carbon-agnostic on the hours both have, the work each did, "
    "and carbon efficiency": """
        select day::date as day, compared_site_hours as site_hours, round(compared_emissions_t, 1) as emissions_t,
               round(agnostic_emissions_t, 1) as agnostic_t, round(emissions_saved_pct, 1) as saved_pct,
               round(compared_training_mwh) as training_mwh, round(agnostic_training_mwh) as agnostic_training_mwh,
               compared_jobs_completed as jobs_done, agnostic_jobs_completed as agnostic_jobs_done,
               round(like_for_like_saved_pct, 1) as like_for_like_pct, round(cost_saved) as cost_saved_usd,
               round(g_per_it_kwh) as g_per_it_kwh, round(sci_g_per_gpu_hour) as sci_g_per_gpu_h
        from marts.fleet_daily order by day""",
    "Forecast accuracy so far (MAE, p10-p90 coverage, first-day rank correlation of hours and "
    "4 h window regret) by target and model": """
        select target, model, count(*) as points, round(avg(abs_error), 1) as mae,
               round(avg(in_p10_p90::int), 2) as coverage,
               round(avg(day_rank_corr), 2) as rank_corr, round(avg(window_regret), 1) as regret
        from marts.forecast_accuracy group by all order by target, model""",
}


def served_line(model_dir) -> str:
    """What a model directory serves and how it validated: the served forecaster's validation MAE
    next to persistence's on the same forecasts, and each member's alone."""
    from forecasting.forecaster import read_manifest

    try:
        m = read_manifest(model_dir)
    except FileNotFoundError:
        return "no forecaster manifest"
    v = m.get("validation", {}).get("scores", {})
    if not v:
        return f"serves {m.get('served', m['kind'])}"
    members = ", ".join(
        f"{n} {s['mae']:,.1f}" for n, s in v.items() if n not in ("served", "persistence")
    )
    return (
        f"serves {m.get('served', m['kind'])}; validation MAE {v['served']['mae']:,.1f} vs "
        f"persistence {v['persistence']['mae']:,.1f} (members alone: {members}); validation "
        f"p10-p90 coverage {v['served']['coverage_p10_p90']:.2f}"
    )


def plan_line(row) -> str:
    """One committed hour as the terminal shows it: status, the window's net benefit, the gap, the
    carbon allocation and what the plan used of it (and had to exceed), jobs started and missed."""
    budget = ""
    if row.window_budget_t is not None and not pd.isna(row.window_budget_t):
        budget = f"  budget {row.budget_planned_t:,.1f}/{row.window_budget_t:,.1f} t"
        if row.budget_over_t and row.budget_over_t > 1e-6:
            budget += f" OVER by {row.budget_over_t:,.1f} t"
    missed_ids = [] if row.jobs_missed is None else list(row.jobs_missed)
    missed = f"  MISSED: {', '.join(missed_ids)}" if missed_ids else ""
    return (
        f"{row.plan_hour:%Y-%m-%d %H:%M}  {row.status:8s} net benefit {row.objective:>10,.0f} $  "
        f"gap {row.mip_gap:6.2%}  solve {row.solve_s:5.2f}s{budget}  "
        f"started: {', '.join(row.jobs_started) or '-'}{missed}"
        + (f"  DEGRADED: {row.degraded_reason}" if row.degraded else "")
    )


def fleet_lines(wh) -> list[str]:
    """The fleet-wide result (marts.fleet_total) and, below it, each site's, with why a site's can be
    negative: the planner moves work between sites, so a site that took work on emits more than it
    would have; only the fleet's total is a saving."""
    from pipelines.lib.plan import fleet_summary

    s = fleet_summary(wh)
    if "emissions_saved_vs_agnostic_pct" not in s:
        return [
            "fleet-wide: no hour compared with carbon-agnostic yet (it needs the hour's actuals)"
        ]
    out = [
        f"fleet-wide over {s['compared_hours']} site-hours: {s['emissions_saved_vs_agnostic_t']:,.1f} t "
        f"CO2 saved vs carbon-agnostic ({s['emissions_saved_vs_agnostic_pct']:.1f} %), "
        f"{s['cost_saved_vs_agnostic_usd']:,.0f} $ saved; like for like "
        f"{s['g_per_useful_kwh']:,.0f} vs {s['agnostic_g_per_useful_kwh']:,.0f} g CO2 per kWh of useful "
        f"compute ({s['like_for_like_saved_pct']:.1f} %); training {s['compared_training_mwh']:,.0f} vs "
        f"{s['agnostic_training_mwh']:,.0f} MWh, jobs completed {s['compared_jobs_completed']} vs "
        f"{s['agnostic_jobs_completed']}, missed {s['jobs_missed']}",
    ]
    per_site = wh.query(
        "select site, 100 * (1 - sum(compared_emissions_t) / nullif(sum(agnostic_emissions_t), 0)) pct, "
        "sum(compared_training_mwh) tr, sum(agnostic_training_mwh) atr from marts.emissions_daily "
        "group by site order by site"
    )
    out.append(
        "per site (work moves between sites, so a site that took work on can read negative; only "
        "the fleet total is a saving): "
        + ", ".join(
            f"{r.site} {r.pct:+.1f} % (training {r.tr:,.0f} vs {r.atr:,.0f} MWh)"
            for r in per_site.itertuples()
            if not pd.isna(r.pct)
        )
    )
    return out


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
    ``hours`` hours (one run per hour, in order, each printed as it is planned), then the marts."""
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
        "select target, model_id, checkpoint_path, epochs, train_seconds "
        "from forecasts.models where status = 'ok' and train_end = ? order by trained_at desc",
        [PLAN_START.to_pydatetime()],
    ).drop_duplicates("target")
    for m in models.itertuples():
        echo(
            f"      {m.target} model {m.model_id} ({m.epochs} epochs, {m.train_seconds:.0f} s): "
            + served_line(m.checkpoint_path)
        )

    echo(
        f"[3/4] {hours} hourly ticks {first:%Y-%m-%d %H:%M} .. {last:%H:%M} UTC: the hourly_tick job "
        "(ingest -> forecast -> plan -> dispatch), one Dagster run per hour, in order"
    )
    runs_sql = (
        "select plan_hour, status, objective, mip_gap, solve_s, degraded, jobs_started, jobs_missed, "
        "window_budget_t, budget_planned_t, budget_over_t, degraded_reason from plans.runs "
        "where plan_hour = ?"
    )

    def on_hour(t, result):
        for row in wh.query(runs_sql, [t.to_pydatetime()]).itertuples():
            echo("      " + plan_line(row))

    step(
        "ticks",
        lambda: runner.tick(
            first, last, restate=True, tags={"gridflex/demo": "ticks"}, on_hour=on_hour
        ),
    )

    echo("[4/4] refresh marts")
    step("marts", lambda: runner.marts(tags={"gridflex/demo": "marts"}))
    for line in fleet_lines(wh):
        echo("      " + line)

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
        f"{timings['train']:.0f} s, {hours} ticks {timings['ticks']:.0f} s (one run each)"
    )
    echo("See it in the UI: make dev  ->  http://127.0.0.1:3000 (same instance: .dagster_home)")
    echo(
        "Run the live loop on today's hours: `.venv/bin/gridflex bootstrap --days 21` (history, "
        "models and a first plan for the current hour), then turn on hourly_tick_schedule in the UI."
    )
    return summary
