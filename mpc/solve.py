"""Solve a built model with HiGHS through Pyomo's APPSI interface and extract a :class:`Result`.

Why APPSI (``pyomo.contrib.appsi.solvers.Highs``): it hands the model to highspy in memory (no LP
file) and is the fastest Pyomo→HiGHS route measured here. Its ``config.time_limit`` and
``config.mip_gap`` are set on the solver object we own; we never go through the legacy
``SolverFactory('appsi_highs').solve(timelimit=...)`` wrapper, which overwrites the config
(stack-notes.md). Solutions are loaded only after the termination condition has been checked.

On a time-out with an incumbent the incumbent is returned with status ``feasible`` and its gap.
With no incumbent, or an infeasible model, :func:`diagnose` re-solves an elastic copy that
minimises the total slack of every constraint family and reports which families need slack.
"""

from __future__ import annotations

import math
import time

import numpy as np

from mpc.instance import Instance
from mpc.model import FAMILIES, ModelOptions, build_model
from mpc.results import Decisions, Result, evaluate, net_simultaneous

#: HiGHS options on every solve. ``threads=1`` and a fixed seed make runs reproducible; the root
#: reduced-cost heuristic is off because on this model family it is where the time goes and the
#: other heuristics (RINS, RENS) find as good an incumbent without it. Measured on the seeded
#: 20 × 168 × 100 × 5 instances (``gridflex bench mpc-scale --sites 20 --hours 168 --jobs 100``,
#: seeds 0–2, HiGHS 1.16, one thread): 13.4 / 12.3 / 2.1 s with it, 8.7 / 8.7 / 2.0 s without, every
#: run ending at the root with a gap below 0.1 %, 0.1 % and 0.8 %.
HIGHS_OPTIONS = {
    "mip_abs_gap": 1e-6,
    "threads": 1,
    "random_seed": 0,
    "mip_heuristic_run_root_reduced_cost": False,
}


def _highs(time_limit: float, mip_gap: float):
    from pyomo.contrib.appsi.solvers import Highs

    opt = Highs()
    opt.config.time_limit = float(time_limit)
    opt.config.mip_gap = float(mip_gap)
    opt.config.load_solution = False
    opt.config.stream_solver = False
    opt.highs_options = dict(HIGHS_OPTIONS)
    return opt


def _array(var, keys_st, S, H, pos):
    a = np.zeros((S, H))
    for s, t in keys_st:
        v = var[s, t].value
        a[pos[s], t] = 0.0 if v is None else v
    return a


def extract(m, inst: Instance) -> Decisions:
    """Decision arrays from a model whose variables hold a solution."""
    sites, classes = inst.site_names, inst.class_names
    S, H, K = len(sites), len(inst.index), len(classes)
    pos = {s: i for i, s in enumerate(sites)}
    kpos = {k: i for i, k in enumerate(classes)}
    starts = {}
    for j, s, t in m.Y:
        v = m.y[j, s, t].value
        if v is not None and v > 0.5:
            starts[j] = (s, t)
    q = np.zeros((K, S, H))
    for (k, s, t), var in m.q.items():
        q[kpos[k], pos[s], t] = max(0.0, var.value or 0.0)
    keys = [(s, t) for s in sites for t in range(H)]
    arrays = {
        n: np.maximum(_array(getattr(m, n), keys, S, H, pos), 0.0)
        for n in ("g", "imp", "exp", "ch", "dis")
    }
    soc = _array(m.soc, keys, S, H, pos)
    unserved = shed = None
    if hasattr(m.slack, "inference"):
        unserved = np.zeros((K, H))
        for (k, t), var in m.slack.inference.items():
            unserved[kpos[k], t] = max(0.0, var.value or 0.0)
    if hasattr(m.slack, "balance"):
        shed = np.zeros((S, H))
        for (s, t), var in m.slack.balance.items():
            shed[pos[s], t] = max(0.0, var.value or 0.0)
    d = Decisions(starts=starts, q=q, soc=soc, unserved=unserved, shed=shed, **arrays)
    return net_simultaneous(inst, d)


def model_size(m) -> tuple[int, int, int]:
    """(variables, binaries, constraints) handed to the solver (fixed variables excluded)."""
    import pyomo.environ as pyo

    n_var = n_bin = 0
    for v in m.component_data_objects(pyo.Var, active=True):
        if v.fixed:
            continue
        n_var += 1
        if v.is_binary():
            n_bin += 1
    n_con = sum(1 for _ in m.component_data_objects(pyo.Constraint, active=True))
    return n_var, n_bin, n_con


def solve_model(
    inst: Instance,
    opt: ModelOptions | None = None,
    *,
    method: str = "joint",
    time_limit: float = 60.0,
    mip_gap: float = 0.01,
    diagnose_infeasible: bool = True,
    count_size: bool = True,
    warm_starts=None,
) -> Result:
    """Build (1)–(16) with ``opt``, solve with HiGHS, return a :class:`Result` (never raises on a
    solver outcome: infeasible / no-solution results carry a diagnosis instead).

    ``warm_starts`` (job -> (site, period)): a MIP start for the job starts (e.g. the previous
    hour's plan shifted by one hour, :func:`mpc.receding.shifted_starts`); HiGHS completes it and
    starts its search from it. On 20 sites × 168 h × 100 jobs × 5 classes a start close to the
    optimum cuts HiGHS from ~10 s to ~2 s (``gridflex bench mpc-scale --warm``)."""
    import pyomo.environ as pyo
    from pyomo.contrib.appsi.base import TerminationCondition as TC

    opt = opt or ModelOptions()
    t0 = time.perf_counter()
    m = build_model(inst, opt)
    build_s = time.perf_counter() - t0
    size = model_size(m) if count_size else (0, 0, 0)
    if m._impossible:
        msg = [
            f"{FAMILIES['assignment']} violated: job {j} has no start inside the horizon "
            f"(its latest start is before the first period)"
            for j in m._impossible
        ]
        return Result(
            method=method,
            status="infeasible",
            termination_condition="not_solved",
            objective=float("nan"),
            bound=float("nan"),
            gap=float("nan"),
            build_s=build_s,
            diagnosis=msg,
            message=f"{method}: infeasible: " + "; ".join(msg),
        )
    solver = _highs(time_limit, mip_gap)
    if warm_starts is not None:
        for key in m.y:
            m.y[key].value = 1.0 if warm_starts.get(key[0]) == (key[1], key[2]) else 0.0
        solver.config.warmstart = True
    t1 = time.perf_counter()
    solver.set_instance(m)
    translate_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    res = solver.solve(m)
    total_solve = time.perf_counter() - t2
    try:
        solve_s = float(solver._solver_model.getRunTime())  # HiGHS's own clock
        translate_s += max(0.0, total_solve - solve_s)
    except Exception:  # noqa: BLE001
        solve_s = total_solve
    tc, incumbent, bound = (
        res.termination_condition,
        res.best_feasible_objective,
        res.best_objective_bound,
    )
    has_incumbent = incumbent is not None and math.isfinite(incumbent)
    meta = dict(
        build_s=build_s,
        translate_s=translate_s,
        solve_s=solve_s,
        n_variables=size[0],
        n_binaries=size[1],
        n_constraints=size[2],
        termination_condition=str(tc.name),
    )
    bound = float(bound) if bound is not None and math.isfinite(bound) else float("nan")
    if has_incumbent and tc in (
        TC.optimal,
        TC.maxTimeLimit,
        TC.maxIterations,
        TC.interrupted,
        TC.objectiveLimit,
    ):
        res.solution_loader.load_vars()
        d = extract(m, inst)
        status = "optimal" if tc == TC.optimal else "feasible"
        # the gap of the problem actually solved: the solver's own incumbent and bound (penalties
        # and the terminal reservation included), not (1) recomputed against that bound
        gap = (bound - incumbent) / max(1.0, abs(incumbent)) if math.isfinite(bound) else None
        r = evaluate(
            inst,
            d,
            method,
            status=status,
            bound=bound,
            gap=None if gap is None else max(0.0, gap),
            **meta,
        )
        r.totals["solver_objective"] = float(incumbent)
        for v in m.slack.component_objects(pyo.Var):  # slack used by each elastic family
            r.totals[f"slack_{v.local_name}"] = float(sum(x.value or 0.0 for x in v.values()))
        r.message = f"{method}: {status} ({tc.name}), objective {r.objective:,.1f}, gap {r.gap:.2%}"
        return r
    status = "infeasible" if tc in (TC.infeasible, TC.infeasibleOrUnbounded) else "no_solution"
    r = Result(
        method=method, status=status, objective=float("nan"), bound=bound, gap=float("nan"), **meta
    )
    if diagnose_infeasible and not opt.phase1:
        r.diagnosis = diagnose(inst, opt, time_limit=max(time_limit, 30.0))
    r.message = f"{method}: {status} ({tc.name})" + (
        ": " + "; ".join(r.diagnosis) if r.diagnosis else ""
    )
    return r


def diagnose(
    inst: Instance, opt: ModelOptions | None = None, *, time_limit: float = 60.0, tol: float = 1e-6
) -> list[str]:
    """Which constraint families are violated: solve the elastic copy (slack on every family of
    :data:`mpc.model.FAMILIES`) minimising Σ slack, and list each family with positive slack, its
    total and the worst entries. An empty list means the elastic copy found no violation (the
    original failure was a time limit, not infeasibility)."""
    import dataclasses

    import pyomo.environ as pyo

    opt = dataclasses.replace(
        opt or ModelOptions(), phase1=True, elastic=dict.fromkeys(FAMILIES, 1.0)
    )
    m = build_model(inst, opt)
    solver = _highs(time_limit, 0.0)
    res = solver.solve(m)
    if res.best_feasible_objective is None or not math.isfinite(res.best_feasible_objective):
        return [f"diagnosis run found no solution ({res.termination_condition.name})"]
    res.solution_loader.load_vars()
    from pyomo.contrib.appsi.base import TerminationCondition as TC

    proven = res.termination_condition == TC.optimal
    out = []
    for var in m.slack.component_objects(pyo.Var):
        vals = {i: var[i].value or 0.0 for i in var}
        pos = {i: v for i, v in vals.items() if v > tol}
        if not pos:
            continue
        worst = sorted(pos.items(), key=lambda kv: -kv[1])[:3]
        where = ", ".join(f"{_fmt_index(var.local_name, i, inst)}: {v:.3g}" for i, v in worst)
        out.append(
            f"{FAMILIES[var.local_name]} violated (total slack {sum(pos.values()):.3g}; {where})"
        )
    if not out and proven:
        return ["no constraint family needs slack: the model is feasible (the failure was a limit)"]
    if out and not proven:
        out.insert(
            0,
            f"inconclusive: the diagnosis run stopped at "
            f"{res.termination_condition.name}, the listed slack may not be needed",
        )
    return out


def _fmt_index(family: str, i, inst: Instance) -> str:
    if isinstance(i, tuple) and len(i) == 2 and isinstance(i[1], int):
        return f"{i[0]} @ {inst.index[i[1]]:%Y-%m-%d %H:%M}"
    if family == "assignment":
        return f"job {i}"
    if family == "carbon":
        return "budget"
    return str(i)
