"""WattTime v3 adapter against recorded-shape fixtures served by httpx.MockTransport."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import httpx
import pandas as pd
import pytest

from sources.frames import CARBON_COLUMNS, CARBON_FORECAST_COLUMNS, SourceError
from sources.http import AuthError, NotFoundError, ServerError
from sources.watttime import PASSWORD_ENV, USERNAME_ENV, WattTimeClient

FIX = Path(__file__).parent / "fixtures"
USER, PASSWORD = "gridflex-user", "hunter2-very-secret-pw"
FIRST = "wt-bearer-token-FIRST-0123456789abcdef"
SECOND = "wt-bearer-token-SECOND-fedcba9876543210"
NOW = pd.Timestamp("2026-04-01T03:01:00", tz="UTC")
LB = 0.453592


def load(name: str):
    return json.loads((FIX / name).read_text())


class Server:
    """Issues FIRST on the first /login and SECOND after; data endpoints accept ``self.valid``."""

    def __init__(self, data: dict[str, object], valid: str = FIRST):
        self.data = data
        self.valid = valid
        self.tokens = [FIRST, SECOND]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/login":
            expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if request.headers.get("Authorization") != expected:
                return httpx.Response(401, text="bad credentials")
            return httpx.Response(200, json={"token": self.tokens.pop(0)})
        if request.headers.get("Authorization") != f"Bearer {self.valid}":
            return httpx.Response(401, json={"error": "token expired"})
        answer = self.data[request.url.path]
        return answer(request) if callable(answer) else httpx.Response(200, json=answer)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


def client(server: Server, **kw) -> tuple[WattTimeClient, list[float]]:
    waits: list[float] = []
    c = WattTimeClient(
        USER,
        PASSWORD,
        "https://wt.example.test",
        transport=httpx.MockTransport(server),
        sleep=waits.append,
        clock=lambda: NOW,
        **kw,
    )
    return c, waits


def check(df: pd.DataFrame, columns) -> None:
    assert list(df.columns) == list(columns)
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]"
    assert str(df["received_at"].dtype) == "datetime64[ns, UTC]"
    assert df["value"].dtype == "float64"
    assert df["is_estimated"].dtype == bool
    assert (df["ts"] == df["ts"].dt.floor("h")).all()
    assert set(df["series"]) == {"CAISO_NORTH:marginal:co2_moer"}
    assert set(df["signal"]) == {"marginal"} and set(df["factor"]) == {"co2_moer"}
    assert set(df["source"]) == {"watttime"} and set(df["zone"]) == {"CAISO_NORTH"}


def test_historical_converts_units_and_averages_5_minutes():
    server = Server({"/v3/historical": load("wt_historical.json")})
    c, _ = client(server)
    df, report = c.historical("CAISO_NORTH", "2026-04-01T00:00Z", "2026-04-01T03:00Z")
    check(df, CARBON_COLUMNS)
    assert df["ts"].tolist() == list(pd.date_range("2026-04-01", periods=3, freq="h", tz="UTC"))
    assert df["value"].tolist() == pytest.approx([805.5 * LB, 905.5 * LB, 1002.5 * LB])
    assert report.counts == {"resampled_to_hourly": 30, "partial_hour": 1}
    assert any("hourly mean" in n for n in report.notes)
    req = server.requests[-1]
    assert dict(req.url.params) == {
        "region": "CAISO_NORTH",
        "start": "2026-04-01T00:00:00Z",
        "end": "2026-04-01T03:00:00Z",
        "signal_type": "co2_moer",
    }
    assert server.paths() == ["/login", "/v3/historical"]


def test_token_cached_across_calls():
    server = Server({"/v3/historical": load("wt_historical.json")})
    c, _ = client(server)
    c.historical("CAISO_NORTH", "2026-04-01", "2026-04-01T03:00")
    c.historical("CAISO_NORTH", "2026-04-01", "2026-04-01T03:00")
    assert server.paths() == ["/login", "/v3/historical", "/v3/historical"]
    assert c.logins == 1


def test_token_refreshed_once_on_401_then_retried():
    server = Server({"/v3/historical": load("wt_historical.json")})
    c, _ = client(server)
    c.historical("CAISO_NORTH", "2026-04-01", "2026-04-01T03:00")
    server.valid = SECOND  # the first token expires server-side
    df, _ = c.historical("CAISO_NORTH", "2026-04-01", "2026-04-01T03:00")
    assert len(df) == 3
    assert server.paths() == [
        "/login",
        "/v3/historical",
        "/v3/historical",
        "/login",
        "/v3/historical",
    ]
    assert server.requests[-1].headers["Authorization"] == f"Bearer {SECOND}"


def test_401_after_refresh_is_clear_and_leaks_nothing(caplog):
    server = Server({"/v3/historical": load("wt_historical.json")}, valid="never-valid")
    c, _ = client(server)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(AuthError) as info:
            c.historical("CAISO_NORTH", "2026-04-01", "2026-04-01T03:00")
    msg = str(info.value)
    assert USERNAME_ENV in msg and PASSWORD_ENV in msg
    assert c.logins == 2  # refreshed exactly once
    for secret in (PASSWORD, FIRST, SECOND):
        assert secret not in msg + caplog.text + repr(c) + repr(c.http)


def test_bad_login_names_env_vars():
    server = Server({})
    c = WattTimeClient(
        USER,
        "wrong-password",
        "https://wt.example.test",
        transport=httpx.MockTransport(server),
        sleep=lambda s: None,
    )
    with pytest.raises(AuthError, match=USERNAME_ENV) as info:
        c.forecast("CAISO_NORTH")
    assert "wrong-password" not in str(info.value)
    assert server.paths() == ["/login"]  # a refused login is not retried (/login is rate-limited)


def test_forecast():
    server = Server({"/v3/forecast": load("wt_forecast.json")})
    c, _ = client(server)
    df, report = c.forecast("CAISO_NORTH", horizon_hours=2)
    check(df, CARBON_FORECAST_COLUMNS)
    assert server.requests[-1].url.params["horizon_hours"] == "2"
    assert df["ts"].tolist() == list(pd.date_range("2026-04-01", periods=2, freq="h", tz="UTC"))
    assert df["value"].tolist() == pytest.approx([900 * LB, 1000 * LB])
    assert (df["issued_at"] == pd.Timestamp("2026-04-01T00:05", tz="UTC")).all()
    assert str(df["issued_at"].dtype) == "datetime64[ns, UTC]"
    assert report.counts == {"resampled_to_hourly": 23, "partial_hour": 1}


def test_forecast_historical_issued_as_generated():
    server = Server({"/v3/forecast/historical": load("wt_forecast_historical.json")})
    c, _ = client(server)
    df, report = c.forecast_historical("CAISO_NORTH", "2026-04-01", "2026-04-01T02:00")
    check(df, CARBON_FORECAST_COLUMNS)
    assert server.requests[-1].url.path == "/v3/forecast/historical"
    assert len(df) == 4
    t = pd.date_range("2026-04-01", periods=3, freq="h", tz="UTC")
    assert df["issued_at"].tolist() == [t[0], t[0], t[1], t[1]]
    assert df["ts"].tolist() == [t[0], t[1], t[1], t[2]]
    assert df["value"].tolist() == pytest.approx([500 * LB, 550 * LB, 600 * LB, 650 * LB])
    assert report.counts == {"resampled_to_hourly": 48}
    assert not df.duplicated(["ts", "issued_at"]).any()


def test_forecast_historical_window_boundary_not_duplicated():
    payload = load("wt_forecast_historical.json")
    c, _ = client(Server({"/v3/forecast/historical": payload}))
    # asked for [00:00, 01:00): the 01:00 issue (end-inclusive answer) belongs to the next window
    df, report = c.forecast_historical("CAISO_NORTH", "2026-04-01", "2026-04-01T01:00")
    assert set(df["issued_at"]) == {pd.Timestamp("2026-04-01", tz="UTC")}
    assert "outside_window_dropped" not in report.counts


def test_unknown_units_refused():
    payload = load("wt_historical.json")
    payload["meta"]["units"] = "usd_per_mwh"
    c, _ = client(Server({"/v3/historical": payload}))
    with pytest.raises(SourceError, match="unknown units 'usd_per_mwh'"):
        c.historical("CAISO_NORTH", "2026-04-01", "2026-04-01T03:00")


def test_negative_and_non_numeric_values_refused():
    payload = load("wt_historical.json")
    payload["data"][7]["value"] = -3.0
    c, _ = client(Server({"/v3/historical": payload}))
    with pytest.raises(SourceError, match="negative") as info:
        c.historical("CAISO_NORTH", "2026-04-01", "2026-04-01T03:00")
    assert info.value.row == 7 and "/v3/historical" in str(info.value)

    payload["data"][7]["value"] = "n/a"
    c, _ = client(Server({"/v3/historical": payload}))
    with pytest.raises(SourceError, match="not a number"):
        c.historical("CAISO_NORTH", "2026-04-01", "2026-04-01T03:00")


def test_malformed_json_and_404():
    c, _ = client(Server({"/v3/forecast": lambda r: httpx.Response(200, text="<html>oops")}))
    with pytest.raises(SourceError, match="malformed JSON"):
        c.forecast("CAISO_NORTH")
    c, _ = client(
        Server({"/v3/forecast": lambda r: httpx.Response(404, json={"error": "no region"})})
    )
    with pytest.raises(NotFoundError, match="region=NOPE"):
        c.forecast("NOPE")


def test_5xx_and_429_retried():
    answers = [
        httpx.Response(429, headers={"Retry-After": "5"}),
        httpx.Response(503),
        httpx.Response(200, json=load("wt_forecast.json")),
    ]
    c, waits = client(Server({"/v3/forecast": lambda r: answers.pop(0)}))
    df, _ = c.forecast("CAISO_NORTH")
    assert len(df) == 2
    assert waits == [5.0, 2.0]  # Retry-After, then backoff for attempt 2 (1 s * 2)

    c, _ = client(Server({"/v3/forecast": lambda r: httpx.Response(500)}), max_attempts=2)
    with pytest.raises(ServerError, match="gave up after 2"):
        c.forecast("CAISO_NORTH")


def test_chunked_historical():
    def answer(request):
        p = request.url.params
        hours = pd.date_range(p["start"], p["end"], freq="5min", inclusive="left")
        data = [{"point_time": h.isoformat(), "value": 100.0} for h in hours]
        meta = load("wt_historical.json")["meta"]
        return httpx.Response(200, json={"data": data, "meta": meta})

    server = Server({"/v3/historical": answer})
    c, _ = client(server, max_days_per_call=1)
    df, report = c.historical("CAISO_NORTH", "2026-04-01", "2026-04-03T12:00")
    assert [r.url.params["start"] for r in server.requests if r.url.path != "/login"] == [
        "2026-04-01T00:00:00Z",
        "2026-04-02T00:00:00Z",
        "2026-04-03T00:00:00Z",
    ]
    assert len(df) == 60 and not df["ts"].duplicated().any()
    assert report.counts.get("partial_hour", 0) == 0


def test_from_env(monkeypatch):
    monkeypatch.delenv(USERNAME_ENV, raising=False)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    with pytest.raises(ValueError, match=USERNAME_ENV):
        WattTimeClient.from_env()
    monkeypatch.setenv(USERNAME_ENV, USER)
    c = WattTimeClient.from_env(timeout=5)
    assert c.username == USER and PASSWORD not in repr(c)


def test_token_renewed_after_ttl():
    server = Server({"/v3/forecast": load("wt_forecast.json")})
    now = [0.0]
    c, _ = client(server, token_ttl_s=1500, monotonic=lambda: now[0])
    c.forecast("CAISO_NORTH")
    now[0] = 1501.0
    server.valid = SECOND
    c.forecast("CAISO_NORTH")
    assert server.paths() == ["/login", "/v3/forecast", "/login", "/v3/forecast"]
