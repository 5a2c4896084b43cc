"""Read-only questions a person asks the warehouse (``gridflex forecast``, ``gridflex best-window``):
the SQL that fetches the inputs, nothing else. The answers' logic lives in the libraries
(:mod:`mpc.best_window`); every read is one short read-only connection (:meth:`Warehouse.reader`).
"""

from __future__ import annotations

import pandas as pd

from warehouse import Warehouse

TABLE = {"carbon": "forecasts.carbon", "load": "forecasts.load"}
#: what a forecast's values count, per target (forecasts.* hold no unit column)
UNIT = {"carbon": "g CO2/kWh", "load": "requests/h"}


def _table(target: str) -> str:
    if target not in TABLE:
        raise ValueError(f"unknown forecast target {target!r} (carbon | load)")
    return TABLE[target]


def forecast_series(wh: Warehouse, target: str) -> list[str]:
    """The series (sites for carbon, inference classes for load) that have a forecast."""
    df = wh.query(f"select distinct series from {_table(target)} order by series")
    return df["series"].tolist()


def latest_forecasts(wh: Warehouse, target: str, series: list[str]) -> pd.DataFrame:
    """The latest issue (max ``issued_at``) of each series' forecast, one row per series and target
    hour: ``issued_at, target_time, series, model, p10, p50, p90, degraded, degraded_reason``. Were
    several models stored for one issue, the non-degraded one is served (then the first by name), as
    the planner reads one model per issue. A series without a forecast has no rows."""
    return wh.query(
        f"""with l as (select series, max(issued_at) as issued_at from {_table(target)}
                       where series in ? group by series),
                 f as (select f.* from {_table(target)} f join l using (series, issued_at)),
                 served as (select series, model from f group by series, model
                            qualify row_number() over (
                                partition by series order by bool_or(degraded), model) = 1)
            select issued_at, target_time, series, model, p10, p50, p90, degraded,
                   degraded_reason
            from f join served using (series, model)
            order by series, target_time""",
        [list(series)],
    )


def current_plan(wh: Warehouse) -> pd.DataFrame:
    """The latest plan per site and hour (``marts.schedule_current``): ``plan_hour, hour, site,
    it_mw, facility_mw``."""
    return wh.query(
        "select plan_hour, hour, site, it_mw, facility_mw from marts.schedule_current "
        "order by site, hour"
    )


def site_prices(wh: Warehouse, zones: dict[str, str], start, end) -> pd.DataFrame:
    """Stored prices ($/MWh) of each site's price zone in ``[start, end)``: ``site, hour, price``
    (the mean over sources where several stored the hour, as the planner reads them)."""
    if not zones:
        return pd.DataFrame(columns=["site", "hour", "price"])
    df = wh.query(
        "select zone, ts as hour, avg(price) as price from staging.prices "
        "where zone in ? and ts >= ? and ts < ? group by zone, ts",
        [
            sorted(set(zones.values())),
            pd.Timestamp(start).to_pydatetime(),
            pd.Timestamp(end).to_pydatetime(),
        ],
    )
    sites = pd.DataFrame({"site": list(zones), "zone": list(zones.values())})
    return sites.merge(df, on="zone")[["site", "hour", "price"]]


def best_window_inputs(wh: Warehouse, fleet, sites: list[str]) -> dict[str, pd.DataFrame]:
    """What :func:`mpc.best_window.rank_windows` reads, for ``sites`` of ``fleet``: ``carbon`` (each
    site's latest carbon forecast, with a ``site`` column), ``planned`` (the current plan) and
    ``prices`` (stored prices over the forecasts' hours)."""
    carbon = latest_forecasts(wh, "carbon", sites)
    carbon = carbon.assign(site=carbon["series"])
    planned = current_plan(wh)
    prices = pd.DataFrame(columns=["site", "hour", "price"])
    if not carbon.empty:
        zones = {s: (fleet.sites[s].price_zone or fleet.sites[s].zone) for s in sites}
        end = carbon["target_time"].max() + pd.Timedelta(hours=1)
        prices = site_prices(wh, zones, carbon["target_time"].min(), end)
    return {"carbon": carbon, "planned": planned, "prices": prices}
