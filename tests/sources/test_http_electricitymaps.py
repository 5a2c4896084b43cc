"""Electricity Maps v3 adapter against recorded-shape fixtures served by httpx.MockTransport."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pandas as pd
import pytest

from sources.electricitymaps_api import TOKEN_ENV, ElectricityMapsClient
from sources.frames import CARBON_COLUMNS, CARBON_FORECAST_COLUMNS, SourceError
from sources.http import AuthError, NotFoundError, ServerError

FIX = Path(__file__).parent / "fixtures"
TOKEN = "em-token-DO-NOT-LEAK-4242"
NOW = pd.Timestamp("2026-05-21T15:03:21", tz="UTC")


def load(name: str):
    return json.loads((FIX / name).read_text())


def client(handler, **kw):
    seen: list[httpx.Request] = []
    waits: list[float] = []

    def record(request):
        seen.append(request)
        return handler(request)

    c = ElectricityMapsClient(
        TOKEN,
        "https://em.example.test",
        transport=httpx.MockTransport(record),
        sleep=waits.append,
        clock=lambda: NOW,
        **kw,
    )
    return c, seen, waits


def serve(name: str, status: int = 200):
    return lambda request: httpx.Response(status, json=load(name))


def check_dtypes(df: pd.DataFrame, columns) -> None:
    assert list(df.columns) == list(columns)
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]"
    assert str(df["received_at"].dtype) == "datetime64[ns, UTC]"
    assert df["value"].dtype == "float64"
    assert df["is_estimated"].dtype == bool
    assert (df["ts"] == df["ts"].dt.floor("h")).all()
    assert df["ts"].is_monotonic_increasing and not df["ts"].duplicated().any()


def test_latest():
    c, seen, _ = client(serve("em_latest.json"))
    df, report = c.latest("DE")
    check_dtypes(df, CARBON_COLUMNS)
    row = df.iloc[0]
    assert len(df) == 1
    assert row["ts"] == pd.Timestamp("2026-05-21T14:00", tz="UTC")
    assert row["value"] == 302.0
    assert row["series"] == "DE:average:lifecycle"
    assert (row["zone"], row["signal"], row["factor"], row["source"]) == (
        "DE",
        "average",
        "lifecycle",
        "electricitymaps_api",
    )
    assert not row["is_estimated"] and row["estimation_method"] is None
    assert row["received_at"] == NOW
    assert report.total == 0
    req = seen[0]
    assert req.url.path == "/v3/carbon-intensity/latest"
    assert dict(req.url.params) == {"zone": "DE"}
    assert req.headers["auth-token"] == TOKEN


def test_history_24h_keeps_estimation_flags():
    c, seen, _ = client(serve("em_history.json"))
    df, report = c.history("DE", emission_factor="lifecycle")
    check_dtypes(df, CARBON_COLUMNS)
    assert len(df) == 24
    assert df["ts"].iloc[0] == pd.Timestamp("2026-05-20T15:00", tz="UTC")
    assert df["value"].tolist() == [250.0 + 3 * i for i in range(24)]
    assert df["is_estimated"].tolist() == [False] * 22 + [True] * 2
    assert df["estimation_method"].iloc[-1] == "TIME_SLICER_AVERAGE"
    assert df["estimation_method"].iloc[0] is None
    assert report.total == 0
    assert seen[0].url.params["emissionFactorType"] == "lifecycle"


def test_duplicates_keep_latest_updated_at():
    c, _, _ = client(serve("em_history_duplicates.json"))
    df, report = c.history("DE")
    assert len(df) == 4
    assert report.counts == {"duplicate_dropped": 2}
    by_ts = df.set_index("ts")["value"]
    assert by_ts[pd.Timestamp("2026-05-21T14:00", tz="UTC")] == 290.0  # the revision
    assert by_ts[pd.Timestamp("2026-05-21T13:00", tz="UTC")] == 316.0  # not the stale 999
    assert not df.set_index("ts")["is_estimated"][pd.Timestamp("2026-05-21T14:00", tz="UTC")]


def test_15_minute_granularity_averaged_to_the_hour():
    c, seen, _ = client(serve("em_history_15min.json"))
    df, report = c.history("DE", granularity="15_minutes")
    check_dtypes(df, CARBON_COLUMNS)
    assert seen[0].url.params["temporalGranularity"] == "15_minutes"
    assert df["ts"].tolist() == [
        pd.Timestamp("2026-05-21T12:00", tz="UTC"),
        pd.Timestamp("2026-05-21T13:00", tz="UTC"),
    ]
    assert df["value"].tolist() == [315.0, 210.0]
    assert df["series"].unique().tolist() == ["DE:average:direct"]
    assert df["is_estimated"].tolist() == [False, True]  # any estimated point flags the hour
    assert report.counts == {"resampled_to_hourly": 7, "partial_hour": 1}


def test_past_range_chunks_25_days_into_3_calls_without_overlap():
    def handler(request):
        p = request.url.params
        lo, hi = pd.Timestamp(p["start"]), pd.Timestamp(p["end"])
        # an end-inclusive answer: the boundary hour comes back from both neighbouring calls
        hours = pd.date_range(lo, hi, freq="h")
        data = [
            {
                "zone": "DE",
                "carbonIntensity": 100 + h.day,
                "datetime": h.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "updatedAt": "2026-03-01T00:00:00.000Z",
                "createdAt": "2026-02-01T00:00:00.000Z",
                "emissionFactorType": "lifecycle",
                "isEstimated": False,
                "estimationMethod": None,
            }
            for h in hours
        ]
        return httpx.Response(200, json={"zone": "DE", "data": data})

    c, seen, _ = client(handler)
    start, end = pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-01-26", tz="UTC")
    df, report = c.past_range("DE", start, end)
    assert [(r.url.params["start"], r.url.params["end"]) for r in seen] == [
        ("2026-01-01T00:00:00Z", "2026-01-11T00:00:00Z"),
        ("2026-01-11T00:00:00Z", "2026-01-21T00:00:00Z"),
        ("2026-01-21T00:00:00Z", "2026-01-26T00:00:00Z"),
    ]
    assert all(r.url.path == "/v3/carbon-intensity/past-range" for r in seen)
    check_dtypes(df, CARBON_COLUMNS)
    assert len(df) == 25 * 24
    assert df["ts"].tolist() == pd.date_range(start, end, freq="h", inclusive="left").tolist()
    assert report.total == 0


def test_forecast():
    c, seen, _ = client(serve("em_forecast.json"))
    df, report = c.forecast("DE", 24)
    check_dtypes(df, CARBON_FORECAST_COLUMNS)
    assert seen[0].url.params["horizonHours"] == "24"
    assert len(df) == 24
    assert (df["issued_at"] == pd.Timestamp("2026-05-21T14:51:02", tz="UTC")).all()
    assert str(df["issued_at"].dtype) == "datetime64[ns, UTC]"
    assert df["series"].unique().tolist() == ["DE:average:lifecycle"]
    assert df["value"].iloc[0] == 280.0 and df["value"].iloc[6] == 320.0


def test_negative_intensity_names_endpoint_and_index():
    c, _, _ = client(serve("em_history_negative.json"))
    with pytest.raises(SourceError) as info:
        c.history("DE")
    msg = str(info.value)
    assert "/v3/carbon-intensity/history?zone=DE" in msg and "row 3" in msg and "negative" in msg
    assert info.value.row == 3


@pytest.mark.parametrize("bad, problem", [("302", "not a number"), (True, "not a number")])
def test_non_numeric_intensity(bad, problem):
    payload = load("em_history.json")
    payload["history"][5]["carbonIntensity"] = bad
    c, _, _ = client(lambda r: httpx.Response(200, json=payload))
    with pytest.raises(SourceError, match=problem) as info:
        c.history("DE")
    assert info.value.row == 5


def test_missing_keys_and_null_values():
    payload = load("em_history.json")
    del payload["history"][2]["datetime"]
    c, _, _ = client(lambda r: httpx.Response(200, json=payload))
    with pytest.raises(SourceError, match="missing key 'datetime'") as info:
        c.history("DE")
    assert info.value.row == 2

    c, _, _ = client(lambda r: httpx.Response(200, json={"zone": "DE"}))
    with pytest.raises(SourceError, match="missing key 'history' or 'data'"):
        c.history("DE")

    payload = load("em_history.json")
    payload["history"][4]["carbonIntensity"] = None
    c, _, _ = client(lambda r: httpx.Response(200, json=payload))
    df, report = c.history("DE")
    assert len(df) == 23 and report.counts == {"missing_value_dropped": 1}


def test_empty_history_is_a_typed_empty_frame():
    c, _, _ = client(lambda r: httpx.Response(200, json={"zone": "DE", "history": []}))
    df, report = c.history("DE")
    assert df.empty and list(df.columns) == CARBON_COLUMNS
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]" and df["value"].dtype == "float64"
    assert report.total == 0


def test_malformed_json():
    c, _, _ = client(lambda r: httpx.Response(200, text='{"zone":"DE","history":[{"carbonInt'))
    with pytest.raises(SourceError, match="malformed JSON") as info:
        c.history("DE")
    assert "/v3/carbon-intensity/history" in str(info.value)


def test_404_unknown_zone():
    c, _, _ = client(serve("em_404.json", 404))
    with pytest.raises(NotFoundError) as info:
        c.latest("XX")
    assert "zone=XX" in str(info.value) and "does not exist" in str(info.value)


def test_401_names_env_var_and_hides_token(caplog):
    body = {"message": f"Invalid token {TOKEN}"}
    c, _, _ = client(lambda r: httpx.Response(401, json=body))
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(AuthError) as info:
            c.history("DE")
    assert TOKEN_ENV in str(info.value)
    assert TOKEN not in str(info.value) + caplog.text + repr(c) + repr(c.http)


def test_5xx_retried_then_success_and_exhausted():
    answers = [httpx.Response(503), httpx.Response(200, json=load("em_latest.json"))]
    c, seen, waits = client(lambda r: answers.pop(0))
    df, _ = c.latest("DE")
    assert len(seen) == 2 and len(waits) == 1 and len(df) == 1

    c, seen, waits = client(lambda r: httpx.Response(502), max_attempts=3)
    with pytest.raises(ServerError, match="gave up after 3"):
        c.latest("DE")
    assert len(seen) == 3


def test_429_retry_after_then_success():
    answers = [
        httpx.Response(429, headers={"Retry-After": "12"}),
        httpx.Response(200, json=load("em_latest.json")),
    ]
    c, _, waits = client(lambda r: answers.pop(0))
    c.latest("DE")
    assert waits == [12.0]


def test_from_env(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(ValueError, match=TOKEN_ENV):
        ElectricityMapsClient.from_env()
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("ELECTRICITYMAPS_BASE_URL", "https://em.example.test")
    c = ElectricityMapsClient.from_env(max_attempts=2)
    assert c.base_url == "https://em.example.test" and c.http.max_attempts == 2
    assert TOKEN not in repr(c)
