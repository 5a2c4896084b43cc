"""Closed-loop backtest of the fleet on real grid data: ``gridflex backtest`` and the demo backtest asset.

The fleet runs hour by hour (:func:`mpc.receding.simulate`) over realised signals with four policies:

- ``oracle``: the MPC with perfect foresight of every signal;
- ``persistence``: the MPC on same-hour-yesterday forecasts of every signal but prices (day-ahead prices
  are published before the hours they price, so every policy sees them — as the pipeline does);
- ``tft``: the MPC on the served carbon-intensity forecaster's p50 — the object the hourly pipeline serves
  (:func:`pipelines.lib.forecast.served_forecaster`: TFT + validated regressions), fitted only on hours
  before the backtest window, no weather inputs (the shared weather files are reanalysis, i.e. the
  future) — every other signal exactly as in ``persistence``: the difference between the two is the
  value of the carbon forecast;
- ``static``: no forecast at all — each inference class at its historically cleanest feasible site (mean
  intensity before the window), jobs as soon as possible at their historically cleanest eligible site,
  passive energy: what a rule achieves, so the value of forecasting and of the MPC shows on its own;
- ``carbon_agnostic``: what a data centre does today (jobs as soon as possible at home, inference at home,
  passive energy).

The MPC policies keep the fleet's daily carbon budget (:class:`mpc.budget.BudgetPolicy`) and re-balance
each committed hour on what a controller knows during it (measured demand and generation, carbon as it
estimated), accounted on the actual intensity (``mpc.receding.simulate(realise="controller")``).

Realised signals: carbon intensity from Electricity Maps exports (one zone per site, the fleet's
factor); prices from price files when given (else a flat 80 $/MWh, so only carbon differs between hours);
cooling and on-site generation from weather files when given (:mod:`mpc.physics`: PV from a clear-sky
model times the observed cloud cover, wind from the 10 m speed scaled to hub height). The fleet is taken
as it is — its site and class names, its job queue: ``jobs.source = "csv"`` reads its file, ``"table"``
the warehouse's ``staging.jobs``; inference demand comes from the warehouse's ``staging.load`` for
``sources.load = "csv"``. Otherwise both come from the synthetic demo generator over the same dates, keyed
to the fleet's names (:func:`pipelines.lib.demo_source.demo_for_fleet`) — said in the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from mpc.fleet import Fleet

HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)
FLAT_PRICE = 80.0
POLICIES = ("oracle", "persistence", "tft", "static", "carbon_agnostic")


@dataclass
class BacktestData:
    realised: object  # mpc.instance.Signals over [start - 1 day, end)
    carbon_history: pd.DataFrame  # series (site), ts, value: everything before `start`
    jobs: tuple
    start: pd.Timestamp
    hours: int
    notes: list[str] = field(default_factory=list)


def _zone_of(path: Path) -> str:
    return path.name.split("_")[0]


def fleet_jobs_and_demand(fleet: Fleet, index: pd.DatetimeIndex, start, end, wh=None, notes=None):
    """The fleet's own job queue (released in ``[start, end)``) and inference demand over ``index``:
    from its job file / the warehouse where the fleet says so, else the demo generator keyed to its
    names."""
    from mpc.instance import jobs_from_frame
    from pipelines.lib.demo_source import demo_for_fleet

    notes = notes if notes is not None else []
    demo = demo_for_fleet(fleet, index[0], end + 2 * DAY)
    src = fleet.jobs.source
    if src == "csv":
        from sources.jobs import read_job_queue_csv

        jobs, _ = read_job_queue_csv(fleet.jobs.path, known_sites=list(fleet.sites))
        notes.append(f"job queue: {fleet.jobs.path}")
    elif src == "table":
        if wh is None:
            raise ValueError("jobs.source = 'table': give --db, the warehouse holding staging.jobs")
        jobs = wh.query(
            "select job_id, power_mw, duration_h, release, deadline, value, "
            "eligible_sites from staging.jobs"
        )
        jobs["eligible_sites"] = [list(x) for x in jobs.eligible_sites]
        notes.append("job queue: the warehouse's staging.jobs")
    else:
        jobs = demo["jobs"]
        notes.append("job queue: synthetic demo generator over the same dates")
    jobs = jobs[(jobs.release >= start) & (jobs.release < end)]
    if fleet.sources.load == "csv":
        if wh is None:
            raise ValueError("sources.load = 'csv': give --db, the warehouse holding staging.load")
        from pipelines.lib.forecast import load_history

        d = load_history(wh, fleet, index[0], index[-1] + HOUR)
        demand = d.pivot(index="ts", columns="series", values="value").reindex(index)
        missing = int(demand.isna().sum().sum())
        if missing:
            raise ValueError(
                f"staging.load lacks {missing} class-hour(s) in {index[0]}..{index[-1]}"
            )
        notes.append("inference demand: the warehouse's staging.load")
    else:
        demand = demo["inference"].pivot_table(index="ts", columns="series", values="value")
        demand = demand.reindex(index)
        notes.append("inference demand: synthetic demo generator over the same dates")
    home = fleet.jobs.home_site
    homes = {r.job_id: home for r in jobs.itertuples() if home and home in r.eligible_sites}
    return jobs_from_frame(jobs, homes or None), demand[list(fleet.classes)]


def load_data(
    fleet: Fleet,
    em_files: Sequence[Path],
    start: pd.Timestamp,
    days: int,
    *,
    weather_files: Sequence[Path] = (),
    price_files: Sequence[Path] = (),
    wh=None,
) -> BacktestData:
    """Assemble the realised signals for ``[start - 1 day, start + days)`` and the carbon history."""
    from mpc.physics import capacity_factors
    from sources.em_csv import read_em_csv

    notes = []
    end = start + days * DAY
    index = pd.date_range(start - DAY, end - HOUR, freq="h", tz="UTC")
    frames = [read_em_csv(p)[0] for p in em_files]
    em = pd.concat(frames, ignore_index=True)
    em = em[em.factor == fleet.carbon_factor]
    carbon = pd.DataFrame(index=index)
    history = []
    for site, cfg in fleet.sites.items():
        z = em[em.zone == cfg.zone].set_index("ts")["value"].sort_index()
        z = z[~z.index.duplicated()]
        if z.reindex(index).isna().any():
            missing = int(z.reindex(index).isna().sum())
            raise ValueError(
                f"site {site}: zone {cfg.zone!r} lacks {missing} hour(s) of carbon intensity in "
                f"{index[0]}..{index[-1]} (given: {sorted(em.zone.unique())})"
            )
        carbon[site] = z.reindex(index).to_numpy()
        history.append(
            pd.DataFrame(
                {
                    "series": site,
                    "ts": z.index[z.index < start],
                    "value": z[z.index < start].to_numpy(),
                }
            )
        )
    kappa = pd.DataFrame(index=index)
    gen = pd.DataFrame(0.0, index=index, columns=list(fleet.sites))
    weather = _read_weather(weather_files)
    for site, cfg in fleet.sites.items():
        w = weather.get(cfg.zone) if weather else None
        if w is None:
            kappa[site] = cfg.cooling.kappa0
            continue
        cols = ["temperature_2m", "cloud_cover", "wind_speed_10m"]
        w = (
            w.set_index("ts")[cols]
            .astype(float)
            .reindex(index)
            .interpolate(limit=3)
            .ffill()
            .bfill()
        )
        kappa[site] = fleet.kappa(site, w.temperature_2m)
        cf = capacity_factors(w.rename_axis("ts").reset_index(), cfg.lat, cfg.lon)
        gen[site] = fleet.generation_mw(site, cf.pv_cf.to_numpy(), cf.wind_cf.to_numpy())
    if not weather:
        notes.append("no weather files: cooling at kappa0 and no on-site generation")
    price = _read_prices(fleet, price_files, index, notes)
    jobs, demand = fleet_jobs_and_demand(fleet, index, start, end, wh, notes)
    realised = fleet.signals(carbon=carbon, price=price, generation=gen, kappa=kappa, demand=demand)
    return BacktestData(
        realised,
        pd.concat(history, ignore_index=True),
        jobs,
        start,
        days * 24,
        notes,
    )


def _read_weather(files: Sequence[Path]) -> dict[str, pd.DataFrame]:
    from sources.weather_csv import SHARED_WEATHER_OFFSETS, read_weather_csv

    out: dict[str, list] = {}
    for p in files:
        p = Path(p)
        zone = p.parent.name
        frame, _ = read_weather_csv(
            p, location=zone, utc_offset_hours=SHARED_WEATHER_OFFSETS.get(zone, 0.0)
        )
        out.setdefault("DE" if zone == "DE-LU" else zone, []).append(frame)
    return {z: pd.concat(v, ignore_index=True).drop_duplicates("ts") for z, v in out.items()}


def _read_prices(fleet: Fleet, files: Sequence[Path], index, notes) -> pd.DataFrame:
    from sources.prices_csv import SHARED_PRICE_TZ, read_prices_csv

    price = pd.DataFrame(FLAT_PRICE, index=index, columns=list(fleet.sites))
    by_zone: dict[str, list] = {}
    for p in files:
        p = Path(p)
        zone = _zone_of(p)
        frame, _ = read_prices_csv(p, zone, tz=SHARED_PRICE_TZ.get(zone))
        by_zone.setdefault("DE" if zone == "DE-LU" else zone, []).append(frame)
    for site, cfg in fleet.sites.items():
        parts = by_zone.get(cfg.price_zone or cfg.zone)
        if not parts:
            notes.append(f"{site}: no price file, flat {FLAT_PRICE:.0f} $/MWh")
            continue
        s = pd.concat(parts).drop_duplicates("ts").set_index("ts")["price"].sort_index()
        s = s.reindex(index)
        if s.isna().any():
            notes.append(
                f"{site}: {int(s.isna().sum())} price hour(s) missing, filled from the day before"
            )
            s = s.fillna(s.shift(24)).ffill().bfill()
        price[site] = s.to_numpy()
    return price


def day_ahead_prices(fn: Callable, realised) -> Callable:
    """Wrap a forecast so prices are the realised ones: day-ahead prices are published before the hours
    they price (as the pipeline treats them), so no policy has to forecast them."""

    def forecast(issued_at: pd.Timestamp, index: pd.DatetimeIndex):
        s = fn(issued_at, index)
        return replace(
            s,
            price_import=realised.price_import.reindex(index),
            price_export=realised.price_export.reindex(index),
        )

    return forecast


def tft_forecast_fn(
    data: BacktestData, fleet: Fleet, out_dir: Path, profile: str, echo: Callable[[str], None]
) -> tuple[Callable, dict]:
    """Fit the carbon forecaster the hourly pipeline serves (:func:`pipelines.lib.forecast.
    served_forecaster`: the TFT with the validated regressions, correction and conformal intervals)
    on the history before the window, without weather inputs (the shared weather files are
    observations, not forecasts); save it to ``out_dir``; forecast every hourly issue in one batch
    (each issue as the pipeline computes it alone); return ``forecast(issued_at, index) -> Signals``
    (served carbon p50, persistence for the rest)."""
    from mpc.receding import persistence_forecast
    from pipelines.lib.forecast import served_forecaster, served_metrics, spec_for, train_config

    H = fleet.planning.horizon_h
    spec = spec_for("carbon", H, fleet, weather=False)
    cfg = train_config(profile)
    hist = data.carbon_history[data.carbon_history.ts >= data.start - 120 * DAY]
    t = time.perf_counter()
    served = served_forecaster(spec, cfg, Path(out_dir) / "_train")
    served.fit(hist, val_hours=cfg.val_hours)
    served.save(out_dir)
    train_s = time.perf_counter() - t
    vm = served_metrics(served)
    echo(
        f"      served carbon forecaster ({served.description}) fitted on "
        f"{hist.ts.min():%Y-%m-%d}..{hist.ts.max():%Y-%m-%d} in {train_s:.0f} s "
        f"({vm['epochs']} TFT epochs); validation MAE {vm['val_mae']:.1f} vs persistence "
        f"{vm['val_mae_persistence']:.1f}"
    )
    realised_long = (
        data.realised.carbon.stack().rename("value").rename_axis(["ts", "series"]).reset_index()
    )
    full = pd.concat([data.carbon_history, realised_long], ignore_index=True).drop_duplicates(
        ["series", "ts"]
    )
    issues = pd.date_range(data.start, periods=data.hours, freq="h", tz="UTC")
    t = time.perf_counter()
    pred = served.predict(full, issues)
    pred_s = time.perf_counter() - t
    p50 = {
        t: g.pivot(index="target_time", columns="series", values="p50")
        for t, g in pred.groupby("issued_at")
    }
    p90 = {
        t: g.pivot(index="target_time", columns="series", values="p90")
        for t, g in pred.groupby("issued_at")
    }
    base = day_ahead_prices(persistence_forecast(data.realised), data.realised)

    def forecast(issued_at: pd.Timestamp, index: pd.DatetimeIndex):
        s = base(issued_at, index)
        c = p50[issued_at].reindex(index)[list(fleet.sites)].clip(lower=0)
        return replace(s, carbon=c)

    forecast.__name__ = "tft"

    def high(issued_at: pd.Timestamp, index: pd.DatetimeIndex) -> pd.DataFrame:
        return p90[issued_at].reindex(index)[list(fleet.sites)].clip(lower=0)

    forecast.p90 = high
    forecast.served = served
    forecast.forecasts = pred
    from forecasting.forecaster import SeasonalNaive
    from forecasting.metrics import mae

    act = realised_long.rename(columns={"ts": "target_time", "value": "actual"})
    m = pred.merge(act, on=["series", "target_time"])
    pers = SeasonalNaive(24, H).predict(full, issues).merge(act, on=["series", "target_time"])
    return forecast, {
        "train_s": round(train_s, 1),
        "predict_s": round(pred_s, 1),
        "epochs": vm["epochs"],
        "served": served.description,
        "forecaster_dir": str(out_dir),
        "val_mae": vm["val_mae"],
        "val_mae_persistence": vm["val_mae_persistence"],
        "carbon_mae": float(mae(m.actual, m.p50)),
        "carbon_mae_persistence": float(mae(pers.actual, pers.p50)),
    }


def persistence_p90(data: BacktestData, fleet: Fleet) -> Callable:
    """The p90 of the persistence carbon forecast (its own recent day-on-day errors,
    :class:`forecasting.forecaster.SeasonalNaive`) for every hourly issue, for risk-aware budgets."""
    from forecasting.forecaster import SeasonalNaive

    realised_long = (
        data.realised.carbon.stack().rename("value").rename_axis(["ts", "series"]).reset_index()
    )
    full = pd.concat([data.carbon_history, realised_long], ignore_index=True).drop_duplicates(
        ["series", "ts"]
    )
    issues = pd.date_range(data.start, periods=data.hours, freq="h", tz="UTC")
    pred = SeasonalNaive(24, fleet.planning.horizon_h).predict(full, issues)
    p90 = {
        t: g.pivot(index="target_time", columns="series", values="p90")
        for t, g in pred.groupby("issued_at")
    }

    def high(issued_at: pd.Timestamp, index: pd.DatetimeIndex) -> pd.DataFrame:
        return p90[issued_at].reindex(index)[list(fleet.sites)].clip(lower=0)

    return high


def budget_days_over(rep, per_day_t: float | None) -> tuple[int, float]:
    """UTC days whose realised emissions exceeded the daily budget, and by how many tonnes."""
    if per_day_t is None or not len(rep.site_hours):
        return 0, 0.0
    day = rep.site_hours.groupby(rep.site_hours["time"].dt.floor("D"))["emissions_t"].sum()
    over = (day - per_day_t).clip(lower=0)
    return int((over > 1e-9).sum()), float(over.sum())


def run_backtest(
    fleet: Fleet,
    data: BacktestData,
    *,
    policies: Sequence[str] = POLICIES,
    models_dir: Path = Path(".gridflex/backtest"),
    profile: str = "fast",
    echo: Callable[[str], None] = print,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Run the policies; return the results table (one row per policy), the hourly realised emissions
    per policy, and extras (timings, forecast MAE)."""
    from mpc.receding import savings, simulate, work_done

    common = dict(
        sites=fleet.mpc_sites(),
        classes=fleet.mpc_classes(),
        jobs=data.jobs,
        horizon=fleet.planning.horizon_h,
        carbon_price=fleet.planning.carbon_price,
        start=data.start,
        hours=data.hours,
        time_limit=fleet.planning.time_limit_s,
        mip_gap=fleet.planning.mip_gap,
        budget=fleet.budget_policy(),  # the fleet's daily budget, as the hourly pipeline keeps it
    )
    reports, extras = {}, {}
    order = ["carbon_agnostic", *[p for p in policies if p != "carbon_agnostic"]]
    tft_fn = None
    for p in order:
        base, _, risk = p.partition("@")  # "tft@p90": the TFT, budget planned against its p90
        if risk and risk != "p90":
            raise ValueError(f"policy {p!r}: only @p90 (risk-aware budget) is known")
        t = time.perf_counter()
        echo(
            f"[backtest] policy {p}: {data.hours} hourly steps from {data.start:%Y-%m-%d %H:%M} UTC"
        )
        if base == "tft":
            if tft_fn is None:
                tft_fn, extras["tft"] = tft_forecast_fn(data, fleet, models_dir, profile, echo)
            high = tft_fn.p90 if risk else None
            reports[p] = simulate(data.realised, forecast=tft_fn, budget_forecast=high, **common)
        elif p == "oracle":
            reports[p] = simulate(data.realised, forecast="perfect", **common)
        elif base == "persistence":
            from mpc.receding import persistence_forecast

            fn = day_ahead_prices(persistence_forecast(data.realised), data.realised)
            high = persistence_p90(data, fleet) if risk else None
            reports[p] = simulate(data.realised, forecast=fn, budget_forecast=high, **common)
        elif (
            p == "static"
        ):  # no forecast: the historically cleanest sites, jobs as soon as possible
            score = data.carbon_history.groupby("series")["value"].mean().to_dict()
            reports[p] = simulate(data.realised, forecast="static", site_score=score, **common)
        else:
            reports[p] = simulate(data.realised, forecast=p, **common)
        extras[f"{p}_s"] = round(time.perf_counter() - t, 1)
    agn, oracle = reports["carbon_agnostic"], reports.get("oracle")
    rows, hourly = [], []
    for p, rep in reports.items():
        s = savings(rep, agn, oracle)
        em_saved = s["emissions_saved_t"]
        work = work_done(rep)
        rows.append(
            {
                "policy": p,
                "emissions": rep.totals["emissions_t"],
                "cost": rep.totals["energy_cost"],
                "objective": rep.totals["objective"],
                "missed_deadlines": int(rep.totals["missed_deadlines"]),
                "unserved_units": rep.totals.get("unserved_units", 0.0),
                "training_mwh": work["training_mwh"],
                "jobs_completed": int(work["jobs_completed"]),
                "g_per_useful_kwh": work["g_per_useful_kwh"],
                "like_for_like_saving_pct": s.get("like_for_like_pct", 0.0)
                if p != "carbon_agnostic"
                else 0.0,
                "budget_over_t": rep.totals.get("budget_over_t", 0.0),
                "budget_days_over": budget_days_over(rep, fleet.planning.daily_carbon_budget_t)[0],
                "budget_realised_over_t": budget_days_over(
                    rep, fleet.planning.daily_carbon_budget_t
                )[1],
                "savings_vs_agnostic_pct": 100 * em_saved / agn.totals["emissions_t"]
                if agn.totals["emissions_t"]
                else 0.0,
                "share_of_oracle_savings": s.get("share_of_oracle_emissions", float("nan"))
                if p != "carbon_agnostic"
                else 0.0,
            }
        )
        h = rep.site_hours.groupby("time")["emissions_t"].sum().rename("emissions_t").reset_index()
        hourly.append(h.rename(columns={"time": "hour"}).assign(policy=p))
    return pd.DataFrame(rows), pd.concat(hourly, ignore_index=True), extras


def load_demo_data(
    fleet: Fleet, start: pd.Timestamp, days: int, history_days: int = 21
) -> BacktestData:
    """The same closed-loop inputs from the built-in demo grid (realised = the demo's observed series)."""
    from mpc.physics import capacity_factors
    from pipelines.lib.demo_source import demo_for_fleet

    end = start + days * DAY
    index = pd.date_range(start - DAY, end - HOUR, freq="h", tz="UTC")
    w = demo_for_fleet(fleet, start - history_days * DAY, end)
    site_of = {fleet.carbon_series(s): s for s in fleet.sites}
    c = w["carbon"][w["carbon"].series.isin(list(site_of))].assign(
        site=lambda d: d.series.map(site_of)
    )
    wide = c.pivot(index="ts", columns="site", values="value")
    carbon = wide.reindex(index)[list(fleet.sites)]
    hist = (
        wide[wide.index < start].stack().rename("value").rename_axis(["ts", "series"]).reset_index()
    )
    zone_of = {n: (s.price_zone or s.zone) for n, s in fleet.sites.items()}
    pw = w["prices"].pivot(index="ts", columns="zone", values="price").reindex(index)
    price = pd.DataFrame({s: pw[z].to_numpy() for s, z in zone_of.items()}, index=index)
    gen, kappa = pd.DataFrame(index=index), pd.DataFrame(index=index)
    for site, cfg in fleet.sites.items():
        t = w["weather"][w["weather"].location == site].set_index("ts").reindex(index)
        cf = capacity_factors(t.rename_axis("ts").reset_index(), cfg.lat, cfg.lon)
        gen[site] = fleet.generation_mw(site, cf.pv_cf.to_numpy(), cf.wind_cf.to_numpy())
        kappa[site] = fleet.kappa(site, t.temperature_2m)
    notes = ["demo grid: every series synthetic (sources/demo.py)"]
    jobs, demand = fleet_jobs_and_demand(fleet, index, start, end, None, notes)
    realised = fleet.signals(carbon=carbon, price=price, generation=gen, kappa=kappa, demand=demand)
    return BacktestData(realised, hist, jobs, start, days * 24, notes)
