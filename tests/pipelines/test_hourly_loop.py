"""The hourly loop end to end: the code location's own ``hourly_tick`` job run in process (the job the
schedule runs) over a temporary DuckDB file, real tiny TFT training, real HiGHS solves. One warehouse is
bootstrapped and trained once per module."""

import dagster as dg
import pandas as pd
import pytest

from mpc.fleet import load_fleet
from pipelines.lib import plan as pl
from pipelines.lib.demo_source import DEMO_EPOCH
from pipelines.lib.ingest import ingest_window
from pipelines.runner import Runner, partition_key
from warehouse import Warehouse

T0 = DEMO_EPOCH + pd.Timedelta(days=21)  # three weeks of history, as in the demo
HOUR = pd.Timedelta(hours=1)


def runner_for(path, db=None) -> Runner:
    return Runner(
        db=db or path / "gf.duckdb",
        models_dir=path / "models",
        profile="tiny",
        instance=dg.DagsterInstance.ephemeral(),
    )


def run_hours(r: Runner, first: pd.Timestamp, last: pd.Timestamp, **kw):
    return r.tick(first, last, **kw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("loop")
    r = runner_for(path)
    wh = Warehouse(path / "gf.duckdb")
    ingest_window(wh, load_fleet(), DEMO_EPOCH, T0)
    r.train(T0)
    return path, r, wh


def _plans(wh: Warehouse) -> dict[str, pd.DataFrame]:
    return {
        "runs": wh.query(
            "select * exclude (created_at, build_s, solve_s) from plans.runs order by plan_hour"
        ),
        "dispatch": wh.query("select * from plans.dispatch order by hour, site"),
        "state": wh.query("select * from plans.state order by hour"),
        "site_hours": wh.query(
            "select * from plans.site_hours order by plan_hour, target_time, site"
        ),
        "carbon": wh.query(
            "select * from forecasts.carbon order by issued_at, series, target_time"
        ),
    }


def test_three_hours_end_to_end_and_rerun_is_idempotent(trained):
    path, res, wh = trained
    r = run_hours(res, T0, T0 + 2 * HOUR)
    assert r.success
    assert all(e.passed for e in r.get_asset_check_evaluations() if e.severity.value == "ERROR")
    H = load_fleet().planning.horizon_h

    runs = wh.query("select * from plans.runs order by plan_hour")
    assert runs.plan_hour.tolist() == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert set(runs.status) <= {"optimal", "feasible"} and (runs.mip_gap <= 0.01 + 1e-9).all()
    assert not runs.degraded.any(), runs.degraded_reason.tolist()  # a fresh TFT served every hour
    assert runs.forecast_policy.str.contains("carbon-tft").all()

    sched = wh.query("select * from marts.schedule_current")
    assert (
        len(sched) == 3 * H
        and sched.plan_hour.nunique() == 1
        and sched.plan_hour[0] == T0 + 2 * HOUR
    )
    decisions = wh.query("select * from marts.decisions")
    assert len(decisions) == 9 and decisions.hour.nunique() == 3
    # power balance of each committed hour: facility + charge + export = generation + discharge + import
    d = wh.query("select * from plans.dispatch")
    lhs = d.facility_mw + d.charge_mw + d.export_mw
    rhs = d.gen_used_mw + d.discharge_mw + d.import_mw + d.shed_mw
    assert (lhs - rhs).abs().max() < 1e-4

    acc = wh.query("select * from marts.forecast_accuracy")
    assert set(acc.target) == {"carbon", "load"} and acc.actual.notna().all()
    daily = wh.query("select * from marts.emissions_daily")
    assert len(daily) == 3 and daily.agnostic_emissions_t.notna().all()
    # like for like: the work each policy did over the hours both have, and gCO2 per kWh of it
    fleet_day = wh.query("select * from marts.fleet_daily")
    agn = wh.query("select * from plans.agnostic where hour in (select hour from plans.dispatch)")
    disp = d[d.hour.isin(agn.hour)]
    assert len(fleet_day) == 1 and fleet_day.compared_site_hours[0] == len(agn) > 0
    assert fleet_day.site_hours[0] == len(d) and fleet_day.emissions_t[0] == pytest.approx(
        d.emissions_t.sum()
    )  # no hour re-stated yet: realised = committed
    assert fleet_day.compared_training_mwh[0] == pytest.approx(disp.training_mw.sum())
    assert fleet_day.agnostic_training_mwh[0] == pytest.approx(agn.training_mw.sum())
    assert fleet_day.it_mwh[0] == pytest.approx(d.it_mw.sum())
    assert fleet_day.g_per_it_kwh[0] == pytest.approx(1e3 * d.emissions_t.sum() / d.it_mw.sum())
    requests = wh.query("select sum(units) n from plans.dispatch_routing").n[0]
    assert fleet_day.inference_requests[0] == pytest.approx(requests) and requests > 0
    assert agn.training_mw.notna().all() and agn.inference_mw.notna().all()
    g = 1e3 * disp.emissions_t.sum() / (disp.training_mw.sum() + disp.inference_mw.sum())
    ag = 1e3 * agn.emissions_t.sum() / (agn.training_mw.sum() + agn.inference_mw.sum())
    assert fleet_day.like_for_like_saved_pct[0] == pytest.approx(100 * (1 - g / ag))
    total = wh.query("select * from marts.fleet_total")
    assert len(total) == 1 and total.emissions_t[0] == pytest.approx(fleet_day.emissions_t.sum())
    assert not total.embodied_accounted[0]  # the demo fleet sets no embodied emissions
    marts_md = res.marts().asset_materializations_for_node("marts")[-1].metadata
    assert marts_md["like_for_like_saved_pct"].value == round(100 * (1 - g / ag), 2)
    assert marts_md["agnostic_training_mwh"].value == round(agn.training_mw.sum(), 1)
    assert "not accounted" in marts_md["embodied"].value
    assert marts_md["fleet_emissions"].value.startswith("![plot](data:image/png;base64,")

    # one record per hour: each hourly partition of the plan, the dispatch and the forecasts carries
    # its own hour's metadata (a ranged run gave every partition the last hour's), and the blocking
    # plan check was evaluated in that hour's own run
    for run in runs.itertuples():
        pk = partition_key(run.plan_hour)
        recs = {
            a: res.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(a), asset_partitions=[pk]), limit=1
            ).records
            for a in ("mpc_plan", "dispatch", "carbon_forecast")
        }
        assert all(len(v) == 1 for v in recs.values()), pk
        plan = recs["mpc_plan"][0]
        md = plan.asset_materialization.metadata
        assert pd.Timestamp(md["plan_hour"].value) == pd.Timestamp(run.plan_hour).tz_convert("UTC")
        assert md["window_net_benefit_usd"].value == round(run.objective)
        assert md["hours_planned"].value == 1
        assert md["plan"].value.startswith("![plot](data:image/png;base64,")  # its own plot
        chain = wh.query("select chain_hash from plans.audit where plan_hour = ?", [run.plan_hour])
        assert md["audit_chain_hash"].value == chain.chain_hash[0][:16]  # its own audit record
        assert recs["dispatch"][0].asset_materialization.metadata["hours"].value == 1
        assert (
            len({plan.run_id, recs["dispatch"][0].run_id, recs["carbon_forecast"][0].run_id}) == 1
        )
        checks = [
            e.dagster_event.event_specific_data
            for e in res.instance.all_logs(
                plan.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
        ]
        assert [c.passed for c in checks if c.check_name == "plan_is_sound"] == [True]

    # re-running the middle hour (the whole tick: ingest, forecast, plan) changes nothing
    before = _plans(wh)
    again = res.tick(T0 + HOUR)
    assert again.success
    meta = again.asset_materializations_for_node("mpc_plan")[0].metadata
    assert meta["hours_unchanged"].value == 1
    after = _plans(wh)
    for name in before:
        pd.testing.assert_frame_equal(
            before[name], after[name], check_exact=False, rtol=1e-6, obj=name
        )


def test_state_carries_running_jobs_and_battery_across_partitions(trained):
    path, res, wh = trained
    assert run_hours(res, T0, T0 + 2 * HOUR).success
    states = {
        r.hour: pl.state_from_json(r.state)
        for r in wh.query("select * from plans.state").itertuples()
    }
    runs = wh.query("select plan_hour, jobs_started from plans.runs order by plan_hour")
    dispatch_rows = wh.query("select hour, site, jobs_running, soc_mwh from plans.dispatch")
    started_any = False
    for row in runs.itertuples():
        nxt = states[row.plan_hour + HOUR]
        assert nxt.time == row.plan_hour + HOUR
        # battery: the next state's SoC is what the committed hour left
        for s in dispatch_rows[dispatch_rows.hour == row.plan_hour].itertuples():
            assert nxt.soc_mwh[s.site] == pytest.approx(s.soc_mwh, abs=1e-6)
        for job in row.jobs_started:
            started_any = True
            site = [
                s.site
                for s in dispatch_rows[dispatch_rows.hour == row.plan_hour].itertuples()
                if job in list(s.jobs_running)
            ][0]
            # a job started in hour t is still running at the same site in hour t+1 (or finished)
            assert job in nxt.finished or nxt.running[job][0] == site
            if job in nxt.running and row.plan_hour + HOUR < T0 + 3 * HOUR:
                later = dispatch_rows[
                    (dispatch_rows.hour == row.plan_hour + HOUR) & (dispatch_rows.site == site)
                ]
                if len(later):
                    assert job in list(later.jobs_running.iloc[0])
    assert started_any, "the demo queue should start at least one job in these hours"


def test_a_skipped_hour_is_refused_with_what_to_run(trained):
    path, res, wh = trained
    assert run_hours(res, T0, T0).success
    with pytest.raises(pl.PlanError, match="plan the hours in between"):
        pl.plan_hour(wh, load_fleet(), T0 + 5 * HOUR)


def test_after_the_demo_a_tick_for_today_says_what_to_run(trained, tmp_path):
    """Before: after `make demo` the hourly schedule failed for the current hour with a stack trace."""
    import shutil

    from pipelines.runner import RunFailed

    path, _, _ = trained
    shutil.copy(path / "gf.duckdb", tmp_path / "gf.duckdb")
    r = runner_for(path, db=tmp_path / "gf.duckdb")
    today = pd.Timestamp.now(tz="UTC").floor("h")  # the hour the schedule would plan now
    with pytest.raises(RunFailed) as err:
        r.tick(today)
    msg = str(err.value)
    assert "nothing to forecast from" in msg and "gridflex bootstrap --days 30" in msg
    assert "Traceback" not in msg
    # what the README says to run: bootstrap history up to today, then a fresh plan chain
    r.ingest(today - pd.Timedelta(days=2), today - HOUR)
    out = r.tick(today, fresh_start=True)
    assert out.success
    run = (
        Warehouse(tmp_path / "gf.duckdb")
        .query("select * from plans.runs where plan_hour = ?", [today.to_pydatetime()])
        .iloc[0]
    )
    assert run.degraded and "no usable carbon model" in run.degraded_reason  # the demo's is stale


def test_degraded_mode_plans_on_persistence_and_says_so(tmp_path):
    runner = runner_for(tmp_path)
    wh = Warehouse(tmp_path / "gf.duckdb")
    ingest_window(
        wh, load_fleet(), DEMO_EPOCH + pd.Timedelta(days=10), T0
    )  # no model is ever trained
    r = runner.tick(T0)
    assert r.success
    run = wh.query("select * from plans.runs").iloc[0]
    assert run.degraded and run.forecast_policy == "persistence"
    assert "no usable carbon model" in run.degraded_reason or "persistence" in run.degraded_reason
    fc = wh.query("select distinct model, degraded from forecasts.carbon")
    assert fc.model.tolist() == ["persistence"] and fc.degraded.all()
    meta = r.asset_materializations_for_node("mpc_plan")[0].metadata
    assert meta["degraded"].value is True


def test_plan_without_forecast_rows_degrades_inside_the_plan(tmp_path):
    wh = Warehouse(tmp_path / "gf.duckdb")
    ingest_window(wh, load_fleet(), DEMO_EPOCH + pd.Timedelta(days=10), T0 + HOUR)
    out = pl.plan_hour(wh, load_fleet(), T0)  # no forecast asset ran at all
    assert out.forecast.degraded and out.forecast.policy == "persistence"
    assert (
        len(wh.query("select * from forecasts.load where issued_at = ?", [T0.to_pydatetime()])) > 0
    )


def test_backfill_range_equals_hour_by_hour_runs(trained, tmp_path):
    """A ranged run (one run over several hours, planned in order — what launching the job with a
    partition range does) writes the same plans as one run per hour (what ticks and backfills do)."""
    import shutil

    path, res, wh = trained
    copies = []
    for name in ("range", "hourly"):
        d = tmp_path / name
        d.mkdir()
        shutil.copy(path / "gf.duckdb", d / "gf.duckdb")
        r = runner_for(path, db=d / "gf.duckdb")
        w = Warehouse(d / "gf.duckdb")
        pl.reset_plans(w)  # start both from the trained, never-planned warehouse
        with w.writer() as con:
            con.execute("delete from forecasts.carbon")
            con.execute("delete from forecasts.load")
        copies.append((r, w))
    (r_range, w_range), (r_hourly, w_hourly) = copies
    ranged = r_range.defs.resolve_job_def("hourly_tick").execute_in_process(
        run_config=r_range._config(),
        instance=r_range.instance,
        tags=r_range._range_tags(T0, T0 + 2 * HOUR),
    )
    assert ranged.success
    md = ranged.asset_materializations_for_node("mpc_plan")[0].metadata
    assert md["hours_planned"].value == 3
    for h in range(3):
        assert run_hours(r_hourly, T0 + h * HOUR, T0 + h * HOUR).success
    a, b = _plans(w_range), _plans(w_hourly)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=False, rtol=1e-6, obj=name)


def test_failed_retraining_keeps_the_previous_model_in_use(trained):
    from pipelines.lib import forecast as fc

    path, res, wh = trained
    before = fc.usable_model(wh, "carbon", T0, fc.DEFAULT_MAX_AGE)
    assert before is not None
    with pytest.raises(Exception, match="has 48 hours, needs at least"):
        # two days of history cannot fill the encoder: training must fail, loudly
        fc.train_model(
            wh,
            load_fleet(),
            "carbon",
            path / "models",
            train_end=DEMO_EPOCH + pd.Timedelta(days=2),
            history_days=2,
            profile="tiny",
        )
    failed = wh.query("select * from forecasts.models where status = 'failed'")
    assert len(failed) == 1 and failed.message[0]
    after = fc.usable_model(wh, "carbon", T0, fc.DEFAULT_MAX_AGE)
    assert after["model_id"] == before["model_id"]


def test_pipeline_serves_exactly_the_saved_served_forecaster(trained):
    """Training saves one ServedForecaster directory (manifest + members); the hourly forecast the
    pipeline stores equals the library's ``ServedForecaster.predict`` on the same inputs (history,
    weather forecasts as known at each issue it recomputes, intervals refreshed on the stored
    forecasts whose actuals have arrived)."""
    import numpy as np

    from forecasting.forecaster import ServedForecaster, read_manifest
    from pipelines.lib import forecast as fc

    _, _, wh = trained
    fleet = load_fleet()
    H = fleet.planning.horizon_h
    row = fc.usable_model(wh, "carbon", T0, fc.DEFAULT_MAX_AGE)
    m = read_manifest(row["checkpoint_path"])
    assert m["kind"] == "served" and "tft" in m["weights"]
    assert set(m["members"]) == set(m["weights"])
    v = m["validation"]["scores"]
    assert {"served", "persistence", "tft"} <= set(v)
    models = wh.query("select * from forecasts.models where model_id = ?", [row["model_id"]])
    assert models.val_mae[0] == pytest.approx(v["served"]["mae"])
    assert models.val_mae_persistence[0] == pytest.approx(v["persistence"]["mae"])
    # the model asset says the same to a person: rounded, with units
    ev = trained[1].instance.get_latest_materialization_event(dg.AssetKey("carbon_model"))
    md = {k: getattr(x, "value", x) for k, x in ev.asset_materialization.metadata.items()}
    assert md["served"] == m["served"]
    assert md["val_mae (g/kWh)"] == round(v["served"]["mae"], 1)
    assert md["val_mae_persistence (g/kWh)"] == round(v["persistence"]["mae"], 1)
    assert md["val_mape (%)"] == round(v["served"]["mape"], 2)
    assert md["members_val_mae (g/kWh)"]["tft"] == round(v["tft"]["mae"], 1)

    # the latest hour with complete inputs: after the other tests' ticks, stored forecasts with
    # actuals exist and refresh the intervals
    last = wh.query("select max(ts) t from staging.carbon_intensity").t[0]
    t = min(pd.Timestamp(last) + HOUR, T0 + 2 * HOUR)
    served = ServedForecaster.load(row["checkpoint_path"])
    hist = fc.history(
        wh, fleet, "carbon", t - pd.Timedelta(hours=fc.history_hours(served)), t
    ).dropna()
    need = served.issues_needed([t], hist.ts.min())
    future = fc.future_covariates(wh, fleet, "carbon", need, H, stand_in_before=t)
    scored = fc.stored_scored(wh, "carbon", t)
    expect = served.recalibrated(scored).predict(hist, [t], future)
    got = fc.issue_forecast(wh, fleet, "carbon", t)
    assert got.model == row["model_id"] and not got.degraded
    g = got.frame.sort_values(["series", "target_time"]).reset_index(drop=True)
    e = expect.sort_values(["series", "target_time"]).reset_index(drop=True)
    assert len(g) == H * len(fleet.sites)
    np.testing.assert_allclose(g["p50"], e["p50"].clip(lower=0))
    np.testing.assert_allclose(g["p90"], np.maximum(e["p90"], e["p50"].clip(lower=0)))
    np.testing.assert_allclose(g["p10"], np.minimum(e["p10"], e["p50"]).clip(lower=0))


def test_intervals_refresh_from_every_daily_model_served_not_the_newest_alone(trained, tmp_path):
    """The conformal refresh reads the served forecasts of the last 14 days whichever daily model
    issued them (a model retrained daily had only its validation residuals: the replay's carbon
    p10-p90 covered 0.62), and not the persistence stand-ins of degraded hours."""
    import shutil

    from pipelines.lib import forecast as fc

    path, _, _ = trained
    shutil.copy(path / "gf.duckdb", tmp_path / "gf.duckdb")
    wh = Warehouse(tmp_path / "gf.duckdb")
    fleet = load_fleet()
    with wh.writer() as con:  # what a plan writes first: the marts join forecasts to sites by it
        for n, site in fleet.sites.items():
            con.execute(
                "insert into plans.sites (site, zone, carbon_series) values (?, ?, ?) "
                "on conflict do nothing",
                [n, site.zone, fleet.carbon_series(n)],
            )
    t = T0 - HOUR  # actuals up to T0 are stored
    issued = t - pd.Timedelta(hours=6)
    act = wh.query(
        "select s.site as series, c.ts as target_time, c.value from staging.carbon_best c "
        "join plans.sites s on s.carbon_series = c.series where c.ts >= ? and c.ts < ?",
        [issued.to_pydatetime(), t.to_pydatetime()],
    )
    assert len(act) == 6 * len(fleet.sites)

    def rows(model, factor, degraded):
        return act.assign(
            issued_at=issued,
            model=model,
            p10=act.value * factor * 0.9,
            p50=act.value * factor,
            p90=act.value * factor * 1.1,
            degraded=degraded,
            degraded_reason="model failed" if degraded else None,
        )[list(fc.FORECAST_COLUMNS)]

    frame = pd.concat(
        [rows("carbon-tft-yesterday", 1.25, False), rows("persistence", 0.5, True)],
        ignore_index=True,
    )
    with wh.writer() as con:
        con.register("f", frame)
        con.execute("insert into forecasts.carbon select * from f")
    scored = fc.stored_scored(wh, "carbon", t)
    mine = scored[scored.issued_at == issued]
    assert len(mine) == len(act)  # yesterday's model's forecasts, with their actuals
    assert (mine.p50 / mine.actual).round(6).eq(1.25).all()  # not the persistence stand-in
