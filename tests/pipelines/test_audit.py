"""Decisions you can audit (``plans.audit``, ``gridflex verify``, ``gridflex explain``) on the real
path: a demo warehouse ingested, a tiny TFT trained and three hours planned by the code location's own
``hourly_tick`` job, once per module; each test alters its own copy of the DuckDB file."""

import hashlib
import json
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gridflex_cli.main import app
from mpc import best_window
from mpc.fleet import load_fleet
from mpc.solve import HIGHS_OPTIONS
from pipelines.lib import explain
from pipelines.lib import plan as pl
from pipelines.lib.demo_source import DEMO_EPOCH
from pipelines.lib.ingest import ingest_window, store
from pipelines.runner import Runner, partition_key
from warehouse import Warehouse, audit

T0 = DEMO_EPOCH + pd.Timedelta(days=21)
HOUR = pd.Timedelta(hours=1)
HOURS = [T0, T0 + HOUR, T0 + 2 * HOUR]
cli = CliRunner()


def _py(t):
    return pd.Timestamp(t).to_pydatetime()


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    path = tmp_path_factory.mktemp("audit")
    r = Runner(
        db=path / "gf.duckdb",
        models_dir=path / "models",
        profile="tiny",
        instance=dg.DagsterInstance.ephemeral(),
    )
    ingest_window(Warehouse(path / "gf.duckdb"), load_fleet(), DEMO_EPOCH, T0)
    r.train(T0)
    assert r.tick(HOURS[0], HOURS[-1]).success
    return path, r


@pytest.fixture
def wh(planned, tmp_path) -> Warehouse:
    """A private copy of the planned warehouse (the models stay where they are)."""
    shutil.copy(planned[0] / "gf.duckdb", tmp_path / "gf.duckdb")
    return Warehouse(tmp_path / "gf.duckdb")


def _sql(wh: Warehouse, sql: str, params=None) -> None:
    with wh.writer() as con:
        con.execute(sql, params or [])


def _spec(wh: Warehouse, hour, name: str) -> dict:
    row = wh.query("select inputs from plans.audit where plan_hour = ?", [_py(hour)])
    return next(s for s in json.loads(row.inputs[0]) if s["name"] == name)


def _verify_cli(wh: Warehouse, *args):
    return cli.invoke(app, ["verify", "--db", str(wh.path), *args])


def _site_series():
    fleet = load_fleet()
    site = next(iter(fleet.sites))
    return site, fleet.carbon_series(site)


# ------------------------------------------------------------------------------------------------
# the record


def test_every_planned_hour_is_audited_in_its_own_run_and_chained(planned, wh):
    _, r = planned
    a = wh.query("select * from plans.audit order by plan_hour")
    runs = wh.query("select plan_hour, inputs_hash, status, mip_gap from plans.runs order by 1")
    assert a.plan_hour.tolist() == runs.plan_hour.tolist() == HOURS
    assert a.inputs_hash.tolist() == runs.inputs_hash.tolist()
    assert a.status.tolist() == runs.status.tolist()
    assert np.allclose(a.mip_gap, runs.mip_gap)
    # the chain: the first hour starts one, each later hour continues the previous one
    assert a.chain_start.tolist() == [True, False, False]
    assert a.prev_chain_hash.tolist() == ["", a.chain_hash[0], a.chain_hash[1]]
    for row in a.to_dict("records"):
        assert row["record_hash"] == audit.record_hash(row)
        want = hashlib.sha256((row["prev_chain_hash"] + row["record_hash"]).encode()).hexdigest()
        assert row["chain_hash"] == want
    # the Dagster run that planned each hour
    for row in a.itertuples():
        rec = r.instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("mpc_plan"), asset_partitions=[partition_key(row.plan_hour)]
            ),
            limit=1,
        ).records[0]
        assert row.dagster_run_id == rec.run_id
    assert a.dagster_run_id.nunique() == 3
    # the fleet as canonical JSON, the solver settings, the code version
    fleet = load_fleet()
    doc = json.dumps(fleet.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    assert set(a.fleet_hash) == {hashlib.sha256(doc.encode()).hexdigest()}
    solver = json.loads(a.solver[0])
    assert solver["highs_options"] == HIGHS_OPTIONS
    assert solver["mip_gap"] == fleet.planning.mip_gap
    assert a.code_version.notna().all()


def test_input_hash_is_the_documented_canonical_hash(wh):
    """Recompute one recorded input hash by hand from the documented rule."""
    site, series = _site_series()
    spec = _spec(wh, T0 + HOUR, f"carbon series {site} / {series}")
    assert spec["from"] == (T0 + HOUR - pd.Timedelta(days=31)).isoformat()
    assert spec["to"] == (T0 + 2 * HOUR).isoformat()
    cols = ["series", "ts", "source", "value", "is_estimated", "estimation_method"]
    assert spec["columns"] == cols
    df = wh.query(
        f"select {', '.join(cols)}, received_at from staging.carbon_intensity "
        "where series = ? and ts >= ? and ts < ?",
        [series, _py(spec["from"]), _py(spec["to"])],
    )
    lines = sorted(
        "\x1f".join(
            [
                r.series,
                str(pd.Timestamp(r.ts).value // 1000),
                r.source,
                repr(round(r.value, 9) + 0.0),
                "true" if r.is_estimated else "false",
                "null" if r.estimation_method is None else r.estimation_method,
            ]
        )
        for r in df.itertuples()
    )
    text = "\x1f".join(cols) + "\n" + "\x1e".join(lines)
    assert spec["rows"] == len(df) == 21 * 24 + 2  # three weeks of history and the hour planned
    assert spec["hash"] == hashlib.sha256(text.encode()).hexdigest()
    assert pd.Timestamp(spec["received_at_max"]) == df.received_at.max()
    assert sum(n for n, _ in spec["days"].values()) == len(df)


def test_forecast_and_checkpoints_are_recorded(planned, wh):
    f = json.loads(
        wh.query("select forecast from plans.audit where plan_hour = ?", [_py(T0)])["forecast"][0]
    )
    policy = wh.query("select forecast_policy from plans.runs where plan_hour = ?", [_py(T0)])
    assert f["policy"] == policy.forecast_policy[0]
    models = wh.query("select model_id, checkpoint_path from forecasts.models where status = 'ok'")
    assert set(f["models"]) == set(models.model_id)
    for m in models.itertuples():  # sha256 over the sorted relative paths and contents
        root = planned[0] / "models"
        assert str(root) in m.checkpoint_path
        h = hashlib.sha256()
        base = Path(m.checkpoint_path)
        for p in sorted(x for x in base.rglob("*") if x.is_file()):
            h.update(p.relative_to(base).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
        assert f["models"][m.model_id]["sha256"] == h.hexdigest()
    n = wh.query("select count(*) n from forecasts.carbon where issued_at = ?", [_py(T0)]).n[0]
    assert f["targets"]["carbon"]["rows"] == n > 0


# ------------------------------------------------------------------------------------------------
# verify


def test_verify_passes_on_the_untouched_warehouse(wh):
    rep = audit.verify(wh)
    assert rep.ok, [str(f) for f in rep.failures]
    assert rep.hours == HOURS
    out = _verify_cli(wh)
    assert out.exit_code == 0, out.output
    assert "OK: 3 audited hour(s) checked" in out.output and "hash chain holds" in out.output
    ranged = _verify_cli(wh, "--from", f"{T0 + HOUR:%Y-%m-%d %H:%M}")
    assert ranged.exit_code == 0 and "OK: 2 audited hour(s)" in ranged.output


def test_a_carbon_value_altered_with_sql_is_named_with_its_hour_and_series(wh):
    site, series = _site_series()
    t = T0 + HOUR  # the committed hour of the second plan: read by the second and third hours only
    _sql(
        wh,
        "update staging.carbon_intensity set value = value + 1 where series = ? and ts = ?",
        [series, _py(t)],
    )
    rep = audit.verify(wh)
    assert not rep.ok
    assert rep.failed_hours == [T0 + HOUR, T0 + 2 * HOUR]
    first = rep.first_failure
    assert first.hour == T0 + HOUR and first.what == "inputs"
    assert f"carbon series {site} / {series}" in first.message
    assert "unrecorded alteration" in first.message and f"{t:%Y-%m-%d}" in first.message
    out = _verify_cli(wh)
    assert out.exit_code == 1
    assert f"FAILED at {t:%Y-%m-%d %H:%M} UTC" in out.output
    assert f"carbon series {site} / {series}" in out.output


def test_a_revision_through_the_ingest_is_reported_not_failed(wh):
    site, series = _site_series()
    t = T0 - 5 * HOUR  # in every audited hour's range
    row = wh.query(
        "select * from staging.carbon_intensity where series = ? and ts = ?", [series, _py(t)]
    )
    assert len(row) == 1
    received = pd.Timestamp.now(tz="UTC").floor("s")
    results = store(
        wh,
        [("staging.carbon_intensity", row.assign(value=row.value + 7.5))],
        received_at=received,
        source_label="revision test",
    )
    assert results[0].stats.updated == 1
    stored = wh.query(
        "select value, received_at from staging.carbon_intensity where series = ? and ts = ?",
        [series, _py(t)],
    )
    assert (
        stored.value[0] == pytest.approx(row.value[0] + 7.5) and stored.received_at[0] == received
    )
    rep = audit.verify(wh)
    assert rep.ok, [str(f) for f in rep.failures]
    revised = [n for n in rep.notes if n.kind == "revised"]
    assert [n.hour for n in revised] == HOURS
    assert all(f"carbon series {site} / {series}" in n.message for n in revised)
    assert all(
        f"revised after the decision by ingest at {received:%Y-%m-%d %H:%M:%S}" in n.message
        for n in revised
    )
    assert all("'revision test'" in n.message for n in revised)
    out = _verify_cli(wh)
    assert out.exit_code == 0 and "revised after the decision by ingest" in out.output

    # a revision of one day does not hide an alteration of another day of the same series
    _sql(
        wh,
        "update staging.carbon_intensity set value = value * 1.01 where series = ? and ts = ?",
        [series, _py(t - 3 * pd.Timedelta(days=1))],
    )
    rep = audit.verify(wh)
    assert rep.failed_hours == HOURS
    assert f"rows of {t - pd.Timedelta(days=3):%Y-%m-%d}" in rep.first_failure.message


def test_an_input_whose_every_row_was_revised_later_is_a_revision_not_a_failure(wh):
    # the generation read for the committed hour is one row: revise it through the ingest. Every
    # row of the input is then received after the cut-off, which verify used to misread as an
    # edit of an empty input ("the rows (0 row(s)) no longer hash as recorded")
    site, _ = _site_series()
    row = wh.query("select * from staging.generation where site = ? and ts = ?", [site, _py(T0)])
    assert len(row) == 1
    received = pd.Timestamp.now(tz="UTC").floor("s")
    (res,) = store(
        wh,
        [("staging.generation", row.assign(pv_cf=row.pv_cf + 0.05))],
        received_at=received,
        source_label="archive caught up",
    )
    assert res.stats.updated == 1
    rep = audit.verify(wh)
    assert rep.ok, [str(f) for f in rep.failures]
    revised = [n for n in rep.notes if n.kind == "revised" and f"generation {site}" in n.message]
    assert [n.hour for n in revised] == [T0]


def test_an_altered_dispatch_row_is_a_decision_mismatch(wh):
    site, _ = _site_series()
    _sql(
        wh,
        "update plans.dispatch set import_mw = import_mw + 0.5 where hour = ? and site = ?",
        [_py(T0 + HOUR), site],
    )
    rep = audit.verify(wh)
    assert rep.failed_hours == [T0 + HOUR]
    f = rep.first_failure
    assert f.what == "decision" and "plans.dispatch" in f.message
    assert f.message.endswith(f"(site {site})")
    out = _verify_cli(wh)
    assert out.exit_code == 1 and "decision: plans.dispatch" in out.output


def test_a_deleted_audit_row_breaks_the_chain(wh):
    _sql(wh, "delete from plans.audit where plan_hour = ?", [_py(T0 + HOUR)])
    rep = audit.verify(wh)
    assert rep.failed_hours == [T0 + HOUR, T0 + 2 * HOUR]
    assert rep.first_failure.what == "chain" and "audit row is missing" in rep.first_failure.message
    later = [f for f in rep.failures if f.hour == T0 + 2 * HOUR]
    assert any("chain broken" in f.message for f in later)
    out = _verify_cli(wh)
    assert out.exit_code == 1 and f"FAILED at {T0 + HOUR:%Y-%m-%d %H:%M} UTC" in out.output


def test_an_edited_audit_row_is_detected(wh):
    _sql(
        wh,
        "update plans.audit set mip_gap = mip_gap + 0.01 where plan_hour = ?",
        [_py(T0 + 2 * HOUR)],
    )
    rep = audit.verify(wh)
    assert rep.failed_hours == [T0 + 2 * HOUR]
    assert {f.what for f in rep.failures} == {"record"}


def test_a_restatement_removes_the_later_audit_rows_and_continues_the_chain(wh):
    before = wh.query("select * from plans.audit order by plan_hour")
    out = pl.plan_hour(wh, load_fleet(), T0 + HOUR, restate=True)
    assert out.restated_hours == 1
    a = wh.query("select * from plans.audit order by plan_hour")
    assert a.plan_hour.tolist() == HOURS[:2]
    assert wh.query("select plan_hour from plans.runs order by 1").plan_hour.tolist() == HOURS[:2]
    assert a.decided_at[1] > before.decided_at[1] and a.dagster_run_id[1] is None
    assert not a.chain_start[1] and a.prev_chain_hash[1] == before.chain_hash[0]
    rep = audit.verify(wh)
    assert rep.ok and rep.hours == HOURS[:2], [str(f) for f in rep.failures]


def test_a_fresh_start_begins_a_new_chain(wh):
    pl.plan_hour(wh, load_fleet(), T0 + 2 * HOUR, restate=True, fresh_start=True)
    a = wh.query("select * from plans.audit order by plan_hour")
    assert a.chain_start.tolist() == [True, False, True]
    assert a.prev_chain_hash[2] == ""
    rep = audit.verify(wh)
    assert rep.ok and rep.hours == HOURS, [str(f) for f in rep.failures]


def test_an_altered_forecast_fails_and_a_plan_on_its_own_persistence_verifies(wh):
    # the plan at T0+2 re-made without a stored forecast: it issues persistence itself and the audit
    # hashes those rows as they are written in the plan's transaction
    _sql(wh, "delete from forecasts.carbon where issued_at = ?", [_py(T0 + 2 * HOUR)])
    out = pl.plan_hour(wh, load_fleet(), T0 + 2 * HOUR, restate=True)
    assert out.forecast.degraded and "persistence" in out.forecast.policy
    f = json.loads(
        wh.query(
            "select forecast from plans.audit where plan_hour = ?", [_py(T0 + 2 * HOUR)]
        ).forecast[0]
    )
    assert f["targets"]["carbon"]["models"] == ["persistence"]
    rep = audit.verify(wh)
    assert rep.ok and rep.hours == HOURS, [str(x) for x in rep.failures]
    _sql(
        wh,
        "update forecasts.carbon set p50 = p50 + 1 where issued_at = ? and target_time = ?",
        [_py(T0 + HOUR), _py(T0 + 5 * HOUR)],
    )
    rep = audit.verify(wh)
    assert rep.failed_hours == [T0 + HOUR]
    assert rep.first_failure.what == "forecast"
    assert "carbon forecast issued at" in rep.first_failure.message


# ------------------------------------------------------------------------------------------------
# explain


def _a_scheduled_job(wh: Warehouse, hour):
    """A job the plan at ``hour`` schedules (not one already running) whose run fits in the plan's
    window, with its first hour and site."""
    st = json.loads(wh.query("select state from plans.state where hour = ?", [_py(hour)]).state[0])
    runs = wh.query(
        "select r.job_id, min(r.target_time) start, arg_min(r.site, r.target_time) site, "
        "any_value(j.duration_h) d from plans.job_runs r join staging.jobs j using (job_id) "
        "where r.plan_hour = ? group by r.job_id order by r.job_id",
        [_py(hour)],
    )
    end = hour + (load_fleet().planning.horizon_h - 1) * HOUR
    fits = [
        pd.Timestamp(s) + (d - 1) * HOUR <= end for s, d in zip(runs.start, runs.d, strict=True)
    ]
    runs = runs[~runs.job_id.isin(list(st["running"])) & np.array(fits, bool)]
    assert len(runs)
    return runs.iloc[0]


def test_explain_prices_each_alternative_on_the_plans_own_forecast(wh):
    hour = T0 + HOUR
    pick = _a_scheduled_job(wh, hour)
    ex = explain.explain_job(wh, hour, pick.job_id)
    job = wh.query("select * from staging.jobs where job_id = ?", [pick.job_id]).iloc[0]
    P, D = float(job.power_mw), int(job.duration_h)
    # by hand: the p50 issued at the hour, x the plan's facility/IT ratio, x the job's power
    fc = wh.query(
        "select target_time, series, p50 from forecasts.carbon where issued_at = ?", [_py(hour)]
    ).pivot(index="target_time", columns="series", values="p50")
    sh = wh.query(
        "select target_time, site, facility_mw / it_mw k, price_import from plans.site_hours "
        "where plan_hour = ?",
        [_py(hour)],
    )
    k = sh.pivot(index="target_time", columns="site", values="k")
    price = sh.pivot(index="target_time", columns="site", values="price_import")
    window = pd.DatetimeIndex(sorted(k.index))
    first = max(pd.Timestamp(job.release), window[0])
    last = min(pd.Timestamp(job.deadline) - (D - 1) * HOUR, window[-1] - (D - 1) * HOUR)
    want = {}
    for site in job.eligible_sites:
        for t in pd.date_range(first, last, freq="h"):
            hrs = pd.date_range(t, periods=D, freq="h")
            want[(site, t)] = (
                sum(P * k.at[h, site] * max(fc.at[h, site], 0.0) / 1000 for h in hrs),
                sum(P * k.at[h, site] * price.at[h, site] for h in hrs),
            )
    got = {(r.site, r.start): (r.carbon_t, r.cost_usd) for r in ex.alternatives.itertuples()}
    assert set(got) == set(want) and len(got) > 1
    for key, (c, usd) in want.items():
        assert got[key][0] == pytest.approx(c, rel=1e-9)
        assert got[key][1] == pytest.approx(usd, rel=1e-9)
    assert (ex.alternatives.carbon_t.diff().dropna() >= 0).all()  # sorted, best first
    chosen = ex.alternatives[ex.alternatives.chosen]
    assert len(chosen) == 1
    assert (chosen.site.iloc[0], chosen.start.iloc[0]) == (pick.site, pd.Timestamp(pick.start))
    assert ex.chosen["committed"] == (pd.Timestamp(pick.start) == hour)
    d = chosen.iloc[0]
    assert d.d_carbon_t == pytest.approx(d.carbon_t - ex.alternatives.carbon_t.min())

    out = cli.invoke(
        app,
        ["explain", "--hour", f"{hour:%Y-%m-%d %H:%M}", "--job", pick.job_id, "--db", str(wh.path)],
    )
    assert out.exit_code == 0, out.output
    assert "priced one at a time on the plan's own forecasts" in out.output
    assert "not re-optimised" in out.output
    line = next(x for x in out.output.splitlines() if "<- chosen" in x)
    assert pick.site in line and f"{pd.Timestamp(pick.start):%Y-%m-%d %H:%M}" in line


def test_explain_hour_summarises_the_plan(wh):
    hour = T0 + HOUR
    s = explain.explain_hour(wh, hour)
    run = wh.query("select * from plans.runs where plan_hour = ?", [_py(hour)]).iloc[0]
    assert s["run"]["status"] == run.status and s["jobs_started"] == list(run.jobs_started)
    disp = wh.query("select * from plans.dispatch where hour = ? order by site", [_py(hour)])
    assert s["sites"].site.tolist() == disp.site.tolist()
    assert np.allclose(s["sites"].import_mw, disp.import_mw)
    assert (
        s["audit"]["chain_hash"]
        == wh.query(
            "select chain_hash from plans.audit where plan_hour = ?", [_py(hour)]
        ).chain_hash[0]
    )
    out = cli.invoke(app, ["explain", "--hour", f"{hour:%Y-%m-%d %H:%M}", "--db", str(wh.path)])
    assert out.exit_code == 0, out.output
    assert f"plan of {hour:%Y-%m-%d %H:%M} UTC: {run.status}" in out.output
    assert all(site in out.output for site in disp.site)
    missing = cli.invoke(
        app, ["explain", "--hour", f"{T0 + 9 * HOUR:%Y-%m-%d %H:%M}", "--db", str(wh.path)]
    )
    assert missing.exit_code == 1 and "no plan for" in missing.output


# ------------------------------------------------------------------------------------------------
# the canonical hash itself (no planning)


def test_digest_ignores_row_order_and_float_noise_but_not_values(tmp_path):
    df = pd.DataFrame(
        {
            "series": ["a", "b", "a"],
            "ts": pd.date_range("2026-01-01", periods=3, freq="h", tz="UTC"),
            "value": [0.1 + 0.2, -0.0, 1e20],
            "flag": [True, False, True],
            "note": [None, "x", "y"],
        }
    )
    cols = list(df.columns)
    base = audit.digest(audit.columnar(df, cols), cols, "ts")
    shuffled = df.iloc[[2, 0, 1]].reset_index(drop=True)
    assert audit.digest(audit.columnar(shuffled, cols), cols, "ts") == base
    noisy = df.assign(value=[0.3, 0.0, 1e20])  # 0.1 + 0.2 and -0.0 canonicalise to these
    assert audit.digest(audit.columnar(noisy, cols), cols, "ts") == base
    changed = df.assign(value=[0.3, 0.0, 1e20 + 1e6])
    assert audit.digest(audit.columnar(changed, cols), cols, "ts")["hash"] != base["hash"]
    # the same rows read back from DuckDB hash the same as the frame written
    wh = Warehouse(tmp_path / "x.duckdb")
    with wh.writer() as con:
        con.register("f", df)
        con.execute("create table t as select * from f")
        back = con.execute("select * from t").fetchnumpy()
    assert audit.digest(back, cols, "ts") == base


def test_job_alternatives_on_a_tiny_case_by_hand():
    window = pd.date_range("2026-01-01", periods=4, freq="h", tz="UTC")
    carbon = pd.DataFrame({"a": [100.0, 300.0, 200.0, 50.0], "b": [400.0] * 4}, index=window)
    price = pd.DataFrame({"a": [10.0, 20.0, 30.0, 40.0], "b": [5.0] * 4}, index=window)
    overhead = pd.DataFrame({"a": [1.5] * 4, "b": [1.0] * 4}, index=window)
    job = {
        "power_mw": 2.0,
        "duration_h": 2,
        "release": window[0],
        "deadline": window[-1] + HOUR,  # could also run past the window
        "eligible_sites": ["a", "b"],
    }
    out = best_window.job_alternatives(job, window, carbon, price, overhead, ("a", window[3]), 40.0)
    got = {(r.site, r.start): r for r in out.itertuples()}
    # every start that fits in the window, and the chosen one (which runs past it)
    assert set(got) == {("a", t) for t in window} | {("b", t) for t in window[:3]}
    assert got[("a", window[2])].carbon_t == pytest.approx(2.0 * 1.5 * (200 + 50) / 1000)
    assert got[("a", window[2])].cost_usd == pytest.approx(2.0 * 1.5 * (30 + 40))
    assert got[("b", window[0])].carbon_t == pytest.approx(2.0 * 400 * 2 / 1000)
    assert got[("a", window[0])].cost_with_carbon_usd == pytest.approx(
        2 * 1.5 * 30 + 40 * 2 * 1.5 * 400 / 1000
    )
    best = out.iloc[0]
    assert (best.site, best.start) == ("a", window[2]) and best.d_carbon_t == 0  # 0.75 t
    chosen = out[out.chosen].iloc[0]
    assert (chosen.site, chosen.start, chosen.hours_priced) == ("a", window[3], 1)
    assert not chosen.complete and np.isnan(chosen.d_carbon_t)
    assert out.index[out.chosen][0] == len(out) - 1  # incomplete alternatives rank last
