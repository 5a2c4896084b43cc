"""Invariants of every solution on seeded random instances, and the paper table's shape."""

from __future__ import annotations

import numpy as np
import pytest

from mpc import solve
from mpc.generator import random_instance

TOL = 1e-5


def check_invariants(inst, r):
    sh = r.site_hours
    # (4) power balance each hour and site
    lhs = sh["facility_mw"] + sh["charge_mw"] + sh["export_mw"]
    rhs = sh["gen_used_mw"] + sh["discharge_mw"] + sh["import_mw"] + sh["shed_mw"]
    assert np.allclose(lhs, rhs, atol=1e-4)
    assert (sh["gen_used_mw"] <= sh["gen_available_mw"] + TOL).all()
    # (2) capacity
    caps = {s.name: s.it_capacity_mw for s in inst.sites}
    assert (sh["it_mw"] <= sh["site"].map(caps) + 1e-4).all()
    # (13), (15) SoC dynamics and bounds
    for s in inst.sites:
        b = s.battery
        x = sh[sh["site"] == s.name]
        soc = x["soc_mwh"].to_numpy()
        assert (soc >= b.soc_min * b.energy_mwh - TOL).all()
        assert (soc <= b.soc_max * b.energy_mwh + TOL).all()
        prev = np.r_[inst.soc_init(s), soc[:-1]]
        if b.energy_mwh > 0:
            ch, dis = x["charge_mw"].to_numpy(), x["discharge_mw"].to_numpy()
            expect = prev + b.eta_c * ch - dis / b.eta_d
            assert np.allclose(soc, expect, atol=1e-4)
            assert soc[-1] >= inst.soc_target(s) - 1e-4
    # no simultaneous import/export, charge/discharge
    assert (np.minimum(sh["import_mw"], sh["export_mw"]) <= TOL).all()
    assert (np.minimum(sh["charge_mw"], sh["discharge_mw"]) <= TOL).all()
    # (8)–(10): a started job runs exactly D_j contiguous periods at one eligible site
    jobs = {j.job_id: j for j in inst.jobs}
    for jid, g in r.runs.groupby("job"):
        j = jobs[jid]
        assert g["site"].nunique() == 1 and g["site"].iloc[0] in j.eligible_sites
        hours = sorted(inst.period(t) for t in g["time"])
        assert hours == list(range(hours[0], hours[0] + j.duration_h))
        assert hours[0] >= inst.period(j.release) and hours[-1] <= inst.period(j.deadline)
    for j in inst.jobs:
        if j.mandatory:
            assert j.job_id in set(r.runs["job"])
    # (11) inference fully served
    served = r.routing.groupby(["time", "cls"])["units"].sum().unstack()
    served = served.reindex(inst.index).fillna(0)
    assert np.allclose(
        served[inst.class_names].to_numpy(),
        inst.signals.demand[inst.class_names].to_numpy(),
        rtol=1e-6,
        atol=1e-3,
    )
    # (16) emissions within budget
    if inst.carbon_budget_t is not None and r.method == "joint":
        assert sh["emissions_t"].sum() <= inst.carbon_budget_t + 1e-4


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_invariants_on_random_instances(seed):
    inst = random_instance(3, 12, 8, 2, seed=seed)
    r = solve(inst)
    assert r.status in ("optimal", "feasible"), r.message
    assert r.gap <= 0.0101
    check_invariants(inst, r)


def test_invariants_with_mode_binaries():
    from mpc import ModelOptions

    inst = random_instance(2, 12, 5, 2, seed=7)
    r = solve(inst, options=ModelOptions(relax_modes=False))
    check_invariants(inst, r)


def test_tight_budget_binds_on_random_instance():
    inst = random_instance(3, 12, 6, 2, seed=4)
    free = solve(inst, method="no_carbon", mip_gap=1e-6)
    tight = inst.replace(carbon_budget_t=0.97 * free.emissions_t)
    r = solve(tight, mip_gap=1e-6)
    if r.ok:
        assert r.emissions_t <= tight.carbon_budget_t + 1e-4
        check_invariants(tight, r)
    else:
        assert r.diagnosis


def test_paper_table_shape():
    from mpc.baselines import solve_all
    from mpc.paper import default_instance

    res = solve_all(default_instance())
    obj = {m: r.objective for m, r in res.items()}
    em = {m: r.emissions_t for m, r in res.items()}
    joint = obj["joint"]
    assert all(r.ok for r in res.values())
    # joint best (up to the 1 % gap of the variants), lowest emissions (up to the gap)
    for m in obj:
        assert obj[m] <= joint * 1.0101 + 1e-6, m
    assert abs(obj["no_carbon"] - joint) <= 0.0101 * abs(joint)
    assert obj["no_battery"] < joint
    for m in ("compute_only", "energy_only", "no_routing", "carbon_agnostic"):
        assert obj[m] < joint and em[m] > em["joint"], m
    check_invariants(default_instance(), res["joint"])


def test_time_limit_returns_incumbent_with_gap_or_explains():
    inst = random_instance(6, 24, 25, 3, seed=1)
    r = solve(inst, time_limit=0.5, mip_gap=0.0)
    assert r.termination_condition in ("maxTimeLimit", "optimal")
    if r.status == "feasible":
        assert np.isfinite(r.gap) and r.gap >= 0 and np.isfinite(r.bound)
        check_invariants(inst, r)
    elif r.status == "no_solution":
        assert r.diagnosis and "limit" in r.diagnosis[0]
    else:
        assert r.status == "optimal"
