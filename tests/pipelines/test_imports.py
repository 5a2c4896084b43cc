"""`gridflex import …`: files into a real DuckDB file — idempotent, one transaction per file, and never
deleting a stored hour unless asked to (then counted)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pipelines.lib.ingest import import_files
from sources.frames import SourceError
from warehouse import Warehouse

REPO = Path(__file__).resolve().parents[2]
HEADER = (
    "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
    "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
    "Data Source,Data Estimated,Data Estimation Method"
)


def _write_export(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def _gb_rows(hours: pd.DatetimeIndex, offset: float = 0.0) -> list[str]:
    return [
        f"{t:%Y-%m-%d %H:%M:%S},Great Britain,Great Britain,GB,{100 + i % 50 + offset:.2f},"
        f"{150 + i % 50 + offset:.2f},80,50,x,false,"
        for i, t in enumerate(hours)
    ]


def _fingerprint(wh: Warehouse) -> pd.DataFrame:
    return wh.query(
        """select series, count(*) n, round(sum(value), 6) s, min(received_at) r0, max(received_at) r1
           from staging.carbon_intensity group by series order by series"""
    )


@pytest.mark.shared_data
def test_all_shared_exports_store_8760_hours_per_zone_year_and_reimport_changes_nothing(
    shared_data, tmp_path
):
    files = sorted((shared_data / "electricitymaps").glob("*_hourly.csv"))
    assert len(files) == 9
    wh = Warehouse(tmp_path / "gf.duckdb")
    first = import_files(wh, "em-csv", files)
    per = wh.query("""select zone, year(ts) as year, series, count(*) n, count(distinct ts) d
                      from staging.carbon_intensity group by all""")
    assert len(per) == 3 * 3 * 2  # zones x years x (direct, lifecycle)
    assert (per.n == 8760).all() and (per.d == 8760).all()
    assert first.inserted.sum() == 9 * 2 * 8760
    snapshot = wh.query("select * from staging.carbon_intensity order by series, ts")

    second = import_files(wh, "em-csv", files)
    assert second.inserted.sum() == 0 and second.updated.sum() == 0 and second.deleted.sum() == 0
    assert second.unchanged.sum() == 9 * 2 * 8760
    pd.testing.assert_frame_equal(
        snapshot, wh.query("select * from staging.carbon_intensity order by series, ts")
    )
    log = wh.query(
        "select count(*) n, sum(inserted) ins, count(source_modified_at) m from raw.ingest_log"
    )
    assert log.n[0] == 36 and log.ins[0] == 9 * 2 * 8760 and log.m[0] == 36


def test_a_file_with_missing_hours_deletes_nothing(tmp_path):
    """Before: re-importing a GB file with 100 missing hours deleted 200 stored rows."""
    wh = Warehouse(tmp_path / "gf.duckdb")
    hours = pd.date_range("2022-01-01", periods=500, freq="h")
    import_files(wh, "em-csv", [_write_export(tmp_path / "full.csv", _gb_rows(hours))])
    before = _fingerprint(wh)
    holes = hours.delete(range(200, 300))
    rows = [r for r, t in zip(_gb_rows(hours), hours, strict=True) if t in holes]
    table = import_files(wh, "em-csv", [_write_export(tmp_path / "gaps.csv", rows)])
    assert table.deleted.sum() == 0 and table.inserted.sum() == 0 and table.updated.sum() == 0
    pd.testing.assert_frame_equal(before, _fingerprint(wh))


def test_a_file_covering_two_years_with_a_gap_keeps_the_year_between(tmp_path):
    """Before: a GB 2021+2023 file deleted all of GB 2022."""
    wh = Warehouse(tmp_path / "gf.duckdb")
    y22 = pd.date_range("2022-01-01", periods=240, freq="h")
    import_files(wh, "em-csv", [_write_export(tmp_path / "2022.csv", _gb_rows(y22))])
    both = pd.date_range("2021-12-20", periods=48, freq="h").append(
        pd.date_range("2023-01-01", periods=48, freq="h")
    )
    table = import_files(wh, "em-csv", [_write_export(tmp_path / "21_23.csv", _gb_rows(both))])
    assert table.deleted.sum() == 0 and table.inserted.sum() == 2 * 96
    n22 = wh.query("select count(*) n from staging.carbon_intensity where year(ts) = 2022").n[0]
    assert n22 == 2 * 240


def test_delete_missing_is_explicit_and_counted(tmp_path):
    wh = Warehouse(tmp_path / "gf.duckdb")
    hours = pd.date_range("2022-01-01", periods=48, freq="h")
    import_files(wh, "em-csv", [_write_export(tmp_path / "full.csv", _gb_rows(hours))])
    rows = [r for i, r in enumerate(_gb_rows(hours)) if i not in (10, 11, 12)]
    table = import_files(
        wh, "em-csv", [_write_export(tmp_path / "gaps.csv", rows)], delete_missing=True
    )
    assert table.deleted.tolist() == [3, 3]  # direct and lifecycle
    assert wh.query("select count(*) n from staging.carbon_intensity").n[0] == 2 * 45


def test_a_revised_file_updates_and_moves_received_at_forward(tmp_path):
    wh = Warehouse(tmp_path / "gf.duckdb")
    hours = pd.date_range("2022-01-01", periods=24, freq="h")
    import_files(wh, "em-csv", [_write_export(tmp_path / "v1.csv", _gb_rows(hours))])
    first = wh.query(
        "select ts, value, received_at from staging.carbon_intensity "
        "where series = 'GB:average:direct' order by ts"
    )
    time.sleep(0.01)
    rows = _gb_rows(hours)
    rows[5] = rows[5].replace(",GB,105.00,", ",GB,111.00,")
    table = import_files(wh, "em-csv", [_write_export(tmp_path / "v2.csv", rows)])
    assert table.set_index("series").loc["GB:average:direct", "updated"] == 1
    after = wh.query(
        "select ts, value, received_at from staging.carbon_intensity "
        "where series = 'GB:average:direct' order by ts"
    )
    assert after.value[5] == 111.0 and after.received_at[5] > first.received_at[5]
    assert (after.drop(index=5).received_at == first.drop(index=5).received_at).all()


def test_a_bad_file_is_named_and_leaves_what_was_stored(tmp_path):
    good = _write_export(
        tmp_path / "GB_2022_hourly.csv", _gb_rows(pd.date_range("2022-01-01", periods=3, freq="h"))
    )
    bad = _write_export(
        tmp_path / "DE_2022_hourly.csv",
        [
            "2022-01-01 00:00:00,Germany,Germany,DE,300,350,40,30,x,false,",
            "2022-01-01 01:00:00,Germany,Germany,DE,-5,350,40,30,x,false,",
        ],
    )
    wh = Warehouse(tmp_path / "gf.duckdb")
    with pytest.raises(SourceError, match="DE_2022_hourly.csv, row 3"):
        import_files(wh, "em-csv", [good, bad])
    got = wh.query("select zone, count(*) n from staging.carbon_intensity group by zone")
    assert got.to_dict("records") == [{"zone": "GB", "n": 6}]  # nothing from DE


def test_an_implausible_intensity_is_refused_with_file_line_and_value(tmp_path):
    rows = _gb_rows(pd.date_range("2022-01-01", periods=4, freq="h"))
    rows[2] = rows[2].replace(",GB,102.00,", ",GB,25000.00,")
    f = _write_export(tmp_path / "GB.csv", rows)
    wh = Warehouse(tmp_path / "gf.duckdb")
    with pytest.raises(SourceError) as err:
        import_files(wh, "em-csv", [f])
    assert "GB.csv, row 4" in str(err.value) and "25000" in str(err.value)
    assert wh.query("select count(*) n from staging.carbon_intensity").n[0] == 0


KILLED_IMPORT = """
import sys
from pipelines.lib.ingest import import_files
from warehouse import Warehouse
import_files(Warehouse(sys.argv[1]), "em-csv", [sys.argv[2]])
"""


def test_a_kill_during_an_import_leaves_each_file_wholly_old_or_new(tmp_path):
    """SIGKILL at several moments of an import of a revised file: the database opens and the file's
    two series (direct and lifecycle) are both old or both new — never one of each (before: each
    series was its own transaction)."""
    hours = pd.date_range("2021-01-01", periods=24 * 365, freq="h")
    old = _write_export(tmp_path / "old.csv", _gb_rows(hours))
    new = _write_export(tmp_path / "new.csv", _gb_rows(hours, offset=7.0))
    n = len(hours)
    direct_old = sum(100 + i % 50 for i in range(n))
    expect = {  # (series, version) -> sum of values
        ("GB:average:direct", "old"): direct_old,
        ("GB:average:direct", "new"): direct_old + 7 * n,
        ("GB:average:lifecycle", "old"): direct_old + 50 * n,
        ("GB:average:lifecycle", "new"): direct_old + 57 * n,
    }
    outcomes = set()
    # kill at fixed moments, and as soon as DuckDB's write-ahead log appears (mid-transaction)
    for delay in (0.3, 0.5, 0.7, "wal", "wal", None):
        db = tmp_path / f"k{len(outcomes)}{delay}.duckdb"
        import_files(Warehouse(db), "em-csv", [old])
        wal = Path(str(db) + ".wal")
        p = subprocess.Popen(
            [sys.executable, "-c", KILLED_IMPORT, str(db), str(new)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        if delay == "wal":
            deadline = time.monotonic() + 30
            while not wal.exists() and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.0005)
        elif delay is not None:
            time.sleep(delay)
        if delay is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        sums = (
            Warehouse(db)
            .query(
                "select series, round(sum(value)) s, count(*) n from staging.carbon_intensity "
                "group by series"
            )
            .set_index("series")
        )
        assert (sums.n == n).all(), (delay, sums)
        state = tuple(
            next(v for v in ("old", "new") if abs(sums.s[s] - expect[(s, v)]) < 1)
            for s in ("GB:average:direct", "GB:average:lifecycle")
        )
        assert state in {("old", "old"), ("new", "new")}, (delay, state)
        outcomes.add(state[0])
    assert outcomes == {"old", "new"}  # some kills landed mid-import; the last run finished


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gridflex_cli.main", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_cli_prints_the_counts_with_a_deleted_column(tmp_path):
    f = _write_export(
        tmp_path / "GB_2022_hourly.csv", _gb_rows(pd.date_range("2022-01-01", periods=4, freq="h"))
    )
    out = _run_cli("import", "em-csv", str(f), "--db", str(tmp_path / "gf.duckdb"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert head[:3] == ["file", "series", "rows"] and "deleted" in head
    row = dict(zip(head, [c.strip() for c in lines[2].strip("|").split("|")], strict=True))
    assert row["series"] == "GB:average:direct" and row["rows"] == "4" and row["inserted"] == "4"
    assert row["deleted"] == "0"
    bad = _run_cli(
        "import", "em-csv", str(tmp_path / "nope.csv"), "--db", str(tmp_path / "x.duckdb")
    )
    assert bad.returncode == 1 and "nope.csv" in bad.stderr and "no such file" in bad.stderr


def _prices(path: Path, hours, base=50.0) -> Path:
    lines = ["Datetime,Price (EUR/MWh)"] + [
        f"{t:%Y-%m-%d %H:%M:%S},{base + i % 7:.2f}" for i, t in enumerate(hours)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_import_kind_is_idempotent_and_reports_its_counts(tmp_path):
    wh = Warehouse(tmp_path / "gf.duckdb")
    hours = pd.date_range("2022-03-01", periods=48, freq="h")
    p = _prices(tmp_path / "NL_electricity_prices_2022.csv", hours)
    w = tmp_path / "weather.csv"
    w.write_text(
        "time,temperature_2m,relative_humidity_2m,cloudcover,windspeed_10m\n"
        + "\n".join(
            f"{t:%Y-%m-%dT%H:%M},{5 + i % 10},{60 + i % 20},{i % 100},{10 + i % 5}"
            for i, t in enumerate(hours)
        )
        + "\n"
    )
    load = tmp_path / "load.csv"
    load.write_text(
        "timestamp,value\n"
        + "\n".join(f"{t:%Y-%m-%dT%H:%M:%SZ},{1000 + i}" for i, t in enumerate(hours))
        + "\n"
    )
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        "job_id,power_mw,duration_h,release,deadline,value,eligible_sites\n"
        "j1,5,4,2022-03-01T02:00Z,2022-03-02T02:00Z,900,amsterdam;dublin\n"
        "j2,3,36,2022-03-01T00:00Z,2022-03-03T23:00Z,2000,dublin\n"
    )
    cases = [
        ("prices", [p], {"zone": "NL", "tz": "Europe/Amsterdam"}, "staging.prices", 48),
        ("weather", [w], {"site": "amsterdam", "utc_offset": 1.0}, "staging.weather_observed", 48),
        (
            "load",
            [load],
            {"site": "amsterdam", "series": "assistant", "agg": "sum", "unit": "requests/h"},
            "staging.load",
            48,
        ),
        ("jobs", [jobs], {"known_sites": ["amsterdam", "dublin"]}, "staging.jobs", 2),
    ]
    for kind, files, opts, table, n in cases:
        first = import_files(wh, kind, files, **opts)
        assert first.inserted.sum() == n, kind
        again = import_files(wh, kind, files, **opts)
        assert (again.inserted.sum(), again.updated.sum(), again.deleted.sum()) == (0, 0, 0), kind
        assert again.unchanged.sum() == n and {"repaired", "deleted"} <= set(again.columns), kind
        assert wh.query(f"select count(*) n from {table}").n[0] == n, kind


def test_one_file_is_one_transaction_across_its_series(tmp_path):
    """What an import stores is written by one ``store`` call: a failure in its second series
    leaves the first unwritten too (before, each series was its own transaction)."""
    from pipelines.lib.ingest import store
    from sources.em_csv import read_em_csv
    from warehouse import WarehouseError

    f = _write_export(
        tmp_path / "GB.csv", _gb_rows(pd.date_range("2022-01-01", periods=6, freq="h"))
    )
    frame, report = read_em_csv(f)
    frame.loc[frame.series.eq("GB:average:lifecycle").idxmax(), "value"] = -1.0  # the DB refuses it
    wh = Warehouse(tmp_path / "gf.duckdb")
    with pytest.raises(WarehouseError):
        store(wh, [("staging.carbon_intensity", frame)], report)
    assert wh.query("select count(*) n from staging.carbon_intensity").n[0] == 0
    assert wh.query("select count(*) n from raw.ingest_log").n[0] == 0
