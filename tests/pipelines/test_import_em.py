"""`gridflex import em-csv`: real Electricity Maps exports into a real DuckDB file."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.lib.ingest import import_em_csv
from sources.frames import SourceError
from warehouse import Warehouse

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.shared_data
def test_all_shared_exports_store_8760_hours_per_zone_year_and_reimport_changes_nothing(
    shared_data, tmp_path
):
    files = sorted((shared_data / "electricitymaps").glob("*_hourly.csv"))
    assert len(files) == 9
    wh = Warehouse(tmp_path / "gf.duckdb")
    first = import_em_csv(wh, files)
    per = wh.query("""select zone, year(ts) as year, series, count(*) n, count(distinct ts) d
                      from staging.carbon_intensity group by all""")
    assert len(per) == 3 * 3 * 2  # zones x years x (direct, lifecycle)
    assert (per.n == 8760).all() and (per.d == 8760).all()
    assert first.inserted.sum() == 9 * 2 * 8760
    snapshot = wh.query("select * from staging.carbon_intensity order by series, ts")

    second = import_em_csv(wh, files)
    assert second.inserted.sum() == 0 and second.updated.sum() == 0
    assert second.unchanged.sum() == 9 * 2 * 8760
    pd.testing.assert_frame_equal(
        snapshot, wh.query("select * from staging.carbon_intensity order by series, ts")
    )
    log = wh.query("select count(*) n, sum(inserted) ins from raw.ingest_log")
    assert log.n[0] == 36 and log.ins[0] == 9 * 2 * 8760


def _write_export(path: Path, rows: list[str]) -> Path:
    header = (
        "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
        "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
        "Data Source,Data Estimated,Data Estimation Method"
    )
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_a_bad_file_is_named_and_leaves_what_was_stored(tmp_path):
    good = _write_export(
        tmp_path / "GB_2022_hourly.csv",
        [
            f"2022-01-01 0{h}:00:00,Great Britain,Great Britain,GB,{100 + h},{150 + h},80,50,x,false,"
            for h in range(3)
        ],
    )
    bad = _write_export(
        tmp_path / "DE_2022_hourly.csv",
        [
            "2022-01-01 00:00:00,Germany,Germany,DE,300,350,40,30,x,false,",
            "2022-01-01 01:00:00,Germany,Germany,DE,-5,350,40,30,x,false,",
        ],
    )
    wh = Warehouse(tmp_path / "gf.duckdb")
    with pytest.raises(SourceError, match="DE_2022_hourly.csv"):
        import_em_csv(wh, [good, bad])
    got = wh.query("select zone, count(*) n from staging.carbon_intensity group by zone")
    assert got.to_dict("records") == [
        {"zone": "GB", "n": 6}
    ]  # 3 hours x (direct, LCA); nothing from DE


def test_cli_prints_hours_per_zone(tmp_path):
    f = _write_export(
        tmp_path / "GB_2022_hourly.csv",
        [
            f"2022-01-01 0{h}:00:00,Great Britain,Great Britain,GB,{100 + h},{150 + h},80,50,x,false,"
            for h in range(4)
        ],
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridflex_cli.main",
            "import",
            "em-csv",
            str(f),
            "--db",
            str(tmp_path / "gf.duckdb"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "GB:average:direct" in out.stdout and "|       4 |" in out.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridflex_cli.main",
            "import",
            "em-csv",
            str(tmp_path / "nope.csv"),
            "--db",
            str(tmp_path / "gf.duckdb"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert bad.returncode == 1 and "nope.csv" in bad.stderr
