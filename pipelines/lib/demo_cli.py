"""``gridflex demo``: the whole loop on the built-in demo grid, as real Dagster runs."""

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
    "Realised emissions and savings vs carbon-agnostic, per site and day": """
        select day::date as day, site, hours, round(emissions_t, 1) as emissions_t,
               round(agnostic_emissions_t, 1) as agnostic_t, round(emissions_saved_pct, 1) as saved_pct,
               round(cost_saved) as cost_saved_usd
        from marts.emissions_daily order by day, site""",
    "Forecast accuracy so far (MAE, p10-p90 coverage) by target and model": """
        select target, model, count(*) as points, round(avg(abs_error), 1) as mae,
               round(avg(in_p10_p90::int), 2) as coverage
        from marts.forecast_accuracy group by all order by target, model""",
}


def _k(t: pd.Timestamp) -> str:
    return t.strftime("%Y-%m-%d-%H:%M")


def run_demo(
    *, db: Path, hours: int, profile: str, models_dir: Path, echo: Callable[[str], None]
) -> dict:
    import dagster as dg
    from tabulate import tabulate

    from pipelines.defs.automation import PLAN_CHECKS
    from pipelines.defs.checks import INGEST_CHECKS
    from pipelines.defs.forecast import (
        FORECAST_CHECKS,
        carbon_forecast,
        carbon_model,
        load_forecast,
        load_model,
    )
    from pipelines.defs.ingest import INGEST_ASSETS
    from pipelines.defs.plan import dispatch, marts, mpc_plan
    from pipelines.defs.resources import FleetResource, ModelStoreResource, WarehouseResource
    from warehouse import Warehouse

    t_all = time.perf_counter()
    instance = dg.DagsterInstance.get()
    res = {
        "warehouse": WarehouseResource(path=str(db)),
        "fleet": FleetResource(),
        "models": ModelStoreResource(directory=str(models_dir), profile=profile),
    }
    timings = {}
    tick_s: list[float] = []

    def step(name, fn):
        t = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t
        return out

    from mpc.fleet import load_fleet
    from pipelines.lib.ingest import ingest_window

    echo(
        f"[1/4] bootstrap: bulk-import the demo grid {DEMO_EPOCH:%Y-%m-%d} .. {PLAN_START:%Y-%m-%d %H:%M} UTC "
        f"into {db}"
    )
    table = step(
        "bootstrap", lambda: ingest_window(Warehouse(db), load_fleet(), DEMO_EPOCH, PLAN_START)
    )
    echo(
        tabulate(
            table[["table", "rows_in", "inserted", "updated", "unchanged"]],
            headers="keys",
            tablefmt="github",
            showindex=False,
        )
    )

    echo(
        f"[2/4] train carbon and load TFTs on data before {PLAN_START:%Y-%m-%d %H:%M} ({profile} profile)"
    )
    cfg = {"train_end": PLAN_START.isoformat()}
    r = step(
        "train",
        lambda: dg.materialize(
            [carbon_model, load_model, *INGEST_ASSETS],
            selection=[carbon_model, load_model],
            instance=instance,
            resources=res,
            run_config={"ops": {"carbon_model": {"config": cfg}, "load_model": {"config": cfg}}},
        ),
    )
    _fail_on(r, "training")
    for node in ("carbon_model", "load_model"):
        m = r.asset_materializations_for_node(node)[0].metadata
        echo(
            f"      {node}: val MAE {m['val_mae'].value:,.1f} vs persistence "
            f"{m['val_mae_persistence'].value:,.1f} ({m['epochs'].value} epochs, {m['train_seconds'].value:.0f} s)"
        )

    first, last = PLAN_START, PLAN_START + (hours - 1) * HOUR
    echo(
        f"[3/4] {hours} hourly ticks {first:%Y-%m-%d %H:%M} .. {last:%H:%M} UTC: one Dagster backfill run of "
        "hourly_tick (ingest -> forecast -> plan -> dispatch), hours planned in order"
    )
    tick = dg.AssetSelection.assets(
        *INGEST_ASSETS, carbon_forecast, load_forecast, mpc_plan, dispatch
    )
    r = step(
        "ticks",
        lambda: dg.materialize(
            [
                *INGEST_ASSETS,
                *INGEST_CHECKS,
                carbon_forecast,
                load_forecast,
                mpc_plan,
                dispatch,
                *FORECAST_CHECKS,
                *PLAN_CHECKS,
                carbon_model,
                load_model,
            ],
            selection=tick
            | dg.AssetSelection.checks(*INGEST_CHECKS, *FORECAST_CHECKS, *PLAN_CHECKS),
            instance=instance,
            resources=res,
            tags={
                "dagster/asset_partition_range_start": _k(first),
                "dagster/asset_partition_range_end": _k(last),
            },
        ),
    )
    _fail_on(r, "hourly ticks")
    runs = Warehouse(db).query(
        "select plan_hour, status, objective, mip_gap, solve_s, degraded, jobs_started from plans.runs "
        "where plan_hour >= ? and plan_hour <= ? order by plan_hour",
        [first.to_pydatetime(), last.to_pydatetime()],
    )
    for row in runs.itertuples():
        echo(
            f"      {row.plan_hour:%Y-%m-%d %H:%M}  {row.status:8s} objective {row.objective:>10,.0f} $  "
            f"gap {row.mip_gap:6.2%}  solve {row.solve_s:5.2f}s  {'DEGRADED ' if row.degraded else ''}"
            f"started: {', '.join(row.jobs_started) or '-'}"
        )
    m = r.asset_materializations_for_node("mpc_plan")[0].metadata
    tick_s.append(m["tick_s"].value)

    echo("[4/4] refresh marts")
    r = step(
        "marts",
        lambda: dg.materialize(
            [marts, dispatch, carbon_forecast, load_forecast],
            selection=[marts],
            instance=instance,
            resources=res,
        ),
    )
    _fail_on(r, "marts")

    wh = Warehouse(db)
    echo(
        f'\nWarehouse: {Path(db).resolve()}   (query it: .venv/bin/gridflex sql "select ..." --db {db})'
    )
    for title, sql in EXAMPLE_QUERIES.items():
        df = wh.query(sql)
        echo(f"\n-- {title}\n{sql.strip()}\n")
        echo(tabulate(df, headers="keys", tablefmt="github", showindex=False, floatfmt=".2f"))
    total = time.perf_counter() - t_all
    summary = {
        "total_s": round(total, 1),
        **{k: round(v, 1) for k, v in timings.items()},
        "mean_tick_s": round(sum(tick_s) / len(tick_s), 2) if tick_s else None,
    }
    echo(
        f"\ndemo done in {total:.0f} s: bootstrap {timings['bootstrap']:.0f} s, training {timings['train']:.0f} s, "
        f"{hours} ticks {timings['ticks']:.0f} s in one run (last plan step {summary['mean_tick_s']} s)"
    )
    echo("See it in the UI: make dev  ->  http://127.0.0.1:3000 (same instance: .dagster_home)")
    return summary


def _fail_on(result, what: str) -> None:
    if not result.success:
        raise RuntimeError(f"demo {what} run failed (see the Dagster logs above)")
    failed = [
        e
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity.value == "ERROR"
    ]
    if failed:
        raise RuntimeError(f"demo {what}: checks failed: {[e.check_name for e in failed]}")
