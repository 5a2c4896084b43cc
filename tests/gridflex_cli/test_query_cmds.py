"""`gridflex sql`, `gridflex forecast`, `gridflex best-window` on a real warehouse file built with the
project's writer, holding a few rows checked by hand (the case of tests/mpc/test_best_window.py):

two sites of a tiny fleet, a carbon forecast issued 2024-01-22 05:00 for four hours, one plan made at
that hour, prices; 10 MW for 2 h is best at a from 05:00 (4.8 t CO2, $1,200); a from 07:00 would emit
less (2.4 t) but the plan leaves only 5 MW of headroom at 07:00.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from gridflex_cli.main import app
from warehouse import Warehouse

T0 = "2024-01-22 05:00+00"
FLEET = """
name = "tiny"
[sites.a]
zone = "DE"
lat = 50.0
lon = 8.0
it_capacity_mw = 20.0
base_load_mw = 5.0
import_limit_mw = 40.0
cooling = { kappa0 = 0.25 }
[sites.b]
zone = "GB"
lat = 51.5
lon = 0.0
it_capacity_mw = 30.0
base_load_mw = 5.0
import_limit_mw = 40.0
cooling = { kappa0 = 0.5 }
"""
UTC = dt.UTC


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("query")
    (d / "fleet.toml").write_text(FLEET)
    wh = Warehouse(d / "wh.duckdb")
    t = [f"timestamptz '{T0}' + interval {h} hour" for h in range(4)]
    with wh.writer() as con:
        con.execute(
            "insert into forecasts.carbon (issued_at, target_time, series, model, p10, p50, p90, "
            "degraded) values "
            + ", ".join(
                f"(timestamptz '{T0}', {t[h]}, 'a', 'carbon-tft-x', {p10}, {p50}, {p90}, false)"
                for h, (p10, p50, p90) in enumerate(
                    [(80, 100, 150), (250, 300, 350), (50, 100, 500), (90, 100, 150)]
                )
            )
            + ", "
            + ", ".join(
                f"(timestamptz '{T0}', {t[h]}, 'b', 'persistence', null, 200, null, true)"
                for h in range(4)
            )
        )
        # an older issue at a, which must not be served
        con.execute(
            "insert into forecasts.carbon (issued_at, target_time, series, model, p50) values "
            f"(timestamptz '{T0}' - interval 1 hour, timestamptz '{T0}', 'a', 'old', 999)"
        )
        con.execute(
            "insert into plans.runs (plan_hour, horizon_h, status, forecast_policy, degraded, "
            f"created_at) values (timestamptz '{T0}', 4, 'optimal', 'test', false, now())"
        )
        rows = [("a", h, it, 1.2 * it) for h, it in enumerate([5.0, 5, 15, 5])]
        rows += [("b", h, it, 1.4 * it) for h, it in enumerate([25.0, 5])]
        con.execute(
            "insert into plans.site_hours (plan_hour, target_time, site, it_mw, facility_mw) values "
            + ", ".join(
                f"(timestamptz '{T0}', {t[h]}, '{s}', {it}, {fac})" for s, h, it, fac in rows
            )
        )
        con.execute(
            "insert into plans.job_runs (plan_hour, target_time, job_id, site, power_mw) values "
            f"(timestamptz '{T0}', {t[2]}, 'j2', 'a', 4), (timestamptz '{T0}', {t[2]}, 'j1', 'a', 6)"
        )
        prices = [("DE", h, p) for h, p in enumerate([50, 50, 10, 10])]
        prices += [("GB", h, 20) for h in range(3)]
        con.execute(
            "insert into staging.prices (zone, ts, price, currency, source, received_at) values "
            + ", ".join(f"('{z}', {t[h]}, {p}, 'USD', 'test', now())" for z, h, p in prices)
        )
    return d


def _run(built, *args):
    out = CliRunner().invoke(app, [*args, "--db", str(built / "wh.duckdb")])
    return out


def _ok(built, *args):
    out = _run(built, *args)
    assert out.exit_code == 0, out.output
    return out


# -- gridflex sql ------------------------------------------------------------------------------
def test_sql_json_round_trips_lists_timestamps_numbers_and_null(built):
    q = (
        "select hour, site, jobs_running, it_mw, null::double as nothing, 3 as n "
        "from marts.schedule_current where site = 'a' order by hour"
    )
    rows = json.loads(_ok(built, "sql", q, "--format", "json").stdout)
    assert len(rows) == 4
    r = rows[2]
    assert r["jobs_running"] == ["j1", "j2"]  # a list, sorted by the view
    assert rows[0]["jobs_running"] == []
    assert dt.datetime.fromisoformat(r["hour"]) == dt.datetime(2024, 1, 22, 7, tzinfo=UTC)
    assert r["it_mw"] == 15.0 and isinstance(r["it_mw"], float)
    assert r["n"] == 3 and isinstance(r["n"], int)
    assert r["nothing"] is None


def test_sql_table_shows_lists_iso_times_rounded_floats(built):
    q = (
        "select hour, jobs_running, 1.23456789::double as x from marts.schedule_current "
        "where site = 'a' and jobs_running <> []"
    )
    out = _ok(built, "sql", q).stdout
    assert "| 2024-01-22 07:00+00:00 | [j1, j2]" in out
    assert "1.235" in out and "1.23456789" not in out
    assert "array(" not in out and "Timestamp(" not in out


def test_sql_csv_keeps_floats_as_they_are(built):
    q = "select 1.23456789::double as x, ['a', 'b'] as l, timestamptz '2024-01-22 05:00+00' as t"
    out = _ok(built, "sql", q, "--format", "csv").stdout.splitlines()
    assert out == ["x,l,t", '1.23456789,"[a, b]",2024-01-22T05:00:00+00:00']


def test_sql_runs_several_statements_in_turn(built):
    q = "select 1 as one;\nselect count(*) as sites from plans.site_hours where site = 'b'"
    out = _ok(built, "sql", q).stdout
    assert "select 1 as one\n" in out and "\n\nselect count(*) as sites" in out
    assert out.index("one") < out.index("sites")
    assert "|       2 |" in out  # b's two planned hours
    # csv / json: the last statement's result only
    assert _ok(built, "sql", q, "--format", "csv").stdout.splitlines() == ["sites", "2"]
    assert json.loads(_ok(built, "sql", q, "--format", "json").stdout) == [{"sites": 2}]


def test_sql_names_the_failing_statement_and_stays_read_only(built):
    out = _run(built, "sql", "select 1; select nope from marts.decisions")
    assert (
        out.exit_code == 1 and "statement 2 of 2 (select nope from marts.decisions)" in out.output
    )
    out = _run(built, "sql", "create table plans.x (a int)")
    assert out.exit_code == 1 and "read-only" in out.output
    assert _run(built, "sql", "select 1", "--format", "xml").exit_code == 1


def test_sql_shows_the_marts_comments(built):
    q = (
        "select comment from duckdb_columns() where schema_name = 'marts' "
        "and table_name = 'schedule_current' and column_name = 'expected_emissions_t'"
    )
    rows = json.loads(_ok(built, "sql", q, "--format", "json").stdout)
    assert rows[0]["comment"].endswith("[t CO2]")


# -- gridflex forecast -------------------------------------------------------------------------
def test_forecast_prints_the_latest_issue_with_its_band(built):
    out = _ok(built, "forecast", "--site", "a").stdout
    assert "issued 2024-01-22 05:00 UTC by carbon-tft-x (not degraded)" in out
    assert "999" not in out  # the older issue is not served
    line = next(ln for ln in out.splitlines() if ln.startswith("| 2024-01-22 07:00"))
    assert [c.strip() for c in line.strip("|").split("|")][1:] == [
        "2",
        "50.0",
        "100.0",
        "500.0",
        "450.0",
    ]


def test_forecast_json_records_and_degraded(built):
    rows = json.loads(_ok(built, "forecast", "--site", "b", "--json").stdout)
    assert len(rows) == 4 and {r["model"] for r in rows} == {"persistence"}
    assert all(r["degraded"] is True and r["p90"] is None for r in rows)
    assert [r["p50"] for r in rows] == [200.0] * 4 and [r["lead_h"] for r in rows] == [0, 1, 2, 3]
    assert dt.datetime.fromisoformat(rows[3]["target_time"]) == dt.datetime(
        2024, 1, 22, 8, tzinfo=UTC
    )
    assert "degraded: persistence" in _ok(built, "forecast", "--site", "b").stdout


def test_forecast_for_a_site_without_one_names_it_and_lists_the_others(built):
    out = _run(built, "forecast", "--site", "paris")
    assert out.exit_code == 1
    assert "no carbon forecast for site 'paris'" in out.output
    assert "sites with a carbon forecast: a, b" in out.output
    out = _run(built, "forecast", "--site", "chat", "--target", "load")
    assert out.exit_code == 1 and "no load forecast at all yet" in out.output


# -- gridflex best-window ----------------------------------------------------------------------
def _bw(built, *args):
    return _ok(built, "best-window", "--fleet", str(built / "fleet.toml"), *args)


def test_best_window_is_the_hand_computed_one(built):
    out = _bw(built, "--hours", "2", "--mw", "10").stdout
    assert "a 2024-01-22 05:00 .. 2024-01-22 07:00 UTC: 4.80 t CO2, $1,200" in out
    table = [ln for ln in out.splitlines() if ln.startswith("|      ")]
    assert [ln.split("|")[2].strip() for ln in table] == ["a", "b", "b"]  # best + alternatives
    assert "3 window(s) are infeasible" in out
    assert "headroom 5.0 MW < 10 MW" in out


def test_best_window_json_ranks_everything_and_excludes_the_over_capacity_one(built):
    rows = json.loads(_bw(built, "--hours", "2", "--mw", "10", "--json").stdout)
    ok = [r for r in rows if r["feasible"]]
    assert [(r["rank"], r["site"], r["start"][11:16]) for r in ok] == [
        (1, "a", "05:00"),
        (2, "b", "06:00"),
        (3, "b", "07:00"),
    ]
    assert [r["emissions_t"] for r in ok] == pytest.approx([4.8, 5.8, 6.0])
    assert ok[0]["cost"] == pytest.approx(1200.0) and ok[2]["cost"] is None
    (a7,) = [r for r in rows if r["site"] == "a" and r["start"].startswith("2024-01-22T07")]
    assert a7["feasible"] is False and a7["rank"] is None
    assert a7["emissions_t"] == pytest.approx(2.4)
    assert "headroom 5.0 MW < 10 MW at 2024-01-22 07:00 UTC" in a7["reason"]


def test_best_window_by_cost_on_some_sites(built):
    rows = json.loads(_bw(built, "--hours", "2", "--mw", "10", "--by", "cost", "--json").stdout)
    assert (rows[0]["site"], rows[0]["start"][11:16], rows[0]["cost"]) == ("b", "06:00", 580.0)
    rows = json.loads(_bw(built, "--hours", "2", "--mw", "10", "--sites", "a", "--json").stdout)
    assert {r["site"] for r in rows} == {"a"}


def test_best_window_refuses_what_it_cannot_answer(built):
    args = ["best-window", "--fleet", str(built / "fleet.toml"), "--mw", "10"]
    out = _run(built, *args, "--hours", "2", "--sites", "a,paris")
    assert out.exit_code == 1 and "unknown site(s) paris" in out.output
    out = _run(built, *args, "--hours", "5")
    assert out.exit_code == 1 and "no window of 5 h fits" in out.output
    out = _run(built, *args[:-1], "100", "--hours", "2")
    assert out.exit_code == 1 and "every window is over the headroom" in out.output
