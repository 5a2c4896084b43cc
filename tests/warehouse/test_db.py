"""Warehouse: schema creation, idempotent window upserts, atomic failure, the file lock."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from warehouse import Warehouse, WarehouseError

SERIES = "GB:average:direct"


def _carbon(values, start="2022-03-27 00:00", received="2026-01-01"):
    ts = pd.date_range(start, periods=len(values), freq="h", tz="UTC")
    return pd.DataFrame(
        {
            "series": SERIES,
            "zone": "GB",
            "ts": ts,
            "value": values,
            "signal": "average",
            "factor": "direct",
            "source": "test",
            "is_estimated": False,
            "estimation_method": None,
            "received_at": pd.Timestamp(received, tz="UTC"),
        }
    )


def _window(df):
    return (df.ts.min(), df.ts.max() + pd.Timedelta(hours=1))


@pytest.fixture
def wh(tmp_path):
    return Warehouse(tmp_path / "wh.duckdb")


def test_schema_has_the_five_schemas(wh):
    wh.ensure_schema()
    got = set(wh.query("select schema_name from information_schema.schemata").schema_name)
    assert {"raw", "staging", "forecasts", "plans", "marts"} <= got


def test_upsert_is_idempotent_and_keeps_received_at(wh):
    df = _carbon([100.0, 110.0, 120.0])
    first = wh.upsert("staging.carbon_intensity", df)
    assert (first.inserted, first.updated, first.deleted) == (3, 0, 0)
    again = _carbon([100.0, 110.0, 120.0], received="2026-02-01")
    second = wh.upsert("staging.carbon_intensity", again)
    assert second.changed == 0 and second.unchanged == 3
    stored = wh.query("select received_at from staging.carbon_intensity")
    assert (stored.received_at == pd.Timestamp("2026-01-01", tz="UTC")).all()


def test_revised_values_update_and_absent_hours_are_kept(wh):
    """A source that omits an hour (a gap, a null, a lagging API) does not delete it. (Before: the
    window replacement deleted every stored hour the new frame lacked.)"""
    df = _carbon([100.0, 110.0, 120.0])
    wh.upsert("staging.carbon_intensity", df)
    revised = _carbon([101.0, 110.0], received="2026-03-01")
    stats = wh.upsert("staging.carbon_intensity", revised)
    assert (stats.inserted, stats.updated, stats.deleted, stats.unchanged) == (0, 1, 0, 1)
    got = wh.query("select value, received_at from staging.carbon_intensity order by ts")
    assert got.value.tolist() == [101.0, 110.0, 120.0]
    # the revision moved received_at forward; the untouched hours kept theirs
    assert got.received_at.tolist() == [
        pd.Timestamp("2026-03-01", tz="UTC"),
        pd.Timestamp("2026-01-01", tz="UTC"),
        pd.Timestamp("2026-01-01", tz="UTC"),
    ]


def test_a_revision_never_moves_received_at_backwards(wh):
    wh.upsert("staging.carbon_intensity", _carbon([100.0], received="2026-05-01"))
    wh.upsert("staging.carbon_intensity", _carbon([105.0], received="2026-01-01"))
    got = wh.query("select value, received_at from staging.carbon_intensity")
    assert got.value[0] == 105.0 and got.received_at[0] == pd.Timestamp("2026-05-01", tz="UTC")


def test_replacing_a_window_of_received_data_needs_an_explicit_request(wh):
    df = _carbon([100.0, 110.0, 120.0])
    wh.upsert("staging.carbon_intensity", df)
    with pytest.raises(WarehouseError, match="refusing to replace a window of received data"):
        wh.replace_window(
            "staging.carbon_intensity", _carbon([1.0]), scope={"source": "test"}, window=_window(df)
        )
    stats = wh.replace_window(
        "staging.carbon_intensity",
        _carbon([101.0, 110.0]),
        scope={"source": "test"},
        window=_window(df),
        allow_delete=True,
    )
    assert (stats.updated, stats.deleted, stats.unchanged) == (1, 1, 1)
    assert wh.query("select count(*) n from staging.carbon_intensity").n[0] == 2


def test_window_replacement_of_derived_rows_leaves_the_rest(wh):
    def run(hour, objective):
        return pd.DataFrame(
            [
                {
                    "plan_hour": pd.Timestamp(hour, tz="UTC"),
                    "horizon_h": 24,
                    "status": "optimal",
                    "objective": objective,
                    "forecast_policy": "x",
                    "degraded": False,
                    "created_at": pd.Timestamp.now(tz="UTC"),
                }
            ]
        )

    for h in ("2022-03-27 00:00", "2022-03-27 01:00", "2022-03-27 02:00"):
        wh.replace_window(
            "plans.runs",
            run(h, 1.0),
            window=(pd.Timestamp(h, tz="UTC"), pd.Timestamp(h, tz="UTC") + pd.Timedelta(hours=1)),
            ts_column="plan_hour",
        )
    t = pd.Timestamp("2022-03-27 01:00", tz="UTC")
    wh.replace_window(
        "plans.runs",
        run("2022-03-27 01:00", 9.0),
        window=(t, t + pd.Timedelta(hours=1)),
        ts_column="plan_hour",
    )
    got = wh.query("select objective from plans.runs order by plan_hour").objective.tolist()
    assert got == [1.0, 9.0, 1.0]


def test_failed_write_changes_nothing(wh):
    good = _carbon([100.0, 110.0])
    wh.upsert("staging.carbon_intensity", good)
    bad = _carbon([105.0, -5.0])  # violates CHECK (value >= 0) on the second row
    with pytest.raises(WarehouseError, match="staging.carbon_intensity"):
        wh.upsert("staging.carbon_intensity", bad)
    assert wh.query("select value from staging.carbon_intensity order by ts").value.tolist() == [
        100,
        110,
    ]


def test_duplicate_keys_and_rows_outside_window_are_refused(wh):
    df = pd.concat([_carbon([1.0]), _carbon([2.0])])
    with pytest.raises(WarehouseError, match="sharing a key"):
        wh.upsert("staging.carbon_intensity", df)
    one = _carbon([1.0, 2.0])
    with pytest.raises(WarehouseError, match="outside the window"):
        wh.replace_window(
            "staging.carbon_intensity", one, window=(one.ts.min(), one.ts.min()), allow_delete=True
        )
    assert wh.query("select count(*) n from staging.carbon_intensity").n[0] == 0


def test_ingest_log_written_in_same_transaction(wh):
    df = _carbon([1.0])
    wh.upsert(
        "staging.carbon_intensity",
        df,
        log={"source": "unit-test", "repairs": {"dst_duplicate_dropped": 1}},
    )
    log = wh.query("select * from raw.ingest_log")
    assert len(log) == 1 and log.inserted[0] == 1 and "dst_duplicate_dropped" in log.repairs[0]


WRITER = """
import sys, pandas as pd
from warehouse import Warehouse
path, start, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
wh = Warehouse(path)
for i in range(n):
    ts = pd.Timestamp(start, tz="UTC") + pd.Timedelta(hours=i)
    df = pd.DataFrame({"series": ["GB:average:direct"], "zone": "GB", "ts": [ts], "value": [float(i)],
                       "signal": "average", "factor": "direct", "source": "test", "is_estimated": False,
                       "estimation_method": None, "received_at": ts})
    wh.upsert("staging.carbon_intensity", df)
"""


def test_concurrent_writers_from_processes_serialise(tmp_path):
    """Three processes writing at once: without the lock DuckDB refuses the second opener."""
    path = str(tmp_path / "wh.duckdb")
    Warehouse(path).ensure_schema()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, path, f"2022-0{m}-01", "15"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in (1, 2, 3)
    ]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errs
    assert Warehouse(path).query("select count(*) n from staging.carbon_intensity").n[0] == 45


def test_a_write_after_a_delete_in_one_transaction_lands(wh):
    """A delete (finding nothing to delete) followed by an upsert in one replace_windows: the
    delete's count left its result unfinished and the next write failed with "connection has an
    unfinished result" (found by the grid-event revision, which deletes the hour's re-statement
    and then writes the revision)."""
    from warehouse import Write

    t = pd.Timestamp("2026-01-01", tz="UTC")
    one = (t, t + pd.Timedelta(hours=1))
    row = pd.DataFrame(
        [{"hour": t, "revision": 1, "kind": "lp", "created_at": pd.Timestamp.now(tz="UTC")}]
    )
    wh.replace_windows(
        [
            Write("plans.dispatch_realised", None, window=one, ts_column="hour", mode="delete"),
            Write("plans.revisions", row, scope={"revision": 1}, window=one, ts_column="hour"),
        ]
    )
    assert wh.query("select count(*) n from plans.revisions").n[0] == 1
