"""``gridflex replay``: the real hourly path over recorded data, hour after hour, through Dagster.

A replay server (:mod:`sources.replay`) answers the fleet's API sources (Electricity Maps or WattTime,
Open-Meteo) from recorded exports at a clock the replay moves; the fleet's file sources (prices) are
imported first, as a user would. Then, exactly as a first live start and the schedule would:

1. at ``start`` + 5 min: the ingest assets over ``history_days`` before ``start`` (one run), the
   ``retrain_models`` job on it, and the first tick with a fresh plan chain;
2. every hour ``t``: the clock to ``t`` + 5 min, the ``hourly_tick`` job for ``t``; at 00:30 UTC the
   ``retrain_models`` job (as ``retrain_schedule`` does) unless ``retrain="never"``;
3. at the end, with the clock six days on (the Open-Meteo archive lags five): the ingest assets over
   the period again — revisions and the archive's observations restate what the live ticks had to
   estimate — then the offline evaluation (:func:`pipelines.lib.replay.evaluate`) against
   carbon-agnostic and the oracle on those actuals.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

HOUR = pd.Timedelta(hours=1)
API_CARBON = ("electricitymaps_api", "watttime")


def run_replay(
    *,
    fleet_path: str,
    start: pd.Timestamp,
    hours: int,
    em_files,
    weather_files=(),
    price_files=(),
    watttime: dict | None = None,
    db: Path,
    models_dir: Path,
    profile: str = "fast",
    history_days: int = 30,
    retrain: str = "daily",
    em_plan: str | None = None,
    seed: int = 0,
    echo: Callable[[str], None] = print,
    verbose: bool = False,
) -> tuple[pd.DataFrame, dict]:
    from mpc.fleet import load_fleet
    from pipelines.lib import replay as lib
    from pipelines.lib.ingest import import_files
    from pipelines.runner import Runner
    from sources.replay import ReplayServer
    from warehouse import Warehouse

    fleet = load_fleet(fleet_path)
    if fleet.sources.carbon not in API_CARBON or fleet.sources.weather != "openmeteo":
        raise ValueError(
            f"{fleet_path}: a replay serves the real APIs, so the fleet needs sources.carbon = "
            f"electricitymaps_api or watttime and sources.weather = openmeteo (it has carbon = "
            f"{fleet.sources.carbon!r}, weather = {fleet.sources.weather!r})"
        )
    for p in (db, Path(str(db) + ".wal")):
        if Path(p).exists():
            Path(p).unlink()  # a replay's warehouse is its own scratch file
    wh = Warehouse(db)
    t_all = time.perf_counter()
    data = lib.replay_data(fleet, em_files, weather_files, watttime)
    end = start + hours * HOUR
    tier = em_plan or fleet.sources.electricitymaps_plan
    with ReplayServer(data, clock=start + pd.Timedelta(minutes=5), em_tier=tier, seed=seed) as srv:
        saved_env = {k: os.environ.get(k) for k in srv.env()}
        os.environ.update(srv.env())
        try:
            runner = Runner(
                db=db,
                fleet_path=fleet_path,
                models_dir=models_dir,
                profile=profile,
                echo=echo,
                log_level="DEBUG" if verbose else "CRITICAL",
            )
            if fleet.sources.prices == "csv":
                for path, zone in lib.price_imports(fleet, price_files):
                    t = import_files(wh, "prices", [path], zone=zone)
                    echo(f"imported {path.name} as zone {zone}: {int(t.inserted.sum())} hours")
            timings = {}
            tic = time.perf_counter()
            echo(
                f"[1/3] first live start at {start:%Y-%m-%d %H:%M} UTC: {history_days} days of "
                f"history from the replayed APIs, then the models ({profile} profile)"
            )
            runner.ingest(
                start - pd.Timedelta(days=history_days),
                start - HOUR,
                tags={"gridflex/replay": "bootstrap"},
            )
            runner.train(start, history_days=history_days, tags={"gridflex/replay": "train"})
            timings["bootstrap_s"] = round(time.perf_counter() - tic, 1)
            echo(f"      done in {timings['bootstrap_s']:.0f} s")
            echo(
                f"[2/3] {hours} hourly ticks through the hourly_tick job, the clock at 5 past each"
            )
            tick_s = []
            for i in range(hours):
                t = start + i * HOUR
                srv.set_clock(t + pd.Timedelta(minutes=5))
                tic = time.perf_counter()
                runner.tick(t, fresh_start=(i == 0), tags={"gridflex/replay": "tick"})
                tick_s.append(time.perf_counter() - tic)
                row = wh.query(
                    "select status, degraded, degraded_reason, jobs_started from "
                    "plans.runs where plan_hour = ?",
                    [t.to_pydatetime()],
                ).iloc[0]
                if i % 6 == 0 or row.degraded or i == hours - 1:
                    echo(
                        f"      {i + 1:>3}/{hours} {t:%Y-%m-%d %H:%M} {row.status:8s} "
                        f"{tick_s[-1]:4.1f} s"
                        + (f"  DEGRADED: {row.degraded_reason}" if row.degraded else "")
                        + (
                            f"  started {', '.join(row.jobs_started)}"
                            if len(row.jobs_started)
                            else ""
                        )
                    )
                if retrain == "daily" and i and t.hour == 0:  # retrain_schedule: 00:30 UTC
                    srv.set_clock(t + pd.Timedelta(minutes=30))
                    tic = time.perf_counter()
                    runner.train(t, history_days=history_days, tags={"gridflex/replay": "retrain"})
                    echo(
                        f"      retrained on data before {t:%Y-%m-%d %H:%M} in "
                        f"{time.perf_counter() - tic:.0f} s"
                    )
            timings["tick_median_s"] = round(float(pd.Series(tick_s).median()), 2)
            timings["tick_max_s"] = round(max(tick_s), 2)
            echo(
                "[3/3] six days later the archive and the revisions have caught up: the period is "
                "ingested again (restating what changed), then evaluated on those actuals"
            )
            srv.set_clock(end + pd.Timedelta(days=6, minutes=5))
            runner.ingest(
                start - pd.Timedelta(days=1), end - HOUR, tags={"gridflex/replay": "catch-up"}
            )
            # what the next tick's dispatch does with them: re-state the committed hours and advance
            # the carbon-agnostic counterfactual, so the marts compare the whole period
            runner.restate(end - HOUR, tags={"gridflex/replay": "catch-up"})
            runner.marts(tags={"gridflex/replay": "catch-up"})
        finally:
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    table, extras = lib.evaluate(wh, fleet, start, end)
    extras.update(timings)
    extras["total_s"] = round(time.perf_counter() - t_all, 1)
    return table, extras
