"""Closed-loop backtests: the CLI over real Electricity Maps exports, and the demo asset."""

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pipelines.defs.backtest.assets import demo_backtest

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "policy",
    "emissions",
    "cost",
    "missed_deadlines",
    "savings_vs_agnostic_pct",
    "share_of_oracle_savings",
    "jobs_completed",
    "training_mwh",
    "g_per_useful_kwh",
    "like_for_like_saving_pct",
    "budget_days_over",
    "budget_realised_over_t",
}


@pytest.mark.shared_data
@pytest.mark.slow
def test_backtest_cli_json_on_real_exports(shared_data, tmp_path):
    em = [
        shared_data / "electricitymaps" / f"{z}_2022_hourly.csv"
        for z in ("US-CAL-CISO", "DE-LU", "GB")
    ]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridflex_cli.main",
            "backtest",
            "--days",
            "1",
            "--start",
            "2022-05-02",
            "--profile",
            "tiny",
            "--json",
            "--db",
            str(tmp_path / "gf.duckdb"),
            "--em-csv",
            *map(str, em),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {r["policy"]: r for r in json.loads(out.stdout)}
    assert set(rows) == {"oracle", "persistence", "tft", "static", "carbon_agnostic"}
    assert all(set(r) == KEYS for r in rows.values())
    # perfect foresight cannot do worse than the carbon-agnostic policy on the objective it optimises;
    # on emissions it saves here (internal carbon price), and its share of its own savings is 1
    assert rows["oracle"]["savings_vs_agnostic_pct"] > 0
    assert rows["oracle"]["share_of_oracle_savings"] == pytest.approx(1.0)
    assert rows["carbon_agnostic"]["savings_vs_agnostic_pct"] == 0
    assert all(r["missed_deadlines"] == 0 for r in rows.values())


def test_backtest_cli_names_a_missing_zone(shared_data, tmp_path):
    em = shared_data / "electricitymaps" / "GB_2022_hourly.csv"
    out = subprocess.run(
        [sys.executable, "-m", "gridflex_cli.main", "backtest", "--days", "1", "--em-csv", str(em)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1 and "sanjose" in out.stderr and "US-CAL-CISO" in out.stderr


@pytest.mark.slow
def test_demo_backtest_asset(tmp_path):
    from pipelines.defs.resources import FleetResource, ModelStoreResource, WarehouseResource

    res = {
        "warehouse": WarehouseResource(path=str(tmp_path / "gf.duckdb")),
        "fleet": FleetResource(),
        "models": ModelStoreResource(directory=str(tmp_path / "m"), profile="tiny"),
    }
    r = dg.materialize(
        [demo_backtest],
        resources=res,
        run_config={"ops": {"demo_backtest": {"config": {"days": 1, "policies": ["oracle"]}}}},
    )
    assert r.success
    md = r.asset_materializations_for_node("demo_backtest")[0].metadata
    assert "data:image/png;base64" in md["plot"].value
    stored = (
        res["warehouse"].get().query("select policy, savings_vs_agnostic_pct from plans.backtests")
    )
    assert set(stored.policy) == {"oracle", "carbon_agnostic"}
    assert stored.set_index("policy").loc["oracle", "savings_vs_agnostic_pct"] > 0


def test_backtest_takes_the_fleet_as_it_is(tmp_path):
    """A fleet with renamed sites and classes and its own job file (before: `eligible_sites: empty`
    for renamed sites and a KeyError for renamed classes)."""
    import json
    import subprocess
    import sys

    from tests.pipelines import realsource as rs

    grid = rs.recordings()["grid"]
    files = [
        rs.em_export(tmp_path / f"{z}_2026_hourly.csv", grid, z)
        for z in ("US-CAL-CISO", "DE", "GB")
    ]
    jobs = rs.jobs_csv(tmp_path / "queue.csv")
    fleet = rs.fleet_toml(
        tmp_path / "fleet.toml", carbon="electricitymaps_csv", jobs="csv", jobs_path="queue.csv"
    )
    start = rs.START + pd.Timedelta(days=4)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridflex_cli.main",
            "backtest",
            "--fleet",
            str(fleet),
            "--start",
            str(start.date()),
            "--days",
            "1",
            "--policies",
            "oracle,persistence",
            "--json",
            "--em-csv",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {r["policy"]: r for r in json.loads(out.stdout)}
    assert set(rows) == {"oracle", "persistence", "carbon_agnostic"}
    assert rows["oracle"]["emissions"] <= rows["carbon_agnostic"]["emissions"]
    assert "job queue: " + str(jobs) in out.stderr


@pytest.mark.slow
def test_backtest_tft_policy_uses_the_served_forecaster(tmp_path):
    """The backtest's ``tft`` policy fits and saves the same ServedForecaster the pipeline serves
    (pipelines.lib.forecast.served_forecaster) and plans on its p50, issue by issue."""
    import numpy as np

    from forecasting.forecaster import ServedForecaster, read_manifest
    from mpc.fleet import load_fleet
    from pipelines.lib import backtest as bt
    from pipelines.lib.demo_source import DEMO_EPOCH
    from pipelines.lib.forecast import served_forecaster

    fleet = load_fleet()
    start = DEMO_EPOCH + pd.Timedelta(days=21)
    data = bt.load_demo_data(fleet, start, 1)
    fn, extras = bt.tft_forecast_fn(data, fleet, tmp_path / "m", "tiny", echo=lambda s: None)
    assert isinstance(fn.served, ServedForecaster)
    from pipelines.lib.forecast import spec_for, train_config

    pipeline = served_forecaster(
        spec_for("carbon", fleet.planning.horizon_h, fleet, weather=False),
        train_config("tiny"),
        tmp_path / "x",
    )
    assert set(fn.served.fitted_members) == set(pipeline.members)  # the same members, fitted
    assert (fn.served.must_include, fn.served.days) == (pipeline.must_include, pipeline.days)
    assert fn.served.fallback_to_persistence == pipeline.fallback_to_persistence is True
    tft = fn.served.fitted_members["tft"]
    assert tft.spec == pipeline.members["tft"].spec and tft.config == pipeline.members["tft"].config
    m = read_manifest(tmp_path / "m")
    # the tiny TFT may lose to persistence on validation: then persistence is served, and said
    assert m["kind"] == "served" and extras["served"] == m["served"]
    assert "tft" in m["weights"] or (
        set(m["weights"]) == {"persistence"} and "lost to persistence" in m["served"]
    )
    assert set(m["validation"]["scores"]) >= {"served", "persistence", "tft"}
    saved = ServedForecaster.load(tmp_path / "m")
    realised = data.realised.carbon.stack().rename("value").rename_axis(["ts", "series"])
    full = pd.concat([data.carbon_history, realised.reset_index()], ignore_index=True)
    full = full.drop_duplicates(["series", "ts"])
    H = fleet.planning.horizon_h
    for t in (start, start + pd.Timedelta(hours=7)):
        index = pd.date_range(t, periods=H, freq="h", tz="UTC")
        planned = fn(t, index).carbon
        alone = saved.predict(full, [t]).pivot(index="target_time", columns="series", values="p50")
        np.testing.assert_allclose(
            planned.to_numpy(), alone.reindex(index)[list(fleet.sites)].clip(lower=0).to_numpy()
        )
