"""Tiny instances whose optimum and schedule can be checked by hand."""

from __future__ import annotations

import pytest

from mpc import solve
from mpc.instance import Battery


def test_job_waits_for_the_cleaner_hour(tiny):
    # 1 site, 3 h, carbon 500/100/500 g/kWh, 50 $/MWh, 100 $/t. A 10 MW × 1 h job worth $1000.
    # Best: run in hour 1: 1000 − 10·50 − 10·0.1·100 = 400; emissions 1 t.
    sig = tiny.signals(3, ["A"], carbon={"A": [500, 100, 500]})
    inst = tiny.instance(
        [tiny.site("A")], sig, [tiny.job("j", 10, 1, 0, 2, 1000)], carbon_price=100.0
    )
    r = solve(inst)
    assert r.status == "optimal"
    assert r.objective == pytest.approx(400.0, abs=1e-6)
    assert r.emissions_t == pytest.approx(1.0, abs=1e-9)
    row = r.schedule.set_index("job").loc["j"]
    assert row["site"] == "A" and row["start"] == tiny.T0 + tiny.H1
    assert list(r.runs["time"]) == [tiny.T0 + tiny.H1]


def test_two_hour_job_takes_the_clean_pair_contiguously(tiny):
    # Carbon 100/500/100/100: the 2 h job must run hours 2–3 (contiguous), not 0 and 2.
    sig = tiny.signals(4, ["A"], carbon={"A": [100, 500, 100, 100]}, price=0.0)
    inst = tiny.instance(
        [tiny.site("A")], sig, [tiny.job("j", 10, 2, 0, 3, 1000)], carbon_price=100.0
    )
    r = solve(inst)
    assert r.objective == pytest.approx(1000 - 2 * 10 * 0.1 * 100)
    assert [t.hour for t in r.runs["time"]] == [2, 3]


def test_inference_moves_to_the_site_within_latency(tiny):
    # Class home A, but only B is within the 50 ms limit. A is cheaper; B must serve it all.
    # 1000 units/h × 0.001 MWh = 1 MW; revenue 0.2 $/unit → 200 $/h; B costs 100 $/MWh.
    sig = tiny.signals(
        2, ["A", "B"], ["chat"], price={"A": 10.0, "B": 100.0}, carbon=0.0, demand={"chat": 1000.0}
    )
    k = tiny.cls("chat", "A", 0.001, 0.2, {"A": 200.0, "B": 10.0}, 50.0)
    inst = tiny.instance([tiny.site("A"), tiny.site("B")], sig, classes=[k])
    r = solve(inst)
    assert r.objective == pytest.approx(2 * (200 - 100))
    assert set(r.routing["site"]) == {"B"}
    assert r.routing["units"].tolist() == pytest.approx([1000.0, 1000.0])


def test_battery_charges_cheap_clean_and_discharges_dirty(tiny):
    # 10 MW base load; prices 20/100 $/MWh, carbon 100/500 g/kWh; a 10 MWh lossless battery that
    # starts empty. Optimum: charge 10 MW in hour 0, discharge 10 MW in hour 1.
    # Cost 20·20 + 0 + throughput 1 $/MWh · 20 MWh = 420; emissions 20 MWh · 0.1 = 2 t.
    b = Battery(
        energy_mwh=10,
        charge_mw=10,
        discharge_mw=10,
        eta_c=1.0,
        eta_d=1.0,
        soc0=0.0,
        soc_min=0.0,
        soc_max=1.0,
        throughput_cost=1.0,
    )
    sig = tiny.signals(2, ["A"], price={"A": [20, 100]}, carbon={"A": [100, 500]})
    inst = tiny.instance([tiny.site("A", base=10.0, battery=b)], sig)
    for relax in (True, False):
        r = solve(inst, options=__import__("mpc").ModelOptions(relax_modes=relax))
        assert r.objective == pytest.approx(-420.0)
        assert r.emissions_t == pytest.approx(2.0)
        sh = r.site_hours
        assert sh["charge_mw"].tolist() == pytest.approx([10.0, 0.0])
        assert sh["discharge_mw"].tolist() == pytest.approx([0.0, 10.0])
        assert sh["import_mw"].tolist() == pytest.approx([20.0, 0.0])
        assert sh["soc_mwh"].tolist() == pytest.approx([10.0, 0.0])


def test_infeasible_deadline_is_reported_with_its_family(tiny):
    # An 8 MW mandatory job cannot fit next to a 5 MW base load under a 10 MW capacity.
    sig = tiny.signals(3, ["A"])
    inst = tiny.instance(
        [tiny.site("A", cap=10.0, base=5.0)], sig, [tiny.job("big", 8, 2, 0, 2, 1000)]
    )
    r = solve(inst)
    assert r.status == "infeasible"
    assert any("(8)" in d and "big" in d for d in r.diagnosis), r.diagnosis
    assert "(8)" in r.message


def test_carbon_budget_binds(tiny):
    # Same as the waiting job, but a 0.5 t budget: the job cannot run at all (optional job).
    sig = tiny.signals(3, ["A"], carbon={"A": [500, 100, 500]})
    j = tiny.job("j", 10, 1, 0, 2, 1000, mandatory=False)
    inst = tiny.instance([tiny.site("A")], sig, [j], carbon_price=100.0, carbon_budget_t=0.5)
    assert solve(inst).objective == pytest.approx(0.0)
    assert solve(inst, method="no_carbon").objective == pytest.approx(400.0)


def test_carbon_agnostic_runs_asap_at_home(tiny):
    sig = tiny.signals(3, ["A", "B"], carbon={"A": [500, 100, 500], "B": 50.0})
    j = tiny.job("j", 10, 1, 0, 2, 1000, sites=("A", "B"), home_site="A")
    inst = tiny.instance([tiny.site("A"), tiny.site("B")], sig, [j], carbon_price=100.0)
    r = solve(inst, method="carbon_agnostic")
    assert r.status == "evaluated"
    assert r.schedule.iloc[0]["site"] == "A" and r.schedule.iloc[0]["start"] == tiny.T0
    assert r.objective == pytest.approx(1000 - 500 - 500)
    best = solve(inst)
    assert best.schedule.iloc[0]["site"] == "B"
    assert best.objective == pytest.approx(1000 - 500 - 50)


def test_mandatory_job_whose_window_is_over_is_infeasible(tiny):
    sig = tiny.signals(4, ["A"])
    late = tiny.job("late", 1, 3, -5, 1, 10)  # latest start at hour -1, deadline inside the horizon
    r = solve(tiny.instance([tiny.site("A")], sig, [late]))
    assert r.status == "infeasible" and "late" in r.diagnosis[0] and "(8)" in r.diagnosis[0]
