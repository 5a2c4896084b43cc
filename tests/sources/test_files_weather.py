"""Open-Meteo historical weather CSV import."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sources.frames import WEATHER_COLUMNS, SourceError
from sources.weather_csv import SHARED_WEATHER_OFFSETS, interpolate_short_gaps, read_weather_csv

HEADER = "time,temperature_2m,relative_humidity_2m,cloudcover,windspeed_10m"


def write(tmp_path, lines, name="w.csv", trailing=True):
    p = tmp_path / name
    p.write_text("\n".join(lines) + ("\n" if trailing else ""), encoding="utf-8")
    return p


def rows(n, start="2021-01-01T00:00", temps=None):
    ts = pd.date_range(start, periods=n, freq="h")
    temps = temps if temps is not None else [float(i) for i in range(n)]
    return [f"{t:%Y-%m-%dT%H:%M},{tt},80,50,10.5" for t, tt in zip(ts, temps, strict=True)]


def test_offsets_and_columns(tmp_path):
    p = write(tmp_path, [HEADER, *rows(3)])
    f, rep = read_weather_csv(p, "sanjose", SHARED_WEATHER_OFFSETS["US-CAL-CISO"])
    assert list(f.columns) == WEATHER_COLUMNS
    assert f["ts"].iloc[0] == pd.Timestamp("2021-01-01 07:00", tz="UTC")  # UTC = time + 7 h
    assert (
        str(f["ts"].dtype) == "datetime64[ns, UTC]"
        and str(f["issued_at"].dtype) == "datetime64[ns, UTC]"
    )
    assert f["issued_at"].isna().all() and (f["kind"] == "observed").all()
    assert f["cloud_cover"].tolist() == [50, 50, 50] and f["wind_speed_10m"].tolist() == [10.5] * 3
    assert f["wind_speed_100m"].isna().all() and f["shortwave_radiation"].isna().all()
    assert rep.total == 0 and any("wind_speed_100m" in n for n in rep.notes)
    f2, _ = read_weather_csv(p, "frankfurt", SHARED_WEATHER_OFFSETS["DE-LU"])
    assert f2["ts"].iloc[0] == pd.Timestamp("2020-12-31 23:00", tz="UTC")


def test_new_names_accepted(tmp_path):
    header = "time,temperature_2m (°C),cloud_cover,wind_speed_100m,shortwave_radiation"
    p = write(tmp_path, [header, "2021-06-01T12:00,20,10,30,800"])
    f, _ = read_weather_csv(p, "x", 0)
    assert f[["cloud_cover", "wind_speed_100m", "shortwave_radiation"]].iloc[0].tolist() == [
        10,
        30,
        800,
    ]
    assert f["relative_humidity_2m"].isna().all()


def test_short_gap_interpolated_long_left(tmp_path):
    temps = [0, "", "", 3, 4, "", "", "", "", 9, ""]
    p = write(tmp_path, [HEADER, *rows(len(temps), temps=temps)])
    f, rep = read_weather_csv(p, "x", 0)
    t = f["temperature_2m"].to_numpy()
    assert np.allclose(t[:5], [0, 1, 2, 3, 4])
    assert np.isnan(t[5:9]).all() and np.isnan(t[10])
    assert rep.counts == {"gap_interpolated": 2, "gap_left": 5}


def test_interpolate_helper():
    v, filled, left = interpolate_short_gaps(np.array([np.nan, 1, np.nan, 3]), 3)
    assert filled == 1 and left == 1 and v[2] == 2


def test_missing_hours_reported(tmp_path):
    lines = rows(6)
    del lines[2]
    f, rep = read_weather_csv(write(tmp_path, [HEADER, *lines]), "x", 0)
    assert len(f) == 5 and rep.counts == {"missing_hours": 1}


def test_duplicates(tmp_path):
    lines = rows(3)
    f, rep = read_weather_csv(write(tmp_path, [HEADER, *lines, lines[1]]), "x", 0)
    assert (
        len(f) == 3 and rep.counts == {"duplicate_dropped": 1} and f["ts"].is_monotonic_increasing
    )
    bad = lines[1].replace(",80,", ",81,")
    with pytest.raises(SourceError, match="conflicting"):
        read_weather_csv(write(tmp_path, [HEADER, *lines, bad]), "x", 0)


@pytest.mark.parametrize(
    "lines,match,row",
    [
        ([], "empty", None),
        ([HEADER], "header only", None),
        (["when,temperature_2m", "2021-01-01T00:00,1"], "time", 1),
        ([HEADER, "2021-01-01T00:00,abc,80,50,10"], "non-numeric", 2),
        ([HEADER, "2021-01-01T00:00,1,180,50,10"], "outside", 2),
        ([HEADER, "2021-01-01T00:00,1,80,50,-3"], "outside", 2),
        ([HEADER, "2021-01-01T00:30,1,80,50,3"], "not on the hour", 2),
        ([HEADER, "2021-01-01T00:00,1,80,50,3", "2021-01-01T01:00,1,8"], "truncated", 3),
    ],
)
def test_errors(tmp_path, lines, match, row):
    with pytest.raises(SourceError, match=match) as e:
        read_weather_csv(write(tmp_path, lines, trailing=False), "x", 0)
    assert e.value.row == row


@pytest.mark.shared_data
@pytest.mark.parametrize("zone", sorted(SHARED_WEATHER_OFFSETS))
def test_shared_weather(shared_data, zone):
    off = SHARED_WEATHER_OFFSETS[zone]
    for year in (2021, 2022, 2023):
        f, rep = read_weather_csv(shared_data / "weather" / zone / f"{year}.csv", zone, off)
        assert len(f) == 8760 and f["ts"].is_unique and f["ts"].is_monotonic_increasing
        assert f["ts"].iloc[0] == pd.Timestamp(f"{year}-01-01", tz="UTC") - pd.Timedelta(hours=off)
        assert rep.counts == {}
        assert (
            f[["temperature_2m", "relative_humidity_2m", "cloud_cover", "wind_speed_10m"]]
            .notna()
            .all()
            .all()
        )
