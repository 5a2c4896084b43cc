"""The joint model, its baselines (milp.md) and the one entry point :func:`solve`.

Every method ends in :func:`mpc.results.evaluate`, i.e. is scored on the full model's accounting
(objective (1): job value + inference revenue + export revenue − import cost − carbon cost −
battery throughput cost; emissions from realised imports).

==================  ===========================================================================
method              definition
==================  ===========================================================================
joint               (1)–(16).
no_carbon           joint without the budget of (16) (the carbon price stays in (1)).
no_battery          joint with E_s = 0.
no_routing          joint with each inference class served only at its home site.
compute_only        stage 1: optimise jobs and routing against grid prices and carbon only (no
                    local generation, no battery, no export, no budget); stage 2: operate energy
                    passively (:func:`passive_energy`).
energy_only         naive workload (:func:`naive_workload`) fixed; optimise battery, local
                    generation and grid trade with the full model (budget dropped: the fixed
                    workload usually cannot meet it; its emissions are reported).
carbon_agnostic     naive workload + passive energy. No optimisation (what a data centre does
                    today); also the closed-loop reference policy.
==================  ===========================================================================
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mpc.instance import Instance, RunningJob, Signals
from mpc.options import ModelOptions
from mpc.results import Decisions, Result, evaluate

METHODS = (
    "joint",
    "compute_only",
    "energy_only",
    "no_battery",
    "no_routing",
    "no_carbon",
    "carbon_agnostic",
)


def naive_workload(
    inst: Instance, site_score=None
) -> tuple[dict[str, tuple[str, int]], np.ndarray, np.ndarray]:
    """What a carbon-agnostic operator does: inference at its home site (spilling to the
    lowest-latency feasible site only when home capacity is full), then each job as soon as
    possible at its home site (in release order, the first start where it fits for its whole
    duration). Returns (starts, q[K,S,T], unserved[K,T]); a job that never fits is not started.

    ``site_score`` (site -> number, lower is better; e.g. its historical mean carbon intensity):
    the *static* rule instead — each inference class at its best-scored feasible site (spilling in
    score order), each job as soon as possible at its best-scored eligible site with room. No
    forecast."""
    sites, H = inst.site_names, len(inst.index)
    pos = {s: i for i, s in enumerate(sites)}
    free = np.array([[s.it_capacity_mw - s.base_load_mw] * H for s in inst.sites], dtype=float)
    inf_free = np.array(
        [
            [s.inference_cap_mw if s.inference_cap_mw is not None else np.inf] * H
            for s in inst.sites
        ],
        dtype=float,
    )
    for r in inst.running:
        free[pos[r.site], : min(r.periods_left, H)] -= r.power_mw
    K = len(inst.classes)
    q = np.zeros((K, len(sites), H))
    unserved = np.zeros((K, H))
    dem = inst.signals.demand[inst.class_names].to_numpy(float)
    for ki, k in enumerate(inst.classes):
        if site_score is None:
            order = sorted(
                k.feasible_sites(sites), key=lambda s, k=k: (s != k.home_site, k.latency_ms[s])
            )
        else:
            order = sorted(
                k.feasible_sites(sites),
                key=lambda s, k=k: (site_score.get(s, np.inf), k.latency_ms[s]),
            )
        for t in range(H):
            need = dem[t, ki]
            for s in order:
                i = pos[s]
                mw = min(need * k.energy_mwh, max(0.0, free[i, t]), max(0.0, inf_free[i, t]))
                units = mw / k.energy_mwh if k.energy_mwh > 0 else need
                q[ki, i, t] += units
                free[i, t] -= units * k.energy_mwh
                inf_free[i, t] -= units * k.energy_mwh
                need -= units
                if need <= 1e-9:
                    break
            unserved[ki, t] = max(0.0, need)
    starts = {}
    for j in sorted(inst.jobs, key=lambda j: (j.release, j.job_id)):
        # carbon-agnostic: the home site only; static: the eligible sites in score order
        where = (
            [j.home]
            if site_score is None
            else sorted(j.eligible_sites, key=lambda s: (site_score.get(s, np.inf), s))
        )
        first = max(0, inst.period(j.release))
        last = min(inst.period(j.latest_start), H - 1)  # may run on past the horizon's end
        placed = False
        for t in range(first, last + 1):
            for site in where:
                i, D = pos[site], j.hours_from(site, t)
                if (free[i, t : t + D] >= j.power_mw - 1e-9).all():
                    free[i, t : t + D] -= j.power_mw
                    starts[j.job_id] = (site, t)
                    placed = True
                    break
            if placed:
                break
    return starts, q, unserved


def passive_energy(inst: Instance, starts, q, unserved=None, *, soc=None) -> Decisions:
    """Passive operation of a fixed workload: local generation first, import the rest (up to the
    import limit; anything above is shed), battery idle at its initial state, no export."""
    from mpc.results import _job_power

    S, H = len(inst.sites), len(inst.index)
    d = Decisions(
        starts=dict(starts),
        q=q,
        g=np.zeros((S, H)),
        imp=np.zeros((S, H)),
        exp=np.zeros((S, H)),
        ch=np.zeros((S, H)),
        dis=np.zeros((S, H)),
        soc=np.zeros((S, H)),
        unserved=unserved,
    )
    train, _ = _job_power(inst, d)
    e = np.array([k.energy_mwh for k in inst.classes])
    base = np.array([s.base_load_mw for s in inst.sites])[:, None]
    it = base + train + (np.einsum("k,kst->st", e, q) if len(e) else 0.0)
    fac = (1 + inst.signals.kappa[inst.site_names].to_numpy(float).T) * it
    gen = inst.signals.generation[inst.site_names].to_numpy(float).T
    d.g = np.minimum(gen, fac)
    need = fac - d.g
    imax = np.array([s.import_limit_mw for s in inst.sites])[:, None]
    d.imp = np.minimum(need, imax)
    d.shed = need - d.imp
    d.soc = (
        np.array([inst.soc_init(s) if s.battery.energy_mwh > 0 else 0.0 for s in inst.sites])[
            :, None
        ]
        * np.ones((1, H))
        if soc is None
        else soc
    )
    return d


def carbon_agnostic(inst: Instance, site_score=None) -> Result:
    """Naive workload + passive energy (no solver); with ``site_score`` the static rule
    (:func:`naive_workload`)."""
    t0 = time.perf_counter()
    starts, q, unserved = naive_workload(inst, site_score)
    d = passive_energy(inst, starts, q, unserved)
    name = "carbon_agnostic" if site_score is None else "static"
    r = evaluate(
        inst,
        d,
        name,
        status="evaluated",
        termination_condition="heuristic",
        build_s=time.perf_counter() - t0,
    )
    r.message = f"{name}: evaluated, objective {r.objective:,.1f}"
    return r


def _routing_map(q: np.ndarray, inst: Instance) -> dict[tuple[str, str, int], float]:
    out = {}
    for ki, k in enumerate(inst.class_names):
        for si, s in enumerate(inst.site_names):
            for t in range(q.shape[2]):
                out[k, s, t] = float(q[ki, si, t])
    return out


def solve(
    instance: Instance,
    *,
    method: str = "joint",
    time_limit: float = 60.0,
    mip_gap: float = 0.01,
    options: ModelOptions | None = None,
) -> Result:
    """Solve ``instance`` with ``method`` (one of :data:`METHODS`) and return a :class:`Result`.

    ``options`` overrides the joint model's :class:`ModelOptions` (e.g. ``relax_modes=False`` or
    ``elastic={...}``); the method's own switches are applied on top.
    """
    import dataclasses

    from mpc.solve import solve_model

    base = options or ModelOptions()
    kw = dict(time_limit=time_limit, mip_gap=mip_gap, method=method)
    if method == "joint":
        return solve_model(instance, base, **kw)
    if method == "no_carbon":
        return solve_model(instance, dataclasses.replace(base, carbon_budget=False), **kw)
    if method == "no_battery":
        return solve_model(instance, dataclasses.replace(base, battery=False), **kw)
    if method == "no_routing":
        return solve_model(instance, dataclasses.replace(base, routing=False), **kw)
    if method == "carbon_agnostic":
        return carbon_agnostic(instance)
    if method == "compute_only":
        stage1 = solve_model(
            instance,
            dataclasses.replace(
                base, battery=False, local_generation=False, export=False, carbon_budget=False
            ),
            **kw,
        )
        if not stage1.ok:
            return stage1
        d1 = stage1.decisions
        d = passive_energy(instance, d1.starts, d1.q, d1.unserved)
        r = evaluate(
            instance,
            d,
            method,
            status=stage1.status,
            termination_condition=stage1.termination_condition,
            bound=float("nan"),
            gap=stage1.gap,
            build_s=stage1.build_s,
            translate_s=stage1.translate_s,
            solve_s=stage1.solve_s,
            n_variables=stage1.n_variables,
            n_binaries=stage1.n_binaries,
            n_constraints=stage1.n_constraints,
        )
        r.message = (
            f"compute_only: stage 1 {stage1.status}, passive energy, objective {r.objective:,.1f}"
        )
        return r
    if method == "energy_only":
        starts, q, unserved = naive_workload(instance)
        if unserved.sum() > 1e-6:
            kw_el = dict(base.elastic)
            kw_el.setdefault("inference", 1e6)
            base = dataclasses.replace(base, elastic=kw_el)
        fixed = {j.job_id: starts.get(j.job_id) for j in instance.jobs}
        opts = dataclasses.replace(
            base, carbon_budget=False, fixed_starts=fixed, fixed_routing=_routing_map(q, instance)
        )
        # Jobs the naive schedule could not place are made optional so the fixed workload is valid.
        inst = instance
        missing = [j for j in instance.jobs if j.job_id not in starts and j.mandatory]
        if missing:
            inst = instance.replace(
                jobs=tuple(
                    dataclasses.replace(j, mandatory=False) if j in missing else j
                    for j in instance.jobs
                )
            )
        r = solve_model(inst, opts, **kw)
        return r
    raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


def solve_all(
    instance: Instance, *, methods=METHODS, time_limit: float = 60.0, mip_gap: float = 0.01
) -> dict[str, Result]:
    """Every method on one instance (the paper's table)."""
    return {m: solve(instance, method=m, time_limit=time_limit, mip_gap=mip_gap) for m in methods}


# =============================================================================== the counterfactual
#: a job the counterfactual has not started this long after its deadline is given up
ABANDONED = pd.Timedelta(hours=48)


@dataclass(frozen=True)
class AgnosticState:
    """What the carbon-agnostic counterfactual carries from one hour to the next: the jobs it is
    running (job_id -> (site, hours left)), those it has started (so none starts twice) and since
    when it runs (``since``: jobs whose last chance to start had passed before it are not its to
    run — as for the plans, which started at the same hour)."""

    time: pd.Timestamp
    running: dict[str, tuple[str, int]] = field(default_factory=dict)
    started: frozenset[str] = frozenset()
    since: pd.Timestamp | None = None

    def to_dict(self) -> dict:
        return {
            "time": self.time.isoformat(),
            "running": {k: [s, int(n)] for k, (s, n) in self.running.items()},
            "started": sorted(self.started),
            "since": (self.since or self.time).isoformat(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> AgnosticState:
        return cls(
            time=pd.Timestamp(d["time"]),
            running={k: (s, int(n)) for k, (s, n) in d["running"].items()},
            started=frozenset(d["started"]),
            since=pd.Timestamp(d["since"]) if d.get("since") else None,
        )


def agnostic_hour(
    state: AgnosticState,
    sites,
    classes,
    jobs,
    realised_hour: Signals,
    carbon_price: float = 0.0,
    site_score=None,
) -> tuple[Result, AgnosticState]:
    """One hour of what a data centre does today, on what happened in that hour: jobs already
    running continue at their home site; every job released by now and not yet started starts at
    its home site now if the site has room for it this hour (release order); inference is served at
    home (spilling by latency when home is full); energy is passive (local generation first, import
    the rest, battery idle, no export). O(1) in the history: a tick advances it one hour, and a
    whole period is the same steps in a row (:func:`mpc.receding.simulate`). ``site_score``: the
    static rule (:func:`naive_workload`) instead of the home site."""
    t = realised_hour.index[0]
    if t != state.time:
        raise ValueError(f"counterfactual is at {state.time}, the hour given is {t}")
    by_id = {j.job_id: j for j in jobs}
    since = state.since or t
    running = tuple(
        RunningJob(j, s, int(n), by_id[j].power_mw if j in by_id else 0.0)
        for j, (s, n) in state.running.items()
    )
    waiting = tuple(
        dataclasses.replace(
            j, release=t, deadline=max(j.deadline, t + pd.Timedelta(hours=j.duration_h - 1))
        )
        for j in jobs
        if j.job_id not in state.started
        and j.job_id not in state.running
        and j.release <= t
        and j.latest_start >= since
        and j.deadline >= t - ABANDONED
    )
    inst = Instance(
        sites=tuple(sites),
        classes=tuple(classes),
        jobs=waiting,
        running=running,
        signals=realised_hour,
        carbon_price=carbon_price,
        name=f"agnostic-{t:%Y%m%dT%H}",
    )
    r = carbon_agnostic(inst, site_score)
    new = {jid: (s, by_id[jid].duration_h) for jid, (s, _) in r.decisions.starts.items()}
    nxt = {}
    for jid, (s, left) in [*state.running.items(), *new.items()]:
        if left > 1:
            nxt[jid] = (s, left - 1)
    return r, AgnosticState(
        time=t + pd.Timedelta(hours=1),
        running=nxt,
        started=state.started | frozenset(new),
        since=since,
    )
