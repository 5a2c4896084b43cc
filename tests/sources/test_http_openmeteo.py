"""Open-Meteo adapter against recorded-shape fixtures served by httpx.MockTransport."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from sources.frames import WEATHER_COLUMNS, SourceError
from sources.http import ClientError, ServerError
from sources.openmeteo import HOURLY, OpenMeteoClient

FIX = Path(__file__).parent / "fixtures"
NOW = pd.Timestamp("2026-04-30T21:37:12", tz="UTC")
HOURS = list(pd.date_range("2026-05-01", periods=24, freq="h", tz="UTC"))


def load(name: str):
    return json.loads((FIX / name).read_text())


def client(handler, **kw):
    seen: list[httpx.Request] = []
    waits: list[float] = []

    def record(request):
        seen.append(request)
        return handler(request)

    c = OpenMeteoClient(
        transport=httpx.MockTransport(record), sleep=waits.append, clock=lambda: NOW, **kw
    )
    return c, seen, waits


def serve(name: str):
    return lambda request: httpx.Response(200, json=load(name))


def check(df: pd.DataFrame) -> None:
    assert list(df.columns) == WEATHER_COLUMNS
    for col in ("ts", "issued_at", "received_at"):
        assert str(df[col].dtype) == "datetime64[ns, UTC]", col
    for col in HOURLY:
        assert df[col].dtype == "float64", col
    assert (df["ts"] == df["ts"].dt.floor("h")).all()


def test_forecast():
    c, seen, _ = client(serve("om_forecast.json"))
    df, report = c.forecast(52.52, 13.41, days=1, location="berlin")
    check(df)
    req = seen[0]
    assert (req.url.host, req.url.path) == ("api.open-meteo.com", "/v1/forecast")
    p = req.url.params
    assert p["timezone"] == "UTC" and p["forecast_days"] == "1"
    assert p["hourly"].split(",") == HOURLY
    assert df["ts"].tolist() == HOURS
    assert set(df["kind"]) == {"forecast"} and set(df["location"]) == {"berlin"}
    assert set(df["source"]) == {"openmeteo_forecast"}
    assert (df["issued_at"] == pd.Timestamp("2026-04-30T21:00", tz="UTC")).all()
    assert any("floored to the hour" in n for n in report.notes)
    assert df["temperature_2m"].iloc[9] == 12.0 and df["relative_humidity_2m"].iloc[3] == 67.0
    assert df["wind_speed_10m"].iloc[4] == 11.0 and df["shortwave_radiation"].iloc[12] == 600.0
    assert np.isnan(df["wind_speed_100m"].iloc[23])
    assert report.counts == {"null_to_nan": 1}


def test_archive_old_names_and_nulls():
    c, seen, _ = client(serve("om_archive.json"))
    df, report = c.archive(52.52, 13.41, "2026-05-01", "2026-05-01", location="berlin")
    check(df)
    req = seen[0]
    assert (req.url.host, req.url.path) == ("archive-api.open-meteo.com", "/v1/archive")
    assert (
        req.url.params["start_date"] == "2026-05-01" and req.url.params["end_date"] == "2026-05-01"
    )
    assert set(df["kind"]) == {"observed"} and df["issued_at"].isna().all()
    assert df["cloud_cover"].iloc[3] == 21.0  # from "cloudcover"
    assert df["wind_speed_10m"].iloc[4] == 11.0  # from "windspeed_10m"
    assert df["wind_speed_100m"].iloc[2] == 19.0  # from "windspeed_100m"
    assert np.isnan(df.loc[5, "temperature_2m"]) and np.isnan(df.loc[5, "cloud_cover"])
    assert np.isnan(df.loc[20, "shortwave_radiation"])
    assert report.counts == {"null_to_nan": 3}


def test_historical_forecast_issue_time_is_approximate():
    c, seen, _ = client(serve("om_historical_forecast.json"))
    df, report = c.historical_forecast(
        52.52, 13.41, "2026-05-01", "2026-05-01", location="berlin", assumed_lead_hours=6
    )
    check(df)
    assert seen[0].url.host == "historical-forecast-api.open-meteo.com"
    assert set(df["kind"]) == {"forecast"}
    assert set(df["source"]) == {"openmeteo_historical_forecast"}
    assert (df["issued_at"] == df["ts"] - pd.Timedelta(hours=6)).all()
    assert any("approximate" in n for n in report.notes)


def test_local_offset_converted_to_utc():
    c, _, _ = client(serve("om_local_offset.json"))
    df, report = c.archive(52.52, 13.41, "2026-05-01", "2026-05-01")
    # local 02:00 at UTC+2 is 00:00 UTC
    assert df["ts"].iloc[0] == pd.Timestamp("2026-05-01T00:00", tz="UTC")
    assert len(df) == 6
    assert set(df["location"]) == {"52.5200,13.4100"}
    assert any("converted to UTC" in n for n in report.notes)


def test_wind_in_m_per_s_converted_and_unknown_units_refused():
    payload = load("om_forecast.json")
    payload["hourly_units"]["wind_speed_10m"] = "m/s"
    c, _, _ = client(lambda r: httpx.Response(200, json=payload))
    df, _ = c.forecast(52.52, 13.41, 1)
    assert df["wind_speed_10m"].iloc[0] == pytest.approx(36.0)

    payload["hourly_units"]["shortwave_radiation"] = "MJ/m²"
    c, _, _ = client(lambda r: httpx.Response(200, json=payload))
    with pytest.raises(SourceError, match="unknown unit"):
        c.forecast(52.52, 13.41, 1)


def test_malformed_payloads():
    payload = load("om_forecast.json")
    payload["hourly"]["temperature_2m"] = payload["hourly"]["temperature_2m"][:-1]
    c, _, _ = client(lambda r: httpx.Response(200, json=payload))
    with pytest.raises(SourceError, match="23 values"):
        c.forecast(52.52, 13.41, 1)

    payload = load("om_forecast.json")
    payload["hourly"]["cloud_cover"][7] = "cloudy"
    c, _, _ = client(lambda r: httpx.Response(200, json=payload))
    with pytest.raises(SourceError, match="not a number") as info:
        c.forecast(52.52, 13.41, 1)
    assert info.value.row == 7

    c, _, _ = client(lambda r: httpx.Response(200, text='{"hourly": {"time": ['))
    with pytest.raises(SourceError, match="malformed JSON"):
        c.forecast(52.52, 13.41, 1)


def test_missing_variable_is_nan_and_counted():
    payload = load("om_forecast.json")
    del payload["hourly"]["wind_speed_100m"]
    c, _, _ = client(lambda r: httpx.Response(200, json=payload))
    df, report = c.forecast(52.52, 13.41, 1)
    assert df["wind_speed_100m"].isna().all()
    assert report.counts["missing_variable"] == 24


def test_400_reason_and_5xx_retry():
    c, _, _ = client(lambda r: httpx.Response(400, json=load("om_400.json")))
    with pytest.raises(ClientError, match="invalid value"):
        c.forecast(52.52, 13.41, 1)

    answers = [httpx.Response(502), httpx.Response(200, json=load("om_forecast.json"))]
    c, seen, waits = client(lambda r: answers.pop(0))
    df, _ = c.forecast(52.52, 13.41, 1)
    assert len(df) == 24 and len(seen) == 2 and waits == [1.0]

    c, seen, _ = client(lambda r: httpx.Response(503), max_attempts=2)
    with pytest.raises(ServerError):
        c.forecast(52.52, 13.41, 1)


def test_from_env(monkeypatch):
    monkeypatch.setenv("OPENMETEO_ARCHIVE_URL", "http://localhost:8080/v1/archive")
    c = OpenMeteoClient.from_env()
    assert c.archive_url == "http://localhost:8080/v1/archive"
