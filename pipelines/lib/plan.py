"""Plan glue: warehouse -> one receding-horizon step (:func:`mpc.receding.step`) -> ``plans.*``.

What the MILP sees at hour ``t0`` (all as known at ``t0``):

- carbon intensity and inference demand: the p50 of the forecasts issued at ``t0`` (``forecasts.*``);
  when none exists (no fresh model, or the forecast asset did not run) the step plans on
  **persistence** — stored in ``forecasts.*`` with ``degraded = true`` — and the plan says so;
- prices: ``staging.prices`` for the horizon, treated as day-ahead prices known in advance (the demo's
  and the shared files' prices are day-ahead); an hour without a price falls back to the price 24 h
  earlier;
- local generation and the cooling coefficient: from the latest *weather forecast* issued at or before
  ``t0`` (PV and wind capacity factors and κ through :mod:`mpc.physics`); an hour with no forecast
  falls back to the best observation of the same hour a day earlier (persistence), flagged degraded;
- jobs: the queue as known with a release before ``t0 + H`` (jobs are submitted ahead with a release
  time — the same assumption as :func:`mpc.receding.simulate`), plus the jobs still running.

The committed hour is re-balanced against *realised* signals when the warehouse already has them (a
backfill, the demo); live, the realised hour is not known yet and the committed hour is the plan's.

State (battery SoC, running/finished/missed jobs, carbon budget left) is stored per hour in
``plans.state``; a step reads the state at ``t0`` and writes the state at ``t0 + 1 h`` in the same
transaction as the plan, so a plan and the state it leads to never disagree. The chain is safe:

- re-running an hour whose inputs are unchanged (same :meth:`mpc.instance.Instance.fingerprint`, stored
  as ``plans.runs.inputs_hash``) changes nothing and solves nothing;
- re-planning an hour that later plans build on is refused (:class:`OutOfOrderError`) unless
  ``restate=True``, which removes the later plans, dispatch and states in the same transaction;
- an hour whose previous hour was never planned is refused with what to run (plan the hours in between,
  or ``fresh_start=True``: a new chain from the fleet's initial state).

The carbon budget is the fleet's daily budget (``planning.daily_carbon_budget_t``) under the one policy
the simulator and the backtest use too (:class:`mpc.budget.BudgetPolicy`: refilled at 00:00 UTC, each
window allocated today's remainder pro rata plus tomorrow's share for the hours it plans tomorrow).
What the planner could not do — a fallback plan, an exceeded budget, missed jobs, unserved inference
(:attr:`mpc.receding.StepResult.problems`) — marks the hour degraded with the reason, in the same
transaction as its plan and state.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mpc.fleet import Fleet
from pipelines.lib import forecast as fc
from warehouse import Warehouse, Write

HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)
PLAN_COLUMNS = [
    "it_mw",
    "training_mw",
    "inference_mw",
    "base_mw",
    "facility_mw",
    "gen_available_mw",
    "gen_used_mw",
    "import_mw",
    "export_mw",
    "charge_mw",
    "discharge_mw",
    "soc_mwh",
    "emissions_t",
    "carbon_g_kwh",
    "price_import",
    "price_export",
    "shed_mw",
]


class PlanError(RuntimeError):
    """A plan that cannot be made; the message says which input is missing or wrong."""


class OutOfOrderError(PlanError):
    """Re-planning an hour that later plans build on (their state came from its plan)."""


def _py(t):
    return pd.Timestamp(t).to_pydatetime()


# ----------------------------------------------------------------------------------------------
# state


def state_to_json(st) -> str:
    return json.dumps(st.to_dict())


def state_from_json(text: str):
    from mpc.receding import State

    return State.from_dict(json.loads(text))


def _h(t) -> str:
    return f"{pd.Timestamp(t):%Y-%m-%d %H:%M}"


def load_state(wh: Warehouse, fleet: Fleet, t0: pd.Timestamp, *, fresh_start: bool = False):
    """The state at the start of ``t0``. A fleet with no plan before ``t0`` (or ``fresh_start``) starts
    fresh (batteries at their configured state of charge, nothing running); a gap (plans before ``t0``
    but no state for it) is an error saying what to run."""
    from mpc.receding import State

    # a revision of the previous hour (a grid event during it) made after its hourly plan wins
    row = wh.query(
        "select v.state from plans.state_revisions v join plans.runs r on r.plan_hour = ? "
        "where v.hour = ? and v.created_at >= r.created_at order by v.revision desc limit 1",
        [_py(t0 - HOUR), _py(t0)],
    )
    if row.empty:
        row = wh.query("select state from plans.state where hour = ?", [_py(t0)])
    if not row.empty and not fresh_start:
        st = state_from_json(row.state[0])
    else:
        earlier = wh.query(
            "select max(plan_hour) h from plans.runs where plan_hour < ?", [_py(t0)]
        ).h[0]
        if earlier is not None and not pd.isna(earlier) and not fresh_start:
            gap = int((t0 - pd.Timestamp(earlier)) / HOUR) - 1
            raise PlanError(
                f"cannot plan {_h(t0)} UTC: the last plan is for {_h(earlier)} UTC, {gap} hour(s) "
                f"earlier, and each hour starts from the state the previous one left. Either plan the "
                f"hours in between first (`gridflex tick --from '{_h(pd.Timestamp(earlier) + HOUR)}' "
                f"--to '{_h(t0)}'`, or a backfill of hourly_tick over them), or start a new plan "
                f"chain at {_h(t0)} from the fleet's initial state (`gridflex tick --hour '{_h(t0)}' "
                "--fresh-start`, or run config ops.mpc_plan.config.fresh_start=true)"
            )
        st = State.initial(fleet.mpc_sites(), t0)
    return fleet.budget_policy().refill(st)  # a new UTC day starts with the daily budget


# ----------------------------------------------------------------------------------------------
# signals


def _grid(index: pd.DatetimeIndex, columns) -> pd.DataFrame:
    return pd.DataFrame(index=index, columns=list(columns), dtype=float)


WEATHER_COLS = (
    "temperature_2m",
    "cloud_cover",
    "shortwave_radiation",
    "wind_speed_10m",
    "wind_speed_100m",
)


def _weather_known(wh: Warehouse, sites, start, end, issued_by) -> pd.DataFrame:
    sel = ", ".join(f"arg_max({c}, issued_at) as {c}" for c in WEATHER_COLS)
    return wh.query(
        f"select location as site, ts, {sel} from staging.weather_forecast "
        "where location in ? and ts >= ? and ts < ? and issued_at <= ? group by location, ts",
        [list(sites), _py(start), _py(end), _py(issued_by)],
    )


def plan_weather(
    wh: Warehouse, fleet: Fleet, index: pd.DatetimeIndex, t0
) -> tuple[pd.DataFrame, list[str]]:
    """Weather for the window as known at ``t0``: the latest forecast issued at or before ``t0``; an
    hour without one takes the best observation of the same hour on the latest earlier day that has
    one before ``t0`` (persistence, at most a week back), and the reason says how many site-hours
    were filled so. Hours with neither are left NaN (the caller refuses them)."""
    from pipelines.lib.fetch import best_weather

    fc = _weather_known(wh, fleet.sites, index[0], index[-1] + HOUR, issued_by=t0)
    obs = best_weather(wh, list(fleet.sites), index[0] - 8 * DAY, t0).rename(
        columns={"location": "site"}
    )
    parts, filled = [], 0
    for site in fleet.sites:
        w = fc[fc.site == site].set_index("ts").reindex(index)[list(WEATHER_COLS)]
        miss = w["temperature_2m"].isna()
        if miss.any():
            o = obs[obs.site == site].set_index("ts")[list(WEATHER_COLS)]
            for t in index[miss.to_numpy()]:
                for k in range(1, 9):
                    src = t - k * DAY
                    if src < t0 and src in o.index and pd.notna(o.at[src, "temperature_2m"]):
                        w.loc[t] = o.loc[src].to_numpy()
                        filled += 1
                        break
        parts.append(w.assign(site=site).rename_axis("ts").reset_index())
    reasons = []
    if filled:
        reasons.append(
            f"weather: no forecast issued by {_h(t0)} for {filled} site-hour(s) of the window; "
            "used the observed weather of the same hour a day earlier"
        )
    return pd.concat(parts, ignore_index=True), reasons


def _prices(wh: Warehouse, fleet: Fleet, index: pd.DatetimeIndex) -> tuple[pd.DataFrame, int]:
    zones = {n: (s.price_zone or s.zone) for n, s in fleet.sites.items()}
    start, end = index[0] - 7 * DAY, index[-1] + HOUR
    df = wh.query(
        "select zone, ts, avg(price) price from staging.prices where zone in ? and ts >= ? "
        "and ts < ? group by zone, ts",
        [sorted(set(zones.values())), _py(start), _py(end)],
    )
    wide = df.pivot(index="ts", columns="zone", values="price") if not df.empty else pd.DataFrame()
    full = pd.date_range(start, end - HOUR, freq="h", tz="UTC")
    wide = wide.reindex(full)
    filled = 0
    out = _grid(index, fleet.sites)
    for site, z in zones.items():
        col = wide[z] if z in wide else pd.Series(np.nan, index=full)
        col = col.copy()
        for t in index:  # persistence (same hour on the latest day with a price, up to a week back)
            if pd.isna(col.get(t)):
                for k in range(1, 8):
                    if pd.notna(col.get(t - k * DAY)):
                        col[t] = col.get(t - k * DAY)
                        filled += 1
                        break
        out[site] = col.reindex(index).to_numpy()
        if out[site].isna().any():
            how = (
                "import prices with `gridflex import prices FILE --zone " + z + "`"
                if fleet.sources.prices == "csv"
                else "run the prices ingest for these hours"
            )
            raise PlanError(
                f"no price for zone {z!r} (site {site}) in {_h(index[0])}..{_h(index[-1])} UTC nor "
                f"in the week before: {how}"
            )
    return out, filled


def _generation_kappa(fleet: Fleet, weather: pd.DataFrame, index, what: str):
    """Generation available and κ per site from weather rows (``mpc.physics``)."""
    from mpc.physics import capacity_factors

    gen, kappa = _grid(index, fleet.sites), _grid(index, fleet.sites)
    for site, cfg in fleet.sites.items():
        w = weather[weather.site == site].set_index("ts").reindex(index)
        if w["temperature_2m"].isna().any():
            missing = w.index[w["temperature_2m"].isna()]
            raise PlanError(
                f"no {what} weather for site {site!r} at {len(missing)} hour(s) from {_h(missing[0])} "
                "UTC, and no observation a day earlier to fall back on: run the weather ingest for "
                "these hours"
            )
        cf = capacity_factors(w.rename_axis("ts").reset_index(), cfg.lat, cfg.lon)
        gen[site] = fleet.generation_mw(site, cf.pv_cf.to_numpy(), cf.wind_cf.to_numpy())
        kappa[site] = fleet.kappa(site, w["temperature_2m"])
    return gen, kappa


@dataclass
class ForecastUsed:
    carbon_model: str
    load_model: str
    degraded: bool
    reasons: list[str] = field(default_factory=list)
    writes: list[Write] = field(
        default_factory=list
    )  # persistence forecasts made here, stored with the plan
    #: the intensity the budget is planned against (planning.budget_quantile = "p90"), else None
    budget_carbon: pd.DataFrame | None = None
    #: the grid operator's events in force over the window (ids) and what applying them said
    grid_events: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def policy(self) -> str:
        return (
            "persistence"
            if self.carbon_model == self.load_model == "persistence"
            else (f"carbon={self.carbon_model}; load={self.load_model}")
        )


def _forecast_p50(
    wh: Warehouse, fleet: Fleet, target: str, t0, index, used: ForecastUsed
) -> pd.DataFrame:
    series = list(fleet.sites) if target == "carbon" else list(fleet.classes)
    df = wh.query(f"select * from {fc.TABLE[target]} where issued_at = ?", [_py(t0)])
    model = df.model.iloc[0] if not df.empty else None
    degraded = bool(df.degraded.any()) if not df.empty else True
    wide = (
        df.pivot(index="target_time", columns="series", values="p50").reindex(index)
        if not df.empty
        else None
    )
    if wide is None or wide.reindex(columns=series).isna().any().any():
        try:
            issued = fc.issue_forecast(wh, fleet, target, t0, use_model=False)
        except fc.NoHistoryError as exc:
            raise PlanError(str(exc)) from None
        reason = (
            f"no complete {target} forecast issued at {t0:%Y-%m-%d %H:%M}: planned on persistence"
        )
        used.reasons.append(reason)
        used.writes.append(
            Write(fc.TABLE[target], issued.frame, window=(t0, t0 + HOUR), ts_column="issued_at")
        )
        model, degraded = "persistence", True
        wide = issued.frame.pivot(index="target_time", columns="series", values="p50").reindex(
            index
        )
    elif degraded:
        why = next((r for r in df.get("degraded_reason", pd.Series(dtype=object)) if r), None)
        used.reasons.append(f"{target} forecast degraded to {model}" + (f": {why}" if why else ""))
    setattr(used, f"{target}_model", model)
    used.degraded = used.degraded or degraded
    return wide[series].astype(float)


def plan_signals(wh: Warehouse, fleet: Fleet, t0: pd.Timestamp, horizon: int):
    """The forecast :class:`mpc.instance.Signals` for ``[t0, t0 + horizon)`` and what forecasts fed it."""

    index = pd.date_range(t0, periods=horizon, freq="h", tz="UTC")
    used = ForecastUsed("?", "?", False)
    carbon = _forecast_p50(wh, fleet, "carbon", t0, index, used)
    demand = _forecast_p50(wh, fleet, "load", t0, index, used).clip(lower=0)
    price, filled = _prices(wh, fleet, index)
    if filled:
        used.reasons.append(f"{filled} price hour(s) missing: used the price 24 h earlier")
        used.degraded = True
    weather, why = plan_weather(wh, fleet, index, t0)
    if why:
        used.reasons.extend(why)
        used.degraded = True
    gen, kappa = _generation_kappa(fleet, weather, index, "forecast")
    sig = fleet.signals(
        carbon=carbon.clip(lower=0), price=price, generation=gen, kappa=kappa, demand=demand
    )
    used.budget_carbon = None
    if fleet.planning.budget_quantile == "p90" and fleet.planning.daily_carbon_budget_t is not None:
        q = wh.query(
            "select target_time, series, p90 from forecasts.carbon where issued_at = ?", [_py(t0)]
        )
        hi = q.pivot(index="target_time", columns="series", values="p90").reindex(index)
        hi = hi.reindex(columns=list(fleet.sites))
        # hours without a p90 (persistence written by the plan itself) fall back to p50
        used.budget_carbon = hi.fillna(carbon).clip(lower=0).astype(float)
    return sig, used


def realised_signals(wh: Warehouse, fleet: Fleet, start, end, *, partial: bool = False):
    """What actually happened in ``[start, end)``: ``None`` when the warehouse does not have all of
    it yet (live operation: the hour has not happened, or its actuals are late). ``partial``: the
    hours that are fully known only (``None`` when none is). Weather and generation count as known
    once observed or analysed, not from a forecast."""

    index = pd.date_range(start, end - HOUR, freq="h", tz="UTC")
    series = {fleet.carbon_series(s): s for s in fleet.sites}
    c = wh.query(
        "select series, ts, value from staging.carbon_best where series in ? and ts >= ? "
        "and ts < ?",
        [list(series), _py(start), _py(end)],
    )
    d = fc.load_history(wh, fleet, start, end)
    w = wh.query(
        "select location site, ts, temperature_2m from staging.weather_best "
        "where location in ? and ts >= ? and ts < ? and quality <> 'forecast'",
        [list(fleet.sites), _py(start), _py(end)],
    )
    g = wh.query(
        "select site, ts, avg(pv_cf) pv_cf, avg(wind_cf) wind_cf from staging.generation "
        "where site in ? and ts >= ? and ts < ? and weather_quality is distinct from 'forecast' "
        "group by all",
        [list(fleet.sites), _py(start), _py(end)],
    )
    if c.empty or d.empty or w.empty or g.empty:
        return None
    carbon = c.assign(site=c.series.map(series)).pivot_table(
        index="ts", columns="site", values="value"
    )
    carbon = carbon.reindex(index=index, columns=list(fleet.sites))
    demand = d.pivot(index="ts", columns="series", values="value").reindex(
        index=index, columns=list(fleet.classes)
    )
    gen, kappa = _grid(index, fleet.sites), _grid(index, fleet.sites)
    known = carbon.notna().all(axis=1) & demand.notna().all(axis=1)
    for site in fleet.sites:
        gs = g[g.site == site].set_index("ts").reindex(index)
        gen[site] = fleet.generation_mw(site, gs.pv_cf, gs.wind_cf)
        ws = w[w.site == site].set_index("ts").reindex(index)
        kappa[site] = fleet.kappa(site, ws.temperature_2m)
        known &= gs.pv_cf.notna() & ws.temperature_2m.notna()
    if not known.all():
        if not partial or not known.any():
            return None
        index = index[known.to_numpy()]
        carbon, demand, gen, kappa = (f.loc[index] for f in (carbon, demand, gen, kappa))
    price, _ = _prices(wh, fleet, pd.date_range(index[0], index[-1], freq="h", tz="UTC"))
    return fleet.signals(
        carbon=carbon, price=price.reindex(index), generation=gen, kappa=kappa, demand=demand
    )


def load_jobs(wh: Warehouse, fleet: Fleet, t0, horizon: int, running: dict) -> tuple:
    from mpc.instance import jobs_from_frame

    df = wh.query(
        "select job_id, power_mw, duration_h, release, deadline, value, eligible_sites from staging.jobs "
        "where (release < ? and deadline >= ?) or job_id in ? order by release, job_id",
        [_py(t0 + horizon * HOUR), _py(t0), list(running) or [""]],
    )
    df["eligible_sites"] = [list(x) for x in df["eligible_sites"]]
    # the carbon-agnostic home of a job: the fleet's jobs.home_site where the job may run there, else the
    # job's first eligible site
    home = fleet.jobs.home_site
    homes = {r.job_id: home for r in df.itertuples() if home and home in r.eligible_sites}
    return jobs_from_frame(df, homes or None, fleet.jobs.response)


# ----------------------------------------------------------------------------------------------
# one hourly step


@dataclass
class PlanOutcome:
    t0: pd.Timestamp
    status: str
    objective: float
    gap: float
    build_s: float
    solve_s: float
    total_s: float
    forecast: ForecastUsed
    expected_emissions_t: float
    expected_cost: float
    committed_emissions_t: float
    committed_cost: float
    jobs_started: list[str]
    jobs_missed: list[str]
    plan_site_hours: pd.DataFrame
    realised_known: bool
    next_state: object
    #: True when this hour was already planned from the same inputs: nothing was solved or written
    unchanged: bool = False
    budget_allocated_t: float | None = None
    budget_planned_t: float | None = None
    budget_over_t: float | None = None
    #: later plans removed by a restatement from this hour
    restated_hours: int = 0
    inputs_hash: str = ""


def committed_unserved(com, fleet: Fleet, *, revision: int) -> pd.DataFrame:
    """The inference a committed hour did not serve, per class with its priority
    (``plans.dispatch_unserved`` rows; ``revision`` 0 for the hourly plan)."""
    u = com.unserved
    cols = ["hour", "revision", "class", "priority", "units"]
    if u is None or u.empty:
        return pd.DataFrame(columns=cols)
    u = u.groupby(["time", "cls"], as_index=False)["units"].sum()
    return pd.DataFrame(
        {
            "hour": u.time,
            "revision": revision,
            "class": u.cls,
            "priority": [fleet.classes[k].priority for k in u.cls],
            "units": u.units,
        }
    )[cols]


def _inputs_hash(inst, state, realised, fleet: Fleet) -> str:
    """Everything a plan for this hour is made from: the window instance, the state it starts from,
    what is realised of the committed hour, and the solver settings."""
    import hashlib

    parts = [
        inst.fingerprint(),
        json.dumps(state.to_dict(), sort_keys=True),
        "-"
        if realised is None
        else inst.replace(signals=realised, grid=None, budget_carbon=None).fingerprint(),
        f"{fleet.planning.mip_gap}:{fleet.planning.time_limit_s}",
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _num(v) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def _stored_outcome(wh: Warehouse, t0, used: ForecastUsed, tic: float) -> PlanOutcome:
    """The outcome of an hour already planned from the same inputs, read back from ``plans.*``."""
    r = wh.query("select * from plans.runs where plan_hour = ?", [_py(t0)]).iloc[0]
    sh = wh.query(
        "select * from plans.site_hours where plan_hour = ? order by target_time, site", [_py(t0)]
    )
    disp = wh.query("select * from plans.dispatch where hour = ?", [_py(t0)])
    st = wh.query("select state from plans.state where hour = ?", [_py(t0 + HOUR)])
    used.degraded = bool(r.degraded)
    used.reasons = [r.degraded_reason] if r.degraded_reason else []
    return PlanOutcome(
        t0=t0,
        status=r.status,
        objective=float(r.objective),
        gap=float(r.mip_gap),
        build_s=0.0,
        solve_s=0.0,
        total_s=time.perf_counter() - tic,
        forecast=used,
        expected_emissions_t=float(r.expected_emissions_t),
        expected_cost=float(r.expected_cost),
        committed_emissions_t=float(disp.emissions_t.sum()),
        committed_cost=float(disp.cost.sum()),
        jobs_started=list(r.jobs_started),
        jobs_missed=list(r.jobs_missed),
        plan_site_hours=sh,
        realised_known=False,
        next_state=state_from_json(st.state[0]) if len(st) else None,
        unchanged=True,
        inputs_hash=r.inputs_hash or "",
    )


def previous_starts(wh: Warehouse, t0) -> dict[str, tuple[str, int]]:
    """The job starts the previous hour's plan scheduled from ``t0`` on, as periods of the window
    starting at ``t0``: a MIP start for this hour's solve (the plans overlap by H − 1 hours, so the
    previous plan is usually close to this one's optimum)."""
    df = wh.query(
        "select job_id, arg_min(site, target_time) site, min(target_time) first from plans.job_runs "
        "where plan_hour = ? group by job_id",
        [_py(pd.Timestamp(t0) - HOUR)],
    )
    out = {}
    for r in df.itertuples():
        first = pd.Timestamp(r.first)
        if first >= pd.Timestamp(t0):
            out[r.job_id] = (r.site, int((first - pd.Timestamp(t0)) / HOUR))
    return out


def window_problem(wh: Warehouse, fleet: Fleet, t0, *, fresh_start: bool = False):
    """What the plan at ``t0`` is made from: the state it starts from, the window instance
    ``[t0, t0+H)`` (the signals it plans on, the job queue) and what was used to forecast them
    (:class:`ForecastUsed`). :func:`plan_hour` solves it; the plan plot evaluates the carbon-agnostic
    policy on the same window."""
    from mpc.events import apply_events
    from mpc.instance import Instance

    t0 = pd.Timestamp(t0)
    H = fleet.planning.horizon_h
    state = load_state(wh, fleet, t0, fresh_start=fresh_start)
    sig, used = plan_signals(wh, fleet, t0, H)
    jobs = load_jobs(wh, fleet, t0, H, {**state.running, **state.suspended})
    inst = Instance(
        sites=fleet.mpc_sites(),
        classes=fleet.mpc_classes(),
        jobs=jobs,
        signals=sig,
        carbon_price=fleet.planning.carbon_price,
        name=f"plan-{t0:%Y%m%dT%H}",
        budget_carbon=used.budget_carbon,
    )
    inst, applied = apply_events(inst, grid_events(wh, fleet, t0, t0 + H * HOUR))
    used.grid_events = applied.event_ids
    used.notes.extend(applied.notes)
    return state, inst, used


def grid_events(wh: Warehouse, fleet: Fleet, start, end, *, known_at=None) -> pd.DataFrame:
    """The grid operator's event intervals in force over ``[start, end)`` for the fleet's sites,
    as stored (``staging.grid_events``: cancelled and superseded versions left out;
    ``known_at``: only what had been received by then)."""
    if not wh.query(
        "select 1 from information_schema.tables where table_schema = 'staging' "
        "and table_name = 'grid_events'"
    ).shape[0]:
        return pd.DataFrame(columns=["event_id", "site", "payload_type", "start", "end", "value"])
    sql = (
        'select event_id, site, payload_type, start, "end", value, unit, modified_at, as_of '
        'from staging.grid_events where not cancelled and start < ? and "end" > ? and site in ?'
    )
    args = [_py(end), _py(start), list(fleet.sites)]
    if known_at is not None:
        sql += " and received_at <= ?"
        args.append(_py(known_at))
    return wh.query(sql + " order by start, event_id", args)


def plan_hour(
    wh: Warehouse,
    fleet: Fleet,
    t0: pd.Timestamp,
    *,
    restate: bool = False,
    fresh_start: bool = False,
    run_id: str | None = None,
) -> PlanOutcome:
    """Plan ``[t0, t0+H)``, commit ``t0``, store everything (one transaction) and return the outcome.

    Re-running an hour with unchanged inputs changes nothing. An hour that later plans build on is
    refused (:class:`OutOfOrderError`) unless ``restate``: then the later plans, their dispatch and
    states are removed in the same transaction as the new plan. ``fresh_start`` starts a new chain
    at ``t0`` from the fleet's initial state instead of the state the previous hour left. What the
    hour was decided from is recorded in ``plans.audit`` (:mod:`warehouse.audit`) in the same
    transaction; ``run_id``: the Dagster run planning it (None outside Dagster)."""
    from mpc.receding import step

    tic = time.perf_counter()
    t0 = pd.Timestamp(t0)
    H = fleet.planning.horizon_h
    later = wh.query(
        "select count(*) n, max(plan_hour) last from plans.runs where plan_hour > ?", [_py(t0)]
    ).iloc[0]
    n_later = int(later.n)
    state, inst, used = window_problem(wh, fleet, t0, fresh_start=fresh_start)
    realised = realised_signals(wh, fleet, t0, t0 + HOUR)
    inputs = _inputs_hash(inst, state, realised, fleet)
    stored = wh.query("select inputs_hash from plans.runs where plan_hour = ?", [_py(t0)])
    if len(stored) and stored.inputs_hash[0] == inputs and not restate:
        return _stored_outcome(wh, t0, used, tic)
    if n_later and not restate:
        why = (
            "its inputs changed since it was planned (a revision arrived, or a model was retrained)"
            if len(stored)
            else "it was never planned"
        )
        raise OutOfOrderError(
            f"refusing to plan {_h(t0)} UTC: {n_later} later hour(s) (up to {_h(later['last'])} UTC) "
            f"were planned from the state this hour leads to, and {why}. Planning it again would "
            "make the later plans inconsistent. To restate from this hour (its plan replaced, the "
            f"{n_later} later plans removed, in one transaction) run `gridflex tick --hour "
            f"'{_h(t0)}' --restate` (or run config ops.mpc_plan.config.restate=true), then plan the "
            "later hours again in order."
        )
    sr = step(
        state,
        inst,
        realised=realised,
        time_limit=fleet.planning.time_limit_s,
        mip_gap=fleet.planning.mip_gap,
        budget=fleet.budget_policy(),
        warm_starts=previous_starts(wh, t0),
    )
    plan, com = sr.plan, sr.committed
    if sr.problems:  # what the planner could not do marks the hour before anything is written
        used.degraded = True
        used.reasons.extend(sr.problems)

    from mpc.results import energy_cost, throughput_costs

    psi = throughput_costs(fleet.mpc_sites())

    def cost(df):  # import cost - export revenue + battery throughput (mpc.results.energy_cost)
        return energy_cost(df, psi)

    sh = plan.site_hours.rename(columns={"time": "target_time"}).assign(plan_hour=t0)
    sh = sh.assign(cost=cost(sh))
    runs = plan.runs.rename(columns={"time": "target_time", "job": "job_id"}).assign(plan_hour=t0)
    routing = plan.routing.rename(columns={"time": "target_time", "cls": "class"}).assign(
        plan_hour=t0
    )
    disp = com.site_hours.rename(columns={"time": "hour"})
    disp = disp.assign(cost=cost(disp))
    running_now = (
        com.runs.groupby("site")["job"].apply(lambda s: sorted(s)).to_dict()
        if len(com.runs)
        else {}
    )
    disp["jobs_running"] = [running_now.get(s, []) for s in disp.site]
    done_now = sr.next_state.finished - state.finished
    job_site = dict(zip(com.runs.job, com.runs.site, strict=True)) if len(com.runs) else {}
    disp["jobs_completed"] = [
        sorted(j for j in done_now if job_site.get(j) == s) for s in disp.site
    ]
    drout = com.routing.rename(columns={"time": "hour", "cls": "class"})
    unserved = committed_unserved(com, fleet, revision=0)
    run_row = pd.DataFrame(
        [
            {
                "plan_hour": t0,
                "horizon_h": H,
                "status": plan.status,
                "termination": plan.termination_condition,
                "objective": plan.objective,
                "bound": plan.bound,
                "mip_gap": plan.gap,
                "build_s": plan.build_s + plan.translate_s,
                "solve_s": plan.solve_s,
                "forecast_policy": used.policy,
                "degraded": used.degraded,
                "degraded_reason": "; ".join(used.reasons) or None,
                "expected_emissions_t": float(sh.emissions_t.sum()),
                "expected_cost": float(cost(sh).sum()),
                "budget_left_t": state.budget_left_t,
                "daily_budget_t": fleet.planning.daily_carbon_budget_t,
                "window_budget_t": sr.budget.allocated_t if sr.budget else None,
                "budget_planned_t": sr.budget.planned_t if sr.budget else None,
                "budget_over_t": sr.budget.over_t if sr.budget else None,
                "unserved_units": float(plan.totals.get("unserved_units", 0.0)),
                "jobs_started": sorted(sr.started),
                "jobs_missed": list(sr.missed),
                "created_at": pd.Timestamp.now(tz="UTC"),
                "inputs_hash": inputs,
                "grid_events": list(used.grid_events),
                "jobs_paused": list(sr.paused),
                "jobs_resumed": list(sr.resumed),
                "import_over_cap_mwh": float(plan.totals.get("import_over_cap_mwh", 0.0)),
            }
        ]
    )
    sites = pd.DataFrame(
        [
            {
                "site": n,
                "zone": s.zone,
                "carbon_series": fleet.carbon_series(n),
                "gpu_kw": s.gpu_kw,
                "embodied_t_per_day": s.embodied_t_per_day,
                "dr_payment_usd_per_mwh": fleet.grid_events.payment_usd_per_mwh,
            }
            for n, s in fleet.sites.items()
        ]
    )
    classes = pd.DataFrame(
        [{"class": k, "priority": c.priority} for k, c in fleet.classes.items()],
        columns=["class", "priority"],
    )
    nxt = t0 + HOUR
    state_row = pd.DataFrame(
        [{"hour": nxt, "state": state_to_json(sr.next_state), "written_by": t0}]
    )
    one = (t0, nxt)
    from mpc.solve import HIGHS_OPTIONS
    from warehouse import audit

    audit_row = audit.plan_audit_row(  # what the hour was decided from, hashed (plans.audit)
        wh,
        t0,
        audit.plan_inputs(
            t0,
            H,
            carbon={n: fleet.carbon_series(n) for n in fleet.sites},
            prices={n: s.price_zone or s.zone for n, s in fleet.sites.items()},
            classes=list(fleet.classes),
            running=list(state.running),
            grid_sites=list(fleet.sites) if fleet.grid_events.source != "none" else (),
        ),
        dispatch=disp,
        routing=drout,
        jobs_started=sorted(sr.started),
        fleet_json=fleet.model_dump(mode="json"),
        solver={
            "highs_options": HIGHS_OPTIONS,
            "mip_gap": fleet.planning.mip_gap,
            "time_limit_s": fleet.planning.time_limit_s,
        },
        status=plan.status,
        termination=plan.termination_condition,
        gap=plan.gap,
        inputs_hash=inputs,
        forecast_policy=used.policy,
        pending=used.writes,
        fresh_start=fresh_start,
        run_id=run_id,
    )
    writes = [
        *used.writes,
        Write("plans.sites", sites),
        Write("plans.classes", classes),
        Write("plans.runs", run_row, window=one, ts_column="plan_hour"),
        Write("plans.site_hours", sh, window=one, ts_column="plan_hour"),
        Write("plans.job_runs", runs, window=one, ts_column="plan_hour"),
        Write("plans.routing", routing, window=one, ts_column="plan_hour"),
        Write("plans.dispatch", disp, window=one, ts_column="hour"),
        Write("plans.dispatch_routing", drout, window=one, ts_column="hour"),
        Write(
            "plans.dispatch_unserved",
            unserved,
            scope={"revision": 0},
            window=one,
            ts_column="hour",
        ),
        Write("plans.state", state_row, window=(nxt, nxt + HOUR), ts_column="hour"),
        Write("plans.audit", audit_row, window=one, ts_column="plan_hour"),
        # a re-planned hour's earlier re-statement went with the dispatch it re-stated
        Write("plans.dispatch_realised", None, window=one, ts_column="hour", mode="delete"),
    ]
    if n_later and restate:  # the later chain built on the plan being replaced goes with it
        far = pd.Timestamp("2200-01-01", tz="UTC")
        writes = [
            *(
                Write(f"plans.{t}", None, window=(nxt, far), ts_column="plan_hour", mode="delete")
                for t in ("runs", "site_hours", "job_runs", "routing", "audit")
            ),
            *(
                Write(f"plans.{t}", None, window=(nxt, far), ts_column="hour", mode="delete")
                for t in ("dispatch", "dispatch_routing", "dispatch_realised", "agnostic")
            ),
            Write("plans.state", None, window=(nxt + HOUR, far), ts_column="hour", mode="delete"),
            # (revisions of the removed hours are kept: made before the new plans, they are ignored)
            Write(
                "plans.dispatch_unserved",
                None,
                scope={"revision": 0},
                window=(nxt, far),
                ts_column="hour",
                mode="delete",
            ),
            *writes,
        ]
    wh.replace_windows(writes)
    return PlanOutcome(
        t0=t0,
        status=plan.status,
        objective=plan.objective,
        gap=plan.gap,
        build_s=plan.build_s + plan.translate_s,
        solve_s=plan.solve_s,
        total_s=time.perf_counter() - tic,
        forecast=used,
        expected_emissions_t=float(sh.emissions_t.sum()),
        expected_cost=float(cost(sh).sum()),
        committed_emissions_t=float(disp.emissions_t.sum()),
        committed_cost=float(disp.cost.sum()),
        jobs_started=sorted(sr.started),
        jobs_missed=list(sr.missed),
        plan_site_hours=sh,
        realised_known=realised is not None,
        next_state=sr.next_state,
        restated_hours=n_later if restate else 0,
        inputs_hash=inputs,
        budget_allocated_t=sr.budget.allocated_t if sr.budget else None,
        budget_planned_t=sr.budget.planned_t if sr.budget else None,
        budget_over_t=sr.budget.over_t if sr.budget else None,
    )


def grid_summary(wh: Warehouse, t0, used: ForecastUsed) -> dict:
    """Asset metadata on the grid events an hour's plan honoured: the events, the limits per site and
    hour of the window with the planned import, and what could not be met."""
    sh = wh.query(
        "select target_time, site, round(import_cap_mw, 1) cap_mw, round(import_mw, 1) import_mw, "
        "stability from plans.site_hours where plan_hour = ? and (import_cap_mw is not null or "
        "stability) order by target_time, site",
        [_py(t0)],
    )
    run = wh.query(
        "select jobs_paused, jobs_resumed, import_over_cap_mwh from plans.runs where plan_hour = ?",
        [_py(t0)],
    )
    md = {
        "grid_events": ", ".join(used.grid_events) or "-",
        "grid_notes": "; ".join(used.notes) or "-",
        "stressed_site_hours": int(sh.stability.fillna(False).sum()) if len(sh) else 0,
    }
    if len(run):
        r = run.iloc[0]
        md["jobs_paused"] = ", ".join(r.jobs_paused if r.jobs_paused is not None else []) or "-"
        md["jobs_resumed"] = ", ".join(r.jobs_resumed if r.jobs_resumed is not None else []) or "-"
        md["import_over_limit_mwh"] = round(float(r.import_over_cap_mwh or 0.0), 2)
    if len(sh):
        sh["target_time"] = sh.target_time.dt.strftime("%m-%d %H:%M")
        md["grid_limits"] = sh.head(48)
    return md


def audit_summary(wh: Warehouse, t0) -> dict:
    """What a person checks the hour's record against (``plans.audit``, :mod:`warehouse.audit`): the
    chain hash (first 16 hex digits), the newest ``received_at`` of the inputs it read, the fleet file's
    hash and the code version; `gridflex verify` recomputes them."""
    a = wh.query(
        "select chain_hash, received_at_cutoff, fleet_hash, code_version, git_commit, chain_start "
        "from plans.audit where plan_hour = ?",
        [_py(pd.Timestamp(t0))],
    )
    if a.empty:
        return {"audit": "no plans.audit row for this hour"}
    r = a.iloc[0]
    return {
        "audit_chain_hash": str(r.chain_hash)[:16],
        "audit_chain_start": bool(r.chain_start),
        "inputs_received_by": str(r.received_at_cutoff),
        "fleet_hash": str(r.fleet_hash)[:16],
        "code_version": f"{r.code_version}"
        + (f" @ {str(r.git_commit)[:10]}" if r.git_commit else ""),
    }


def fleet_summary(wh: Warehouse) -> dict:
    """The fleet over everything stored (``marts.fleet_total``), rounded for a person, the unit in
    each key: realised emissions, the saving vs carbon-agnostic on the hours both have (absolute and
    like for like), the work each did, missed jobs, the budget's overrun and the carbon-efficiency
    KPIs. {} before the first committed hour."""
    t = wh.query("select * from marts.fleet_total")
    if t.empty:
        return {}
    t = t.iloc[0]

    def r(v, n=1):
        return None if v is None or pd.isna(v) else round(float(v), n)

    out = {
        "fleet_hours": int(t.hours),
        "fleet_emissions_t": r(t.emissions_t),
        "fleet_cost_usd": r(t.cost, 0),
        "jobs_completed": int(t.jobs_completed),
        "jobs_missed": int(t.jobs_missed),
        "g_per_it_kwh": r(t.g_per_it_kwh),
        "g_per_training_gpu_hour": r(t.g_per_training_gpu_hour, 0),
        "g_per_1k_requests": r(t.g_per_1k_requests, 1),
        "sci_g_per_gpu_hour": r(t.sci_g_per_gpu_hour, 0),
        "embodied": f"{r(t.embodied_t)} t"
        if t.embodied_accounted
        else "not accounted (sites.*.embodied_t_per_day = 0)",
    }
    if not pd.isna(t.budget_t):
        out |= {
            "budget_over_t": r(t.budget_over_t, 2),
            "days_over_budget": int(t.days_over_budget),
            "windows_over_budget": int(t.windows_over_budget),
        }
    if not pd.isna(t.agnostic_emissions_t) and t.agnostic_emissions_t:
        out |= {
            "compared_hours": int(t.compared_site_hours),
            "emissions_saved_vs_agnostic_t": r(t.emissions_saved_t, 2),
            "emissions_saved_vs_agnostic_pct": r(t.emissions_saved_pct, 2),
            "cost_saved_vs_agnostic_usd": r(t.cost_saved, 0),
            "compared_training_mwh": r(t.compared_training_mwh),
            "agnostic_training_mwh": r(t.agnostic_training_mwh),
            "compared_jobs_completed": int(t.compared_jobs_completed),
            "agnostic_jobs_completed": int(t.agnostic_jobs_completed),
            "g_per_useful_kwh": r(t.g_per_useful_kwh),
            "agnostic_g_per_useful_kwh": r(t.agnostic_g_per_useful_kwh),
            "like_for_like_saved_pct": r(t.like_for_like_saved_pct, 2),
        }
    return out


def advance_counterfactual(wh: Warehouse, fleet: Fleet, until) -> pd.DataFrame:
    """Advance the carbon-agnostic counterfactual (:func:`mpc.baselines.agnostic_hour`: jobs as
    soon as possible at home, inference at home, passive energy) one hour at a time over the
    committed hours before ``until`` whose actuals are known, from the state it left
    (``plans.agnostic_state``), and re-state the hours of the last :data:`RESTATE_WINDOW` on the
    actuals as they now are — the same actuals the committed hours are re-stated on. O(window) per
    tick, whatever the history. An hour whose actuals have not arrived stops it; the next tick
    carries on from there. A plan chain's first hour (no state for it) starts it afresh. Writes
    ``plans.agnostic`` and the next states in one transaction; returns the rows written."""
    from mpc.baselines import AgnosticState, agnostic_hour
    from mpc.results import energy_cost, throughput_costs

    until = pd.Timestamp(until)
    hours = wh.query(
        """select distinct hour from plans.dispatch d where hour < ? and (hour >= ? or not exists
               (select 1 from plans.agnostic a where a.hour = d.hour)) order by hour""",
        [_py(until), _py(until - RESTATE_WINDOW)],
    ).hour.tolist()
    if not hours:
        return pd.DataFrame()
    todo = [pd.Timestamp(x) for x in hours]
    row = wh.query("select state from plans.agnostic_state where hour = ?", [_py(todo[0])])
    state = (
        AgnosticState.from_dict(json.loads(row.state[0]))
        if len(row)
        else AgnosticState(time=todo[0])
    )
    known = realised_signals(wh, fleet, todo[0], todo[-1] + HOUR, partial=True)
    psi = throughput_costs(fleet.mpc_sites())
    jobs_all = counterfactual_jobs(wh, fleet, todo[0], todo[-1] + HOUR)
    frames, states = [], []
    for t in todo:
        if t != state.time:  # a gap in the committed hours: a new chain starts
            state = AgnosticState(time=t)
        if known is None or t not in known.index:
            break  # actuals not here yet
        before = state
        r, state = agnostic_hour(
            state,
            fleet.mpc_sites(),
            fleet.mpc_classes(),
            jobs_all,
            known.reindex(pd.DatetimeIndex([t])),
            fleet.planning.carbon_price,
        )
        sh = r.site_hours.rename(columns={"time": "hour"})
        # jobs it ran in the hour that have no hours left after it
        ran = set(before.running) | (state.started - before.started)
        done = ran - set(state.running)
        where = dict(zip(r.runs.job, r.runs.site, strict=True)) if len(r.runs) else {}
        sh = sh.assign(
            cost=energy_cost(sh, psi),
            jobs_completed=[sorted(j for j in done if where.get(j) == s) for s in sh.site],
        )
        frames.append(sh)
        states.append({"hour": state.time, "state": json.dumps(state.to_dict())})
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)[
        [
            "hour",
            "site",
            "facility_mw",
            "import_mw",
            "export_mw",
            "emissions_t",
            "cost",
            "training_mw",
            "inference_mw",
            "jobs_completed",
        ]
    ]
    lo, hi = frame.hour.min(), frame.hour.max() + HOUR
    wh.replace_windows(
        [
            Write("plans.agnostic", frame, window=(lo, hi), ts_column="hour"),
            Write(
                "plans.agnostic_state",
                pd.DataFrame(states),
                window=(lo + HOUR, hi + HOUR),
                ts_column="hour",
            ),
        ]
    )
    return frame


def counterfactual_jobs(wh: Warehouse, fleet: Fleet, start, end) -> tuple:
    """The job queue the counterfactual sees for hours ``[start, end)``: every job released before
    ``end`` whose deadline is no more than ``mpc.baselines.ABANDONED`` before ``start``."""
    from mpc.baselines import ABANDONED
    from mpc.instance import jobs_from_frame

    df = wh.query(
        "select job_id, power_mw, duration_h, release, deadline, value, eligible_sites "
        "from staging.jobs where release < ? and deadline >= ? order by release, job_id",
        [_py(end), _py(pd.Timestamp(start) - ABANDONED)],
    ).drop_duplicates("job_id")
    df["eligible_sites"] = [list(x) for x in df["eligible_sites"]]
    home = fleet.jobs.home_site
    homes = {r.job_id: home for r in df.itertuples() if home and home in r.eligible_sites}
    return jobs_from_frame(df, homes or None, fleet.jobs.response)


def committed_realised(
    wh: Warehouse, fleet: Fleet, start, end, realised, hours: set | None = None
) -> pd.DataFrame:
    """Each committed hour of ``[start, end)`` (or only those in ``hours``) re-stated on the realised
    signals: the jobs it ran and its end-of-hour battery target kept, routing and energy re-solved
    (:func:`mpc.receding.realise_hour`, what the closed-loop simulator does to its committed hours).
    Returns the site-hour frame (``time, site, import_mw, export_mw, emissions_t, …``)."""
    from mpc.instance import Instance, RunningJob
    from mpc.receding import realise_hour

    def q(sql, *params):
        return wh.query(sql, [pd.Timestamp(p).to_pydatetime() for p in params])

    from mpc.events import apply_events

    # what was in force: a revision (a grid event during the hour) replaces the hourly dispatch
    disp = q(
        "select hour, site, jobs_running, revision, soc_mwh from plans.dispatch_current "
        "where hour >= ? and hour < ?",
        start,
        end,
    )
    targets = q(
        "select plan_hour, site, soc_mwh, carbon_g_kwh from plans.site_hours where plan_hour = "
        "target_time and plan_hour >= ? and plan_hour < ?",
        start,
        end,
    )
    states = q("select hour, state from plans.state where hour >= ? and hour < ?", start, end)
    power = wh.query("select job_id, max(power_mw) p from staging.jobs group by job_id")
    power = dict(zip(power.job_id, power.p, strict=True))
    state_at = {pd.Timestamp(r.hour): state_from_json(r.state) for r in states.itertuples()}
    parts = []
    todo = {pd.Timestamp(h) for h in disp.hour} & set(realised.index)
    if hours is not None:
        todo &= {pd.Timestamp(h) for h in hours}
    for t in sorted(todo):
        d = disp[disp.hour == t]
        running = tuple(
            RunningJob(j, r.site, 1, float(power.get(j, 0.0)))
            for r in d.itertuples()
            for j in list(r.jobs_running)
        )
        tg = targets[targets.plan_hour == t].set_index("site").soc_mwh.to_dict()
        if (d.revision > 0).any():
            tg = d.set_index("site").soc_mwh.to_dict()
        st = state_at.get(t)
        one = Instance(
            sites=fleet.mpc_sites(),
            classes=fleet.mpc_classes(),
            jobs=(),
            running=running,
            signals=realised.reindex(pd.DatetimeIndex([t])),
            carbon_price=fleet.planning.carbon_price,
            soc_init_mwh=dict(st.soc_mwh) if st else None,
            soc_target_mwh=tg,
            name=f"restate-{t:%Y%m%dT%H}",
        )
        # the grid operator's limits and prices of the hour hold in the re-statement too
        one, _ = apply_events(one, grid_events(wh, fleet, t, t + HOUR))
        # decided on what the controller knew (the plan's carbon for the hour), accounted on actuals
        believed = targets[targets.plan_hour == t].set_index("site").carbon_g_kwh
        believed = pd.DataFrame(
            [believed.reindex(list(fleet.sites)).to_numpy()],
            index=pd.DatetimeIndex([t]),
            columns=list(fleet.sites),
        )
        parts.append(
            realise_hour(one, fleet.planning.time_limit_s, believed_carbon=believed).site_hours
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


#: committed hours re-stated on actuals each tick: the hours whose actuals may still be revised
RESTATE_WINDOW = pd.Timedelta(hours=48)
#: committed hours re-stated as their actuals arrive or are revised (restate_dispatch): the Open-Meteo
#: archive lags ~5 days, so an hour whose weather came neither from the forecast endpoint's past hours
#: (today's) nor within RESTATE_WINDOW (e.g. 23:00, yesterday at the next tick) waits for it
CATCH_UP_WINDOW = pd.Timedelta(days=14)


def restate_dispatch(wh: Warehouse, fleet: Fleet, until) -> pd.DataFrame:
    """Re-state on their actuals (``plans.dispatch_realised``; ``plans.dispatch`` keeps what was
    expected) the committed hours of the last :data:`CATCH_UP_WINDOW` before ``until`` that are not
    re-stated yet, or one of whose actuals (carbon, observed weather, generation, load, prices) was received
    after their re-statement (a late revision; the archive's observations replacing the forecast
    endpoint's analysis days later). O(hours whose actuals changed) per tick.
    Each hour is one small LP; re-running it with the same actuals writes the same rows (nothing
    changes), a revision of the actuals updates them."""
    from mpc.results import energy_cost, throughput_costs

    until = pd.Timestamp(until)
    # hours not re-stated yet, or one of whose actuals arrived (or was revised) since: re-stating
    # an hour on the same actuals writes the same rows, so the others are left as they are
    todo = wh.query(
        """select distinct d.hour from plans.dispatch d
           left join plans.dispatch_realised r using (hour, site)
           left join plans.sites s using (site)
           where d.hour < ? and d.hour >= ? and (r.hour is null or r.restated_at < (
               select max(received_at) from (
                   select received_at from staging.carbon_intensity c
                   where c.ts = d.hour and c.series = s.carbon_series
                   union all select received_at from staging.weather_observed w
                   where w.ts = d.hour and w.location = d.site
                   union all select received_at from staging.generation g
                   where g.ts = d.hour and g.site = d.site
                   union all select received_at from staging.load l where l.ts = d.hour
                   union all select received_at from staging.prices p where p.ts = d.hour)))
           order by d.hour""",
        [_py(until), _py(until - CATCH_UP_WINDOW)],
    ).hour
    if todo.empty:
        return pd.DataFrame()
    first = pd.Timestamp(todo.iloc[0])
    realised = realised_signals(wh, fleet, first, until, partial=True)
    if realised is None:
        return pd.DataFrame()
    sh = committed_realised(wh, fleet, first, until, realised, hours=set(todo))
    if sh.empty:
        return sh
    sh = sh.rename(columns={"time": "hour"})
    sh = sh.assign(
        cost=energy_cost(sh, throughput_costs(fleet.mpc_sites())),
        restated_at=pd.Timestamp.now(tz="UTC"),
    )
    writes = [
        Write("plans.dispatch_realised", g, window=(t, t + HOUR), ts_column="hour")
        for t, g in sh.groupby("hour")
    ]
    wh.replace_windows(writes)
    return sh


PLAN_TABLES = (
    "runs",
    "site_hours",
    "job_runs",
    "routing",
    "dispatch",
    "dispatch_routing",
    "state",
    "agnostic",
    "agnostic_state",
    "dispatch_realised",
    "audit",
    "revisions",
    "dispatch_unserved",
    "dispatch_revisions",
    "dispatch_routing_revisions",
    "state_revisions",
)


def reset_plans(wh: Warehouse) -> None:
    """Forget every plan, dispatch and carried state (benchmarks and tests re-plan the same hours from a
    fresh start; ingested data, models and forecasts stay)."""
    with wh.writer() as con:
        for t in PLAN_TABLES:
            con.execute(f"delete from plans.{t}")
