"""The best window for a block of flexible load: where and when ``P`` MW of IT load for ``D`` hours
emits least (or costs least), on the fleet's own forecasts and within the current plan's headroom.

:func:`job_alternatives` prices a queued job's (site, start) alternatives the same way, for ``gridflex
explain``.

The Carbon Aware SDK answers "best window" from a grid forecast alone; here the question is asked of
the fleet: its sites' latest carbon forecasts, their cooling overhead, their prices, and the IT
capacity the current plan leaves free. ``gridflex best-window`` prints it.

For a site ``s`` and a start hour ``t`` such that every hour ``τ = t … t+D−1`` lies in the site's
forecast::

    E_st = 10⁻³ · P · Σ_τ (1 + κ_sτ) · c_sτ · Δ          expected emissions        [t CO2]
    C_st =         P · Σ_τ (1 + κ_sτ) · π_sτ · Δ          expected energy cost      [$]
    h_sτ = ITcap_s − it_sτ                                 headroom                  [MW]
    feasible_st  ⇔  min_τ h_sτ ≥ P

==========  =====================================================================  ==========
symbol      meaning                                                                unit
==========  =====================================================================  ==========
P           ``mw``: IT power of the block                                          MW
D, Δ        ``hours``: length of the block; Δ = 1 h                                h
c_sτ        carbon intensity at ``s`` in hour τ: the chosen quantile (``p50`` or   g CO2/kWh
            ``p90``) of the site's latest issued forecast (``forecasts.carbon``);
            an hour without a p90 (a persistence forecast) takes its p50.
            1 MW · 1 h at 1 g/kWh = 1 kg, hence 10⁻³ for tonnes
κ_sτ        cooling overhead (facility/IT − 1): the current plan's own for the     –
            hour (``facility_mw / it_mw``, what the planner derived from the
            weather forecast); an hour the plan does not cover takes the site's
            ``cooling.kappa0`` (the overhead at or below ``t_ref_c``: a lower
            bound)
π_sτ        import price of the site's price zone (``staging.prices``, the         $/MWh
            day-ahead price the planner reads); a window with an hour lacking a
            price has no cost (NaN), never a guessed one
ITcap_s     ``it_capacity_mw`` of the site (fleet file)                            MW
it_sτ       IT power the current plan has at ``s`` in τ                            MW
            (``marts.schedule_current.it_mw``); an hour the plan does not cover
            takes ``base_load_mw`` (nothing planned but the base load)
==========  =====================================================================  ==========

Included: the block's IT energy and its cooling overhead, bought from the grid at the grid's
intensity and price. Not included: local generation or the battery covering the block (the marginal
MW is taken as imported, an upper bound where a site has spare PV or wind), the grid import limit,
and how the planner would move its own jobs to make room. A window over the headroom in any hour is
infeasible and says which hour and by how much; it is kept (unranked) so a caller can show why.

Plain library: pandas and numpy in, a DataFrame out. No Dagster, no DuckDB.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

BY = ("carbon", "cost")
QUANTILES = ("p50", "p90")
HOUR = pd.Timedelta(hours=1)
#: MW below which a headroom shortfall is rounding, not a real one
TOL_MW = 1e-6
COLUMNS = [
    "rank",
    "site",
    "start",
    "end",
    "hours",
    "mw",
    "feasible",
    "emissions_t",
    "cost",
    "carbon_g_kwh",
    "pue",
    "min_headroom_mw",
    "planned_hours",
    "priced_hours",
    "issued_at",
    "reason",
]


@dataclass(frozen=True)
class SiteLimits:
    """What the best-window query needs of a site from the fleet file."""

    name: str
    it_capacity_mw: float
    base_load_mw: float
    kappa0: float


def site_limits(fleet, names=None) -> dict[str, SiteLimits]:
    """:class:`SiteLimits` of the fleet's sites (``names``: a subset, in that order)."""
    names = list(fleet.sites) if names is None else list(names)
    return {
        n: SiteLimits(
            n,
            fleet.sites[n].it_capacity_mw,
            fleet.sites[n].base_load_mw,
            fleet.sites[n].cooling.kappa0,
        )
        for n in names
    }


@dataclass
class BestWindows:
    """Every window, ranked: ``windows`` (columns :data:`COLUMNS`; ``rank`` 1 = best, NaN for an
    infeasible window), feasible ones first in rank order; ``notes``: what was assumed, in words."""

    windows: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def feasible(self) -> pd.DataFrame:
        return self.windows[self.windows["feasible"]]

    @property
    def best(self) -> pd.Series | None:
        f = self.feasible
        return None if f.empty else f.iloc[0]


def _by_site(frame: pd.DataFrame | None, site: str, index: pd.DatetimeIndex, ts: str, cols):
    """``cols`` of ``frame``'s rows for ``site`` on ``index`` (NaN where absent)."""
    if frame is None or frame.empty:
        return pd.DataFrame(np.nan, index=index, columns=list(cols))
    f = frame[frame["site"] == site]
    f = f.assign(**{ts: pd.to_datetime(f[ts], utc=True)}).drop_duplicates(ts).set_index(ts)
    return f.reindex(index)[list(cols)].astype(float)


def rank_windows(
    carbon: pd.DataFrame,
    sites: dict[str, SiteLimits],
    *,
    hours: int,
    mw: float,
    by: str = "carbon",
    quantile: str = "p50",
    planned: pd.DataFrame | None = None,
    prices: pd.DataFrame | None = None,
) -> BestWindows:
    """Rank every (site, start hour) window of ``hours`` hours running ``mw`` MW (module docstring).

    ``carbon``: the latest forecast per site, columns ``site, target_time, issued_at, p50, p90``
    (``g CO2/kWh``; hourly, UTC). ``sites``: the allowed sites (:func:`site_limits`); forecast rows of
    other sites are ignored. ``planned``: the current plan, ``site, hour, it_mw, facility_mw``
    (``marts.schedule_current``). ``prices``: ``site, hour, price`` ($/MWh). ``by``: ``carbon``
    (least ``emissions_t``) or ``cost`` (least ``cost``; windows without a price rank last); ties go
    to the other quantity, then the earlier start.
    """
    if int(hours) != hours or hours < 1:
        raise ValueError(f"hours must be a whole number of hours >= 1, got {hours!r}")
    if not np.isfinite(mw) or mw <= 0:
        raise ValueError(f"mw must be a positive number of MW, got {mw!r}")
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}, got {by!r}")
    if quantile not in QUANTILES:
        raise ValueError(f"quantile must be one of {', '.join(QUANTILES)}, got {quantile!r}")
    hours = int(hours)
    notes: list[str] = []
    parts = []
    p50_for_p90 = 0
    for name, lim in sites.items():
        f = carbon[carbon["site"] == name]
        if f.empty:
            continue
        f = f.assign(target_time=pd.to_datetime(f["target_time"], utc=True))
        f = f.sort_values("target_time").drop_duplicates("target_time").set_index("target_time")
        index = pd.date_range(f.index[0], f.index[-1], freq="h")
        f = f.reindex(index)  # a gap in the forecast leaves NaN: no window spans it
        c = f["p50"].astype(float)
        if quantile == "p90":
            hi = f["p90"].astype(float) if "p90" in f else pd.Series(np.nan, index=index)
            p50_for_p90 += int((hi.isna() & c.notna()).sum())
            c = hi.fillna(c)
        plan = _by_site(planned, name, index, "hour", ("it_mw", "facility_mw"))
        it = plan["it_mw"]
        kappa = (plan["facility_mw"] / it.where(it > 0) - 1).fillna(lim.kappa0)
        it = it.fillna(lim.base_load_mw)
        head = lim.it_capacity_mw - it
        price = _by_site(prices, name, index, "hour", ("price",))["price"]
        if len(index) < hours:
            continue

        def w(a):
            return sliding_window_view(np.asarray(a, float), hours)

        pue = 1.0 + kappa.to_numpy(float)
        emissions = 1e-3 * mw * w(pue * c.to_numpy(float)).sum(axis=1)
        cost = mw * w(pue * price.to_numpy(float)).sum(axis=1)
        heads = w(head)
        lowest, at = heads.min(axis=1), heads.argmin(axis=1)
        starts = index[: len(index) - hours + 1]
        issued = pd.to_datetime(f["issued_at"], utc=True).to_numpy()
        frame = pd.DataFrame(
            {
                "site": name,
                "start": starts,
                "end": starts + hours * HOUR,
                "hours": hours,
                "mw": float(mw),
                "feasible": lowest >= mw - TOL_MW,
                "emissions_t": emissions,
                "cost": cost,
                "carbon_g_kwh": w(c).mean(axis=1),
                "pue": w(pue).mean(axis=1),
                "min_headroom_mw": lowest,
                "planned_hours": w(plan["it_mw"].notna()).sum(axis=1).astype(int),
                "priced_hours": w(price.notna()).sum(axis=1).astype(int),
                "issued_at": issued[: len(starts)],
            }
        )
        frame["reason"] = [
            None
            if ok
            else (
                f"headroom {h:.1f} MW < {mw:g} MW at {s + int(k) * HOUR:%Y-%m-%d %H:%M} UTC "
                f"(IT capacity {lim.it_capacity_mw:g} MW, planned IT "
                f"{lim.it_capacity_mw - h:.1f} MW)"
            )
            for ok, h, k, s in zip(frame["feasible"], lowest, at, starts, strict=True)
        ]
        parts.append(frame[np.isfinite(emissions)])  # windows over a forecast gap do not exist
    if p50_for_p90:
        notes.append(f"{p50_for_p90} forecast hour(s) had no p90 (persistence): their p50 was used")
    windows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS[1:])
    if windows.empty:
        return BestWindows(pd.DataFrame(columns=COLUMNS), notes)
    if windows["priced_hours"].lt(hours).any():
        n = int(windows["priced_hours"].lt(hours).sum())
        notes.append(
            f"{n} window(s) have an hour without a stored price (staging.prices): their cost is empty"
        )
    if by == "cost" and windows["cost"].isna().all():
        raise ValueError(
            "no window has a stored price for all of its hours (staging.prices): rank by carbon, "
            "or import/ingest the prices of these hours"
        )
    key = ["emissions_t", "cost"] if by == "carbon" else ["cost", "emissions_t"]
    windows = windows.sort_values(
        ["feasible", *key, "start", "site"],
        ascending=[False, True, True, True, True],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)
    n_ok = int(windows["feasible"].sum())
    ranks = pd.Series(np.arange(1, len(windows) + 1)).where(windows["feasible"].astype(bool))
    windows.insert(0, "rank", ranks.astype("Int64"))
    if n_ok < len(windows):
        notes.append(
            f"{len(windows) - n_ok} window(s) are infeasible: the current plan leaves less than "
            f"{mw:g} MW of IT headroom in one of their hours"
        )
    return BestWindows(windows[COLUMNS], notes)


def job_alternatives(
    job: Mapping,
    window: pd.DatetimeIndex,
    carbon: pd.DataFrame,
    price: pd.DataFrame,
    overhead: pd.DataFrame | None = None,
    chosen: tuple[str, pd.Timestamp] | None = None,
    carbon_price: float | None = None,
) -> pd.DataFrame:
    """Every (eligible site, start hour) of ``job`` in ``window`` priced one at a time — not
    re-optimised: carbon ``Σ power_mw · overhead · g/kWh / 1000`` (t) and energy cost ``Σ power_mw ·
    overhead · $/MWh`` over the job's hours in the window, on the frames given (one column per site,
    indexed by hour; ``overhead`` = facility/IT power, 1 where absent). Starts respect the release, the
    deadline (``deadline - duration_h + 1``) and the window; a start whose run would leave the window is
    priced only where no start fits in it, and the chosen start always is; ``complete`` says whether
    all its hours were priced (``hours_priced``), ``carbon_t_per_h`` compares the incomplete ones.
    Sorted best first: complete alternatives by carbon then cost, then the incomplete ones by carbon
    per hour priced; ``chosen`` marks ``(site, start)``; ``d_carbon_t`` / ``d_cost_usd``: a complete
    alternative's difference to the first (best) row (NaN for incomplete ones, which are not
    comparable in total)."""
    D, P = int(job["duration_h"]), float(job["power_mw"])
    rel, dl = pd.Timestamp(job["release"]), pd.Timestamp(job["deadline"])
    first = max(rel, window[0])
    latest = min(dl - (D - 1) * HOUR, window[-1])
    starts = pd.date_range(first, latest, freq="h") if latest >= first else pd.DatetimeIndex([])
    inside = [t for t in starts if t + (D - 1) * HOUR <= window[-1]]
    use = inside or list(starts)
    rows = []
    for site in job["eligible_sites"]:
        cand = list(use)
        if chosen is not None and chosen[0] == site and pd.Timestamp(chosen[1]) not in cand:
            cand.append(pd.Timestamp(chosen[1]))
        for t in cand:
            hours = pd.date_range(t, periods=D, freq="h")
            hours = hours[hours <= window[-1]]
            c = carbon[site].reindex(hours)
            p = price[site].reindex(hours)
            k = (
                overhead[site].reindex(hours).fillna(1.0)
                if overhead is not None and site in overhead
                else pd.Series(1.0, index=hours)
            )
            rows.append(
                {
                    "site": site,
                    "start": t,
                    "end": t + D * HOUR,
                    "hours_priced": len(hours),
                    "carbon_t": float((P * k * c).sum() / 1000.0),
                    "cost_usd": float((P * k * p).sum()),
                    "chosen": chosen is not None
                    and site == chosen[0]
                    and t == pd.Timestamp(chosen[1]),
                }
            )
    cols = ["site", "start", "end", "hours_priced", "carbon_t", "cost_usd", "chosen"]
    out = pd.DataFrame(rows, columns=cols)
    out["complete"] = out.hours_priced == D
    out["carbon_t_per_h"] = out.carbon_t / out.hours_priced.where(out.hours_priced > 0)
    if carbon_price is not None:
        out["cost_with_carbon_usd"] = out.cost_usd + carbon_price * out.carbon_t
    out["_rank"] = out.carbon_t.where(out.complete, out.carbon_t_per_h)
    out = out.sort_values(
        ["complete", "_rank", "cost_usd", "site", "start"],
        ascending=[False, True, True, True, True],
        ignore_index=True,
    ).drop(columns="_rank")
    out["d_carbon_t"] = np.nan
    out["d_cost_usd"] = np.nan
    if len(out) and out.complete.iloc[0]:
        c = out.complete
        out.loc[c, "d_carbon_t"] = out.carbon_t[c] - out.carbon_t.iloc[0]
        out.loc[c, "d_cost_usd"] = out.cost_usd[c] - out.cost_usd.iloc[0]
    return out
