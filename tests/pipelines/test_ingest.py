"""Ingest assets materialized for real (in-process Dagster runs) into a temporary DuckDB file."""

import dagster as dg
import pandas as pd

from pipelines.defs.ingest.assets import INGEST_ASSETS
from warehouse import Warehouse

RANGE = {
    "dagster/asset_partition_range_start": "2026-01-05-00:00",
    "dagster/asset_partition_range_end": "2026-01-06-23:00",
}


def _counts(wh: Warehouse) -> dict:
    tables = [
        "carbon_intensity",
        "weather_observed",
        "weather_forecast",
        "prices",
        "generation",
        "load",
        "jobs",
    ]
    return {t: int(wh.query(f"select count(*) n from staging.{t}").n[0]) for t in tables}


def test_backfill_range_runs_as_one_run_and_rerun_changes_nothing(resources):
    wh = resources["warehouse"].get()
    first = dg.materialize(INGEST_ASSETS, resources=resources, tags=RANGE)
    assert first.success
    counts = _counts(wh)
    # 2 days x 24 h x 3 sites for every hourly table; day-ahead prices reach one horizon (24 h) further
    assert counts["carbon_intensity"] == counts["generation"] == 144
    assert counts["prices"] == 144 + 3 * 24
    assert counts["load"] == 144  # 3 classes
    assert counts["jobs"] > 0
    evals = first.get_asset_check_evaluations()
    assert all(e.passed for e in evals if e.severity == dg.AssetCheckSeverity.ERROR)
    # the data start two days in: the 7-day gap checks warn about the days before it
    assert {e.check_name for e in evals if not e.passed} <= {"carbon_no_gaps", "inference_no_gaps"}
    carbon = wh.query("select ts from staging.carbon_intensity order by ts")
    assert carbon.ts.min() == pd.Timestamp("2026-01-05", tz="UTC")
    assert carbon.ts.max() == pd.Timestamp("2026-01-06 23:00", tz="UTC")

    snapshot = wh.query("select * from staging.carbon_intensity order by series, ts")
    again = dg.materialize(INGEST_ASSETS, resources=resources, tags=RANGE)
    assert again.success
    assert _counts(wh) == counts
    pd.testing.assert_frame_equal(
        snapshot, wh.query("select * from staging.carbon_intensity order by series, ts")
    )
    mats = again.asset_materializations_for_node("carbon_intensity")
    assert mats[0].metadata["inserted"].value == 0 and mats[0].metadata["unchanged"].value == 144


def test_single_hour_partition_writes_that_hour_only(resources):
    wh = resources["warehouse"].get()
    res = dg.materialize(INGEST_ASSETS[:1], resources=resources, partition_key="2026-01-07-05:00")
    assert res.success
    got = wh.query("select distinct ts from staging.carbon_intensity")
    assert got.ts.tolist() == [pd.Timestamp("2026-01-07 05:00", tz="UTC")]


def test_gap_check_warns_about_missing_hours_up_to_the_hour_planned(resources):
    wh = resources["warehouse"].get()
    assert dg.materialize(INGEST_ASSETS[:1], resources=resources, tags=RANGE).success
    with wh.writer() as con:
        con.execute("delete from staging.carbon_intensity where ts = '2026-01-06 10:00:00+00'")
    # the next hour's ingest checks the 7 days before it: the deleted hour, in each of the 3 zones,
    # and the days before the data start; it warns (the planner degrades) and does not block
    res = dg.materialize(INGEST_ASSETS[:1], resources=resources, partition_key="2026-01-07-00:00")
    assert res.success
    evals = {e.check_name: e for e in res.get_asset_check_evaluations()}
    gap = evals["carbon_no_gaps"]
    assert not gap.passed and gap.severity == dg.AssetCheckSeverity.WARN
    assert gap.metadata["missing_hours"].value == 3 * (7 * 24 - 48) + 3
    assert "missing" in gap.metadata["problem"].value
    assert evals["carbon_in_range"].passed


def test_generation_revised_from_an_older_weather_row_moves_received_at_forward(tmp_path):
    """A better weather row can carry an older ``received_at`` than the generation stored from the
    one it replaces (an import, a backfilled analysis); the generation derived from it is new now,
    so its ``received_at`` moves forward: the audit then sees a revision, not an edit, and the
    restatement picks the hour up (it kept the old time and looked like a value changed in place)."""
    from mpc.fleet import load_fleet
    from pipelines.lib.fetch import fetch_generation
    from pipelines.lib.ingest import store

    wh = Warehouse(tmp_path / "gf.duckdb")
    fleet = load_fleet()
    site = "sanjose"  # local noon at 20:00 UTC
    t = pd.Timestamp("2026-03-02 20:00", tz="UTC")
    now = pd.Timestamp.now(tz="UTC")
    weather = {
        "location": site,
        "ts": t,
        "temperature_2m": 15.0,
        "relative_humidity_2m": 50.0,
        "cloud_cover": 10.0,
        "wind_speed_10m": 3.0,
        "wind_speed_100m": 6.0,
    }
    fc = pd.DataFrame(
        [
            {
                **weather,
                "shortwave_radiation": 700.0,
                "issued_at": t - pd.Timedelta("6h"),
                "source": "openmeteo_forecast",
            }
        ]
    )
    store(wh, [("staging.weather_forecast", fc)], received_at=now)

    def derive():
        out = fetch_generation(wh, fleet, t, t + pd.Timedelta("1h"))
        store(wh, out.writes)
        return wh.query(
            "select pv_cf, received_at from staging.generation where site = ? and ts = ?",
            [site, t.to_pydatetime()],
        ).iloc[0]

    first = derive()
    assert first.pv_cf > 0
    obs = pd.DataFrame([{**weather, "shortwave_radiation": 200.0, "source": "openmeteo_archive"}])
    store(wh, [("staging.weather_observed", obs)], received_at=now - pd.Timedelta("1h"))
    second = derive()
    assert second.pv_cf < first.pv_cf  # the observation is the best weather now
    assert pd.Timestamp(second.received_at) > pd.Timestamp(first.received_at)
    assert derive().received_at == second.received_at  # the same again: nothing moves
