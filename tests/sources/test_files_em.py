"""Electricity Maps CSV export import."""

from __future__ import annotations

import pandas as pd
import pytest

from sources.em_csv import read_em_csv
from sources.frames import CARBON_COLUMNS, SourceError

HEADER = (
    "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
    "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
    "Data Source,Data Estimated,Data Estimation Method"
)


def row(ts: str, direct="156.03", lca="233.76", est="false", method="", zone="GB") -> str:
    return (
        f"{ts},Great Britain,Great Britain,{zone},{direct},{lca},59.0,32.25,"
        f" nationalgrideso.com; elexon.co.uk,{est},{method}"
    )


def write(tmp_path, lines, name="GB_2021_hourly.csv", eol="\r\n", trailing=True):
    p = tmp_path / name
    text = eol.join(lines) + (eol if trailing else "")
    p.write_bytes(text.encode("utf-8"))
    return p


def hours(n, start="2021-01-01 00:00:00"):
    return [t.strftime("%Y-%m-%d %H:%M:%S") for t in pd.date_range(start, periods=n, freq="h")]


def test_reads_two_series(tmp_path):
    lines = [HEADER] + [
        row(t, direct=str(100 + i), lca=str(200 + i)) for i, t in enumerate(hours(5))
    ]
    lines[3] = row(
        hours(5)[2], direct="102", lca="202", est="true", method="ESTIMATED_TIME_SLICER_AVERAGE"
    )
    f, rep = read_em_csv(write(tmp_path, lines))
    assert list(f.columns) == CARBON_COLUMNS
    assert (
        str(f["ts"].dtype) == "datetime64[ns, UTC]"
        and str(f["received_at"].dtype) == "datetime64[ns, UTC]"
    )
    assert set(f["series"]) == {"GB:average:direct", "GB:average:lifecycle"}
    d = f[f["factor"] == "direct"]
    assert d["value"].tolist() == [100, 101, 102, 103, 104]
    assert f[f["factor"] == "lifecycle"]["value"].tolist() == [200, 201, 202, 203, 204]
    assert (f["signal"] == "average").all() and (f["source"] == "electricitymaps_csv").all()
    assert d["is_estimated"].tolist() == [False, False, True, False, False]
    assert d["estimation_method"].tolist()[2] == "ESTIMATED_TIME_SLICER_AVERAGE"
    assert d["estimation_method"].isna().sum() == 4
    assert d["ts"].iloc[0] == pd.Timestamp("2021-01-01", tz="UTC")
    assert rep.total == 0


def test_ascii_header_and_spaces(tmp_path):
    header = (
        " Datetime (UTC) ,Zone Id, Carbon Intensity gCO2eq/kWh (direct),"
        "Carbon Intensity gCO2eq/kWh (LCA)"
    )
    lines = [header, "2021-01-01 00:00:00,DE,300,400", "2021-01-01T01:00:00Z,DE,310,410"]
    f, rep = read_em_csv(write(tmp_path, lines, eol="\n"))
    assert set(f["series"]) == {"DE:average:direct", "DE:average:lifecycle"}
    assert not f["is_estimated"].any()
    assert any("Data Estimated" in n for n in rep.notes)


def test_missing_column(tmp_path):
    header = HEADER.replace("Carbon Intensity gCO₂eq/kWh (LCA)", "Carbon Intensity (something)")
    p = write(tmp_path, [header, row("2021-01-01 00:00:00")])
    with pytest.raises(SourceError, match=r"LCA") as e:
        read_em_csv(p)
    assert str(p) in str(e.value)


def test_wrong_columns(tmp_path):
    p = write(tmp_path, ["time,value", "2021-01-01 00:00,1"])
    with pytest.raises(SourceError, match="missing column"):
        read_em_csv(p)


@pytest.mark.parametrize("lines", [[], [HEADER], ["", ""]])
def test_empty_or_header_only(tmp_path, lines):
    with pytest.raises(SourceError, match="empty|header only"):
        read_em_csv(write(tmp_path, lines))


def test_non_numeric_names_line(tmp_path):
    lines = [HEADER] + [row(t) for t in hours(4)]
    lines[3] = row(hours(4)[2], direct="n/a")
    with pytest.raises(SourceError, match="non-numeric") as e:
        read_em_csv(write(tmp_path, lines))
    assert e.value.row == 4 and "GB_2021_hourly.csv" in str(e.value)


def test_empty_value_is_error(tmp_path):
    lines = [HEADER, row(hours(1)[0], lca="")]
    with pytest.raises(SourceError) as e:
        read_em_csv(write(tmp_path, lines))
    assert e.value.row == 2


def test_negative(tmp_path):
    lines = [HEADER] + [row(t) for t in hours(3)]
    lines[2] = row(hours(3)[1], direct="-5")
    with pytest.raises(SourceError, match="negative") as e:
        read_em_csv(write(tmp_path, lines))
    assert e.value.row == 3


def test_truncated_last_line(tmp_path):
    lines = [HEADER] + [row(t) for t in hours(3)]
    lines[-1] = lines[-1][:40]
    with pytest.raises(SourceError, match="truncated") as e:
        read_em_csv(write(tmp_path, lines, trailing=False))
    assert e.value.row == 4


def test_not_on_the_hour(tmp_path):
    lines = [HEADER, row("2021-01-01 00:00:00"), row("2021-01-01 01:30:00")]
    with pytest.raises(SourceError, match="not on the hour") as e:
        read_em_csv(write(tmp_path, lines))
    assert e.value.row == 3


def test_bad_timestamp(tmp_path):
    with pytest.raises(SourceError, match="timestamp"):
        read_em_csv(write(tmp_path, [HEADER, row("yesterday")]))


def test_identical_duplicates_dropped(tmp_path):
    h = hours(3)
    lines = [HEADER, row(h[0]), row(h[1]), row(h[1]), row(h[2])]
    f, rep = read_em_csv(write(tmp_path, lines))
    assert rep.counts == {"duplicate_dropped": 1}
    assert len(f) == 6 and not f.duplicated(["series", "ts"]).any()


def test_conflicting_duplicates(tmp_path):
    h = hours(3)
    lines = [HEADER, row(h[0]), row(h[1]), row(h[1], direct="999"), row(h[2])]
    with pytest.raises(SourceError, match="conflicting") as e:
        read_em_csv(write(tmp_path, lines))
    assert e.value.row == 4


def test_missing_hours_reported_not_invented(tmp_path):
    h = hours(10)
    lines = [HEADER] + [row(t) for i, t in enumerate(h) if i not in (3, 4, 7)]
    f, rep = read_em_csv(write(tmp_path, lines))
    assert rep.counts == {"missing_hours": 3}
    assert len(f) == 2 * 7
    assert any("2021-01-01 03:00" in n for n in rep.notes)


def test_several_zones(tmp_path):
    h = hours(2)
    lines = [HEADER, row(h[0]), row(h[1]), row(h[0], zone="FR"), row(h[1], zone="FR")]
    f, _ = read_em_csv(write(tmp_path, lines))
    assert f.groupby("series").size().to_dict() == {
        "FR:average:direct": 2,
        "FR:average:lifecycle": 2,
        "GB:average:direct": 2,
        "GB:average:lifecycle": 2,
    }


EM_FILES = [
    f"{z}_{y}_hourly.csv" for z in ("US-CAL-CISO", "DE-LU", "GB") for y in (2021, 2022, 2023)
]


@pytest.mark.shared_data
@pytest.mark.parametrize("name", EM_FILES)
def test_shared_em_files(shared_data, name):
    f, rep = read_em_csv(shared_data / "electricitymaps" / name)
    zone = {"DE-LU": "DE"}.get(name.rsplit("_", 2)[0], name.rsplit("_", 2)[0])
    sizes = f.groupby("series").size().to_dict()
    assert sizes == {f"{zone}:average:direct": 8760, f"{zone}:average:lifecycle": 8760}
    assert rep.counts.get("missing_hours", 0) == 0 and rep.counts.get("duplicate_dropped", 0) == 0
    year = int(name.rsplit("_", 2)[1])
    assert f["ts"].min() == pd.Timestamp(f"{year}-01-01", tz="UTC")
    assert f["ts"].max() == pd.Timestamp(f"{year}-12-31 23:00", tz="UTC")
    assert (f["value"] >= 0).all()
