"""What `gridflex replay` needs besides the Dagster runs: the recordings a replay server answers from,
and the offline evaluation of what the live path did.

The evaluation re-states each committed hour on what actually happened
(:func:`pipelines.lib.plan.committed_realised`, as the pipeline does):
the jobs the live plan ran and the battery level it aimed for are kept, the routing and energy balance
are re-solved on what a controller knows during the hour (measured demand and generation, the carbon
intensity the plan expected) and accounted on the realised intensity and prices
(:func:`mpc.receding.realise_hour`, exactly what the closed-loop backtest does to its own committed
hours; until 2026-12-01 the replay re-optimised on the realised intensity, which flattered the live
path by 0.3 %). On the same realised signals and
the same job queue it simulates the carbon-agnostic policy and the oracle MPC (perfect foresight), so the
live path's savings and its share of the oracle's are like for like with ``gridflex backtest``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mpc.fleet import Fleet
from warehouse import Warehouse

HOUR = pd.Timedelta(hours=1)
#: zone directories of the shared weather files that hold another zone id than the fleet's
ZONE_ALIASES = {"DE-LU": "DE"}


def replay_data(
    fleet: Fleet,
    em_files: Sequence[Path],
    weather_files: Sequence[Path] = (),
    watttime: dict[str, Path] | None = None,
):
    """:class:`sources.replay.ReplayData` for the fleet: Electricity Maps exports as they are; each
    site's weather from the files under a directory named like its zone (``<ZONE>/<YEAR>.csv``,
    ``DE-LU`` for ``DE``), placed at the site's coordinates; WattTime values per region."""
    from sources.replay import ReplayData
    from sources.weather_csv import SHARED_WEATHER_OFFSETS

    by_zone: dict[str, list[Path]] = {}
    for p in map(Path, weather_files):
        by_zone.setdefault(ZONE_ALIASES.get(p.parent.name, p.parent.name), []).append(p)
    weather = {}
    for site, s in fleet.sites.items():
        files = by_zone.get(s.zone, [])
        if files:
            offset = SHARED_WEATHER_OFFSETS.get(files[0].parent.name, 0.0)
            weather[site] = (s.lat, s.lon, files, offset)
    wt = {}
    for region, path in (watttime or {}).items():
        site = next((s for s in fleet.sites.values() if s.watttime_region == region), None)
        lat, lon = (site.lat, site.lon) if site else (0.0, 0.0)
        wt[region] = (lat, lon, path)
    return ReplayData.from_files(em_csv=list(em_files), weather=weather, watttime=wt)


def price_imports(fleet: Fleet, price_files: Sequence[Path]) -> list[tuple[Path, str]]:
    """(file, zone) pairs for the fleet's price zones among ``<ZONE>_electricity_prices_<Y>.csv``."""
    zones = {s.price_zone or s.zone for s in fleet.sites.values()}
    out = []
    for p in map(Path, price_files):
        prefix = p.name.split("_")[0]
        zone = ZONE_ALIASES.get(prefix, prefix)
        if zone in zones:
            out.append((p, zone))
    return out


def evaluate(wh: Warehouse, fleet: Fleet, start, end) -> tuple[pd.DataFrame, dict]:
    """The replay's results table: the live path (hours committed by the hourly job, re-stated on
    actuals), carbon-agnostic and the oracle, on the same realised signals and job queue.

    ``share_of_oracle_savings`` compares emissions alone; the MPC trades emissions against cost at
    the fleet's carbon price (and the live path also keeps the fleet's daily budget, which the
    simulated oracle does not), so ``share_of_oracle_gain`` compares what it optimises: energy cost
    plus carbon at that price."""
    from mpc.receding import simulate
    from pipelines.lib.plan import committed_realised, load_jobs, realised_signals, state_from_json

    start, end = pd.Timestamp(start), pd.Timestamp(end)
    hours = int((end - start) / HOUR)
    realised = realised_signals(wh, fleet, start - pd.Timedelta(days=1), end)
    if realised is None:
        raise ValueError(f"the warehouse does not have every realised signal for {start}..{end}")
    jobs = load_jobs(wh, fleet, start, hours, {})
    jobs = tuple(j for j in jobs if j.release < end)
    common = dict(
        sites=fleet.mpc_sites(),
        classes=fleet.mpc_classes(),
        jobs=jobs,
        carbon_price=fleet.planning.carbon_price,
        start=start,
        hours=hours,
        time_limit=fleet.planning.time_limit_s,
        mip_gap=fleet.planning.mip_gap,
        horizon=fleet.planning.horizon_h,
        budget=fleet.budget_policy(),  # the oracle keeps the fleet's daily budget, as the live path
    )
    agn = simulate(realised, forecast="carbon_agnostic", **common)
    oracle = simulate(realised, forecast="perfect", **common)
    # the committed hours re-stated as the pipeline re-states them (plans.dispatch_realised): decided
    # on what the controller knew in the hour, accounted on the actuals — as the backtest does
    live = committed_realised(wh, fleet, start, end, realised)
    missing = sorted(
        set(pd.date_range(start, end - HOUR, freq="h", tz="UTC"))
        - set(pd.to_datetime(live.time, utc=True) if len(live) else [])
    )
    if missing:
        raise ValueError(f"hour {missing[0]} was not committed: the replay did not plan it")
    final = wh.query("select state from plans.state where hour = ?", [end.to_pydatetime()])
    final_state = state_from_json(final.state[0]) if len(final) else None
    started = set(
        wh.query(
            "select unnest(jobs_started) j from plans.runs where plan_hour >= ? and plan_hour < ?",
            [start.to_pydatetime(), end.to_pydatetime()],
        ).j
    )
    due = {j.job_id for j in jobs if j.mandatory and j.deadline < end}
    live_missed = sorted(due - started)
    runs = wh.query(
        "select count(*) filter (where degraded) deg, count(*) n, "
        "count(*) filter (where status not in ('optimal', 'feasible')) bad "
        "from plans.runs where plan_hour >= ? and plan_hour < ?",
        [start.to_pydatetime(), end.to_pydatetime()],
    ).iloc[0]

    from mpc.results import energy_cost, throughput_costs

    psi = throughput_costs(fleet.mpc_sites())

    def cost(df: pd.DataFrame) -> float:  # the one cost definition (mpc.results.energy_cost)
        return float(energy_cost(df, psi).sum())

    rows = []
    agn_em = agn.totals["emissions_t"]
    price = fleet.planning.carbon_price
    oracle_saved = agn_em - oracle.totals["emissions_t"]
    agn_total = agn.totals["energy_cost"] + price * agn_em
    oracle_gain = agn_total - (oracle.totals["energy_cost"] + price * oracle.totals["emissions_t"])

    def useful(sh: pd.DataFrame) -> float:  # MWh of training + inference IT load (the work)
        return float(sh["training_mw"].sum() + sh["inference_mw"].sum())

    agn_useful = useful(agn.site_hours)
    for name, em, c, missed, n_started, work in (
        (
            "gridflex (live path, replayed)",
            float(live.emissions_t.sum()),
            cost(live),
            len(live_missed),
            len(started),
            useful(live),
        ),
        (
            "oracle (perfect foresight)",
            oracle.totals["emissions_t"],
            oracle.totals["energy_cost"],
            int(oracle.totals["missed_deadlines"]),
            len(oracle.schedule),
            useful(oracle.site_hours),
        ),
        (
            "carbon_agnostic",
            agn_em,
            agn.totals["energy_cost"],
            int(agn.totals["missed_deadlines"]),
            len(agn.schedule),
            agn_useful,
        ),
    ):
        saved = agn_em - em
        total = c + price * em
        g_per_kwh = 1e3 * em / work if work else float("nan")
        agn_g = 1e3 * agn_em / agn_useful if agn_useful else float("nan")
        rows.append(
            {
                "policy": name,
                "emissions_t": em,
                "cost_usd": c,
                # what the MPC minimises besides revenue: energy cost + the fleet's carbon price
                "cost_plus_carbon_usd": total,
                "missed_deadlines": missed,
                "jobs_started": n_started,
                "useful_mwh": work,
                "g_per_useful_kwh": g_per_kwh,
                "savings_vs_agnostic_pct": 100 * saved / agn_em if agn_em else 0.0,
                "saving_per_useful_kwh_pct": 100 * (1 - g_per_kwh / agn_g) if agn_g else 0.0,
                "share_of_oracle_savings": saved / oracle_saved if oracle_saved else float("nan"),
                "share_of_oracle_gain": (agn_total - total) / oracle_gain
                if oracle_gain
                else float("nan"),
            }
        )
    extras = {
        "hours": hours,
        "jobs": len(jobs),
        "degraded_hours": int(runs.deg),
        "plans": int(runs.n),
        "unsolved_plans": int(runs.bad),
        "live_missed": live_missed,
        "final_state_missed": sorted(final_state.missed) if final_state else [],
    }
    return pd.DataFrame(rows), extras
