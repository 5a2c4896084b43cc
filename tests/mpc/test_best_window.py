"""mpc.best_window on a case checked by hand: two sites, four forecast hours, 10 MW for 2 h.

Site a: IT capacity 20 MW, planned IT [5, 5, 15, 5] MW at PUE 1.2 (the plan's facility/IT), intensity
p50 [100, 300, 100, 100] g/kWh, p90 [150, 350, 500, 150], price [50, 50, 10, 10] $/MWh.
Site b: IT capacity 30 MW; the plan covers two hours, IT [25, 5] at PUE 1.4; after it the base load
(5 MW) and kappa0 = 0.5; intensity 200 throughout with no p90; price 20 for three hours, none after.

    E = 1e-3 * 10 MW * sum((1 + kappa) * c)          C = 10 MW * sum((1 + kappa) * price)
    a@05: 1e-2 * 1.2 * (100 + 300) = 4.8 t, C = 12 * 100 = 1200 $; headroom min(15, 15) = 15  ok
    a@06: 1e-2 * 1.2 * (300 + 100) = 4.8 t;                        headroom min(15, 5) = 5   no
    a@07: 1e-2 * 1.2 * (100 + 100) = 2.4 t (the lowest, but)       headroom min(5, 15) = 5   no
    b@05: 1e-2 * 1.4 * 400 = 5.6 t;                                headroom min(5, 25)  = 5  no
    b@06: 1e-2 * (1.4 + 1.5) * 200 = 5.8 t, C = 10 * 2.9 * 20 = 580 $                    ok
    b@07: 1e-2 * 1.5 * 400 = 6.0 t, C: 08:00 has no price -> NaN                          ok
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mpc.best_window import SiteLimits, rank_windows, site_limits

T0 = pd.Timestamp("2024-01-22 05:00", tz="UTC")
HOURS = pd.date_range(T0, periods=4, freq="h")
SITES = {
    "a": SiteLimits("a", it_capacity_mw=20.0, base_load_mw=5.0, kappa0=0.25),
    "b": SiteLimits("b", it_capacity_mw=30.0, base_load_mw=5.0, kappa0=0.5),
}


def _carbon():
    a = pd.DataFrame(
        {
            "site": "a",
            "target_time": HOURS,
            "p50": [100.0, 300, 100, 100],
            "p90": [150.0, 350, 500, 150],
        }
    )
    b = pd.DataFrame({"site": "b", "target_time": HOURS, "p50": 200.0, "p90": np.nan})
    return pd.concat([a, b], ignore_index=True).assign(issued_at=T0)


def _planned():
    a = pd.DataFrame({"site": "a", "hour": HOURS, "it_mw": [5.0, 5, 15, 5]})
    b = pd.DataFrame({"site": "b", "hour": HOURS[:2], "it_mw": [25.0, 5]})
    a["facility_mw"], b["facility_mw"] = 1.2 * a.it_mw, 1.4 * b.it_mw
    return pd.concat([a, b], ignore_index=True)


def _prices():
    return pd.DataFrame(
        {
            "site": ["a"] * 4 + ["b"] * 3,
            "hour": list(HOURS) + list(HOURS[:3]),
            "price": [50.0, 50, 10, 10, 20, 20, 20],
        }
    )


def _rank(**kw):
    args = dict(hours=2, mw=10.0, planned=_planned(), prices=_prices()) | kw
    return rank_windows(_carbon(), SITES, **args)


def _key(row):
    return row["site"], row["start"].hour


def test_best_window_by_carbon_is_the_hand_computed_one():
    r = _rank()
    ok = r.feasible
    assert [_key(w) for _, w in ok.iterrows()] == [("a", 5), ("b", 6), ("b", 7)]
    assert ok["rank"].tolist() == [1, 2, 3]
    assert ok["emissions_t"].to_numpy() == pytest.approx([4.8, 5.8, 6.0])
    assert ok["cost"].iloc[:2].to_numpy() == pytest.approx([1200.0, 580.0])
    assert np.isnan(ok["cost"].iloc[2])  # 08:00 has no stored price at b
    assert ok["pue"].to_numpy() == pytest.approx([1.2, 1.45, 1.5])
    assert ok["planned_hours"].tolist() == [2, 1, 0]
    assert r.best["end"] == T0 + pd.Timedelta(hours=2)


def test_a_window_over_the_headroom_is_excluded_with_the_reason():
    r = _rank()
    bad = r.windows[~r.windows.feasible]
    assert sorted(_key(w) for _, w in bad.iterrows()) == [("a", 6), ("a", 7), ("b", 5)]
    assert bad["rank"].isna().all()
    a7 = bad[(bad.site == "a") & (bad.start.dt.hour == 7)].iloc[0]
    assert a7["emissions_t"] == pytest.approx(2.4)  # the cleanest window, but no room
    assert a7["min_headroom_mw"] == pytest.approx(5.0)
    assert "headroom 5.0 MW < 10 MW at 2024-01-22 07:00 UTC" in a7["reason"]
    assert any("3 window(s) are infeasible" in n for n in r.notes)


def test_rank_by_cost_and_by_p90():
    by_cost = _rank(by="cost").feasible
    assert _key(by_cost.iloc[0]) == ("b", 6) and by_cost["cost"].iloc[0] == pytest.approx(580.0)
    assert _key(by_cost.iloc[-1]) == ("b", 7)  # no price: ranked last
    p90 = _rank(quantile="p90")
    # a@05 on p90: 1e-2 * 1.2 * (150 + 350) = 6.0 t > b@06 (no p90 at b: its p50, 5.8 t)
    assert _key(p90.best) == ("b", 6) and p90.best["emissions_t"] == pytest.approx(5.8)
    assert any("4 forecast hour(s) had no p90" in n for n in p90.notes)


def test_without_a_plan_headroom_is_capacity_minus_base_load_and_kappa0_applies():
    r = rank_windows(_carbon(), {"a": SITES["a"]}, hours=4, mw=15.0)
    (w,) = [row for _, row in r.windows.iterrows()]
    assert w["feasible"] and w["min_headroom_mw"] == pytest.approx(15.0)
    assert w["emissions_t"] == pytest.approx(1e-3 * 15 * 1.25 * 600)
    assert w["planned_hours"] == 0 and np.isnan(w["cost"])


def test_windows_must_fit_in_the_forecast_and_not_span_a_gap():
    assert rank_windows(_carbon(), SITES, hours=5, mw=1.0).windows.empty
    gappy = _carbon().drop(index=[1])  # a: 06:00 missing
    r = rank_windows(gappy, {"a": SITES["a"]}, hours=2, mw=1.0)
    assert [w.hour for w in r.windows["start"]] == [7]


@pytest.mark.parametrize(
    "kw",
    [dict(hours=0), dict(hours=1.5), dict(mw=0.0), dict(by="price"), dict(quantile="p10")],
)
def test_bad_arguments_are_refused(kw):
    with pytest.raises(ValueError):
        _rank(**kw)


def test_site_limits_from_the_fleet():
    from mpc.fleet import load_fleet

    lim = site_limits(load_fleet(), ["london"])
    assert list(lim) == ["london"]
    assert lim["london"].it_capacity_mw == 45.0 and lim["london"].kappa0 == pytest.approx(0.12)
