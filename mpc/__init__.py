"""mpc: the joint compute–power MILP (milp.md (1)–(16)), its baselines, the receding-horizon step
and the closed-loop simulator. A plain library: no Dagster, no DuckDB, no files. Pyomo is imported
lazily (attributes below resolve on first use), so ``import mpc`` is cheap.

Time
    Periods are hour-start UTC timestamps. An :class:`Instance` carries ``instance.index``
    (``pd.DatetimeIndex``, tz UTC, hourly). Jobs carry ``release`` / ``deadline`` as UTC hour starts
    (deadline = the last hour in which the job may still run).

Inputs (``mpc.instance``; validated at construction, :class:`InstanceError` names the field)
    ``Site(name, it_capacity_mw, base_load_mw=0, import_limit_mw=1e3, export_limit_mw=0,
    battery=Battery(...), inference_cap_mw=None)``
    ``Battery(energy_mwh, charge_mw, discharge_mw, eta_c, eta_d, soc0, soc_min, soc_max,
    throughput_cost)`` — soc0/soc_min/soc_max are fractions of ``energy_mwh``.
    ``InferenceClass(name, home_site, energy_mwh, revenue, latency_ms: {site: ms},
    latency_limit_ms)`` ``Job(job_id, power_mw, duration_h, release, deadline, value,
    eligible_sites, home_site=None,
    mandatory=True)``; ``jobs_from_frame(df)`` reads a ``sources.frames.JOB_COLUMNS`` frame.
    ``Signals(carbon, price_import, price_export, generation, kappa, demand)``: DataFrames on one
    index; one column per site (carbon g/kWh — converted to t/MWh inside —, $/MWh, available local
    generation MW, cooling coefficient κ) and, for ``demand``, one column per class (units/h).
    ``Instance(sites, classes, jobs, signals, carbon_budget_t=None, carbon_price=0.0, running=(),
    soc_init_mwh=None, soc_target_mwh=None)``.

Solving (``mpc.baselines``, ``mpc.solve``)
    ``solve(instance, *, method="joint", time_limit=60.0, mip_gap=0.01, options=None) -> Result``
    with ``method`` in ``METHODS = ("joint", "compute_only", "energy_only", "no_battery",
    "no_routing", "no_carbon", "carbon_agnostic")``; ``solve_all(instance)`` runs them all.
    ``Result``: ``method, status ("optimal" | "feasible" | "infeasible" | "no_solution" |
    "evaluated" | "fallback"), termination_condition, objective, bound, gap, build_s, translate_s,
    solve_s, n_variables, n_binaries, n_constraints``; tidy frames ``site_hours`` (time, site,
    IT/facility/training/inference MW, generation used, import, export, charge, discharge, soc,
    emissions, ...),
    ``routing`` (time, cls, site, units), ``unserved``, ``runs`` (time, job, site, power_mw),
    ``schedule`` (job, site, start, end, ...); ``totals`` (emissions_t, energy_cost, revenue,
    objective, ...) also as ``result.emissions_t``, ``.energy_cost``, ``.revenue``; ``diagnosis``
    (violated constraint families when infeasible / no incumbent).
    ``ModelOptions`` (``mpc.options``) switches the model's variants (``relax_modes``, ``elastic``,
    ...). ``mpc.model.build_model(instance, options)`` gives the Pyomo model itself.
    Infeasible inputs that validation cannot see (e.g. a mandatory job that does not fit next to
    the base load) come back as ``status="infeasible"`` with ``diagnosis`` naming the constraint
    family, e.g. ``"(8) mandatory job started exactly once inside its window violated (...)"``.

Receding horizon (``mpc.receding``)
    ``State(time, soc_mwh, running={job: (site, periods_left)}, finished, missed, budget_left_t,
    budget_end)``; ``State.initial(sites, time, budget_t=..., budget_end=...)``.
    ``step(state, instance_for_window, *, realised=None, time_limit=30, mip_gap=0.01)
    -> StepResult(plan: Result, committed: Result (the realised first hour), next_state, started,
    missed)``. The window is solved in elastic mode (penalised slack for a job that cannot fit,
    unserved demand, a budget overrun), so a step never fails on a bad forecast; a window with no
    incumbent in the time limit falls back to the carbon-agnostic plan (``plan.status ==
    "fallback"``). ``window_budget(state, H)``: the window's share of the budget left.
    ``simulate(realised: Signals, sites, classes, jobs, *, horizon=24, forecast="perfect" |
    "persistence" | "carbon_agnostic" | callable(issued_at, index) -> Signals, carbon_budget_t=None,
    carbon_price=0.0, start=None, hours=None) -> SimReport`` (per-hour committed frames; totals:
    emissions_t, energy_cost, revenue, objective, missed_deadlines, unserved_units, ...).
    ``savings(report, carbon_agnostic_report, oracle_report)``: savings and share of the oracle's.

Instances
    ``mpc.paper.default_instance()``: the paper's default instance (sites ``sanjose``,
    ``frankfurt``, ``london``; classes ``chat``, ``vision``, ``code``); static parameters in
    ``PAPER_SITES``,
    ``PAPER_CLASSES``, ``PAPER_JOBS``. ``mpc.generator.random_instance(n_sites, hours, n_jobs,
    n_classes, seed=0)``: seeded random instances of the same family.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Battery": "mpc.instance",
    "Site": "mpc.instance",
    "InferenceClass": "mpc.instance",
    "Job": "mpc.instance",
    "RunningJob": "mpc.instance",
    "Signals": "mpc.instance",
    "Instance": "mpc.instance",
    "InstanceError": "mpc.instance",
    "jobs_from_frame": "mpc.instance",
    "Result": "mpc.results",
    "Decisions": "mpc.results",
    "ModelOptions": "mpc.options",
    "build_model": "mpc.model",
    "solve": "mpc.baselines",
    "solve_all": "mpc.baselines",
    "METHODS": "mpc.baselines",
    "State": "mpc.receding",
    "StepResult": "mpc.receding",
    "step": "mpc.receding",
    "simulate": "mpc.receding",
    "SimReport": "mpc.receding",
    "savings": "mpc.receding",
    "perfect_forecast": "mpc.receding",
    "persistence_forecast": "mpc.receding",
    "window_budget": "mpc.receding",
    "default_instance": "mpc.paper",
    "random_instance": "mpc.generator",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mpc' has no attribute {name!r}")
