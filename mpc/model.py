"""The joint compute–power MILP (milp.md, equations (1)–(16)) built in Pyomo.

Reading order follows the paper: :func:`define_sets`, :func:`define_parameters`,
:func:`define_variables`, one small function per constraint family (``define_c02_it_load`` ...
``define_c16_carbon``; each docstring carries its equation and a legend), :func:`define_objective`.
:func:`build_model` calls them in that order. The builder reads only an
:class:`~mpc.instance.Instance` and :class:`ModelOptions`; it never touches files or solvers.

Departures from the paper, same meaning:

* ``x_jst`` is a Pyomo *Expression* ``Σ_{τ=t−D_j+1}^{t} y_jsτ`` (the aggregated non-preemption form
  (9)–(10)) instead of a variable tied by an equality: identical feasible set and LP relaxation,
  fewer rows and columns for the solver.
* Sparse index sets: ``y_jst`` exists only for eligible sites ``s ∈ S_j`` and start periods
  ``r_j ≤ t ≤ d_j − D_j + 1`` (clipped to the horizon); ``q_kst`` only for latency-feasible sites
  ``s ∈ A_k``. "y = 0 elsewhere" (8) and "q = 0 for s ∉ A_k" (11) hold by construction.
* Mode binaries ``u_st`` (import/export) and ``w_st`` (charge/discharge) are relaxed to [0, 1] when
  that is safe (``relax_modes="auto"``): import prices ≥ 0 and export price ≤ import price make
  simultaneous import and export never profitable (and emissions only fall when both shrink), and a
  positive throughput cost ψ makes simultaneous charge/discharge strictly worse than curtailing
  local generation. Any tie or sub-optimal incumbent left with both non-zero is netted out
  afterwards (:func:`mpc.results.net_simultaneous`), which never raises cost or emissions.
  Measured effect: on the paper instance the binaries drop from 363 to 219 and HiGHS takes
  ~0.05 s instead of ~0.6 s; ``relax_modes=False`` keeps the exact binary form.
* A receding-horizon window: a job whose latest start lies beyond the horizon is optional in the window
  (it may wait); jobs already running add a fixed load ``F_st``; the terminal state of charge is
  bounded below by ``soc_T_s`` (the configured ``soc0``, not the current state, so windows do not
  ratchet the battery).
* Jobs longer than what is left of the window may still start in it (a 36 h training job in a 24 h
  window): their in-window periods are modelled, the periods after ``H − 1`` are carried by the
  receding-horizon state as a running job (it cannot move or pause, (9)–(10)), and the energy they will
  still need is charged by a terminal reservation (:func:`define_terminal_reservation`) so that
  starting late in the window is not free.
* Elastic mode (``ModelOptions.elastic``): the named constraint families get non-negative slack
  variables penalised in the objective (used to serve what is feasible in a realised hour, and by
  the infeasibility diagnosis, which minimises total slack alone).
"""

from __future__ import annotations

from collections import defaultdict

import pyomo.environ as pyo

from mpc.instance import Instance
from mpc.options import FAMILIES, ModelOptions

__all__ = ["FAMILIES", "ModelOptions", "build_model", "objective_expression"]


def _safe_to_relax(inst: Instance) -> tuple[bool, bool]:
    """(relax u, relax w) per the conditions in the module docstring."""
    sig = inst.signals
    sites = inst.site_names
    pi, pix = sig.price_import[sites].to_numpy(), sig.price_export[sites].to_numpy()
    relax_u = bool((pi >= 0).all() and (pix <= pi).all())
    relax_w = relax_u and all(s.battery.throughput_cost > 0 for s in inst.sites)
    return relax_u, relax_w


# =============================================================================== sets
def define_sets(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """Sets.

    S  sites;  T = {0..H-1} periods;  J training jobs (not yet started);
    K inference classes;  A = {(k, s) : s ∈ A_k} latency-feasible (class, site) pairs
    (home site only without routing);  Y = {(j, s, t) : s ∈ S_j, r_j <= t <= d_j - D_j + 1}
    the sparse start options;  X = {(j, s, t) : job j may be running at s in t}.
    """
    H = len(inst.index)
    m.S = pyo.Set(initialize=inst.site_names, ordered=True)
    m.T = pyo.RangeSet(0, H - 1)
    m.K = pyo.Set(initialize=inst.class_names, ordered=True)
    pairs = []
    for k in inst.classes:
        feas = k.feasible_sites(inst.site_names) if opt.routing else [k.home_site]
        pairs += [(k.name, s) for s in feas]
    m.A = pyo.Set(dimen=2, initialize=pairs, ordered=True)

    starts, mandatory, runs_at, tail = [], {}, defaultdict(list), {}
    dur, restart = {}, {}
    for j in inst.jobs:
        first = max(0, inst.period(j.release))
        end = inst.period(j.deadline)  # the last period it may run in
        last_by_deadline = inst.period(j.latest_start)
        # Latest start inside the horizon -> (8) with equality for a mandatory job (this window is
        # its last chance to start); beyond -> it may wait.
        mandatory[j.job_id] = j.mandatory and last_by_deadline <= H - 1
        for s in j.eligible_sites:
            # a start near the end runs on past the window; a start continuing a checkpointable
            # run in progress is shorter (Job.hours_from)
            for t in range(first, min(end, H - 1) + 1):
                D = j.hours_from(s, t)
                if t + D - 1 > end:
                    continue
                starts.append((j.job_id, s, t))
                dur[j.job_id, s, t] = D
                if j.restart_energy(s, t) > 0:
                    restart[j.job_id, s, t] = j.restart_energy(s, t)
                for tau in range(t, min(t + D, H)):
                    runs_at[j.job_id, s, tau].append(t)
                if t + D > H:
                    tail[j.job_id, s, t] = t + D - H  # periods after the window
    m.J = pyo.Set(initialize=[j.job_id for j in inst.jobs], ordered=True)
    m.Y = pyo.Set(dimen=3, initialize=starts, ordered=True)
    m.X = pyo.Set(dimen=3, initialize=sorted(runs_at, key=lambda x: (x[0], x[1], x[2])))
    m._runs_at = runs_at  # (j, s, t) -> start periods τ with t - D_j + 1 <= τ <= t
    m._mandatory = mandatory
    m._tail = tail  # (j, s, t) -> periods a start at t runs after the window
    m._dur = dur  # (j, s, t) -> hours a start at t runs
    m._restart = restart  # (j, s, t) -> MWh of restart energy (a resume from a checkpoint)


# =============================================================================== parameters
def define_parameters(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """Parameters (exogenous).

    Cap_s, Base_s IT capacity / always-on load (MW); F_st load of jobs already running (MW);
    κ_st cooling overhead; G_st local generation available (MW); π_st, π^x_st import / export price
    ($/MWh); c_st grid carbon intensity (t/MWh = g/kWh / 1000); Imax_s, Xmax_s grid limits (MW);
    E_s, Pc_s, Pd_s, ηc_s, ηd_s, soc0_s, σmin_s·E_s, σmax_s·E_s, ψ_s battery; soc_T_s terminal
    bound; P_j, D_j, V_j job power (MW), duration (periods), value ($); e_k, ρ_k, λ_kt inference
    energy
    (MWh/unit), revenue ($/unit), demand (units/h); InfCap_s inference capacity (MW);
    B carbon budget (t); p_c carbon price ($/t); Δ period length (h).
    """
    sig, idx = inst.signals, inst.index
    S, T = inst.site_names, range(len(idx))

    def st(frame, scale=1.0):
        a = frame[S].to_numpy(dtype=float)
        return {(s, t): scale * float(a[t, i]) for i, s in enumerate(S) for t in T}

    batt = {
        s.name: (
            s.battery if opt.battery else s.battery.__class__(energy_mwh=0.0, soc0=0.0, soc_min=0.0)
        )
        for s in inst.sites
    }
    m.dt = pyo.Param(initialize=inst.dt_h)
    m.Cap = pyo.Param(m.S, initialize={s.name: s.it_capacity_mw for s in inst.sites})
    m.Base = pyo.Param(m.S, initialize={s.name: s.base_load_mw for s in inst.sites})
    fixed = defaultdict(float)
    for r in inst.running:
        for t in range(min(r.periods_left, len(idx))):
            fixed[r.site, t] += r.power_mw
    m.F = pyo.Param(m.S, m.T, initialize=lambda _m, s, t: fixed[s, t])
    m.kappa = pyo.Param(m.S, m.T, initialize=st(sig.kappa))
    gen = st(sig.generation) if opt.local_generation else {(s, t): 0.0 for s in S for t in T}
    m.G = pyo.Param(m.S, m.T, initialize=gen)
    m.pi = pyo.Param(m.S, m.T, initialize=st(sig.price_import))
    m.pix = pyo.Param(m.S, m.T, initialize=st(sig.price_export))
    m.c = pyo.Param(m.S, m.T, initialize=st(sig.carbon, 1e-3))
    m.Imax = pyo.Param(m.S, initialize={s.name: s.import_limit_mw for s in inst.sites})
    m.Xmax = pyo.Param(
        m.S, initialize={s.name: s.export_limit_mw if opt.export else 0.0 for s in inst.sites}
    )
    m.E = pyo.Param(m.S, initialize={s: b.energy_mwh for s, b in batt.items()})
    m.Pc = pyo.Param(
        m.S, initialize={s: b.charge_mw if b.energy_mwh > 0 else 0.0 for s, b in batt.items()}
    )
    m.Pd = pyo.Param(
        m.S, initialize={s: b.discharge_mw if b.energy_mwh > 0 else 0.0 for s, b in batt.items()}
    )
    m.eta_c = pyo.Param(m.S, initialize={s: b.eta_c for s, b in batt.items()})
    m.eta_d = pyo.Param(m.S, initialize={s: b.eta_d for s, b in batt.items()})
    m.psi = pyo.Param(m.S, initialize={s: b.throughput_cost for s, b in batt.items()})
    m.soc_lo = pyo.Param(m.S, initialize={s: b.soc_min * b.energy_mwh for s, b in batt.items()})
    m.soc_hi = pyo.Param(m.S, initialize={s: b.soc_max * b.energy_mwh for s, b in batt.items()})
    soc0, socT = {}, {}
    for site in inst.sites:
        b = batt[site.name]
        if b.energy_mwh <= 0:
            soc0[site.name] = socT[site.name] = 0.0
            continue
        lo, hi = b.soc_min * b.energy_mwh, b.soc_max * b.energy_mwh
        soc0[site.name] = min(max(inst.soc_init(site), lo), hi)
        # The target must be reachable from the initial state inside the horizon.
        reach = soc0[site.name] + b.eta_c * b.charge_mw * inst.dt_h * len(idx)
        socT[site.name] = min(max(inst.soc_target(site), lo), hi, reach)
    m.soc0 = pyo.Param(m.S, initialize=soc0)
    m.socT = pyo.Param(m.S, initialize=socT)
    m.P = pyo.Param(m.J, initialize={j.job_id: j.power_mw for j in inst.jobs})
    m.D = pyo.Param(m.J, initialize={j.job_id: j.duration_h for j in inst.jobs})
    m.V = pyo.Param(m.J, initialize={j.job_id: j.value for j in inst.jobs})
    m.e = pyo.Param(m.K, initialize={k.name: k.energy_mwh for k in inst.classes})
    m.rho = pyo.Param(m.K, initialize={k.name: k.revenue for k in inst.classes})
    dem = sig.demand[inst.class_names].to_numpy(dtype=float)
    m.lam = pyo.Param(
        m.K,
        m.T,
        initialize={(k, t): float(dem[t, i]) for i, k in enumerate(inst.class_names) for t in T},
    )
    m.InfCap = pyo.Param(
        m.S, initialize={s.name: s.inference_cap_mw for s in inst.sites}, within=pyo.Any
    )
    m.B = pyo.Param(initialize=inst.carbon_budget_t, within=pyo.Any)
    m.pc = pyo.Param(initialize=inst.carbon_price)


# =============================================================================== variables
def define_variables(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """Decision variables.

    y_jst ∈ {0,1} job j starts at s in t (only on Y); q_kst >= 0 inference served (only on A × T);
    it_st, fac_st >= 0 IT / facility power (MW); g_st ∈ [0, G_st] local generation used (7);
    imp_st, exp_st >= 0 grid import / export (MW); u_st import mode; ch_st, dis_st >= 0 battery
    power (MW); w_st charge mode; soc_st ∈ [σmin E_s, σmax E_s] state of charge (MWh) (15);
    em_st >= 0 emissions (t). Elastic families get slack_<family> >= 0.
    """
    relax_u, relax_w = _safe_to_relax(inst)
    if opt.relax_modes is True:
        relax_u = relax_w = True
    elif opt.relax_modes is False:
        relax_u = relax_w = False
    m._relaxed = {"u": relax_u, "w": relax_w}
    ST = m.S * m.T
    m.y = pyo.Var(m.Y, domain=pyo.Binary)
    m.q = pyo.Var(m.A * m.T, domain=pyo.NonNegativeReals)
    m.it = pyo.Var(ST, domain=pyo.NonNegativeReals)
    m.fac = pyo.Var(ST, domain=pyo.NonNegativeReals)
    m.g = pyo.Var(ST, domain=pyo.NonNegativeReals)
    m.imp = pyo.Var(ST, domain=pyo.NonNegativeReals)
    m.exp = pyo.Var(ST, domain=pyo.NonNegativeReals)
    m.u = pyo.Var(ST, domain=pyo.UnitInterval if relax_u else pyo.Binary)
    m.ch = pyo.Var(ST, domain=pyo.NonNegativeReals)
    m.dis = pyo.Var(ST, domain=pyo.NonNegativeReals)
    m.w = pyo.Var(ST, domain=pyo.UnitInterval if relax_w else pyo.Binary)
    m.soc = pyo.Var(ST, bounds=lambda _m, s, t: (m.soc_lo[s], m.soc_hi[s]))
    m.em = pyo.Var(ST, domain=pyo.NonNegativeReals)
    for s in m.S:  # batteries and mode binaries that cannot do anything are fixed, not created
        if m.E[s] <= 0:
            for t in m.T:
                m.ch[s, t].fix(0)
                m.dis[s, t].fix(0)
                m.w[s, t].fix(0)
        if m.Xmax[s] <= 0:
            for t in m.T:
                m.exp[s, t].fix(0)
                m.u[s, t].fix(1)
    m.slack = pyo.Block()
    if opt.fixed_starts is not None:
        fixed = {j: v for j, v in opt.fixed_starts.items() if v is not None}
        for j, s, t in m.Y:
            m.y[j, s, t].fix(1 if fixed.get(j) == (s, t) else 0)
    if opt.fixed_routing is not None:
        for k, s in m.A:
            for t in m.T:
                m.q[k, s, t].fix(opt.fixed_routing.get((k, s, t), 0.0))


def _slack(m: pyo.ConcreteModel, opt: ModelOptions, family: str, index) -> pyo.Var | None:
    """Create and return ``slack_<family>`` over ``index`` when the family is elastic."""
    if family not in opt.elastic and not opt.phase1:
        return None
    v = pyo.Var(index, domain=pyo.NonNegativeReals)
    m.slack.add_component(family, v)
    return v


# =============================================================================== constraints
def define_c09_c10_job_runs(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """(9)–(10) continuity, non-preemption, duration (aggregated form)::

        x_jst = Σ_{τ = t − D_j + 1}^{t} y_jsτ

    x_jst job j runs at s in t; y_jsτ job j starts at s in τ; D_j duration. With (8) a started job
    runs exactly D_j consecutive periods at one site. Kept as an Expression over the sparse set X.
    """
    m.x = pyo.Expression(
        m.X, rule=lambda _m, j, s, t: sum(m.y[j, s, tau] for tau in m._runs_at[j, s, t])
    )


def define_c02_it_load(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """(2) IT load and capacity::

        it_st = Base_s + F_st + Σ_j P_j x_jst + Σ_j R_j/Δ · y^r_jst + Σ_k e_k q_kst,
        it_st <= Cap_s (+ slack)

    Base_s always-on load, F_st jobs already running, P_j job power, x_jst running indicator,
    R_j restart energy (MWh) of a checkpointable job resumed at t (y^r: its resume starts only;
    0 for the paper's rigid jobs), e_k energy per inference unit, q_kst inference served, Cap_s IT
    capacity.
    """
    jobs_at = defaultdict(list)
    for j, s, t in m.X:
        jobs_at[s, t].append(j)
    classes_at = defaultdict(list)
    for k, s in m.A:
        classes_at[s].append(k)

    restarts_at = defaultdict(list)
    for (j, s, t), mwh in m._restart.items():
        restarts_at[s, t].append((j, mwh))

    def load(_m, s, t):
        return m.it[s, t] == (
            m.Base[s]
            + m.F[s, t]
            + sum(m.P[j] * m.x[j, s, t] for j in jobs_at[s, t])
            + sum(mwh / m.dt * m.y[j, s, t] for j, mwh in restarts_at[s, t])
            + sum(m.e[k] * m.q[k, s, t] for k in classes_at[s])
        )

    m.c02_it_load = pyo.Constraint(m.S, m.T, rule=load)
    sl = _slack(m, opt, "it_capacity", m.S * m.T)
    m.c02_it_cap = pyo.Constraint(
        m.S, m.T, rule=lambda _m, s, t: m.it[s, t] <= m.Cap[s] + (sl[s, t] if sl else 0)
    )


def define_c03_facility(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """(3) facility load ``fac_st = (1 + κ_st) · it_st`` (κ_st cooling overhead from weather)."""
    m.c03_facility = pyo.Constraint(
        m.S, m.T, rule=lambda _m, s, t: m.fac[s, t] == (1 + m.kappa[s, t]) * m.it[s, t]
    )


def define_c04_balance(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """(4) power balance ``fac_st + ch_st + exp_st = g_st + dis_st + imp_st (+ shed_st)``.

    Uses: facility load, battery charge, export. Sources: local generation, discharge, import.
    ``shed_st`` (elastic mode only) is demand that could not be supplied.
    """
    sl = _slack(m, opt, "balance", m.S * m.T)
    m.c04_balance = pyo.Constraint(
        m.S,
        m.T,
        rule=lambda _m, s, t: (
            m.fac[s, t] + m.ch[s, t] + m.exp[s, t]
            == m.g[s, t] + m.dis[s, t] + m.imp[s, t] + (sl[s, t] if sl else 0)
        ),
    )


def define_c05_c07_grid(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """(5)–(7) grid and local generation::

        imp_st <= Imax_s · u_st,   exp_st <= Xmax_s · (1 − u_st),   g_st <= G_st
        (5') imp_st <= Icap_st (+ slack),   exp_st <= Xcap_st

    u_st import mode (binary, or [0,1] when relaxed: then imp/Imax + exp/Xmax <= 1 still holds).
    (7) is a variable bound. Icap_st / Xcap_st: the grid operator's import / export capacity limits
    (demand-response events, :class:`mpc.instance.GridConditions`), only where one is in force;
    elastic in the receding horizon, so a limit that cannot be met (critical load above it) is
    exceeded as little as possible and reported instead of failing the hour.
    """
    m.c05_import = pyo.Constraint(
        m.S, m.T, rule=lambda _m, s, t: m.imp[s, t] <= m.Imax[s] * m.u[s, t]
    )
    m._icap = {}
    if inst.grid is not None:
        ic = inst.grid.import_cap[inst.site_names].to_numpy(float)
        xc = inst.grid.export_cap[inst.site_names].to_numpy(float)
        for i, s in enumerate(inst.site_names):
            for t in m.T:
                if ic[t, i] == ic[t, i] and ic[t, i] < m.Imax[s]:  # not NaN, tighter
                    m._icap[s, t] = float(ic[t, i])
                if xc[t, i] == xc[t, i] and not m.exp[s, t].fixed:
                    m.exp[s, t].setub(min(float(xc[t, i]), m.Xmax[s]))
    if m._icap:
        m.ICAP = pyo.Set(dimen=2, initialize=sorted(m._icap), ordered=True)
        sl = _slack(m, opt, "import_cap", m.ICAP)
        m.c05_import_cap = pyo.Constraint(
            m.ICAP,
            rule=lambda _m, s, t: (
                m.imp[s, t] <= m._icap[s, t] + (sl[s, t] if sl is not None else 0)
            ),
        )

    def export(_m, s, t):
        if m.Xmax[s] <= 0:
            return pyo.Constraint.Skip  # exp fixed to 0
        return m.exp[s, t] <= m.Xmax[s] * (1 - m.u[s, t])

    m.c06_export = pyo.Constraint(m.S, m.T, rule=export)
    for s in m.S:
        for t in m.T:
            m.g[s, t].setub(m.G[s, t])  # (7)


def define_c08_assignment(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """(8) assignment::

        Σ_{s,t} y_jst <= 1,   = 1 (+ miss_j) for a mandatory job whose deadline is in the horizon

    Starts outside S_j × [r_j, d_j − D_j + 1] do not exist (sparse Y). A mandatory job with no start
    option at all (its window ended before the horizon) makes the model infeasible; it is listed in
    ``m._impossible`` and reported without calling the solver (elastic mode: its miss slack is 1).
    """
    starts = defaultdict(list)
    for j, s, t in m.Y:
        starts[j].append((j, s, t))
    sl = _slack(m, opt, "assignment", m.J)

    m._impossible = []  # mandatory jobs without any start option (reported, not sent to HiGHS)

    def assign(_m, j):
        total = sum(m.y[i] for i in starts[j])
        if m._mandatory[j]:
            if not starts[j] and sl is None:
                m._impossible.append(j)
                return pyo.Constraint.Skip
            return total + (sl[j] if sl else 0) == 1
        if not starts[j]:
            return pyo.Constraint.Skip
        return total <= 1

    m.c08_assignment = pyo.Constraint(m.J, rule=assign)


def define_c11_inference(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """(11) inference served within latency ``Σ_{s ∈ A_k} q_kst (+ unserved_kt) = λ_kt``.

    q_kst units/h served at s; A_k latency-feasible sites; λ_kt demand (units/h).
    """
    sites_of = defaultdict(list)
    for k, s in m.A:
        sites_of[k].append(s)
    sl = _slack(m, opt, "inference", m.K * m.T)
    m.c11_inference = pyo.Constraint(
        m.K,
        m.T,
        rule=lambda _m, k, t: (
            sum(m.q[k, s, t] for s in sites_of[k]) + (sl[k, t] if sl else 0) == m.lam[k, t]
        ),
    )


def define_c12_inference_capacity(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """(12) per-site inference capacity ``Σ_k e_k q_kst <= InfCap_s`` (only where configured)."""
    classes_at = defaultdict(list)
    for k, s in m.A:
        classes_at[s].append(k)
    sl = _slack(m, opt, "inference_capacity", m.S * m.T)

    def cap(_m, s, t):
        if m.InfCap[s] is None or not classes_at[s]:
            return pyo.Constraint.Skip
        return sum(m.e[k] * m.q[k, s, t] for k in classes_at[s]) <= m.InfCap[s] + (
            sl[s, t] if sl else 0
        )

    m.c12_inference_capacity = pyo.Constraint(m.S, m.T, rule=cap)


def define_c13_storage(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """(13) storage dynamics::

    soc_st = soc_{s,t−1} + ηc_s · ch_st · Δ − dis_st · Δ / ηd_s,   soc_{s,−1} = soc0_s
    """

    def dyn(_m, s, t):
        prev = m.soc0[s] if t == 0 else m.soc[s, t - 1]
        return m.soc[s, t] == (
            prev + m.eta_c[s] * m.ch[s, t] * m.dt - m.dis[s, t] * m.dt / m.eta_d[s]
        )

    m.c13_storage = pyo.Constraint(m.S, m.T, rule=dyn)


def define_c14_battery_mode(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """(14) ``ch_st <= Pc_s · w_st``, ``dis_st <= Pd_s · (1 − w_st)`` (w_st charge mode; binary or
    relaxed, see the module docstring)."""

    def charge(_m, s, t):
        return pyo.Constraint.Skip if m.E[s] <= 0 else m.ch[s, t] <= m.Pc[s] * m.w[s, t]

    def discharge(_m, s, t):
        return pyo.Constraint.Skip if m.E[s] <= 0 else m.dis[s, t] <= m.Pd[s] * (1 - m.w[s, t])

    m.c14_charge = pyo.Constraint(m.S, m.T, rule=charge)
    m.c14_discharge = pyo.Constraint(m.S, m.T, rule=discharge)


def define_c15_soc_bounds(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """(15) ``σmin_s E_s <= soc_st <= σmax_s E_s`` (variable bounds) and the terminal bound
    ``soc_{s,H−1} (+ slack) >= soc_T_s`` so the battery is not drained at the horizon's end."""
    last = m.T.last()
    sl = _slack(m, opt, "terminal_soc", m.S)
    m.c15_terminal = pyo.Constraint(
        m.S,
        rule=lambda _m, s: (
            pyo.Constraint.Skip
            if m.E[s] <= 0
            else m.soc[s, last] + (sl[s] if sl else 0) >= m.socT[s]
        ),
    )


def define_c16_carbon(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """(16) carbon accounting and budget::

        em_st = c_st · imp_st · Δ,   Σ_{s,t} ĉ_st · imp_st · Δ <= B (+ slack)

    c_st grid intensity (t/MWh), B the window's budget (t; :class:`mpc.budget.BudgetPolicy` says how
    a daily budget is split over windows). ĉ_st = c_st, or — risk-aware planning — a high quantile of
    the intensity forecast (``Instance.budget_carbon``, e.g. its p90): the budget then holds unless
    the grid is dirtier than that quantile, while emissions and the objective stay on c_st. The
    budget is dropped when B is None or for no-carbon.
    """
    m.c16_emissions = pyo.Constraint(
        m.S, m.T, rule=lambda _m, s, t: m.em[s, t] == m.c[s, t] * m.imp[s, t] * m.dt
    )
    if opt.carbon_budget and m.B.value is not None:
        sl = _slack(m, opt, "carbon", [0])
        if inst.budget_carbon is None:
            planned = sum(m.em[s, t] for s in m.S for t in m.T)
        else:
            hi = inst.budget_carbon[inst.site_names].to_numpy(dtype=float) * 1e-3
            pos = {s: i for i, s in enumerate(inst.site_names)}
            planned = sum(float(hi[t, pos[s]]) * m.imp[s, t] * m.dt for s in m.S for t in m.T)
        m.c16_budget = pyo.Constraint(expr=planned <= m.B + (sl[0] if sl else 0))


# =============================================================================== objective
def objective_expression(m: pyo.ConcreteModel):
    """(1) net operational benefit::

    Σ_j V_j Σ_{s,t} y_jst + Σ_{k,s,t} ρ_k q_kst
    + Σ_{s,t} π^x_st exp_st Δ − Σ_{s,t} π_st imp_st Δ
    − p_c Σ_{s,t} em_st − ψ_s Σ_{s,t} (ch_st + dis_st) Δ
    """
    return (
        sum(m.V[j] * m.y[j, s, t] for (j, s, t) in m.Y)
        + sum(m.rho[k] * m.q[k, s, t] for (k, s) in m.A for t in m.T)
        + sum(
            m.pix[s, t] * m.exp[s, t] * m.dt
            - m.pi[s, t] * m.imp[s, t] * m.dt
            - m.pc * m.em[s, t]
            - m.psi[s] * (m.ch[s, t] + m.dis[s, t]) * m.dt
            for s in m.S
            for t in m.T
        )
    )


def define_terminal_reservation(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions):
    """The energy a job started in the window still needs after it, valued now::

        R = Σ_{(j,s,t) ∈ Y, t + D_j > H} y_jst · P_j · (t + D_j − H) · Δ · ĉ_s
        ĉ_s = (1/H) Σ_t (1 + κ_st) · (π_st + p_c · c_st)

    P_j job power (MW), t + D_j − H the periods it runs after the window's last period H − 1,
    ĉ_s the window's mean cost of one MWh of IT load at site s bought from the grid (cooling overhead
    κ, import price π, carbon price p_c times intensity c). Subtracted from (1): a job that starts
    in the window earns its value V_j once (when it starts) and pays for every hour it runs — those
    inside the window through (2)–(4), those after it through R — so a late start is not free. It is
    an estimate (the later windows re-plan those hours with their own forecasts); local generation
    and batteries are ignored in it. Returns the expression (0 when no start runs past the window).
    """
    if not m._tail:
        return 0.0
    H = len(inst.index)
    chat = {
        s: sum((1 + m.kappa[s, t]) * (m.pi[s, t] + m.pc * m.c[s, t]) for t in m.T) / H for s in m.S
    }
    return sum(
        m.y[j, s, t] * m.P[j] * n * m.dt * pyo.value(chat[s]) for (j, s, t), n in m._tail.items()
    )


def define_stability(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions):
    """Stability-first periods (a grid emergency or flex alert, ``GridConditions.stability``)::

        Z = Σ_{(s,t) ∈ E} W_I · imp_st · Δ  +  Σ_{(s,t) ∈ E⁺} W_R · r_st
        r_st >= imp_st − imp_{s,t−1},   r_st >= imp_{s,t−1} − imp_st

    E the stressed (site, period) pairs, E⁺ those with t >= 1 whose period or the one before is in
    E, W_I ($/MWh) and W_R ($/MW) :data:`mpc.options.STABILITY_IMPORT_USD_PER_MWH` /
    ``STABILITY_RAMP_USD_PER_MW`` (``ModelOptions.stability_weights``), r_st the import ramp. The
    objective becomes (1) − R − Z − penalties: a weighted form of the lexicographic order "grid
    first": W_I exceeds every energy price plus carbon cost, so in a stressed period the plan
    imports as little as it can — it discharges batteries, uses on-site generation, moves flexible
    jobs out, pauses checkpointable batch jobs and defers flexible and batch inference (whose
    penalties per MWh are below W_I) — and only then minimises cost and carbon; it stays below the
    penalties of an unmet operator limit and of critical inference not served, so those are kept
    first. Returns Z (0 when no period is stressed).
    """
    if inst.grid is None:
        return 0.0
    st = inst.grid.stability[inst.site_names].to_numpy(float)
    pos = {s: i for i, s in enumerate(inst.site_names)}
    E = [(s, t) for s in m.S for t in m.T if st[t, pos[s]] > 0.5]
    if not E:
        return 0.0
    Eset = set(E)
    ramp = sorted({(s, t) for s, t in E if t >= 1} | {(s, t + 1) for s, t in E if t + 1 in m.T})
    m.STAB = pyo.Set(dimen=2, initialize=E, ordered=True)
    m.RAMP = pyo.Set(dimen=2, initialize=ramp, ordered=True)
    m.ramp = pyo.Var(m.RAMP, domain=pyo.NonNegativeReals)
    m.c_ramp_up = pyo.Constraint(
        m.RAMP, rule=lambda _m, s, t: m.ramp[s, t] >= m.imp[s, t] - m.imp[s, t - 1]
    )
    m.c_ramp_down = pyo.Constraint(
        m.RAMP, rule=lambda _m, s, t: m.ramp[s, t] >= m.imp[s, t - 1] - m.imp[s, t]
    )
    w_imp, w_ramp = opt.stability_weights
    m._stressed = Eset
    return sum(w_imp * m.imp[s, t] * m.dt for s, t in E) + sum(
        w_ramp * m.ramp[s, t] for s, t in ramp
    )


def _penalty(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions, name: str, v) -> object:
    """Σ penalty · slack of one elastic family. Inference not served is priced by the class's
    priority: ``opt.elastic["inference"]`` for critical classes, ``inference_flexible`` /
    ``inference_batch`` (when given) for the others."""
    base = opt.elastic.get(name, 0.0)
    if name != "inference":
        return sum(base * v[i] for i in v)
    prio = {k.name: k.priority for k in inst.classes}
    return sum(opt.elastic.get(f"inference_{prio[k]}", base) * v[k, t] for (k, t) in v)


def define_objective(m: pyo.ConcreteModel, inst: Instance, opt: ModelOptions) -> None:
    """Maximise (1) minus the terminal reservation (:func:`define_terminal_reservation`) minus the
    stability-first term Z (:func:`define_stability`) minus Σ penalty · slack over elastic
    families; in phase 1 minimise Σ slack."""
    slacks = [
        (name, v) for name, v in ((c.local_name, c) for c in m.slack.component_objects(pyo.Var))
    ]
    if opt.phase1:
        m.obj = pyo.Objective(expr=sum(v[i] for _, v in slacks for i in v), sense=pyo.minimize)
        return
    penalty = sum(_penalty(m, inst, opt, name, v) for name, v in slacks)
    m.reservation = pyo.Expression(expr=define_terminal_reservation(m, inst, opt))
    m.stability = pyo.Expression(expr=define_stability(m, inst, opt))
    m.obj = pyo.Objective(
        expr=objective_expression(m) - m.reservation - m.stability - penalty, sense=pyo.maximize
    )


CONSTRAINT_FAMILIES = (
    define_c09_c10_job_runs,
    define_c02_it_load,
    define_c03_facility,
    define_c04_balance,
    define_c05_c07_grid,
    define_c08_assignment,
    define_c11_inference,
    define_c12_inference_capacity,
    define_c13_storage,
    define_c14_battery_mode,
    define_c15_soc_bounds,
    define_c16_carbon,
)


def build_model(inst: Instance, opt: ModelOptions | None = None) -> pyo.ConcreteModel:
    """Build (1)–(16) for ``inst``: sets, parameters, variables, constraints, objective."""
    opt = opt or ModelOptions()
    m = pyo.ConcreteModel(name=inst.name)
    define_sets(m, inst, opt)
    define_parameters(m, inst, opt)
    define_variables(m, inst, opt)
    for family in CONSTRAINT_FAMILIES:
        family(m, inst, opt)
    define_objective(m, inst, opt)
    return m
