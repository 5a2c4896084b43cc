"""Wholesale price CSV import, with daylight-saving repairs."""

from __future__ import annotations

import pandas as pd
import pytest

from sources.frames import PRICE_COLUMNS, SourceError
from sources.prices_csv import SHARED_PRICE_TZ, read_prices_csv


def write(tmp_path, lines, name="p.csv", trailing=True):
    p = tmp_path / name
    p.write_text("\n".join(lines) + ("\n" if trailing else ""), encoding="utf-8")
    return p


def day(date, values=None, hours=None, cur="EUR"):
    hours = range(24) if hours is None else hours
    return [f"{date} {h:02d}:00:00,{(values or {}).get(h, 10.0 + h)}" for h in hours]


def test_utc_file(tmp_path):
    p = write(tmp_path, ["Datetime,Price (USD/MWh)", *day("2021-01-01")])
    f, rep = read_prices_csv(p, "US-CAL-CISO")
    assert list(f.columns) == PRICE_COLUMNS and len(f) == 24 and rep.total == 0
    assert f["ts"].iloc[0] == pd.Timestamp("2021-01-01", tz="UTC") and set(f["currency"]) == {"USD"}
    assert str(f["ts"].dtype) == "datetime64[ns, UTC]"


def test_negative_prices_ok_and_currency(tmp_path):
    p = write(tmp_path, ["Datetime,Price (EUR/MWh)", "2023-01-01 00:00:00,-5.17"])
    f, _ = read_prices_csv(p, "DE-LU", "Europe/Berlin")
    assert f["price"].iloc[0] == -5.17 and f["currency"].iloc[0] == "EUR"
    assert f["ts"].iloc[0] == pd.Timestamp("2022-12-31 23:00", tz="UTC")


def test_spring_forward_filler_dropped(tmp_path):
    # Berlin 2021-03-28: 02:00 does not exist; the export repeats 01:00's price there
    lines = day("2021-03-28", values={2: 11.0})
    f, rep = read_prices_csv(
        write(tmp_path, ["Datetime,Price (EUR/MWh)", *lines]), "DE-LU", "Europe/Berlin"
    )
    assert rep.counts == {"dst_nonexistent_dropped": 1}
    assert (
        len(f) == 23
        and f["ts"].is_unique
        and f["ts"].diff().dropna().eq(pd.Timedelta(hours=1)).all()
    )
    assert (
        f.loc[f["ts"] == pd.Timestamp("2021-03-28 01:00", tz="UTC"), "price"].item() == 13.0
    )  # 03:00 CEST


def test_spring_forward_london_hour(tmp_path):
    lines = day("2022-03-27")
    f, rep = read_prices_csv(
        write(tmp_path, ["Datetime,Price (EUR/MWh)", *lines]), "GB", "Europe/London"
    )
    assert rep.counts == {"dst_nonexistent_dropped": 1} and len(f) == 23
    assert 11.0 not in f["price"].tolist()  # the 01:00 row is the one that does not exist


def test_autumn_single_repeated_hour_filled(tmp_path):
    lines = day("2022-10-30")
    f, rep = read_prices_csv(
        write(tmp_path, ["Datetime,Price (EUR/MWh)", *lines]), "DE-LU", "Europe/Berlin"
    )
    assert rep.counts == {"dst_hour_filled": 1}
    assert (
        len(f) == 25
        and f["ts"].is_unique
        and f["ts"].diff().dropna().eq(pd.Timedelta(hours=1)).all()
    )
    two = f[f["ts"].isin(pd.to_datetime(["2022-10-30 00:00", "2022-10-30 01:00"], utc=True))]
    assert two["price"].tolist() == [12.0, 12.0]


def test_autumn_stray_zero_replaced(tmp_path):
    # DE-LU 2021: a stray "02:00,0.0" before the day's rows
    lines = ["2021-10-31 02:00:00,0.0", *day("2021-10-31")]
    f, rep = read_prices_csv(
        write(tmp_path, ["Datetime,Price (EUR/MWh)", *lines]), "DE-LU", "Europe/Berlin"
    )
    assert rep.counts == {"dst_zero_replaced": 1}
    assert len(f) == 25 and f["ts"].is_unique and f["ts"].is_monotonic_increasing
    assert 0.0 not in f["price"].tolist()


def test_autumn_both_occurrences_kept(tmp_path):
    lines = day("2022-10-30")
    lines.insert(3, "2022-10-30 02:00:00,99.0")
    f, rep = read_prices_csv(
        write(tmp_path, ["Datetime,Price (EUR/MWh)", *lines]), "DE-LU", "Europe/Berlin"
    )
    assert rep.total == 0 and len(f) == 25
    assert f.loc[f["ts"] == pd.Timestamp("2022-10-30 01:00", tz="UTC"), "price"].item() == 99.0


def test_autumn_extra_identical_dropped(tmp_path):
    lines = day("2022-10-30")
    lines[2:3] = [lines[2]] * 3
    f, rep = read_prices_csv(
        write(tmp_path, ["Datetime,Price (EUR/MWh)", *lines]), "DE-LU", "Europe/Berlin"
    )
    assert rep.counts == {"dst_duplicate_dropped": 1} and len(f) == 25


def test_missing_day_reported_not_invented(tmp_path):
    lines = day("2021-04-29") + day("2021-05-01")
    f, rep = read_prices_csv(
        write(tmp_path, ["Datetime,Price (EUR/MWh)", *lines]), "DE-LU", "Europe/Berlin"
    )
    assert rep.counts == {"missing_day": 1} and len(f) == 48
    assert any("2021-04-30" in n for n in rep.notes)


def test_duplicates_and_order(tmp_path):
    lines = day("2021-01-01", hours=[0, 2, 1, 3]) + ["2021-01-01 03:00:00,13.0"]
    f, rep = read_prices_csv(write(tmp_path, ["Datetime,Price (USD/MWh)", *lines]), "X")
    assert rep.counts == {"duplicate_dropped": 1, "rows_reordered": 1}
    assert f["price"].tolist() == [10, 11, 12, 13]
    bad = lines + ["2021-01-01 03:00:00,14.0"]
    with pytest.raises(SourceError, match="conflicting"):
        read_prices_csv(write(tmp_path, ["Datetime,Price (USD/MWh)", *bad]), "X")


@pytest.mark.parametrize(
    "lines,match,row",
    [
        ([], "empty", None),
        (["Datetime,Price (USD/MWh)"], "header only", None),
        (["Datetime,Cost", "2021-01-01 00:00:00,1"], "Price", 1),
        (["Date,Price (USD/MWh)", "2021-01-01 00:00:00,1"], "Datetime", 1),
        (
            ["Datetime,Price (USD/MWh)", "2021-01-01 00:00:00,1", "2021-01-01 01:00:00,x"],
            "non-numeric",
            3,
        ),
        (
            ["Datetime,Price (USD/MWh)", "2021-01-01 00:00:00,1", "2021-01-01 01:00:00"],
            "truncated",
            3,
        ),
        (["Datetime,Price (USD/MWh)", "2021-01-01 00:15:00,1"], "not on the hour", 2),
    ],
)
def test_errors(tmp_path, lines, match, row):
    with pytest.raises(SourceError, match=match) as e:
        read_prices_csv(write(tmp_path, lines, trailing=False), "X")
    assert e.value.row == row


EXPECTED = {  # file → (repair counts, first UTC hour, hours)
    "DE-LU_electricity_prices_2021.csv": (
        {"dst_nonexistent_dropped": 1, "dst_zero_replaced": 1, "missing_day": 1},
        "2020-12-31 23:00",
        8736,
    ),
    "DE-LU_electricity_prices_2022.csv": (
        {"dst_nonexistent_dropped": 1, "dst_hour_filled": 1, "missing_day": 1},
        "2021-12-31 23:00",
        8736,
    ),
    "DE-LU_electricity_prices_2023.csv": (
        {"dst_nonexistent_dropped": 1, "dst_hour_filled": 1},
        "2022-12-31 23:00",
        8760,
    ),
    "GB_electricity_prices_2022.csv": (
        {"dst_nonexistent_dropped": 1, "dst_hour_filled": 1},
        "2022-01-21 00:00",
        8280,
    ),
    "GB_electricity_prices_2023.csv": (
        {"dst_nonexistent_dropped": 1, "dst_hour_filled": 1},
        "2023-01-01 00:00",
        8760,
    ),
    "US-CAL-CISO_electricity_prices_2021.csv": ({}, "2020-12-31 08:00", 8784),
    "US-CAL-CISO_electricity_prices_2022.csv": ({}, "2021-12-31 08:00", 8784),
    "US-CAL-CISO_electricity_prices_2023.csv": ({}, "2022-12-31 08:00", 8784),
}


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_price_files(shared_data, name):
    zone = name.split("_")[0]
    f, rep = read_prices_csv(shared_data / "prices" / name, zone, SHARED_PRICE_TZ[zone])
    counts, first, n = EXPECTED[name]
    assert rep.counts == counts
    assert f["ts"].is_unique and f["ts"].is_monotonic_increasing
    assert f["ts"].iloc[0] == pd.Timestamp(first, tz="UTC") and len(f) == n
    assert f["currency"].iloc[0] == ("USD" if zone == "US-CAL-CISO" else "EUR")
    gaps = f["ts"].diff().dropna()
    assert (gaps == pd.Timedelta(hours=1)).sum() >= len(f) - 2
    if "missing_day" in counts:
        assert (gaps == pd.Timedelta(hours=25)).sum() == 1  # one local day missing, not invented
