"""``gridflex bench tick``: how long one hourly tick takes, without and with Dagster.

On a demo warehouse (bootstrapped and trained with the chosen profile if it has no model yet) it times,
for ``hours`` consecutive hours after the demo's plan start: carbon forecast + load forecast (TFT
inference from the loaded checkpoint) + their writes + the plan (build, HiGHS solve, one-transaction
write) — the tick itself — and then the same hours as in-process Dagster runs (one run per hour), whose
extra time over the direct tick of the same hour is Dagster's overhead (run and step bookkeeping, event log writes, checks)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pandas as pd

HOUR = pd.Timedelta(hours=1)
#: Dagster's console at WARNING: the benchmark prints its own lines
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def bench_tick(db: Path, models_dir: Path, hours: int, profile: str, echo) -> dict:
    import dagster as dg

    from mpc.fleet import load_fleet
    from pipelines.defs.forecast.assets import (
        carbon_forecast,
        carbon_model,
        load_forecast,
        load_model,
    )
    from pipelines.defs.plan.assets import mpc_plan
    from pipelines.defs.resources import FleetResource, ModelStoreResource, WarehouseResource
    from pipelines.demo import PLAN_START
    from pipelines.lib import forecast as fc
    from pipelines.lib import plan as pl
    from pipelines.lib.demo_source import DEMO_EPOCH
    from pipelines.lib.ingest import ingest_window
    from warehouse import Warehouse

    wh, fleet = Warehouse(db), load_fleet()
    res = {
        "warehouse": WarehouseResource(path=str(db)),
        "fleet": FleetResource(),
        "models": ModelStoreResource(directory=str(models_dir), profile=profile),
    }
    ingest_window(wh, fleet, DEMO_EPOCH, PLAN_START + (hours + 48) * HOUR)
    if fc.usable_model(wh, "carbon", PLAN_START, pd.Timedelta(days=8)) is None:
        echo(f"training {profile} models (once)")
        cfg = {"train_end": PLAN_START.isoformat()}
        dg.materialize(
            [carbon_model, load_model],
            resources=res,
            run_config={
                **QUIET,
                "ops": {"carbon_model": {"config": cfg}, "load_model": {"config": cfg}},
            },
        )

    pl.reset_plans(wh)  # plan the same hours from a fresh start each time
    fc._load(
        fc.usable_model(wh, "carbon", PLAN_START, pd.Timedelta(days=8))["checkpoint_path"]
    )  # warm
    fc._load(fc.usable_model(wh, "load", PLAN_START, pd.Timedelta(days=8))["checkpoint_path"])
    parts = {"forecast_carbon": [], "forecast_load": [], "plan": [], "tick": []}
    for h in range(hours):
        t0 = PLAN_START + h * HOUR
        tic = time.perf_counter()
        for target in ("carbon", "load"):
            t = time.perf_counter()
            fc.store_forecast(wh, target, fc.issue_forecast(wh, fleet, target, t0))
            parts[f"forecast_{target}"].append(time.perf_counter() - t)
        t = time.perf_counter()
        out = pl.plan_hour(wh, fleet, t0)
        parts["plan"].append(time.perf_counter() - t)
        parts["tick"].append(time.perf_counter() - tic)
        echo(
            f"  {t0:%Y-%m-%d %H:%M} tick {parts['tick'][-1]:.2f} s (plan {parts['plan'][-1]:.2f} s: "
            f"build {out.build_s:.2f}, solve {out.solve_s:.2f}; {out.status}, gap {out.gap:.2%})"
        )
    runs = []
    instance = dg.DagsterInstance.ephemeral()
    pl.reset_plans(wh)  # plan the same hours from a fresh start each time
    for h in range(hours):
        t0 = PLAN_START + h * HOUR
        t = time.perf_counter()
        r = dg.materialize(
            [carbon_forecast, load_forecast, mpc_plan],
            resources=res,
            instance=instance,
            partition_key=t0.strftime("%Y-%m-%d-%H:%M"),
            run_config=QUIET,
        )
        runs.append(time.perf_counter() - t)
        if not r.success:
            raise RuntimeError(f"Dagster run for {t0} failed")
    med = {k: statistics.median(v) for k, v in parts.items()}
    result = {
        "hours": hours,
        **{f"{k}_median_s": round(v, 3) for k, v in med.items()},
        "tick_max_s": round(max(parts["tick"]), 3),
        "dagster_run_median_s": round(statistics.median(runs), 3),
        "dagster_overhead_median_s": round(statistics.median(runs) - med["tick"], 3),
    }
    return result
