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


def test_replace_window_is_idempotent_and_keeps_received_at(wh):
    df = _carbon([100.0, 110.0, 120.0])
    first = wh.replace_window(
        "staging.carbon_intensity", df, scope={"source": "test"}, window=_window(df)
    )
    assert (first.inserted, first.updated, first.deleted) == (3, 0, 0)
    again = _carbon([100.0, 110.0, 120.0], received="2026-02-01")
    second = wh.replace_window(
        "staging.carbon_intensity", again, scope={"source": "test"}, window=_window(df)
    )
    assert second.changed == 0 and second.unchanged == 3
    stored = wh.query("select received_at from staging.carbon_intensity")
    assert (stored.received_at == pd.Timestamp("2026-01-01", tz="UTC")).all()


def test_revised_values_replace_and_vanished_rows_are_deleted(wh):
    df = _carbon([100.0, 110.0, 120.0])
    wh.replace_window("staging.carbon_intensity", df, scope={"source": "test"}, window=_window(df))
    revised = _carbon([101.0, 110.0])
    stats = wh.replace_window(
        "staging.carbon_intensity", revised, scope={"source": "test"}, window=_window(df)
    )
    assert (stats.inserted, stats.updated, stats.deleted, stats.unchanged) == (0, 1, 1, 1)
    assert wh.query("select value from staging.carbon_intensity order by ts").value.tolist() == [
        101.0,
        110.0,
    ]


def test_rows_outside_the_window_are_untouched(wh):
    df = _carbon([1.0, 2.0, 3.0, 4.0])
    wh.replace_window("staging.carbon_intensity", df, scope={"source": "test"}, window=_window(df))
    part = _carbon([9.0], start="2022-03-27 01:00")
    wh.replace_window(
        "staging.carbon_intensity", part, scope={"source": "test"}, window=_window(part)
    )
    assert wh.query("select value from staging.carbon_intensity order by ts").value.tolist() == [
        1,
        9,
        3,
        4,
    ]


def test_failed_write_changes_nothing(wh):
    good = _carbon([100.0, 110.0])
    wh.replace_window(
        "staging.carbon_intensity", good, scope={"source": "test"}, window=_window(good)
    )
    bad = _carbon([105.0, -5.0])  # violates CHECK (value >= 0) on the second row
    with pytest.raises(WarehouseError, match="staging.carbon_intensity"):
        wh.replace_window(
            "staging.carbon_intensity", bad, scope={"source": "test"}, window=_window(bad)
        )
    assert wh.query("select value from staging.carbon_intensity order by ts").value.tolist() == [
        100,
        110,
    ]


def test_duplicate_keys_and_rows_outside_window_are_refused(wh):
    df = pd.concat([_carbon([1.0]), _carbon([2.0])])
    with pytest.raises(WarehouseError, match="sharing a key"):
        wh.replace_window("staging.carbon_intensity", df)
    one = _carbon([1.0, 2.0])
    with pytest.raises(WarehouseError, match="outside the window"):
        wh.replace_window("staging.carbon_intensity", one, window=(one.ts.min(), one.ts.min()))
    assert wh.query("select count(*) n from staging.carbon_intensity").n[0] == 0


def test_ingest_log_written_in_same_transaction(wh):
    df = _carbon([1.0])
    wh.replace_window(
        "staging.carbon_intensity",
        df,
        scope={"source": "test"},
        window=_window(df),
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
    wh.replace_window("staging.carbon_intensity", df, scope={"source": "test"},
                      window=(ts, ts + pd.Timedelta(hours=1)))
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
