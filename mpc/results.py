"""Decisions → tidy DataFrames and the model's accounting, shared by every method.

Every method (the MILP, the baselines, the carbon-agnostic heuristic, the realised hour of the
receding horizon) ends in a :class:`Decisions` object; :func:`evaluate` turns it into the tidy
frames and the totals of objective (1) with one piece of code, so all methods are compared on the
same
accounting. No Pyomo here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mpc.instance import Instance


@dataclass
class Decisions:
    """Raw decisions of one method on one instance. Arrays are (sites, periods) unless noted.

    starts: job_id -> (site, period) for jobs started in this horizon (not started: absent);
    q: (classes, sites, periods) units/h served; unserved: (classes, periods) units/h not served;
    shed: (sites, periods) MW of facility load that could not be supplied (realised hours only).
    """

    starts: dict[str, tuple[str, int]]
    q: np.ndarray
    g: np.ndarray
    imp: np.ndarray
    exp: np.ndarray
    ch: np.ndarray
    dis: np.ndarray
    soc: np.ndarray
    unserved: np.ndarray | None = None
    shed: np.ndarray | None = None


@dataclass
class Result:
    """What one solve (or one baseline evaluation) returns.

    status: ``optimal`` | ``feasible`` (time limit or gap with an incumbent) | ``infeasible`` |
    ``no_solution`` | ``evaluated`` (a heuristic, no optimisation) | ``fallback`` (a
    receding-horizon window with no incumbent, planned by the carbon-agnostic heuristic instead).
    termination_condition: the solver's own words. objective / bound / gap: of (1) as recomputed
    on the decisions (``objective``) and the solver's dual bound (``bound``; NaN for heuristics);
    gap = (bound − objective) / max(1, |objective|). build_s: Pyomo model construction;
    translate_s: handing the model to HiGHS; solve_s: HiGHS's own run time.
    Frames (tidy, one row per key):
      site_hours  time, site: it/training/inference/base/facility MW, gen available/used, import,
                  export, charge, discharge MW, soc MWh, emissions t, carbon g/kWh, prices, shed MW
      routing     time, cls, site, units (units/h served)
      unserved    time, cls, units (units/h not served; realised hours only)
      runs        time, job, site, power_mw (one row per job and hour it runs)
      schedule    job, site, start, end (last hour), power_mw, duration_h, value, started
    totals: emissions_t, import_cost, export_revenue, battery_cost, energy_cost, job_value,
      inference_revenue, revenue, carbon_cost, objective, unserved_units, shed_mwh,
      jobs_started, mandatory_missed.
    diagnosis: for infeasible / no-solution results, the violated constraint families.
    """

    method: str
    status: str
    termination_condition: str
    objective: float
    bound: float
    gap: float
    build_s: float = 0.0
    translate_s: float = 0.0
    solve_s: float = 0.0
    n_variables: int = 0
    n_binaries: int = 0
    n_constraints: int = 0
    site_hours: pd.DataFrame = field(default_factory=pd.DataFrame)
    routing: pd.DataFrame = field(default_factory=pd.DataFrame)
    unserved: pd.DataFrame = field(default_factory=pd.DataFrame)
    runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    schedule: pd.DataFrame = field(default_factory=pd.DataFrame)
    totals: dict[str, float] = field(default_factory=dict)
    diagnosis: list[str] = field(default_factory=list)
    message: str = ""
    decisions: Decisions | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("optimal", "feasible", "evaluated")

    @property
    def emissions_t(self) -> float:
        return self.totals.get("emissions_t", float("nan"))

    @property
    def energy_cost(self) -> float:
        return self.totals.get("energy_cost", float("nan"))

    @property
    def revenue(self) -> float:
        return self.totals.get("revenue", float("nan"))

    def summary(self) -> dict[str, float | str]:
        """One flat row (method, status, objective, emissions, cost, gap, timings)."""
        return {
            "method": self.method,
            "status": self.status,
            "objective": self.objective,
            "emissions": self.emissions_t,
            "cost": self.energy_cost,
            "revenue": self.revenue,
            "gap": self.gap,
            "build_s": self.build_s,
            "translate_s": self.translate_s,
            "solve_s": self.solve_s,
        }

    def __repr__(self) -> str:
        return (
            f"Result(method={self.method!r}, status={self.status!r}, "
            f"objective={self.objective:.1f},"
            f" emissions_t={self.emissions_t:.2f}, gap={self.gap:.4f})"
        )


def energy_cost(site_hours: pd.DataFrame, throughput_cost=0.0, dt_h: float = 1.0) -> pd.Series:
    """The one definition of cost, per site-hour ($): the energy terms of objective (1)::

        cost_st = (π_st · imp_st − π^x_st · exp_st + ψ_s · (ch_st + dis_st)) · Δ

    import cost minus export revenue plus battery throughput cost. ``throughput_cost``: ψ per site
    (a mapping site → $/MWh, or one number). The model's totals (``energy_cost``), the pipeline's
    ``plans.dispatch.cost`` (and so every mart), the backtest and the replay all use it."""
    sh = site_hours
    psi = (
        sh["site"].map(throughput_cost).fillna(0.0)
        if isinstance(throughput_cost, Mapping)
        else float(throughput_cost)
    )
    battery = sh.get("charge_mw", 0.0) + sh.get("discharge_mw", 0.0)
    return (
        sh["import_mw"] * sh["price_import"] - sh["export_mw"] * sh["price_export"] + psi * battery
    ) * dt_h


def throughput_costs(sites) -> dict[str, float]:
    """ψ per site name, for :func:`energy_cost`."""
    return {s.name: s.battery.throughput_cost for s in sites}


def net_simultaneous(inst: Instance, d: Decisions) -> Decisions:
    """Remove simultaneous import/export and charge/discharge from relaxed-mode solutions.

    Import and export are reduced by their common part (balance kept, cost and emissions do not
    rise). Charge and discharge are replaced by the net flow with the same state of charge; the
    energy that
    frees up reduces import first, then local generation used (curtailment).
    """
    both = np.minimum(d.imp, d.exp)
    d.imp = d.imp - both
    d.exp = d.exp - both
    for i, s in enumerate(inst.sites):
        b = s.battery
        for t in range(d.ch.shape[1]):
            c, x = d.ch[i, t], d.dis[i, t]
            if c > 1e-9 and x > 1e-9:
                net = b.eta_c * c - x / b.eta_d
                c2, x2 = (net / b.eta_c, 0.0) if net >= 0 else (0.0, -net * b.eta_d)
                freed = (c - x) - (c2 - x2)
                d.ch[i, t], d.dis[i, t] = c2, x2
                cut = min(d.imp[i, t], freed)
                d.imp[i, t] -= cut
                d.g[i, t] = max(0.0, d.g[i, t] - (freed - cut))
    return d


def _job_power(inst: Instance, d: Decisions) -> tuple[np.ndarray, list[tuple]]:
    """Training MW per (site, period) from starts and running jobs, and the run rows."""
    S, H = len(inst.sites), len(inst.index)
    pos = {s: i for i, s in enumerate(inst.site_names)}
    train = np.zeros((S, H))
    rows = []
    jobs = {j.job_id: j for j in inst.jobs}
    for jid, (s, t0) in d.starts.items():
        j = jobs[jid]
        if t0 < H:  # a resume from a checkpoint redoes its restart in its first hour
            train[pos[s], t0] += j.restart_energy(s, t0) / inst.dt_h
        for t in range(t0, min(t0 + j.hours_from(s, t0), H)):
            train[pos[s], t] += j.power_mw
            rows.append((inst.index[t], jid, s, j.power_mw))
    for r in inst.running:
        for t in range(min(r.periods_left, H)):
            train[pos[r.site], t] += r.power_mw
            rows.append((inst.index[t], r.job_id, r.site, r.power_mw))
    return train, rows


def evaluate(inst: Instance, d: Decisions, method: str, **meta) -> Result:
    """Frames and totals of objective (1) for decisions ``d`` on ``inst``."""
    idx, sites, classes = inst.index, inst.site_names, inst.class_names
    S, H, K = len(sites), len(idx), len(classes)
    sig = inst.signals
    train, run_rows = _job_power(inst, d)
    e = np.array([k.energy_mwh for k in inst.classes])
    infer = np.einsum("k,kst->st", e, d.q) if K else np.zeros((S, H))
    base = np.array([s.base_load_mw for s in inst.sites])[:, None] * np.ones((1, H))
    it = base + train + infer
    kappa = sig.kappa[sites].to_numpy(float).T
    fac = (1 + kappa) * it
    c = sig.carbon[sites].to_numpy(float).T * 1e-3
    pi = sig.price_import[sites].to_numpy(float).T
    pix = sig.price_export[sites].to_numpy(float).T
    em = c * d.imp * inst.dt_h
    shed = d.shed if d.shed is not None else np.zeros((S, H))
    site_hours = pd.DataFrame(
        {
            "time": idx[np.tile(np.arange(H), S)],
            "site": np.repeat(sites, H),
            "it_mw": it.ravel(),
            "training_mw": train.ravel(),
            "inference_mw": infer.ravel(),
            "base_mw": base.ravel(),
            "facility_mw": fac.ravel(),
            "gen_available_mw": sig.generation[sites].to_numpy(float).T.ravel(),
            "gen_used_mw": d.g.ravel(),
            "import_mw": d.imp.ravel(),
            "export_mw": d.exp.ravel(),
            "charge_mw": d.ch.ravel(),
            "discharge_mw": d.dis.ravel(),
            "soc_mwh": d.soc.ravel(),
            "emissions_t": em.ravel(),
            "carbon_g_kwh": (c * 1e3).ravel(),
            "price_import": pi.ravel(),
            "price_export": pix.ravel(),
            "shed_mw": shed.ravel(),
        }
    )
    kk, ss, tt = np.meshgrid(np.arange(K), np.arange(S), np.arange(H), indexing="ij")
    mask = d.q > 1e-9
    routing = pd.DataFrame(
        {
            "time": idx[tt[mask]],
            "cls": np.array(classes, dtype=object)[kk[mask]],
            "site": np.array(sites, dtype=object)[ss[mask]],
            "units": d.q[mask],
        }
    )
    uns = d.unserved if d.unserved is not None else np.zeros((K, H))
    ku, tu = np.nonzero(uns > 1e-9)
    unserved = pd.DataFrame(
        {"time": idx[tu], "cls": np.array(classes, dtype=object)[ku], "units": uns[ku, tu]}
    )
    runs = pd.DataFrame(run_rows, columns=["time", "job", "site", "power_mw"])
    sched = []
    for j in inst.jobs:
        if j.job_id in d.starts:
            s, t0 = d.starts[j.job_id]
            sched.append(
                (
                    j.job_id,
                    s,
                    idx[t0],
                    idx[t0] + pd.Timedelta(hours=j.hours_from(s, t0) - 1),
                    j.power_mw,
                    j.hours_from(s, t0),
                    j.value,
                    True,
                )
            )
        else:
            sched.append((j.job_id, None, pd.NaT, pd.NaT, j.power_mw, j.duration_h, j.value, False))
    schedule = pd.DataFrame(
        sched, columns=["job", "site", "start", "end", "power_mw", "duration_h", "value", "started"]
    )
    psi = np.array([s.battery.throughput_cost for s in inst.sites])[:, None]
    rho = np.array([k.revenue for k in inst.classes])
    dt = inst.dt_h
    job_value = float(sum(j.value for j in inst.jobs if j.job_id in d.starts))
    totals = {
        "emissions_t": float(em.sum()),
        "import_cost": float((pi * d.imp).sum() * dt),
        "export_revenue": float((pix * d.exp).sum() * dt),
        "battery_cost": float((psi * (d.ch + d.dis)).sum() * dt),
        "job_value": job_value,
        "inference_revenue": float(np.einsum("k,kst->", rho, d.q)) if K else 0.0,
        "unserved_units": float(uns.sum()),
        "shed_mwh": float(shed.sum() * dt),
        "jobs_started": float(len(d.starts)),
    }
    totals["energy_cost"] = (
        totals["import_cost"] - totals["export_revenue"] + totals["battery_cost"]
    )
    if inst.grid is not None:  # what the grid operator's limits were not met by
        cap = inst.grid.import_cap[sites].to_numpy(float).T
        over = np.where(np.isnan(cap), 0.0, np.maximum(0.0, d.imp - np.nan_to_num(cap)))
        totals["import_over_cap_mwh"] = float(over.sum() * inst.dt_h)
        site_hours["import_cap_mw"] = cap.ravel()
        site_hours["stability"] = inst.grid.stability[sites].to_numpy(float).T.ravel() > 0.5
    totals["revenue"] = totals["job_value"] + totals["inference_revenue"]
    totals["carbon_cost"] = inst.carbon_price * totals["emissions_t"]
    totals["objective"] = totals["revenue"] - totals["energy_cost"] - totals["carbon_cost"]
    H_end = len(idx) - 1
    totals["mandatory_missed"] = float(
        sum(
            1
            for j in inst.jobs
            if j.mandatory and inst.period(j.latest_start) <= H_end and j.job_id not in d.starts
        )
    )
    bound = meta.pop("bound", float("nan"))
    obj = totals["objective"]
    gap = meta.pop("gap", None)
    if gap is None:
        gap = (bound - obj) / max(1.0, abs(obj)) if np.isfinite(bound) else float("nan")
        gap = max(gap, 0.0) if np.isfinite(gap) else gap
    return Result(
        method=method,
        objective=obj,
        bound=bound,
        gap=gap,
        site_hours=site_hours,
        routing=routing,
        unserved=unserved,
        runs=runs,
        schedule=schedule,
        totals=totals,
        decisions=d,
        **meta,
    )
