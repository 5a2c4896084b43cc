"""The receding-horizon step, the forecasts and the closed-loop simulator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mpc import State, simulate, solve, step
from mpc.instance import Battery
from mpc.receding import persistence_forecast, savings, window_budget


def _two_sites(tiny, hours, **kw):
    sig = tiny.signals(hours, ["A", "B"], **kw)
    return [tiny.site("A"), tiny.site("B")], sig


def test_running_job_cannot_move(tiny):
    # Job r runs at dirty A with 2 h left; B is clean. It stays at A for exactly 2 more hours.
    sites, sig = _two_sites(tiny, 4, carbon={"A": 800.0, "B": 10.0})
    r = tiny.job("r", 10, 3, 0, 3, 500, sites=("A", "B"))
    inst = tiny.instance(sites, sig, [r], carbon_price=100.0)
    st = State.initial(inst.sites, tiny.T0)
    st = State(time=st.time, soc_mwh=st.soc_mwh, running={"r": ("A", 2)})
    out = step(st, inst)
    runs = out.plan.runs
    assert set(runs["site"]) == {"A"} and len(runs) == 2
    assert out.next_state.running == {"r": ("A", 1)}
    assert out.committed.totals["job_value"] == 0.0  # value was earned when it started
    out2 = step(
        out.next_state,
        tiny.instance(sites, sig.window(tiny.T0 + tiny.H1, 3), [r], carbon_price=100.0),
    )
    assert out2.next_state.running == {} and "r" in out2.next_state.finished


def test_job_with_deadline_beyond_horizon_may_wait(tiny):
    # Window of 2 h, dirty; the job's deadline is hour 5 (beyond the window): it waits.
    sig = tiny.signals(6, ["A"], carbon={"A": [900, 900, 900, 50, 50, 90]})
    j = tiny.job("j", 10, 2, 0, 5, 1000)
    st = State.initial((tiny.site("A"),), tiny.T0)
    inst = tiny.instance([tiny.site("A")], sig.window(tiny.T0, 2), [j], carbon_price=100.0)
    out = step(st, inst)
    assert out.started == {} and not out.next_state.missed
    # With the whole horizon visible it is scheduled in the clean hours.
    full = solve(tiny.instance([tiny.site("A")], sig, [j], carbon_price=100.0))
    assert [t.hour for t in full.runs["time"]] == [3, 4]


def test_budget_is_split_and_carried(tiny):
    st = State(
        time=tiny.T0, soc_mwh={"A": 0.0}, budget_left_t=10.0, budget_end=tiny.T0 + 4 * tiny.H1
    )
    assert window_budget(st, 2) == pytest.approx(5.0)
    assert window_budget(st, 8) == pytest.approx(10.0)
    sig = tiny.signals(2, ["A"], carbon=500.0)
    inst = tiny.instance([tiny.site("A", base=2.0)], sig)
    out = step(st, inst)
    assert out.next_state.budget_left_t == pytest.approx(10.0 - 1.0)  # 2 MWh × 0.5 t/MWh
    assert out.next_state.time == tiny.T0 + tiny.H1


def test_realised_demand_above_capacity_is_unserved(tiny):
    # Forecast 1000 units/h (1 MW); realised 5000 (5 MW) but only 3 MW of capacity left.
    k = tiny.cls("chat", "A", 0.001, 0.5, {"A": 5.0}, 50.0)
    fc = tiny.signals(2, ["A"], ["chat"], demand={"chat": 1000.0})
    real = tiny.signals(2, ["A"], ["chat"], demand={"chat": 5000.0})
    inst = tiny.instance([tiny.site("A", cap=5.0, base=2.0)], fc, classes=[k])
    out = step(State.initial(inst.sites, tiny.T0), inst, realised=real)
    c = out.committed
    assert c.routing["units"].sum() == pytest.approx(3000.0)
    assert c.totals["unserved_units"] == pytest.approx(2000.0)
    assert c.unserved["units"].tolist() == pytest.approx([2000.0])


def test_realised_carbon_used_for_emissions(tiny):
    fc = tiny.signals(2, ["A"], carbon=100.0)
    real = tiny.signals(2, ["A"], carbon=300.0)
    inst = tiny.instance([tiny.site("A", base=10.0)], fc)
    out = step(State.initial(inst.sites, tiny.T0), inst, realised=real)
    assert out.committed.emissions_t == pytest.approx(3.0)
    assert out.plan.site_hours["emissions_t"].iloc[0] == pytest.approx(1.0)


def test_persistence_is_same_hour_yesterday(tiny):
    sig = tiny.signals(72, ["A"], carbon={"A": list(range(72))})
    fc = persistence_forecast(sig)
    t0 = tiny.T0 + 30 * tiny.H1
    idx = pd.date_range(t0, periods=30, freq="h", tz="UTC")
    out = fc(t0, idx)
    lead = np.arange(30)
    expect = 30 + lead - 24 * (lead // 24 + 1)
    assert out.carbon["A"].tolist() == expect.tolist()
    assert (out.carbon.index == idx).all()


def _loop_instance(tiny):
    b = Battery(energy_mwh=10, charge_mw=5, discharge_mw=5, soc0=0.5, throughput_cost=1.0)
    sites = [tiny.site("A", cap=30, base=5, battery=b), tiny.site("B", cap=20, base=3)]
    carbon = {
        "A": [400, 300, 100, 100, 300, 500, 500, 200],
        "B": [200, 250, 300, 350, 200, 100, 150, 300],
    }
    price = {"A": [80, 60, 20, 20, 60, 120, 120, 50], "B": [70, 70, 70, 70, 40, 30, 40, 70]}
    k = tiny.cls("chat", "A", 0.001, 0.3, {"A": 5.0, "B": 20.0}, 50.0)
    sig = tiny.signals(
        8,
        ["A", "B"],
        ["chat"],
        carbon=carbon,
        price=price,
        export={"A": 0.0, "B": 0.0},
        demand={"chat": [2000, 3000, 4000, 5000, 5000, 4000, 3000, 2000]},
    )
    jobs = [
        tiny.job("j1", 8, 3, 0, 6, 3000, sites=("A", "B")),
        tiny.job("j2", 5, 2, 2, 7, 1500, sites=("A", "B"), home_site="B"),
        tiny.job("j3", 6, 2, 1, 4, 1200, sites=("A",)),
    ]
    return sites, [k], jobs, sig


def test_closed_loop_perfect_foresight_equals_full_horizon(tiny):
    sites, classes, jobs, sig = _loop_instance(tiny)
    rep = simulate(
        sig,
        tuple(sites),
        classes,
        tuple(jobs),
        horizon=8,
        forecast="perfect",
        carbon_price=50.0,
        mip_gap=1e-6,
    )
    full = solve(tiny.instance(sites, sig, jobs, classes, carbon_price=50.0), mip_gap=1e-6)
    assert rep.totals["objective"] == pytest.approx(full.objective, rel=1e-5)
    assert rep.totals["emissions_t"] == pytest.approx(full.emissions_t, rel=1e-4)
    assert rep.totals["missed_deadlines"] == 0 and rep.totals["unserved_units"] == pytest.approx(0)
    assert len(rep.site_hours) == 8 * 2 and len(rep.steps) == 8
    assert set(rep.schedule["job"]) == {"j1", "j2", "j3"}
    ag = simulate(
        sig, tuple(sites), classes, tuple(jobs), forecast="carbon_agnostic", carbon_price=50.0
    )
    sv = savings(rep, ag, rep)
    assert sv["emissions_saved_t"] > 0 and sv["share_of_oracle_emissions"] == pytest.approx(1.0)


def test_closed_loop_persistence_and_callable_forecast(tiny):
    sites, classes, jobs, sig = _loop_instance(tiny)
    calls = []

    def my_forecast(issued_at, index):
        calls.append(issued_at)
        return sig.reindex(index)

    rep = simulate(
        sig,
        tuple(sites),
        classes,
        tuple(jobs),
        horizon=4,
        forecast=my_forecast,
        carbon_price=50.0,
        hours=4,
        carbon_budget_t=100.0,
    )
    assert len(calls) == 4 and calls[0] == tiny.T0
    assert rep.final_state.budget_left_t == pytest.approx(100.0 - rep.totals["emissions_t"])
    rp = simulate(
        sig,
        tuple(sites),
        classes,
        tuple(jobs),
        horizon=4,
        forecast="persistence",
        carbon_price=50.0,
        hours=3,
    )
    assert rp.totals["unserved_units"] >= 0 and len(rp.steps) == 3


def test_closed_loop_reports_missed_deadline(tiny):
    # j needs 25 MW for 2 h at A (cap 20 with 0 base): impossible → missed, not a crash.
    sig = tiny.signals(4, ["A"])
    j = tiny.job("j", 25, 2, 0, 2, 1000)
    rep = simulate(sig, (tiny.site("A", cap=20.0),), (), (j,), horizon=4)
    assert rep.missed == ["j"] and rep.totals["missed_deadlines"] == 1


def test_step_falls_back_when_the_window_has_no_incumbent(tiny, monkeypatch):
    import mpc.solve as ms
    from mpc.results import Result

    real = ms.solve_model

    def no_incumbent(inst, opt=None, *, method="joint", **kw):
        if method == "plan":
            return Result(
                method=method,
                status="no_solution",
                termination_condition="maxTimeLimit",
                objective=float("nan"),
                bound=float("nan"),
                gap=float("nan"),
            )
        return real(inst, opt, method=method, **kw)

    monkeypatch.setattr(ms, "solve_model", no_incumbent)
    sig = tiny.signals(3, ["A"])
    inst = tiny.instance([tiny.site("A")], sig, [tiny.job("j", 5, 2, 0, 2, 100)])
    out = step(State.initial(inst.sites, tiny.T0), inst)
    assert out.plan.status == "fallback"
    assert out.started == {"j": "A"}  # as soon as possible at home
    assert out.next_state.running == {"j": ("A", 1)}


def test_a_job_longer_than_the_horizon_starts_and_runs_to_its_end(tiny):
    """A 36 h job with a 24 h horizon (before: the last start was capped at H - D, so it was never
    offered a start and was reported missed at its deadline while every step said "optimal")."""
    hours = 96
    carbon = {"A": [400.0 if (h // 12) % 2 else 150.0 for h in range(hours)], "B": [300.0] * hours}
    sites, sig = _two_sites(tiny, hours, carbon=carbon)
    long = tiny.job("long", 10.0, 36, 0, 60, 50_000.0, sites=("A", "B"))
    rep = simulate(sig, tuple(sites), (), (long,), horizon=24, carbon_price=100.0, hours=72)
    assert rep.missed == [] and "long" in rep.final_state.finished
    runs = rep.runs[rep.runs.job == "long"].sort_values("time")
    assert len(runs) == 36 and runs.site.nunique() == 1  # 36 hours, one site
    hours_run = ((runs.time - tiny.T0) / tiny.H1).astype(int).tolist()
    assert hours_run == list(range(hours_run[0], hours_run[0] + 36))  # contiguous
    assert hours_run[-1] <= 60  # finished by the end of its deadline hour
    agn = simulate(sig, tuple(sites), (), (long,), forecast="carbon_agnostic", hours=72)
    assert agn.missed == [] and len(agn.runs[agn.runs.job == "long"]) == 36


def test_the_terminal_reservation_charges_the_hours_after_the_window(tiny):
    """In a 4 h window a 6 h job may start in any period; started at t it runs 4 − t h inside and
    t + 2 h after the window. With flat prices every start costs the same 6 h × 10 MW of energy, so
    with the reservation (hours after the window at the window's mean cost, here 50 $/MWh + 100 $/t
    × 0.2 t/MWh = 70 $/MWh) every start has the same objective; without it a start at t = 3 would
    look 3 × 10 × 70 = 2,100 $ cheaper than one at t = 0."""
    from mpc.model import build_model
    from mpc.options import ModelOptions
    from mpc.solve import solve_model

    sig = tiny.signals(4, ["A"], carbon=200.0, price=50.0)
    j = tiny.job("j", 10.0, 6, 0, 9, 10_000.0)
    inst = tiny.instance([tiny.site("A")], sig, [j], carbon_price=100.0)
    m = build_model(inst)
    assert m._tail == {("j", "A", 0): 2, ("j", "A", 1): 3, ("j", "A", 2): 4, ("j", "A", 3): 5}
    objective = {}
    for t in range(4):
        r = solve_model(inst, ModelOptions(fixed_starts={"j": ("A", t)}))
        objective[t] = r.totals["solver_objective"]
        assert r.totals["job_value"] == 10_000.0
    assert max(objective.values()) - min(objective.values()) == pytest.approx(0.0, abs=1e-6)
    assert objective[0] == pytest.approx(10_000.0 - 6 * 10 * 70.0)


def test_a_fallback_plan_is_said(tiny):
    """No incumbent: the window is planned by the carbon-agnostic rule, and the step says so (the
    pipeline marks the hour degraded from it before writing plan and state)."""
    import dataclasses

    from mpc.receding import problems

    sig = tiny.signals(3, ["A"])
    inst = tiny.instance([tiny.site("A", base=1.0)], sig)
    out = step(State.initial(inst.sites, tiny.T0), inst)
    assert out.problems == []
    failed = dataclasses.replace(
        out.plan, status="fallback", message="fallback to carbon-agnostic: no incumbent in 0.1 s"
    )
    assert problems(failed, None, [], inst, tiny.T0) == [
        "no solver incumbent, planned by the carbon-agnostic rule: fallback to carbon-agnostic: "
        "no incumbent in 0.1 s"
    ]


def test_a_policy_that_does_less_work_does_not_look_better_for_it(tiny):
    """On a flat grid (400 g/kWh, 5 MW base load) one run does two 4 h × 10 MW jobs, the other only
    one (its second job cannot fit: one is not eligible anywhere it could run). The second emits
    16 t less in absolute terms, but per kWh of useful compute it is worse, and the like-for-like
    saving says so: (5·12 + 40)/40 vs (5·12 + 80)/80 in units of 0.4 t/MWh."""
    from mpc.receding import savings, work_done

    hours = 12
    sig = tiny.signals(hours, ["A"], carbon=400.0)
    sites = (tiny.site("A", base=5.0),)
    a = tiny.job("a", 10.0, 4, 0, 11, 9000.0)
    b = tiny.job("b", 10.0, 4, 0, 11, 9000.0)
    both = simulate(sig, sites, (), (a, b), horizon=12, carbon_price=0.0, hours=hours)
    one = simulate(sig, sites, (), (a,), horizon=12, carbon_price=0.0, hours=hours)
    w_both, w_one = work_done(both), work_done(one)
    assert (w_both["training_mwh"], w_both["jobs_completed"]) == (80.0, 2)
    assert (w_one["training_mwh"], w_one["jobs_completed"]) == (40.0, 1)
    s = savings(one, both)
    assert s["emissions_saved_t"] == pytest.approx(16.0)  # looks better in absolute terms ...
    assert w_both["g_per_useful_kwh"] == pytest.approx(400.0 * 140 / 80)
    assert w_one["g_per_useful_kwh"] == pytest.approx(400.0 * 100 / 40)
    assert s["like_for_like_pct"] == pytest.approx(100 * (1 - (100 / 40) / (140 / 80)))  # ... -43 %


def test_the_static_rule_uses_the_historically_cleanest_sites(tiny):
    """No forecast: inference at the best-scored feasible site, jobs as soon as possible at the
    best-scored eligible site, passive energy."""
    k = tiny.cls("chat", "A", 0.001, 0.5, {"A": 5.0, "B": 10.0}, 50.0)
    sig = tiny.signals(
        4, ["A", "B"], ["chat"], carbon={"A": 500.0, "B": 100.0}, demand={"chat": 1000.0}
    )
    sites = (tiny.site("A"), tiny.site("B"))
    j = tiny.job("j", 5.0, 2, 1, 3, 100.0, sites=("A", "B"))
    rep = simulate(sig, sites, (k,), (j,), forecast="static", site_score={"A": 400.0, "B": 90.0})
    assert set(rep.routing.site) == {"B"} and rep.schedule.site.tolist() == ["B"]
    assert rep.schedule.start.tolist() == [tiny.T0 + tiny.H1]  # as soon as released
    agn = simulate(sig, sites, (k,), (j,), forecast="carbon_agnostic")
    assert set(agn.routing.site) == {"A"} and agn.schedule.site.tolist() == ["A"]
    assert rep.totals["emissions_t"] < agn.totals["emissions_t"]


def test_the_controller_decides_on_what_it_knew_and_is_accounted_on_what_happened(tiny):
    """The committed hour routes inference on the carbon the plan expected (A cleaner), while B was
    cleaner in fact: the controller still routes to A (it did not know), and its emissions are
    accounted at the actual intensity; in hindsight it would have routed to B."""
    k = tiny.cls("chat", "A", 0.001, 0.0, {"A": 5.0, "B": 5.0}, 50.0)
    fc = tiny.signals(
        2, ["A", "B"], ["chat"], carbon={"A": 100.0, "B": 300.0}, demand={"chat": 2000.0}
    )
    real = tiny.signals(
        2, ["A", "B"], ["chat"], carbon={"A": 300.0, "B": 100.0}, demand={"chat": 2000.0}
    )
    inst = tiny.instance([tiny.site("A"), tiny.site("B")], fc, classes=[k], carbon_price=100.0)
    st = State.initial(inst.sites, tiny.T0)
    ctl = step(st, inst, realised=real)
    hind = step(st, inst, realised=real, realise="hindsight")
    assert set(ctl.committed.routing.site) == {"A"} and set(hind.committed.routing.site) == {"B"}
    assert ctl.committed.emissions_t == pytest.approx(2.0 * 0.3)  # 2 MW at A, actual 300 g/kWh
    assert hind.committed.emissions_t == pytest.approx(2.0 * 0.1)
