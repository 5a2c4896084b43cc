"""The monthly location-based Scope 2 report (warehouse/reports.py, `gridflex report`) on a
hand-checked case: two sites, two hours, one zone with its average:direct factor stored, one without
(the report then falls back to the planned series and names it)."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from gridflex_cli.main import app
from warehouse import Warehouse
from warehouse.reports import scope2_month

T = pd.Timestamp("2026-11-03 10:00", tz="UTC")
H = pd.Timedelta(hours=1)


@pytest.fixture
def wh(tmp_path):
    w = Warehouse(tmp_path / "gf.duckdb")
    w.ensure_schema()
    now = pd.Timestamp("2026-11-04", tz="UTC").to_pydatetime()
    with w.writer() as con:
        con.execute(
            "insert into plans.sites (site, zone, carbon_series, gpu_kw, embodied_t_per_day) values "
            "('hamburg', 'DE', 'DE:marginal:co2_moer', 1.0, 0), "
            "('oakland', 'US-CAL-CISO', 'US-CAL-CISO:marginal:co2_moer', 1.0, 0)"
        )
        rows = [  # hour, site, import MW, planned g/kWh
            (T, "hamburg", 10.0, 500.0),
            (T + H, "hamburg", 20.0, 600.0),
            (T, "oakland", 5.0, 200.0),
            (T + H, "oakland", 0.0, 250.0),
        ]
        for t, site, imp, g in rows:
            con.execute(
                "insert into plans.dispatch (hour, site, it_mw, training_mw, inference_mw, "
                "facility_mw, gen_used_mw, import_mw, export_mw, carbon_g_kwh, emissions_t, cost) "
                "values (?, ?, ?, ?, ?, ?, 1.0, ?, 0, ?, ?, 0)",
                [t.to_pydatetime(), site, imp, imp / 2, imp / 4, imp + 1, imp, g, imp * g / 1e3],
            )
        # DE's average:direct factor is stored (Scope 2 uses it, not the marginal signal planned on);
        # the second hour is revised later: the report takes the best (latest, non-estimated) value
        for t, v, est, rec in [(T, 300.0, False, now), (T + H, 400.0, True, now)]:
            con.execute(
                "insert into staging.carbon_intensity (series, zone, ts, value, signal, factor, "
                "source, is_estimated, received_at) values "
                "('DE:average:direct', 'DE', ?, ?, 'average', 'direct', 'electricitymaps', ?, ?)",
                [t.to_pydatetime(), v, est, rec],
            )
        con.execute(
            "insert into staging.carbon_intensity (series, zone, ts, value, signal, factor, source, "
            "is_estimated, received_at) values "
            "('DE:average:direct', 'DE', ?, 350.0, 'average', 'direct', 'csv', false, ?)",
            [(T + H).to_pydatetime(), now],
        )
    return w


def test_scope2_uses_the_average_factor_and_names_the_fallback(wh):
    sites, totals = scope2_month(wh, "2026-11")
    de = sites.set_index("site").loc["hamburg"]
    us = sites.set_index("site").loc["oakland"]
    # hamburg: 10 MWh x 300 + 20 MWh x 350 (the non-estimated value) g/kWh = 3 + 7 = 10 t
    assert de.scope2_location_t == pytest.approx(10.0)
    assert de.emission_factor == "DE:average:direct" and de.hours_with_average_factor == 2
    assert de.grid_mwh == pytest.approx(30.0) and de.average_factor_g_kwh == pytest.approx(1e4 / 30)
    # oakland: no average:direct stored for US-CAL-CISO -> the series it plans on: 5 x 200 = 1 t
    assert us.scope2_location_t == pytest.approx(1.0)
    # ... and says so: the series it used is named
    assert (
        us.emission_factor == "US-CAL-CISO:marginal:co2_moer" and us.hours_with_average_factor == 0
    )
    assert totals["scope2_location_t"] == pytest.approx(11.0)
    assert totals["hours"] == 2 and totals["hours_in_month"] == 30 * 24


def test_report_cli_markdown_csv_and_a_month_without_plans(wh, tmp_path):
    db = str(wh.path)
    md = CliRunner().invoke(app, ["report", "--month", "2026-11", "--db", db])
    assert md.exit_code == 0, md.output
    assert "Location-based Scope 2 — 2026-11" in md.output and "11.0 t CO2" in md.output
    assert "Market-based Scope 2 is not computed" in md.output
    assert "embodied emissions not accounted" in md.output
    out = tmp_path / "r.csv"
    csv = CliRunner().invoke(
        app, ["report", "--month", "2026-11", "--format", "csv", "--out", str(out), "--db", db]
    )
    assert csv.exit_code == 0, csv.output
    back = pd.read_csv(out)
    assert back.scope2_location_t.sum() == pytest.approx(11.0) and len(back) == 2
    none = CliRunner().invoke(app, ["report", "--month", "2026-10", "--db", db])
    assert none.exit_code == 1 and "no committed hour in that month" in none.output
    assert "2026-11-03 10:00" in none.output
    bad = CliRunner().invoke(app, ["report", "--month", "2026-13", "--db", db])
    assert bad.exit_code == 1 and "expected YYYY-MM" in bad.output
