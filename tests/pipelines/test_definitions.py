"""The code location loads, and its jobs, schedules and checks are there and behave."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pipelines.definitions import defs
from pipelines.defs.schedules import hourly_tick_schedule
from warehouse import Warehouse

REPO = Path(__file__).resolve().parents[2]


def test_definitions_load_with_assets_checks_jobs_schedules():
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {
        "carbon_intensity",
        "weather",
        "prices",
        "generation",
        "inference_demand",
        "job_queue",
        "carbon_model",
        "load_model",
        "carbon_forecast",
        "load_forecast",
        "mpc_plan",
        "dispatch",
        "marts",
    } <= keys
    assert {"hourly_tick", "retrain_models"} <= {j.name for j in repo.get_all_jobs()}
    assert {s.name for s in repo.schedule_defs} == {
        "hourly_tick_schedule",
        "retrain_models_schedule",
    }
    checks = {k.name for k in repo.asset_graph.asset_check_keys}
    assert {"carbon_no_gaps", "carbon_forecast_complete", "plan_is_sound"} <= checks


def test_mpc_plan_depends_on_its_previous_hour():
    spec = next(s for s in defs.resolve_all_asset_specs() if s.key.to_user_string() == "mpc_plan")
    self_dep = [d for d in spec.deps if d.asset_key == spec.key]
    assert self_dep and isinstance(self_dep[0].partition_mapping, dg.TimeWindowPartitionMapping)
    assert self_dep[0].partition_mapping.start_offset == -1


def test_hourly_schedule_targets_the_hour_that_is_starting():
    when = dt.datetime(
        2026, 3, 29, 1, 5, tzinfo=dt.UTC
    )  # the night Europe moves its clocks: UTC is unaffected
    ctx = dg.build_schedule_context(scheduled_execution_time=when)
    req = hourly_tick_schedule(ctx)
    assert req.partition_key == "2026-03-29-01:00"


def test_cli_definitions_validate(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}  # a clean clone has no .dagster_home yet
    out = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "pipelines.definitions"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_decision_assets_backfill_one_hour_per_run():
    """A backfill of the forecasts, the plan or the dispatch runs one hour per run, so each hourly
    partition gets its own record (Dagster gives every partition of a ranged run the same one); the
    ingest assets back-fill a range in one run."""
    repo = defs.get_repository_def()
    policy = {
        k.to_user_string(): repo.asset_graph.get(k).backfill_policy
        for k in repo.asset_graph.get_all_asset_keys()
    }
    for name in ("carbon_forecast", "load_forecast", "mpc_plan", "dispatch"):
        assert policy[name].max_partitions_per_run == 1, name
    assert policy["carbon_intensity"].max_partitions_per_run is None  # single run


def test_dg_check_defs(tmp_path):
    """`dg check defs` (the dg CLI `make dev` runs, configured by pyproject's [tool.dg]) loads them."""
    dg_cli = Path(sys.executable).parent / "dg"
    if not dg_cli.exists():
        pytest.skip("dagster-dg-cli is not installed (it comes with the dev extra)")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    out = subprocess.run(
        [str(dg_cli), "check", "defs"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "All definitions loaded successfully" in out.stdout + out.stderr


@pytest.mark.slow
def test_concurrent_partition_runs_with_multiprocess_executor_do_not_hit_duckdb_locks(tmp_path):
    """Two CLI runs at once, each with Dagster's default multiprocess executor running three ingest
    steps in parallel processes, all writing one DuckDB file — and no pool limit configured, the worst
    case: the warehouse's file lock must serialise them."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dg.DagsterInstance.from_config(
        str(home)
    ).dispose()  # create its storage before two processes race to
    env = {**os.environ, "DAGSTER_HOME": str(home), "GRIDFLEX_DB": str(tmp_path / "gf.duckdb")}
    cmd = [
        sys.executable,
        "-m",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "pipelines.definitions",
        "--select",
        "carbon_intensity,prices,generation",
        "--partition",
    ]
    procs = [
        subprocess.Popen(
            [*cmd, p],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for p in ("2026-01-05-03:00", "2026-01-05-04:00")
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-3000:]
        assert "Could not set lock" not in out
    wh = Warehouse(tmp_path / "gf.duckdb")
    hours = wh.query("select distinct ts from staging.carbon_intensity order by ts").ts.tolist()
    assert hours == [
        pd.Timestamp("2026-01-05 03:00", tz="UTC"),
        pd.Timestamp("2026-01-05 04:00", tz="UTC"),
    ]
    # one log row per series written (3 zones' carbon, 3 zones' prices) per run; generation had no
    # weather to compute from (not selected) and wrote nothing
    log = wh.query("select target_table, count(*) n from raw.ingest_log group by all order by 1")
    assert log.to_dict("records") == [
        {"target_table": "staging.carbon_intensity", "n": 6},
        {"target_table": "staging.prices", "n": 6},
    ]
