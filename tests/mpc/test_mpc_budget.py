"""The carbon-budget policy (mpc/budget.py): one split for the step, the simulator and the pipeline,
checked by hand, and a budget that cannot be met reported with its overrun."""

from __future__ import annotations

import pandas as pd
import pytest

from mpc import State, simulate, step
from mpc.budget import BudgetPolicy

H1 = pd.Timedelta(hours=1)
DAY0 = pd.Timestamp("2024-01-01", tz="UTC")


def _state(t, left, end):
    return State(time=t, soc_mwh={"A": 0.0}, budget_left_t=left, budget_end=end)


def _window(t0, hours):
    return pd.date_range(t0, periods=hours, freq="h", tz="UTC")


def test_a_window_across_midnight_gets_todays_remainder_plus_tomorrows_share():
    """20:00, 8 h window, 24 t/day, 6 t left today: today's 4 h take all 6 t (the window covers the
    rest of the day), tomorrow's 4 h take 4/24 of 24 t: 6 + 4 = 10 t. (Before: 6 t for 8 h, as if
    tomorrow had no budget.)"""
    p = BudgetPolicy.daily(24.0)
    t0 = DAY0 + 20 * H1
    st = _state(t0, 6.0, DAY0 + 24 * H1)
    assert p.allocation(st, _window(t0, 8)) == pytest.approx(6.0 + 4.0)
    # a 24 h window from 20:00: 6 t + 20/24 of tomorrow's 24 t
    assert p.allocation(st, _window(t0, 24)) == pytest.approx(6.0 + 20.0)


def test_a_window_inside_the_day_gets_its_pro_rata_share():
    p = BudgetPolicy.daily(24.0)
    t0 = DAY0 + 8 * H1  # 16 h left today, 16 t left
    assert p.allocation(_state(t0, 16.0, DAY0 + 24 * H1), _window(t0, 8)) == pytest.approx(8.0)
    # an overrun earlier today leaves nothing for today's hours; tomorrow's share stays
    t1 = DAY0 + 20 * H1
    assert p.allocation(_state(t1, -3.0, DAY0 + 24 * H1), _window(t1, 8)) == pytest.approx(4.0)


def test_a_new_day_refills_the_budget():
    p = BudgetPolicy.daily(24.0)
    st = p.refill(_state(DAY0 + 24 * H1, 2.5, DAY0 + 24 * H1))
    assert st.budget_left_t == 24.0 and st.budget_end == DAY0 + 48 * H1
    same = p.refill(_state(DAY0 + 5 * H1, 2.5, DAY0 + 24 * H1))
    assert same.budget_left_t == 2.5  # inside the day: unchanged
    assert BudgetPolicy.daily(None).refill(same).budget_left_t is None


def test_a_whole_period_budget_allocates_nothing_after_its_end():
    p = BudgetPolicy.whole(10.0, DAY0, DAY0 + 4 * H1)
    st = p.refill(State.initial((), DAY0))
    assert st.budget_left_t == 10.0
    assert p.allocation(st, _window(DAY0, 8)) == pytest.approx(10.0)
    assert p.allocation(st, _window(DAY0, 2)) == pytest.approx(5.0)


def test_a_budget_that_cannot_be_met_is_reported_with_its_overrun(tiny):
    """Base load 10 MW at 500 g/kWh emits 5 t/h whatever the plan does; a budget of 12 t/day gives
    a 4 h window 2 t: the plan needs 18 t of slack and says so."""
    sig = tiny.signals(4, ["A"], carbon=500.0)
    inst = tiny.instance([tiny.site("A", base=10.0)], sig, carbon_price=50.0)
    out = step(State.initial(inst.sites, tiny.T0), inst, budget=BudgetPolicy.daily(12.0))
    assert out.budget.allocated_t == pytest.approx(12.0 * 4 / 24)
    assert out.budget.planned_t == pytest.approx(20.0)
    assert out.budget.over_t == pytest.approx(20.0 - 2.0, abs=1e-6) and out.budget.exceeded
    assert out.next_state.budget_left_t == pytest.approx(12.0 - 5.0)
    assert out.problems == [
        "carbon budget exceeded: the window was allocated 2.0 t and plans "
        "20.0 t (18.0 t over: no feasible plan stays within it)"
    ]


def test_a_budget_that_never_binds_costs_nothing(tiny):
    """Two days, a flat 10 MW load and a dirty/clean alternation the planner uses to place a job; a
    daily budget 30 % above what the plan emits must change nothing (before: windows crossing
    midnight got only today's remainder and paid the 5,000 $/t slack for the rest)."""
    hours = 72
    carbon = {"A": [200.0 + 200.0 * ((h // 6) % 2) for h in range(hours)]}
    sig = tiny.signals(hours, ["A"], carbon=carbon)
    sites = (tiny.site("A", base=10.0),)
    jobs = tuple(tiny.job(f"j{d}", 5.0, 3, 24 * d, 24 * d + 20, 4000.0) for d in range(2))
    free = simulate(sig, sites, (), jobs, horizon=24, carbon_price=50.0, hours=48)
    daily = 1.3 * free.totals["emissions_t"] / 2
    capped = simulate(
        sig,
        sites,
        (),
        jobs,
        horizon=24,
        carbon_price=50.0,
        hours=48,
        budget=BudgetPolicy.daily(daily),
    )
    assert capped.totals["budget_over_t"] == pytest.approx(0.0, abs=1e-6)
    assert capped.totals["emissions_t"] == pytest.approx(free.totals["emissions_t"], rel=1e-6)
    assert capped.totals["objective"] == pytest.approx(free.totals["objective"], rel=1e-6)


def test_risk_aware_planning_keeps_the_budget_against_the_high_quantile(tiny):
    """A 10 MW, 1 h job may run at A (p50 200, p90 400 g/kWh) or B (p50 250, p90 260 g/kWh); the
    window's budget is 2.6 t, the carbon price 100 $/t. On p50 both sites fit (2.0 t, 2.5 t) and A is
    cheaper (50 $ less carbon): the job goes to A. Planning the budget against p90, A would need
    4.0 t > 2.6 t while B needs 2.6 t: the job goes to B — the budget holds unless the grid is
    dirtier than its p90. Emissions are still reported on p50."""
    from mpc.instance import Instance
    from mpc.options import ModelOptions
    from mpc.solve import solve_model

    sig = tiny.signals(1, ["A", "B"], carbon={"A": 200.0, "B": 250.0})
    sites = (tiny.site("A"), tiny.site("B"))
    job = tiny.job("j", 10.0, 1, 0, 0, 5000.0, sites=("A", "B"))
    p50 = Instance(
        sites=sites, classes=(), jobs=(job,), signals=sig, carbon_budget_t=2.6, carbon_price=100.0
    )
    high = pd.DataFrame({"A": [400.0], "B": [260.0]}, index=sig.index)
    p90 = p50.replace(budget_carbon=high)
    opt = ModelOptions(elastic={"carbon": 5e3})
    r50, r90 = solve_model(p50, opt), solve_model(p90, opt)
    assert r50.schedule.set_index("job").site["j"] == "A"
    assert r90.schedule.set_index("job").site["j"] == "B"
    assert r50.totals["slack_carbon"] == pytest.approx(0.0, abs=1e-9)
    assert r90.totals["slack_carbon"] == pytest.approx(0.0, abs=1e-9)
    assert r90.emissions_t == pytest.approx(2.5)  # accounted on p50


def test_a_closed_loop_planned_on_the_high_quantile_overruns_its_budget_less(tiny):
    """Two days; each day a 6 MW × 4 h job may run at A (80 $/MWh, 300 g/kWh) or at cheaper but
    dirtier B (40 $/MWh, 450 g/kWh); 2 MW base load at each; 45 t/day. The forecast is 20 % too
    clean. On p50 the day looks like 28.8 + 8.6 = 37.4 t with the job at B, so it goes to B — and
    really emits 36 + 10.8 = 46.8 t, 1.8 t over each day. Planned against p90 (1.3 × p50 here) B
    would need 48.7 t, so the job goes to A: 36 + 7.2 = 43.2 t, within the budget."""
    hours = 48
    real = tiny.signals(
        hours, ["A", "B"], carbon={"A": 300.0, "B": 450.0}, price={"A": 80.0, "B": 40.0}
    )
    fcst = tiny.signals(
        hours, ["A", "B"], carbon={"A": 240.0, "B": 360.0}, price={"A": 80.0, "B": 40.0}
    )
    sites = (tiny.site("A", base=2.0), tiny.site("B", base=2.0))
    jobs = tuple(
        tiny.job(f"j{d}", 6.0, 4, 24 * d, 24 * d + 23, 4000.0, sites=("A", "B")) for d in range(2)
    )

    def forecast(issued_at, index):
        return fcst.reindex(index)

    def p90(issued_at, index):
        return fcst.carbon.reindex(index) * 1.3

    kw = dict(horizon=24, carbon_price=5.0, budget=BudgetPolicy.daily(45.0), hours=hours)
    on_p50 = simulate(real, sites, (), jobs, forecast=forecast, **kw)
    on_p90 = simulate(real, sites, (), jobs, forecast=forecast, budget_forecast=p90, **kw)

    def over(rep):
        day = rep.site_hours.groupby(rep.site_hours.time.dt.floor("D")).emissions_t.sum()
        return float((day - 45.0).clip(lower=0).sum())

    assert set(on_p50.schedule.site) == {"B"} and set(on_p90.schedule.site) == {"A"}
    assert over(on_p50) == pytest.approx(2 * 1.8, abs=1e-6) and over(on_p90) == 0.0
    assert on_p90.totals["energy_cost"] > on_p50.totals["energy_cost"]  # the price of the cover
