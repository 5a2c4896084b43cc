"""The fleet marts' carbon-efficiency KPIs and SCI on a hand-checked case (warehouse/sql/090_marts.sql):
one site, two committed hours, the counterfactual known for the first only."""

from __future__ import annotations

import pandas as pd
import pytest

from warehouse import Warehouse

T = pd.Timestamp("2026-11-03 10:00", tz="UTC")
H = pd.Timedelta(hours=1)


@pytest.fixture
def wh(tmp_path):
    w = Warehouse(tmp_path / "gf.duckdb")
    w.ensure_schema()
    with w.writer() as con:
        con.execute(
            "insert into plans.sites (site, zone, carbon_series, gpu_kw, embodied_t_per_day) values ('a', 'DE', 'DE:average:direct', 0.5, 2.4)"
        )  # 0.5 kW per GPU, 2.4 t/day embodied
        for t, tr, inf, em, done in [(T, 6.0, 2.0, 4.0, ["j1"]), (T + H, 0.0, 4.0, 2.0, [])]:
            con.execute(
                "insert into plans.dispatch (hour, site, it_mw, training_mw, inference_mw, import_mw, "
                "emissions_t, cost, jobs_completed) values (?, 'a', 10, ?, ?, 10, ?, 100, ?)",
                [t.to_pydatetime(), tr, inf, em, done],
            )
        for t, n in [(T, 1000.0), (T + H, 3000.0)]:
            con.execute(
                "insert into plans.dispatch_routing values (?, 'chat', 'a', ?)",
                [t.to_pydatetime(), n],
            )
        con.execute(
            "insert into plans.agnostic (hour, site, emissions_t, cost, training_mw, inference_mw, "
            "jobs_completed) values (?, 'a', 5.0, 150, 6.0, 2.0, ['j1'])",
            [T.to_pydatetime()],
        )
    return w


def test_fleet_daily_kpis_and_sci_by_hand(wh):
    d = wh.query("select * from marts.fleet_daily").iloc[0]
    assert d.site_hours == 2 and d.compared_site_hours == 1
    assert d.emissions_t == pytest.approx(6.0) and d.it_mwh == pytest.approx(20.0)
    assert d.g_per_it_kwh == pytest.approx(1e3 * 6 / 20)  # 300 g/kWh
    # training's share of useful energy: hour 1 6/8 of 4 t, hour 2 none -> 3 t over 12,000 GPU-h
    assert d.training_gpu_hours == pytest.approx(1e3 * 6 / 0.5)
    assert d.g_per_training_gpu_hour == pytest.approx(3e6 / 12_000)  # 250
    # inference: 2/8 of 4 t + 4/4 of 2 t = 3 t over 4,000 requests
    assert d.inference_requests == pytest.approx(4000)
    assert d.g_per_1k_requests == pytest.approx(3e6 / 4)
    # SCI = (E*I + M) / R: 6 t + 2.4 t/day x 2/24 of embodied over 24,000 GPU-h
    assert d.embodied_t == pytest.approx(0.2) and d.embodied_accounted
    assert d.sci_g_per_gpu_hour == pytest.approx(1e6 * 6.2 / 24_000)
    # the saving compares only the hour the counterfactual has: 5 t vs 4 t
    assert d.emissions_saved_t == pytest.approx(1.0) and d.emissions_saved_pct == pytest.approx(
        20.0
    )
    assert d.cost_saved == pytest.approx(50.0)
    assert (
        d.jobs_completed == 1 and d.compared_jobs_completed == 1 and d.agnostic_jobs_completed == 1
    )
    assert d.like_for_like_saved_pct == pytest.approx(100 * (1 - (4 / 8) / (5 / 8)))
    total = wh.query("select * from marts.fleet_total").iloc[0]
    assert total.sci_g_per_gpu_hour == pytest.approx(d.sci_g_per_gpu_hour)
    assert total.g_per_training_gpu_hour == pytest.approx(250.0)
    assert total.g_per_1k_requests == pytest.approx(d.g_per_1k_requests)
    assert pd.isna(total.budget_t) and total.days_over_budget == 0
