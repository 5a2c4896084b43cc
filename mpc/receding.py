"""The receding-horizon step and the closed-loop simulator (milp.md, "Receding horizon").

Every hour ``t0``: take the forecasts issued at ``t0`` for ``[t0, t0+H)``, the current
:class:`State`, solve the window, **commit only the first period**, then advance the state with what
was *realised* in that hour (realised carbon intensity, generation, prices, inference demand).

* Running jobs are a fixed load at their site until they end (they cannot move or pause).
* A job whose deadline lies beyond the window may wait (it is optional in the window).
* The carbon budget spans windows by one policy (:class:`mpc.budget.BudgetPolicy`): a per-day (or
  per-period) budget, each window getting today's remainder pro rata plus the pro-rata share of the
  next day's budget for the hours it plans tomorrow; what the realised hour emitted is subtracted.
* The terminal state of charge of every window is bounded below by the configured ``soc0``.
* Windows are solved in elastic mode so that a bad forecast never makes a step fail: a mandatory
  job that cannot fit, demand above capacity or an over-spent budget become penalised slack and are
  reported (``missed``, ``unserved``, budget overrun) instead of an infeasible status.
* The committed hour is re-balanced against the realised signals by a one-period LP (jobs fixed,
  routing and energy free, battery steered to the planned state of charge; demand that cannot be
  served is counted as unserved).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mpc.budget import PENALTY_OVER, BudgetPolicy, BudgetUse
from mpc.instance import Instance, Job, RunningJob, Signals, Site
from mpc.options import ModelOptions
from mpc.results import Result

log = logging.getLogger(__name__)

HOUR = pd.Timedelta(hours=1)

#: Penalties of the elastic window model ($ per unit of slack).
PENALTY_MISSED_JOB = 1e6  # $ per mandatory job not started inside its window
PENALTY_SHED = 1e4  # $/MWh of facility load not supplied
PENALTY_OVERLOAD = 1e7  # $/MW above IT capacity (only to keep a step from failing; never expected)
PENALTY_CARBON_OVER = PENALTY_OVER  # $/t over the window's carbon allocation (mpc.budget)
PENALTY_SOC_TERMINAL = 1e3  # $/MWh below the terminal state of charge (realised hour only)


@dataclass(frozen=True)
class State:
    """What the receding horizon carries from one hour to the next.

    time: the hour about to be decided (UTC hour start); soc_mwh: battery state of charge per site;
    running: job_id -> (site, periods_left); finished / missed: job ids; budget_left_t: carbon
    budget left (t, None = no budget) and budget_end: the hour the budget runs to (exclusive;
    None = spend it over the current window).
    """

    time: pd.Timestamp
    soc_mwh: dict[str, float]
    running: dict[str, tuple[str, int]] = field(default_factory=dict)
    finished: frozenset[str] = frozenset()
    missed: frozenset[str] = frozenset()
    budget_left_t: float | None = None
    budget_end: pd.Timestamp | None = None
    #: checkpointable jobs paused: job_id -> (site, hours of work left, not counting the redo)
    suspended: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: how many times each checkpointable job has been resumed from a checkpoint
    suspensions: dict[str, int] = field(default_factory=dict)

    @classmethod
    def initial(
        cls,
        sites: tuple[Site, ...],
        time: pd.Timestamp,
        *,
        budget_t: float | None = None,
        budget_end: pd.Timestamp | None = None,
    ) -> State:
        """Batteries at their configured ``soc0``, nothing running, the whole budget left."""
        return cls(
            time=pd.Timestamp(time),
            soc_mwh={s.name: s.battery.soc0_mwh for s in sites},
            budget_left_t=budget_t,
            budget_end=budget_end,
        )

    def to_dict(self) -> dict:
        """Plain JSON-able form (what ``plans.state`` stores); :meth:`from_dict` reads it back."""
        return {
            "time": self.time.isoformat(),
            "soc_mwh": {k: float(v) for k, v in self.soc_mwh.items()},
            "running": {k: [s, int(n)] for k, (s, n) in self.running.items()},
            "finished": sorted(self.finished),
            "missed": sorted(self.missed),
            "budget_left_t": self.budget_left_t,
            "budget_end": self.budget_end.isoformat() if self.budget_end is not None else None,
            **(
                {"suspended": {k: [s, int(n)] for k, (s, n) in self.suspended.items()}}
                if self.suspended
                else {}
            ),
            **(
                {"suspensions": {k: int(n) for k, n in self.suspensions.items()}}
                if self.suspensions
                else {}
            ),
        }

    @classmethod
    def from_dict(cls, d: dict) -> State:
        return cls(
            time=pd.Timestamp(d["time"]),
            soc_mwh={k: float(v) for k, v in d["soc_mwh"].items()},
            running={k: (s, int(n)) for k, (s, n) in d["running"].items()},
            finished=frozenset(d["finished"]),
            missed=frozenset(d["missed"]),
            budget_left_t=d["budget_left_t"],
            budget_end=pd.Timestamp(d["budget_end"]) if d["budget_end"] else None,
            suspended={k: (s, int(n)) for k, (s, n) in d.get("suspended", {}).items()},
            suspensions={k: int(n) for k, n in d.get("suspensions", {}).items()},
        )


@dataclass
class StepResult:
    """plan: the window's :class:`Result` (all H hours); committed: the realised first hour
    (a :class:`Result` over one period whose frames are the committed decisions); next_state;
    started: jobs started in the committed hour; missed: jobs that can no longer meet their
    deadline."""

    plan: Result
    committed: Result
    next_state: State
    started: dict[str, str]
    missed: list[str]
    budget: BudgetUse | None = None
    #: what the planner could not do in this window, in words (empty: nothing): a fallback plan
    #: and why, a carbon budget exceeded (t over), mandatory jobs missed (ids), inference unserved,
    #: a grid operator's limit not met
    problems: list[str] = field(default_factory=list)
    #: checkpointable jobs suspended in the committed hour / resumed from a checkpoint in it
    paused: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)


def state_policy(state: State) -> BudgetPolicy:
    """The budget policy a state carries when none is given: its remainder spread over the hours to
    ``budget_end`` (one period, no refill), or no budget."""
    if state.budget_left_t is None:
        return BudgetPolicy(None)
    if state.budget_end is None:  # spend it over the current window
        return BudgetPolicy(
            state.budget_left_t, period=pd.Timedelta(days=36500), anchor=state.time, renews=False
        )
    return BudgetPolicy(
        state.budget_left_t, period=state.budget_end - state.time, anchor=state.time, renews=False
    )


def window_budget(state: State, hours: int, policy: BudgetPolicy | None = None) -> float | None:
    """Carbon allocation ``B_w`` of a window of ``hours`` periods starting at ``state.time``
    (:meth:`mpc.budget.BudgetPolicy.allocation`; the state's own remainder when no policy)."""
    policy = policy or state_policy(state)
    index = pd.date_range(state.time, periods=hours, freq="h", tz="UTC")
    if state.budget_left_t is not None and state.budget_end is None:
        return max(0.0, state.budget_left_t)
    return policy.allocation(state, index)


def window_instance(
    state: State, inst: Instance, budget: BudgetPolicy | None = None
) -> tuple[Instance, list[str]]:
    """Apply the state to a window instance: drop finished/missed jobs, turn running ones into fixed
    loads, set the initial battery state and the window's carbon allocation (``budget``'s
    :meth:`~mpc.budget.BudgetPolicy.allocation`). Returns the instance and the jobs found missed
    (latest start already past)."""
    t0 = inst.index[0]
    jobs, missed, running = [], [], []
    by_id = {j.job_id: j for j in inst.jobs}
    busy = set(state.running) | set(state.suspended)
    for j in inst.jobs:
        if j.job_id in state.finished or j.job_id in state.missed or j.job_id in busy:
            continue
        if j.latest_start < t0:
            missed.append(j.job_id)
            continue
        if j.release < t0:
            j = dataclasses.replace(j, release=t0)
        jobs.append(j)
    for jid, (site, left) in state.running.items():
        j = by_id.get(jid)
        resume = _resumable(j, site, int(left), t0, state, continuing=True)
        if resume is not None:  # it may continue, or be paused and resumed later
            jobs.append(resume)
            continue
        running.append(RunningJob(jid, site, int(left), j.power_mw if j else 0.0))
    for jid, (site, left) in state.suspended.items():
        j = by_id.get(jid)
        resume = _resumable(j, site, int(left), t0, state, continuing=False) if j else None
        if resume is None:
            missed.append(jid)  # it can no longer finish by its deadline
            continue
        jobs.append(resume)
    w = inst.replace(
        jobs=tuple(jobs),
        running=tuple(running),
        soc_init_mwh=dict(state.soc_mwh),
        carbon_budget_t=window_budget(state, len(inst.index), budget),
    )
    return w, missed


def _resumable(
    j: Job | None, site: str, left: int, t0: pd.Timestamp, state: State, *, continuing: bool
) -> Job | None:
    """A running (``continuing``) or suspended checkpointable job as a job of the window: work
    ``left`` hours plus the redo after a resume; a start at ``site`` in the first period continues
    a running one. None when it may not be paused any more (no suspension left, or no room before
    its deadline for a redo) — a running one then stays a fixed load — or, for a suspended one,
    when even the redo cannot finish by its deadline."""
    if j is None or not j.checkpointable:
        return None
    used = state.suspensions.get(j.job_id, 0)
    room = int((j.deadline - t0) / HOUR) + 1  # hours from t0 to the end of the deadline hour
    # paused now, it resumes at t0 + 1 h at the earliest and redoes lost_h: it needs that much room
    may_pause = used < j.max_suspensions and left + j.lost_h <= room - 1
    if continuing and not may_pause:
        return None
    if not continuing and (left + j.lost_h > room or used >= j.max_suspensions):
        return None
    return dataclasses.replace(
        j,
        duration_h=left + j.lost_h,
        release=t0,
        eligible_sites=(site,),
        home_site=site,
        value=0.0,  # earned when it first started
        mandatory=True,
        resume_site=site if continuing else None,
        resumed=True,
    )


#: $ per unit of inference not served, as multiples: flexible classes may be reduced at twice their
#: revenue plus this much per MWh they would have used, batch classes at their revenue plus this
#: (critical classes: the elastic "inference" penalty, far above any energy price)
PENALTY_FLEXIBLE_MWH = 1e3
PENALTY_BATCH_MWH = 1e2
#: $/MWh imported above a grid operator's limit: above flexible and batch work, below critical
#: inference not served and facility load not supplied (so an infeasible cap is exceeded, said,
#: and the critical load kept)
PENALTY_IMPORT_CAP = 5e3


def _elastic(inst: Instance, realised: bool = False) -> dict[str, float]:
    e = [k.energy_mwh for k in inst.classes] or [0.0]
    rho = [k.revenue for k in inst.classes] or [0.0]
    unit = 10 * max(rho) + PENALTY_SHED * max(e)  # a unit unserved costs more than serving it
    el = {"inference": unit, "balance": PENALTY_SHED, "it_capacity": PENALTY_OVERLOAD}
    el["import_cap"] = PENALTY_IMPORT_CAP
    for k in inst.classes:  # per class below (the model reads inference_<priority>)
        if k.priority == "flexible":
            el["inference_flexible"] = 2 * max(rho) + PENALTY_FLEXIBLE_MWH * max(e)
        if k.priority == "batch":
            el["inference_batch"] = max(rho) + PENALTY_BATCH_MWH * max(e)
    if realised:
        el["terminal_soc"] = PENALTY_SOC_TERMINAL
    else:
        el["assignment"] = PENALTY_MISSED_JOB
        el["carbon"] = PENALTY_CARBON_OVER + inst.carbon_price
    return el


#: how the committed hour is re-balanced in a closed loop: "controller" decides on what a controller
#: knows during the hour (measured demand and on-site generation, the day-ahead prices, carbon as the
#: estimate it had — the plan's own first hour) and is then accounted on what happened; "hindsight"
#: re-optimises on the fully realised signals, carbon included (optimistic)
REALISE_MODES = ("controller", "hindsight")


def realise_hour(
    one: Instance, time_limit: float = 30.0, *, believed_carbon: pd.DataFrame | None = None
) -> Result:
    """The committed hour as it happens: ``one`` is a one-period instance whose jobs are fixed
    (``running``, started ones included), with the realised signals, the battery's state of charge
    at the start and the plan's state of charge at the end as the terminal target. Inference routing
    and the energy balance are re-optimised on what was realised (elastic: unserved demand and a
    missed SoC target are penalised, never infeasible). ``believed_carbon``: decide on this
    intensity instead (what the controller knew during the hour), then account the decisions on the
    realised one. Used by :func:`step` and to restate a committed hour once its actuals are known."""
    from mpc.results import evaluate
    from mpc.solve import solve_model

    decide = one
    if believed_carbon is not None:
        decide = one.replace(
            signals=dataclasses.replace(
                one.signals, carbon=believed_carbon.reindex(one.index)[one.site_names]
            )
        )
    r = solve_model(
        decide,
        ModelOptions(elastic=_elastic(one, realised=True)),
        method="committed",
        time_limit=time_limit,
        mip_gap=0.0,
        count_size=False,
    )
    if not r.ok:  # should not happen in elastic mode
        raise RuntimeError(f"realised hour {one.index[0]}: {r.message}")
    if believed_carbon is not None:  # the same decisions, accounted on what happened
        r = evaluate(
            one,
            r.decisions,
            "committed",
            status=r.status,
            termination_condition=r.termination_condition,
            bound=r.bound,
            gap=r.gap,
            solve_s=r.solve_s,
            build_s=r.build_s,
            translate_s=r.translate_s,
        )
    return r


def _realise(
    state: State,
    w: Instance,
    plan: Result,
    realised: Signals | None,
    time_limit: float,
    mode: str = "controller",
) -> Result:
    """The committed first hour, re-balanced against the realised signals (``mode``: see
    :data:`REALISE_MODES`)."""
    from mpc.results import Decisions, evaluate

    t0 = w.index[0]
    d = plan.decisions
    jobs = {j.job_id: j for j in w.jobs}
    started = {jid: s for jid, (s, t) in d.starts.items() if t == 0}
    running = [RunningJob(r.job_id, r.site, 1, r.power_mw) for r in w.running]
    running += [  # a resume from a checkpoint also draws its restart energy in its first hour
        RunningJob(jid, s, 1, jobs[jid].power_mw + jobs[jid].restart_energy(s, 0) / w.dt_h)
        for jid, s in started.items()
    ]
    sig = realised.window(t0, 1) if realised is not None else w.signals.window(t0, 1)
    target = {s: float(d.soc[i, 0]) for i, s in enumerate(w.site_names)}
    one = w.replace(
        jobs=(),
        running=tuple(running),
        signals=sig,
        carbon_budget_t=None,
        soc_target_mwh=target,
        budget_carbon=None,
        grid=None if w.grid is None else w.grid.window(t0, 1),
    )
    if realised is None:  # the forecast came true: the plan's first hour is what happened
        first = Decisions(
            starts={},
            q=d.q[:, :, :1].copy(),
            unserved=None if d.unserved is None else d.unserved[:, :1].copy(),
            shed=None if d.shed is None else d.shed[:, :1].copy(),
            **{n: getattr(d, n)[:, :1].copy() for n in ("g", "imp", "exp", "ch", "dis", "soc")},
        )
        r = evaluate(
            one, first, "committed", status="evaluated", termination_condition="plan's first hour"
        )
    else:
        believed = w.signals.carbon.iloc[:1] if mode == "controller" else None
        r = realise_hour(one, time_limit, believed_carbon=believed)
    if not r.ok:  # should not happen in elastic mode
        raise RuntimeError(f"realised hour {t0}: {r.message}")
    # The jobs that start now were started by the plan: record them and their value.
    r.totals["job_value"] = float(sum(jobs[j].value for j in started))
    r.totals["revenue"] = r.totals["job_value"] + r.totals["inference_revenue"]
    r.totals["objective"] = r.totals["revenue"] - r.totals["energy_cost"] - r.totals["carbon_cost"]
    r.objective = r.totals["objective"]
    r.totals["jobs_started"] = float(len(started))
    r.runs = r.runs.assign(started=r.runs["job"].isin(list(started)))
    return r


def step(
    state: State,
    instance: Instance,
    *,
    realised: Signals | None = None,
    time_limit: float = 30.0,
    mip_gap: float = 0.01,
    options: ModelOptions | None = None,
    budget: BudgetPolicy | None = None,
    realise: str = "controller",
    warm_starts: dict | None = None,
) -> StepResult:
    """One receding-horizon step.

    ``instance``: the window ``[t0, t0+H)`` with the *forecast* signals issued at ``t0 =
    state.time`` and the full job list (finished / running / missed ones are handled from the
    state).
    ``realised``: signals that cover ``t0`` as it actually happened (default: the forecast).
    ``budget``: the carbon-budget policy (:class:`mpc.budget.BudgetPolicy`; default: the state's
    own remainder until its ``budget_end``). The state is refilled at a new period first.
    ``realise``: how the committed hour is re-balanced on ``realised`` (:data:`REALISE_MODES`).
    ``warm_starts``: a MIP start for the job starts (:func:`shifted_starts` of the previous plan).
    Returns the plan, the committed (realised) first hour, the next state and what the plan did
    with its budget allocation (:class:`mpc.budget.BudgetUse`).
    """
    from mpc.solve import solve_model

    if instance.index[0] != state.time:
        raise ValueError(f"window starts at {instance.index[0]}, state is at {state.time}")
    if budget is not None:
        state = budget.refill(state)
    w, missed = window_instance(state, instance, budget)
    opts = dataclasses.replace(options or ModelOptions(), elastic=_elastic(w))
    plan = solve_model(
        w,
        opts,
        method="plan",
        time_limit=time_limit,
        mip_gap=mip_gap,
        count_size=False,
        warm_starts=warm_starts,
    )
    if not plan.ok:  # no incumbent within the time limit: fall back to the carbon-agnostic plan
        from mpc.baselines import carbon_agnostic

        log.warning(
            "window at %s: %s; falling back to the carbon-agnostic plan", state.time, plan.message
        )
        failed = plan
        plan = carbon_agnostic(w)
        plan.method, plan.status = "plan", "fallback"
        plan.termination_condition = failed.termination_condition
        plan.message = f"fallback to carbon-agnostic: {failed.message}"
    if plan.status != "optimal":
        log.warning("window at %s: %s", state.time, plan.message)
    d = plan.decisions
    started = {jid: s for jid, (s, t) in d.starts.items() if t == 0}
    same = realised is None or _same_hour(w.signals, realised, state.time)
    if realise not in REALISE_MODES:
        raise ValueError(f"realise must be one of {REALISE_MODES}, got {realise!r}")
    committed = _realise(state, w, plan, None if same else realised, time_limit, realise)
    # ---- next state from what was realised
    wjobs = {j.job_id: j for j in w.jobs}
    fixed = {r.job_id for r in w.running}
    running, finished = {}, set(state.finished)
    suspended = dict(state.suspended)
    suspensions = dict(state.suspensions)
    paused, resumed = [], []
    for jid, (s, left) in state.running.items():
        if jid not in fixed and jid not in started:  # a checkpointable run the plan paused
            suspended[jid] = (s, int(left))
            paused.append(jid)
    for jid, s in started.items():
        wj = wjobs[jid]
        suspended.pop(jid, None)
        if wj.resumed and not wj.continues(s, 0):
            suspensions[jid] = suspensions.get(jid, 0) + 1
            resumed.append(jid)
    for jid, (s, left) in [
        *((j, v) for j, v in state.running.items() if j in fixed),
        *((j, (s, wjobs[j].hours_from(s, 0))) for j, s in started.items()),
    ]:
        if left > 1:
            running[jid] = (s, left - 1)
        else:
            finished.add(jid)
    first_starts = {j: s for j, s in started.items() if not wjobs[j].resumed}
    nxt = state.time + HOUR
    # A job not started now whose latest start is now is missed from the next hour on.
    missed_now = set(missed) | {
        j.job_id for j in w.jobs if j.mandatory and j.job_id not in started and j.latest_start < nxt
    }
    soc = committed.site_hours.set_index("site")["soc_mwh"].to_dict()
    soc = {
        s.name: (soc[s.name] if s.battery.energy_mwh > 0 else state.soc_mwh.get(s.name, 0.0))
        for s in instance.sites
    }
    left = (
        None
        if state.budget_left_t is None
        else state.budget_left_t - committed.totals["emissions_t"]
    )
    for jid in missed_now:
        suspended.pop(jid, None)
    next_state = State(
        time=nxt,
        soc_mwh=soc,
        running=running,
        finished=frozenset(finished),
        missed=frozenset(state.missed | missed_now),
        budget_left_t=left,
        budget_end=state.budget_end,
        suspended=suspended,
        suspensions=suspensions,
    )
    use = None
    if w.carbon_budget_t is not None:
        use = BudgetUse(
            allocated_t=w.carbon_budget_t,
            planned_t=plan.totals["emissions_t"],
            over_t=plan.totals.get(
                "slack_carbon", max(0.0, plan.totals["emissions_t"] - w.carbon_budget_t)
            ),
            period_left_t=state.budget_left_t,
        )
    new_missed = sorted(missed_now - set(state.missed))
    return StepResult(
        plan=plan,
        committed=committed,
        next_state=next_state,
        started=first_starts,
        missed=new_missed,
        budget=use,
        problems=problems(plan, use, new_missed, instance, state.time, w),
        paused=sorted(paused),
        resumed=sorted(resumed),
    )


def problems(
    plan: Result,
    budget: BudgetUse | None,
    missed: list[str],
    instance: Instance,
    t0: pd.Timestamp,
    window: Instance | None = None,
) -> list[str]:
    """What a window's plan could not do, in words. Jobs whose last chance to start had passed
    before ``t0`` (submitted before the plan chain began) are in ``missed`` but not blamed here."""
    out = []
    if plan.status == "fallback":
        out.append(f"no solver incumbent, planned by the carbon-agnostic rule: {plan.message}")
    if budget is not None and budget.exceeded:
        out.append(
            f"carbon budget exceeded: the window was allocated {budget.allocated_t:.1f} t "
            f"and plans {budget.planned_t:.1f} t ({budget.over_t:.1f} t over: no feasible "
            "plan stays within it)"
        )
    latest = {j.job_id: j.latest_start for j in instance.jobs}
    here = [j for j in missed if latest.get(j, t0) >= t0]
    if here:
        out.append(f"jobs missed (cannot meet their deadline): {', '.join(here)}")
    unserved = float(plan.totals.get("unserved_units", 0.0))
    if unserved > 1e-6:
        prio = {k.name: k.priority for k in instance.classes}
        by = (
            plan.unserved.assign(p=plan.unserved["cls"].map(prio)).groupby("p")["units"].sum()
            if len(plan.unserved)
            else pd.Series(dtype=float)
        )
        crit = float(by.get("critical", 0.0))  # flexible / batch ones deferred is a decision
        if crit > 1e-6:
            out.append(f"{crit:,.0f} critical inference request(s) in the window cannot be served")
    over = float(plan.totals.get("import_over_cap_mwh", 0.0))
    if over > 1e-6 and window is not None and window.grid is not None:
        sh = plan.site_hours
        bad = sh[(sh.import_mw - sh.import_cap_mw) > 1e-6]
        where = ", ".join(
            f"{r.site} {pd.Timestamp(r.time):%m-%d %H:%M} ({r.import_mw:.1f} > {r.import_cap_mw:.1f} MW)"
            for r in bad.head(4).itertuples()
        )
        out.append(
            f"grid import limit not met by {over:.1f} MWh in the window: {where}"
            f"{' …' if len(bad) > 4 else ''} (the load that may not be shed exceeds the limit)"
        )
    return out


def shifted_starts(previous: Result | None, t0: pd.Timestamp) -> dict[str, tuple[str, int]]:
    """The previous window's job starts seen from the window starting at ``t0``: a start at
    period ``p`` of the window that began one hour earlier is period ``p − 1`` now (starts at period
    0 have become running jobs). A MIP start for the next hour's solve."""
    if previous is None or previous.decisions is None or previous.site_hours.empty:
        return {}
    first = pd.Timestamp(previous.site_hours["time"].min())
    shift = int((t0 - first) / HOUR)
    return {j: (s, p - shift) for j, (s, p) in previous.decisions.starts.items() if p >= shift}


def _same_hour(forecast: Signals, realised: Signals, t0: pd.Timestamp) -> bool:
    if t0 not in realised.index:
        raise ValueError(f"realised signals do not cover {t0}")
    f, r = forecast.window(t0, 1), realised.window(t0, 1)
    return all(
        np.allclose(a.to_numpy(float), r.frames()[n][a.columns].to_numpy(float))
        for n, a in f.frames().items()
    )


# =============================================================================== forecasts
ForecastFn = Callable[[pd.Timestamp, pd.DatetimeIndex], Signals]


def perfect_forecast(realised: Signals) -> ForecastFn:
    """The oracle: the forecast is what will be realised."""
    return lambda issued_at, index: realised.reindex(index)


def persistence_forecast(realised: Signals) -> ForecastFn:
    """Same hour yesterday: target τ takes the realised value at τ − 24·n h with the smallest n that
    is before the issue time (all signals, incl. generation and κ). Before the data start (first
    day) it falls back to the first available day's same hour."""
    first = realised.index[0]

    def forecast(issued_at: pd.Timestamp, index: pd.DatetimeIndex) -> Signals:
        lead = ((index - issued_at) / HOUR).astype(int)
        src = index - pd.to_timedelta(24 * (lead // 24 + 1), unit="h")
        while (src < first).any():
            src = src.where(src >= first, src + pd.Timedelta(hours=24))
        out = {}
        for n, f in realised.frames().items():
            vals = f.reindex(src).to_numpy()
            out[n] = pd.DataFrame(vals, index=index, columns=f.columns)
        return Signals(**out)

    return forecast


# =============================================================================== closed loop
@dataclass
class SimReport:
    """Closed-loop outcome. Frames are the committed (realised) decisions, hour by hour, in the same
    tidy layout as :class:`Result` (plus ``steps``: time, status, objective, gap, solve_s per
    window). totals: emissions_t, energy_cost, revenue, job_value, inference_revenue, carbon_cost,
    objective, missed_deadlines, unserved_units, shed_mwh, unfinished (mandatory jobs whose deadline
    lies beyond the simulated period and that had not finished)."""

    policy: str
    site_hours: pd.DataFrame
    routing: pd.DataFrame
    unserved: pd.DataFrame
    runs: pd.DataFrame
    schedule: pd.DataFrame
    steps: pd.DataFrame
    totals: dict[str, float]
    missed: list[str]
    plans: list[Result] = field(default_factory=list)
    final_state: State | None = None


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def simulate(
    realised: Signals,
    sites: tuple[Site, ...],
    classes,
    jobs: tuple[Job, ...],
    *,
    horizon: int = 24,
    forecast: str | ForecastFn = "perfect",
    carbon_budget_t: float | None = None,
    carbon_price: float = 0.0,
    start: pd.Timestamp | None = None,
    hours: int | None = None,
    time_limit: float = 30.0,
    mip_gap: float = 0.01,
    keep_plans: bool = False,
    options: ModelOptions | None = None,
    budget: BudgetPolicy | None = None,
    realise: str = "controller",
    site_score=None,
    budget_forecast: Callable | None = None,
    warm: bool = True,
) -> SimReport:
    """Run the receding horizon hour by hour over ``realised`` (or the carbon-agnostic policy).

    forecast: ``"perfect"`` (oracle), ``"persistence"`` (same hour yesterday), a callable
    ``forecast(issued_at, index) -> Signals`` (e.g. the TFT's), or ``"carbon_agnostic"`` (no
    optimisation: jobs ASAP at home, inference at home, passive energy), or ``"static"`` (no
    forecast either: each class at its best ``site_score`` feasible site — e.g. the historically
    cleanest — jobs as soon as possible at their best eligible site, passive energy).
    Windows shrink at the end of the data. ``budget``: the carbon-budget policy (e.g. the fleet's
    daily budget, :meth:`mpc.budget.BudgetPolicy.daily`), the same the hourly pipeline uses;
    ``carbon_budget_t``: one budget for the whole simulated period (``BudgetPolicy.whole``).
    ``realise``: the committed hour is re-balanced on what a controller knows during it
    (``"controller"``, the default: measured demand and generation, carbon as the plan estimated it,
    accounted on the actual intensity) or fully in hindsight (``"hindsight"``).
    ``budget_forecast(issued_at, index) -> DataFrame``: the intensity each window's budget is
    planned against (risk-aware planning, e.g. the forecast's p90; ``Instance.budget_carbon``).
    ``warm``: start each window's solve from the previous window's job starts (:func:`shifted_starts`).
    """
    idx = realised.index
    start = idx[0] if start is None else pd.Timestamp(start)
    i0 = idx.get_loc(start)
    n = len(idx) - i0 if hours is None else hours
    end = start + n * HOUR
    if forecast == "carbon_agnostic":
        return _simulate_agnostic(
            realised.window(start, n), sites, classes, jobs, carbon_price, carbon_budget_t
        )
    if forecast == "static":
        if site_score is None:
            raise ValueError("forecast='static' needs site_score (e.g. historical mean intensity)")
        rep = _simulate_agnostic(
            realised.window(start, n),
            sites,
            classes,
            jobs,
            carbon_price,
            carbon_budget_t,
            site_score,
        )
        rep.policy = "static"
        return rep
    fc = {"perfect": perfect_forecast, "persistence": persistence_forecast}
    fn = fc[forecast](realised) if isinstance(forecast, str) else forecast
    name = forecast if isinstance(forecast, str) else getattr(forecast, "__name__", "custom")
    if budget is None:
        budget = BudgetPolicy.whole(carbon_budget_t, start, end)
    state = budget.refill(State.initial(sites, start))
    acc: dict[str, list] = {k: [] for k in ("site_hours", "routing", "unserved", "runs")}
    steps, plans, totals = (
        [],
        [],
        dict.fromkeys(
            (
                "emissions_t",
                "energy_cost",
                "job_value",
                "inference_revenue",
                "carbon_cost",
                "unserved_units",
                "shed_mwh",
                "import_cost",
                "export_revenue",
                "battery_cost",
            ),
            0.0,
        ),
    )
    starts = {}
    previous = None
    for h in range(n):
        t0 = start + h * HOUR
        H = min(horizon, int((end - t0) / HOUR))
        index = pd.date_range(t0, periods=H, freq="h", tz="UTC")
        sig = fn(t0, index)
        high = budget_forecast(t0, index) if budget_forecast is not None else None
        win = Instance(
            sites=sites,
            classes=tuple(classes),
            jobs=tuple(jobs),
            signals=sig,
            carbon_budget_t=None,
            carbon_price=carbon_price,
            name=f"window-{t0}",
            budget_carbon=high,
        )
        if h % 24 == 0:
            log.info("window %d/%d at %s", h + 1, n, t0)
        sr = step(
            state,
            win,
            realised=realised,
            time_limit=time_limit,
            mip_gap=mip_gap,
            options=options,
            budget=budget,
            realise=realise,
            warm_starts=shifted_starts(previous, t0) if warm else None,
        )
        previous = sr.plan
        c = sr.committed
        for k in acc:
            acc[k].append(getattr(c, k))
        for k in totals:
            totals[k] += c.totals.get(k, 0.0)
        for jid, s in sr.started.items():
            starts[jid] = (s, t0)
        steps.append(
            {
                "time": t0,
                "status": sr.plan.status,
                "objective": sr.plan.objective,
                "gap": sr.plan.gap,
                "build_s": sr.plan.build_s,
                "translate_s": sr.plan.translate_s,
                "solve_s": sr.plan.solve_s,
                "emissions_t": c.totals["emissions_t"],
                "budget_left_t": sr.next_state.budget_left_t,
                "budget_allocated_t": sr.budget.allocated_t if sr.budget else None,
                "budget_over_t": sr.budget.over_t if sr.budget else 0.0,
            }
        )
        if keep_plans:
            plans.append(sr.plan)
        state = sr.next_state
    by_id = {j.job_id: j for j in jobs}
    sched = [
        (jid, s, t, t + (by_id[jid].duration_h - 1) * HOUR, by_id[jid].power_mw)
        for jid, (s, t) in starts.items()
    ]
    schedule = pd.DataFrame(sched, columns=["job", "site", "start", "end", "power_mw"])
    missed = sorted(
        j.job_id for j in jobs if j.mandatory and j.job_id not in starts and j.deadline < end
    )
    unfinished = [
        j.job_id
        for j in jobs
        if j.mandatory and j.job_id not in starts and j.deadline >= end and j.release < end
    ]
    totals["revenue"] = totals["job_value"] + totals["inference_revenue"]
    totals["objective"] = totals["revenue"] - totals["energy_cost"] - totals["carbon_cost"]
    totals["missed_deadlines"] = float(len(missed))
    totals["unfinished"] = float(len(unfinished))
    st = pd.DataFrame(steps)
    totals["budget_over_t"] = float(st["budget_over_t"].sum()) if len(st) else 0.0
    totals["budget_exceeded_hours"] = float((st["budget_over_t"] > 1e-6).sum()) if len(st) else 0.0
    return SimReport(
        policy=f"mpc-{name}",
        steps=st,
        totals=totals,
        missed=missed,
        plans=plans,
        final_state=state,
        schedule=schedule,
        **{k: _concat(v) for k, v in acc.items()},
    )


def _simulate_agnostic(
    realised: Signals, sites, classes, jobs, carbon_price, budget, site_score=None
) -> SimReport:
    """The carbon-agnostic counterfactual over the realised period: the same one-hour steps the
    pipeline advances tick by tick (:func:`mpc.baselines.agnostic_hour`), in a row."""
    from mpc.baselines import AgnosticState, agnostic_hour

    idx = realised.index
    end = idx[-1] + HOUR
    state = AgnosticState(time=idx[0])
    acc: dict[str, list] = {k: [] for k in ("site_hours", "routing", "unserved", "runs")}
    totals: dict[str, float] = {}
    starts = {}
    for t in idx:
        r, state = agnostic_hour(
            state, sites, classes, jobs, realised.window(t, 1), carbon_price, site_score
        )
        for k in acc:
            acc[k].append(getattr(r, k))
        for k, v in r.totals.items():
            totals[k] = totals.get(k, 0.0) + v
        for jid, (s, _) in r.decisions.starts.items():
            starts[jid] = (s, t)
    by_id = {j.job_id: j for j in jobs}
    sched = pd.DataFrame(
        [
            (jid, s, t, t + (by_id[jid].duration_h - 1) * HOUR, by_id[jid].power_mw)
            for jid, (s, t) in starts.items()
        ],
        columns=["job", "site", "start", "end", "power_mw"],
    )
    late = {r.job for r in sched.itertuples() if r.end > by_id[r.job].deadline}
    missed = sorted(
        j.job_id
        for j in jobs
        if j.mandatory and j.deadline < end and (j.job_id not in starts or j.job_id in late)
    )
    totals["missed_deadlines"] = float(len(missed))
    totals["unfinished"] = float(
        sum(
            1
            for j in jobs
            if j.mandatory and j.job_id not in starts and j.deadline >= end and j.release < end
        )
    )
    totals["jobs_started"] = float(len(starts))
    totals["mandatory_missed"] = totals["missed_deadlines"]
    return SimReport(
        policy="carbon_agnostic",
        steps=pd.DataFrame(),
        totals=totals,
        missed=missed,
        schedule=sched,
        final_state=None,
        **{k: _concat(v) for k, v in acc.items()},
    )


def work_done(report: SimReport) -> dict[str, float]:
    """The useful compute a closed loop delivered: training energy (MWh), inference served (units
    and MWh of IT energy), jobs completed inside the period, and the emissions intensity of that
    useful energy (gCO2 per kWh of training + inference IT load; the always-on base load and
    cooling are overheads, not work)."""
    sh = report.site_hours
    training = float(sh["training_mw"].sum()) if len(sh) else 0.0
    inference = float(sh["inference_mw"].sum()) if len(sh) else 0.0
    served = float(report.routing["units"].sum()) if len(report.routing) else 0.0
    end = sh["time"].max() + HOUR if len(sh) else None
    sched = report.schedule
    completed = 0.0
    if len(sched) and end is not None:
        completed = float((pd.to_datetime(sched["end"], utc=True) < end).sum())
    useful = training + inference
    return {
        "training_mwh": training,
        "inference_mwh": inference,
        "inference_served_units": served,
        "jobs_completed": completed,
        "g_per_useful_kwh": 1e3 * report.totals["emissions_t"] / useful if useful else float("nan"),
    }


def savings(report: SimReport, reference: SimReport, oracle: SimReport | None = None) -> dict:
    """Savings of ``report`` vs ``reference`` (carbon-agnostic) and, with ``oracle``, the share of
    the oracle's savings achieved (emissions and objective). ``like_for_like_pct``: the saving in
    emissions per unit of useful compute (:func:`work_done`), so a policy that does less work
    cannot look better for it."""
    out = {
        "emissions_saved_t": reference.totals["emissions_t"] - report.totals["emissions_t"],
        "objective_gain": report.totals["objective"] - reference.totals["objective"],
        "cost_saved": reference.totals["energy_cost"] - report.totals["energy_cost"],
    }
    mine, ref = work_done(report), work_done(reference)
    if ref["g_per_useful_kwh"] and np.isfinite(ref["g_per_useful_kwh"]):
        out["like_for_like_pct"] = 100 * (1 - mine["g_per_useful_kwh"] / ref["g_per_useful_kwh"])
    if oracle is not None:
        o_em = reference.totals["emissions_t"] - oracle.totals["emissions_t"]
        o_obj = oracle.totals["objective"] - reference.totals["objective"]
        out["share_of_oracle_emissions"] = out["emissions_saved_t"] / o_em if o_em else float("nan")
        out["share_of_oracle_objective"] = out["objective_gain"] / o_obj if o_obj else float("nan")
    return out
