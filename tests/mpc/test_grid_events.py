"""Grid events in the window model, on instances small enough to check by hand: the operator's
import limit, stability-first periods, priority classes and checkpointable jobs
(mpc.events, mpc.model.define_stability, mpc.receding)."""

import numpy as np
import pandas as pd
import pytest

from mpc.events import apply_events, grid_conditions
from mpc.instance import (
    Battery,
    GridConditions,
    InferenceClass,
    Instance,
    InstanceError,
    Signals,
    Site,
    make_job,
)
from mpc.receding import State, step

H = pd.Timedelta(hours=1)
T = pd.Timestamp("2026-03-02", tz="UTC")


def _frame(values, index, col="a"):
    return pd.DataFrame({col: values}, index=index)


def _signals(n, price=None, carbon=None, demand=None):
    idx = pd.date_range(T, periods=n, freq="h", tz="UTC")
    f = lambda v: _frame(v, idx)  # noqa: E731
    return Signals(
        carbon=f(carbon or [300.0] * n),
        price_import=f(price or [100.0] * n),
        price_export=f([0.0] * n),
        generation=f([0.0] * n),
        kappa=f([0.0] * n),
        demand=demand if demand is not None else pd.DataFrame(index=idx),
    )


def _grid(n, cap=None, stability=None):
    idx = pd.date_range(T, periods=n, freq="h", tz="UTC")
    return GridConditions(
        import_cap=_frame(cap or [np.nan] * n, idx),
        export_cap=_frame([np.nan] * n, idx),
        stability=_frame(stability or [0] * n, idx),
    )


BATTERY = Battery(
    energy_mwh=10.0,
    charge_mw=5.0,
    discharge_mw=5.0,
    eta_c=1.0,
    eta_d=1.0,
    soc0=0.5,
    soc_min=0.0,
    soc_max=1.0,
    throughput_cost=1.0,
)


def _site(battery=BATTERY, base=10.0):
    return Site("a", it_capacity_mw=30.0, base_load_mw=base, import_limit_mw=50.0, battery=battery)


def test_stability_first_switch_on_a_hand_checkable_instance():
    # 3 hours, 10 MW base load, a 10 MWh battery at 5 MWh. Energy is cheapest in hour 1, so the
    # carbon- and cost-first plan charges then (import 10 + 5 = 15 MW) and discharges later. Under a
    # grid emergency in hour 1 the plan imports as little as it can there: 10 - 5 MW discharge = 5 MW.
    sig = _signals(3, price=[100.0, 20.0, 100.0])
    plain = Instance(sites=(_site(),), classes=(), jobs=(), signals=sig)
    stressed = plain.replace(grid=_grid(3, stability=[0, 1, 0]))
    p = step(State.initial(plain.sites, T), plain).plan.site_hours.set_index("time")
    s = step(State.initial(plain.sites, T), stressed).plan.site_hours.set_index("time")
    assert p.import_mw.iloc[1] == pytest.approx(15.0, abs=1e-6)  # carbon/cost first: charge
    assert s.import_mw.iloc[1] == pytest.approx(5.0, abs=1e-6)  # stability first: discharge
    assert s.discharge_mw.iloc[1] == pytest.approx(5.0, abs=1e-6)
    # and it costs money: the stability-first plan is dearer on the objective (1)
    assert (s.import_mw * s.price_import).sum() > (p.import_mw * p.price_import).sum()


def test_import_cap_is_met_from_the_battery_and_an_infeasible_cap_is_said():
    sig = _signals(2)
    inst = Instance(sites=(_site(),), classes=(), jobs=(), signals=sig)
    ok = step(State.initial(inst.sites, T), inst.replace(grid=_grid(2, cap=[6.0, np.nan])))
    assert ok.plan.site_hours.import_mw.iloc[0] == pytest.approx(6.0, abs=1e-6)
    assert ok.committed.site_hours.import_mw.iloc[0] <= 6.0 + 1e-6
    assert not ok.problems
    # 10 MW may not be shed and the battery gives 5: a 2 MW cap cannot be met; the hour is planned
    # anyway at the least import possible (5 MW) and the problem is said
    bad = step(State.initial(inst.sites, T), inst.replace(grid=_grid(2, cap=[2.0, np.nan])))
    assert bad.plan.status in ("optimal", "feasible")
    assert bad.committed.site_hours.import_mw.iloc[0] == pytest.approx(5.0, abs=1e-6)
    assert bad.plan.totals["import_over_cap_mwh"] == pytest.approx(3.0, abs=1e-6)
    assert any("grid import limit not met by 3.0 MWh" in p for p in bad.problems), bad.problems


def test_critical_inference_is_never_shed_flexible_and_batch_are_deferred_under_stress():
    idx = pd.date_range(T, periods=2, freq="h", tz="UTC")
    demand = pd.DataFrame(
        {"crit": [1000.0, 1000.0], "flex": [1000.0] * 2, "bat": [1000.0] * 2}, index=idx
    )
    classes = tuple(
        InferenceClass(n, "a", 1e-3, 0.01, {"a": 1.0}, 10.0, priority=p)
        for n, p in (("crit", "critical"), ("flex", "flexible"), ("bat", "batch"))
    )
    inst = Instance(
        sites=(_site(battery=Battery(), base=0.0),),
        classes=classes,
        jobs=(),
        signals=_signals(2, demand=demand),
    )
    calm = step(State.initial(inst.sites, T), inst)
    assert calm.plan.totals["unserved_units"] == pytest.approx(0.0, abs=1e-6)  # all served
    stressed = step(State.initial(inst.sites, T), inst.replace(grid=_grid(2, stability=[1, 0])))
    uns = stressed.plan.unserved
    first = uns[uns.time == T].set_index("cls").units
    assert "crit" not in first.index  # critical: 1 MW served in full
    assert first["flex"] == pytest.approx(1000.0) and first["bat"] == pytest.approx(1000.0)
    assert stressed.plan.site_hours.import_mw.iloc[0] == pytest.approx(1.0, abs=1e-6)
    assert not any("critical" in p for p in stressed.problems)
    # a cap below the critical load: critical still served, the cap exceeded and said
    capped = step(State.initial(inst.sites, T), inst.replace(grid=_grid(2, cap=[0.5, np.nan])))
    cu = capped.plan.unserved
    assert cu[(cu.time == T) & (cu.cls == "crit")].empty
    assert capped.plan.site_hours.import_mw.iloc[0] == pytest.approx(1.0, abs=1e-6)
    assert any("grid import limit not met" in p for p in capped.problems)


def _batch_job(checkpointable=True, max_suspensions=1):
    return make_job(
        "train-1",
        8.0,
        3,
        T - H,
        T + 4 * H,
        1000.0,
        ["a"],
        checkpointable=checkpointable,
        max_suspensions=max_suspensions,
        lost_h=1,
        restart_mwh=0.5,
        priority="batch",
    )


def test_checkpointable_job_pauses_under_a_cap_and_resumes_with_its_redo_and_restart_energy():
    # the job started an hour ago (2 h of work left); a 6 MW cap now. Continuing needs 5 + 8 = 13 MW.
    sig = _signals(5)
    site = _site(battery=Battery(), base=5.0)
    inst = Instance(
        sites=(site,),
        classes=(),
        jobs=(_batch_job(),),
        signals=sig,
        grid=_grid(5, cap=[6.0, np.nan, np.nan, np.nan, np.nan]),
    )
    st = State(time=T, soc_mwh={"a": 0.0}, running={"train-1": ("a", 2)})
    r = step(st, inst)
    assert r.paused == ["train-1"] and not r.problems
    assert r.committed.site_hours.import_mw.iloc[0] == pytest.approx(5.0, abs=1e-6)
    assert r.next_state.suspended == {"train-1": ("a", 2)} and not r.next_state.running
    # next hour: resumed, 2 h left + 1 h redone, 0.5 MWh restart energy in its first hour
    w = inst.replace(signals=sig.window(T + H, 4), grid=inst.grid.window(T + H, 4))
    r2 = step(r.next_state, w)
    assert r2.resumed == ["train-1"] and r2.started == {}
    assert r2.committed.site_hours.it_mw.iloc[0] == pytest.approx(5.0 + 8.0 + 0.5, abs=1e-6)
    assert r2.next_state.running == {"train-1": ("a", 2)}  # 3 h from the resume, 1 done
    assert r2.next_state.suspensions == {"train-1": 1}
    # a third state, same cap again: no suspension left, so it is held and the cap said
    st3 = State(
        time=T, soc_mwh={"a": 0.0}, running={"train-1": ("a", 2)}, suspensions={"train-1": 1}
    )
    r3 = step(st3, inst)
    assert r3.paused == [] and any("grid import limit not met" in p for p in r3.problems)


def test_rigid_jobs_are_not_paused():
    sig = _signals(5)
    site = _site(battery=Battery(), base=5.0)
    inst = Instance(
        sites=(site,),
        classes=(),
        jobs=(_batch_job(checkpointable=False),),
        signals=sig,
        grid=_grid(5, cap=[6.0, np.nan, np.nan, np.nan, np.nan]),
    )
    st = State(time=T, soc_mwh={"a": 0.0}, running={"train-1": ("a", 2)})
    r = step(st, inst)
    assert r.paused == [] and r.next_state.running == {"train-1": ("a", 1)}
    assert r.committed.site_hours.import_mw.iloc[0] == pytest.approx(13.0, abs=1e-6)
    assert any("grid import limit not met by 7.0 MWh" in p for p in r.problems)


def test_state_round_trips_suspensions():
    st = State(time=T, soc_mwh={"a": 1.0}, suspended={"j": ("a", 3)}, suspensions={"j": 1})
    assert State.from_dict(st.to_dict()) == st
    # a state stored before checkpointing existed reads back without them
    old = {k: v for k, v in st.to_dict().items() if k not in ("suspended", "suspensions")}
    assert State.from_dict(old).suspended == {}


def _events(rows):
    cols = ["event_id", "site", "payload_type", "start", "end", "value"]
    return pd.DataFrame(rows, columns=cols)


def test_events_become_limits_alerts_and_signal_overrides():
    idx = pd.date_range(T, periods=4, freq="h", tz="UTC")
    ev = _events(
        [
            ("cap-1", "a", "IMPORT_CAPACITY_LIMIT", T, T + 2 * H, 20.0),
            ("cap-2", "a", "IMPORT_CAPACITY_LIMIT", T + H, T + 3 * H, 12.0),  # overlaps: tighter
            ("px", "a", "PRICE", T + pd.Timedelta(minutes=30), T + 2 * H, 900.0),  # part hour 0
            ("ghg", "a", "GHG", T + 3 * H, T + 4 * H, 50.0),
            ("sos", "a", "ALERT_GRID_EMERGENCY", T + 2 * H, T + 3 * H, 1.0),
            ("lvl1", "a", "SIMPLE", T, T + H, 1.0),  # level 1: noted, no effect
            ("lvl3", "a", "SIMPLE", T + 3 * H, T + 4 * H, 3.0),
            ("set", "a", "DISPATCH_SETPOINT", T, T + H, 5.0),
            ("far", "a", "IMPORT_CAPACITY_LIMIT", T + 9 * H, T + 10 * H, 1.0),  # outside
            ("other", "zz", "IMPORT_CAPACITY_LIMIT", T, T + H, 1.0),  # not a site of ours
        ]
    )
    grid, over, applied = grid_conditions(ev, idx, ["a"])
    assert grid.import_cap.a.tolist()[:3] == [20.0, 12.0, 12.0] and np.isnan(
        grid.import_cap.a.iloc[3]
    )
    assert grid.stability.a.tolist() == [0, 0, 1, 1]
    assert over["price_import"].a.tolist()[:2] == [900.0, 900.0]
    assert over["carbon"].a.tolist()[3] == 50.0
    assert set(applied.event_ids) == {"cap-1", "cap-2", "px", "ghg", "sos", "lvl3"}
    assert any("DISPATCH_SETPOINT does not change the plan" in n for n in applied.notes)
    assert any("SIMPLE level 1" in n for n in applied.notes)
    inst = Instance(sites=(_site(),), classes=(), jobs=(), signals=_signals(4))
    out, applied = apply_events(inst, ev)
    assert out.signals.price_import.a.tolist() == [900.0, 900.0, 100.0, 100.0]
    assert out.signals.carbon.a.tolist() == [300.0, 300.0, 300.0, 50.0]
    assert out.fingerprint() != inst.fingerprint()
    same, none = apply_events(inst, _events([]))
    assert same is inst and none.event_ids == []


def test_export_limits_and_export_prices_bind():
    # 30 MW of on-site generation, 10 MW of load: 20 MW to export at 80 $/MWh; an operator's export
    # limit of 5 MW in hour 0 curtails it, and an EXPORT_PRICE event of 0 $/MWh in hour 1 stops it
    idx = pd.date_range(T, periods=3, freq="h", tz="UTC")
    f = lambda v: _frame(v, idx)  # noqa: E731
    sig = Signals(
        carbon=f([300.0] * 3),
        price_import=f([100.0] * 3),
        price_export=f([80.0] * 3),
        generation=f([30.0] * 3),
        kappa=f([0.0] * 3),
        demand=pd.DataFrame(index=idx),
    )
    site = Site(
        "a", it_capacity_mw=30.0, base_load_mw=10.0, import_limit_mw=50.0, export_limit_mw=40.0
    )
    inst = Instance(sites=(site,), classes=(), jobs=(), signals=sig)
    ev = _events(
        [
            ("xcap", "a", "EXPORT_CAPACITY_LIMIT", T, T + H, 5.0),
            ("xpx", "a", "EXPORT_PRICE", T + H, T + 2 * H, 0.0),
            ("flex", "a", "ALERT_FLEX_ALERT", T + 2 * H, T + 3 * H, 1.0),
        ]
    )
    out, applied = apply_events(inst, ev)
    assert set(applied.event_ids) == {"xcap", "xpx", "flex"}
    assert out.grid.stability.a.tolist() == [0, 0, 1]
    sh = step(State.initial(out.sites, T), out).plan.site_hours
    assert sh.export_mw.tolist()[0] == pytest.approx(5.0, abs=1e-6)  # limited
    assert sh.export_mw.tolist()[1] == pytest.approx(0.0, abs=1e-6)  # not paid: curtailed
    base = step(State.initial(inst.sites, T), inst).plan.site_hours
    assert base.export_mw.tolist()[:2] == pytest.approx([20.0, 20.0], abs=1e-6)


def test_grid_conditions_are_validated():
    inst = Instance(sites=(_site(),), classes=(), jobs=(), signals=_signals(2))
    bad = _grid(2, stability=[0, 1])
    bad = GridConditions(bad.import_cap, bad.export_cap, bad.stability * 2)
    with pytest.raises(InstanceError, match="grid.stability"):
        inst.replace(grid=bad)
    with pytest.raises(InstanceError, match="grid.import_cap"):
        inst.replace(grid=_grid(3))
