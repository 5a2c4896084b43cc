"""The replay server against the project's real API clients, over a real socket on 127.0.0.1.

Synthetic recordings built here (no shared data needed) except for one test that replays the
shared Electricity Maps and weather files and skips without them.
"""

from __future__ import annotations

import base64
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from gridflex_cli.replay_cmds import parse_watttime_spec, parse_weather_spec, split_multi
from sources.electricitymaps_api import ElectricityMapsClient
from sources.frames import SourceError
from sources.http import AuthError, ClientError, HttpError, NotFoundError
from sources.openmeteo import OpenMeteoClient
from sources.replay import Faults, ReplayData, ReplayServer
from sources.watttime import WattTimeClient

CLOCK = pd.Timestamp("2022-04-05T12:05:00Z")
H = CLOCK.floor("h")
HOUR = pd.Timedelta(hours=1)
TOKEN = "replay-em-token-0123456789"
USER, PASSWORD = "replay-user", "replay-password-abcdef"
LAT, LON = 50.0, 8.0
LB = 0.453592


# -------------------------------------------------------------------------------------------------
# synthetic recordings
# -------------------------------------------------------------------------------------------------
def _hours() -> pd.DatetimeIndex:
    return pd.date_range("2022-03-25", "2022-04-12 23:00", freq="h", tz="UTC")


def make_data() -> ReplayData:
    ts = _hours()
    i = np.arange(len(ts))
    direct = np.round(150 + 60 * np.sin(i / 3.7) + 0.01 * i, 2)
    est = np.zeros(len(ts), dtype=bool)
    est[ts.get_loc(H - 30 * HOUR)] = True
    carbon = pd.concat(
        [
            pd.DataFrame(
                {
                    "zone": "XX",
                    "ts": ts,
                    "factor": factor,
                    "value": direct + offset,
                    "is_estimated": est,
                    "estimation_method": np.where(est, "FORECASTS_HIERARCHY", None),
                }
            )
            for factor, offset in (("direct", 0.0), ("lifecycle", 40.0))
        ],
        ignore_index=True,
    )
    weather = pd.DataFrame(
        {
            "location": "alpha",
            "ts": ts,
            "latitude": LAT,
            "longitude": LON,
            "temperature_2m": np.round(
                10 + 6 * np.sin(2 * np.pi * i / 24) + 0.3 * np.cos(i / 17), 1
            ),
            "relative_humidity_2m": np.round(60 + 20 * np.sin(i / 11)),
            "cloud_cover": np.round(50 + 40 * np.sin(i / 7)),
            "wind_speed_10m": np.round(12 + 5 * np.sin(i / 5), 1),
        }
    )
    hourly = pd.DataFrame(
        {
            "region": "CAISO_NORTH",
            "ts": ts,
            "latitude": 37.8,
            "longitude": -122.3,
            "value": np.round(700 + 150 * np.sin(i / 4), 2),
        }
    )
    five = pd.date_range("2022-04-04", "2022-04-06", freq="5min", tz="UTC", inclusive="left")
    k = np.arange(len(five))
    fine = pd.DataFrame(
        {
            "region": "PJM_DC",
            "ts": five,
            "latitude": 38.9,
            "longitude": -77.03,
            "value": 900.0 + (k % 12) * 2.0 + (k // 12) * 0.5,
        }
    )
    return ReplayData(carbon=carbon, weather=weather, moer=pd.concat([hourly, fine]))


DATA = make_data()
REC = DATA.carbon
WX = DATA.weather["alpha"].frame
MOER = DATA.moer


@pytest.fixture(scope="module")
def server():
    with ReplayServer(
        DATA, CLOCK, em_token=TOKEN, wt_username=USER, wt_password=PASSWORD, seed=0
    ) as s:
        yield s


@pytest.fixture(autouse=True)
def reset(request):
    if "server" in request.fixturenames:
        s = request.getfixturevalue("server")
        s.set_clock(CLOCK)
        s.set_faults(Faults())
        s.clear_requests()
    yield


def em(server, token=TOKEN, **kw):
    sleeps: list[float] = []
    c = ElectricityMapsClient(token, base_url=server.em_base_url, sleep=sleeps.append, **kw)
    return c, sleeps


def wt(server, **kw):
    sleeps: list[float] = []
    c = WattTimeClient(USER, PASSWORD, base_url=server.wt_base_url, sleep=sleeps.append, **kw)
    return c, sleeps


def om(server, **kw):
    return OpenMeteoClient(**server.openmeteo_urls, sleep=lambda s: None, **kw)


def raw(server, path, params=None, headers=None):
    return httpx.get(server.url + path, params=params, headers=headers, timeout=5)


def rec(factor: str, hours) -> np.ndarray:
    return REC[("XX", factor)]["value"].reindex(pd.DatetimeIndex(hours)).to_numpy()


# -------------------------------------------------------------------------------------------------
# Electricity Maps
# -------------------------------------------------------------------------------------------------
def test_em_history_is_the_24_hours_to_the_clock_default_lifecycle(server):
    client, _ = em(server)
    df, _ = client.history("XX")
    want = pd.date_range(H - 23 * HOUR, H, freq="h")
    assert list(df.ts) == list(want)
    assert set(df.factor) == {"lifecycle"}
    settled = df.ts < H - HOUR  # the newest 2 hours are estimates (em_estimated_hours=2)
    np.testing.assert_array_equal(df.value[settled], rec("lifecycle", df.ts[settled]))
    assert df.is_estimated[~settled].all()
    assert not np.isclose(df.value[~settled], rec("lifecycle", df.ts[~settled])).any()
    # the client sent no factor: the default answered is lifecycle, not direct
    assert "emissionFactorType" not in server.requests[-1][2]

    dfd, _ = client.history("XX", emission_factor="direct")
    assert set(dfd.factor) == {"direct"}
    np.testing.assert_array_equal(dfd.value[settled], rec("direct", dfd.ts[settled]))
    # a recorded estimate keeps its flag and method once settled
    pr, _ = client.past_range("XX", H - 31 * HOUR, H - 29 * HOUR, emission_factor="direct")
    one = pr[pr.ts == H - 30 * HOUR].iloc[0]
    assert one.is_estimated and one.estimation_method == "FORECASTS_HIERARCHY"
    # sub-hourly granularity repeats the hourly recording; averaged back it is the same
    q, report = client.history("XX", granularity="15_minutes")
    np.testing.assert_array_equal(q.value, df.value)
    assert report.counts["resampled_to_hourly"] == 96


def test_em_answers_carry_the_replay_clock_as_date(server):
    r = raw(server, "/v3/carbon-intensity/latest", {"zone": "XX"}, {"auth-token": TOKEN})
    assert r.status_code == 200
    assert r.headers["date"] == "Tue, 05 Apr 2022 12:05:00 GMT"
    body = r.json()
    assert body["datetime"] == "2022-04-05T12:00:00.000Z"
    assert body["emissionFactorType"] == "lifecycle"
    assert set(body) == {
        "zone",
        "carbonIntensity",
        "datetime",
        "updatedAt",
        "createdAt",
        "emissionFactorType",
        "isEstimated",
        "estimationMethod",
    }


def test_em_past_range_stops_at_the_clock(server):
    client, _ = em(server)
    df, _ = client.past_range("XX", H - 30 * HOUR, H + 10 * HOUR)
    assert df.ts.min() == H - 30 * HOUR
    assert df.ts.max() == H
    assert len(df) == 31


def test_em_past_range_over_10_days_is_refused(server):
    client, _ = em(server, max_days_per_call=11)
    with pytest.raises(ClientError) as err:
        client.past_range("XX", H - 11 * 24 * HOUR, H)
    assert err.value.status == 400
    assert "GET /v3/carbon-intensity/past-range" in str(err.value)
    assert "10 days" in str(err.value)


def test_em_unknown_zone_is_404(server):
    client, _ = em(server)
    with pytest.raises(NotFoundError):
        client.history("ZZ")


def test_em_wrong_token_is_refused_and_never_leaks(server):
    secret = "wrong-secret-token-0123456789"
    server.set_faults(Faults(echo_headers_on_error=True))
    r = raw(server, "/v3/carbon-intensity/history", {"zone": "XX"}, {"auth-token": secret})
    assert r.status_code == 401
    assert secret in r.text  # the misbehaviour is really there...
    client, _ = em(server, token=secret)
    with pytest.raises(AuthError) as err:
        client.history("XX")
    assert err.value.status == 401
    assert secret not in str(err.value) and secret not in repr(err.value)  # ...the client hides it
    assert secret not in str(server.requests) and TOKEN not in str(server.requests)
    server.set_faults(Faults())
    r = raw(server, "/v3/carbon-intensity/history", {"zone": "XX"}, {"auth-token": secret})
    assert secret not in r.text and "request_headers" not in r.json()


def test_em_late_revision(server):
    params = {"zone": "XX"}
    first = raw(server, "/v3/carbon-intensity/history", params, {"auth-token": TOKEN}).json()
    item = next(i for i in first["history"] if i["datetime"] == "2022-04-05T12:00:00.000Z")
    recorded = float(rec("lifecycle", [H])[0])
    assert item["isEstimated"] is True and item["estimationMethod"] == "TIME_SLICER_AVERAGE"
    assert item["carbonIntensity"] != recorded
    assert abs(item["carbonIntensity"] / recorded - 1) <= 0.05 + 1e-9

    server.set_clock(CLOCK + 3 * HOUR)
    later = raw(server, "/v3/carbon-intensity/history", params, {"auth-token": TOKEN}).json()
    again = next(i for i in later["history"] if i["datetime"] == "2022-04-05T12:00:00.000Z")
    assert again["isEstimated"] is False and again["estimationMethod"] is None
    assert again["carbonIntensity"] == recorded
    updated = pd.Timestamp(again["updatedAt"])
    assert pd.Timestamp(item["updatedAt"]) < updated <= server.clock

    client, _ = em(server)
    df, _ = client.history("XX")
    row = df[df.ts == H].iloc[0]
    assert row.value == recorded and not row.is_estimated


def test_em_latest_and_history_with_lag(server):
    server.set_faults(Faults(lag_hours={"electricitymaps": 3}))
    client, _ = em(server)
    latest, _ = client.latest("XX")
    assert list(latest.ts) == [H - 3 * HOUR]
    hist, _ = client.history("XX")
    assert hist.ts.max() == H - 3 * HOUR and hist.ts.min() == H - 23 * HOUR


def test_em_forecast_is_recorded_plus_seeded_error(server):
    client, _ = em(server)
    df, _ = client.forecast("XX", 48)
    assert list(df.ts) == list(pd.date_range(H, periods=48, freq="h"))
    assert (df.issued_at == H).all()
    truth = rec("lifecycle", df.ts)
    rel = np.abs(df.value.to_numpy() / truth - 1)
    assert (rel > 0).all() and rel.max() < 0.5
    again, _ = client.forecast("XX", 48)
    np.testing.assert_array_equal(df.value, again.value)
    r = raw(
        server,
        "/v3/carbon-intensity/forecast",
        {"zone": "XX", "horizonHours": 12},
        {"auth-token": TOKEN},
    )
    assert r.status_code == 400


def test_free_tier_and_no_subscription():
    with ReplayServer(
        DATA,
        CLOCK,
        em_token=TOKEN,
        em_tier="free",
        wt_username=USER,
        wt_password=PASSWORD,
        wt_subscription=False,
    ) as s:
        client, _ = em(s)
        assert len(client.history("XX")[0]) == 24  # the free path works
        with pytest.raises(AuthError) as err:
            client.past_range("XX", H - 5 * HOUR, H)
        assert err.value.status == 403 and "paid plan" in str(err.value)
        with pytest.raises(AuthError):
            client.forecast("XX")
        w, _ = wt(s)
        assert len(w.historical("CAISO_NORTH", H - 3 * HOUR, H)[0]) == 3
        with pytest.raises(AuthError) as err:
            w.historical("PJM_DC", H - 3 * HOUR, H)
        assert err.value.status == 403


# -------------------------------------------------------------------------------------------------
# WattTime
# -------------------------------------------------------------------------------------------------
def test_wt_historical_hourly_means_in_g_per_kwh(server):
    client, _ = wt(server)
    df, report = client.historical("CAISO_NORTH", H - 6 * HOUR, H + 6 * HOUR)
    assert list(df.ts) == list(pd.date_range(H - 6 * HOUR, H, freq="h"))  # none after the clock
    truth = MOER["CAISO_NORTH"].points.reindex(df.ts).to_numpy() * LB
    np.testing.assert_allclose(df.value, truth, rtol=1e-9)
    assert report.counts["resampled_to_hourly"] > 0

    fine, _ = client.historical("PJM_DC", "2022-04-05T00:00Z", "2022-04-05T06:00Z")
    pts = MOER["PJM_DC"].points
    means = pts[(pts.index >= "2022-04-05") & (pts.index < "2022-04-05T06:00Z")]
    means = means.groupby(means.index.floor("h")).mean() * LB
    np.testing.assert_allclose(fine.value, means.to_numpy(), rtol=1e-9)
    r = raw(
        server,
        "/v3/historical",
        {"region": "PJM_DC", "start": "2022-04-05T00:00Z", "end": "2022-04-05T01:00Z"},
    )
    assert r.status_code == 401  # no bearer token


def test_wt_token_expiry_logs_in_again(server):
    client, _ = wt(server)
    client.historical("CAISO_NORTH", H - 2 * HOUR, H)
    assert client.logins == 1
    server.expire_tokens()
    df, _ = client.historical("CAISO_NORTH", H - 2 * HOUR, H)
    assert client.logins == 2 and len(df) == 2
    paths = [p for _, p, _ in server.requests]
    assert paths == ["/login", "/v3/historical", "/v3/historical", "/login", "/v3/historical"]
    assert PASSWORD not in str(server.requests)


def test_wt_bad_credentials_are_refused(server):
    c = WattTimeClient(USER, "not-the-password", base_url=server.wt_base_url, sleep=lambda s: None)
    with pytest.raises(AuthError) as err:
        c.historical("CAISO_NORTH", H - 2 * HOUR, H)
    assert err.value.status == 401 and "not-the-password" not in str(err.value)


def test_wt_region_from_loc(server):
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    token = raw(server, "/login", headers={"Authorization": f"Basic {basic}"}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    r = raw(
        server,
        "/v3/region-from-loc",
        {"latitude": 37.9, "longitude": -122.2, "signal_type": "co2_moer"},
        auth,
    )
    assert r.json() == {
        "region": "CAISO_NORTH",
        "region_full_name": "California ISO Northern",
        "signal_type": "co2_moer",
    }
    far = raw(server, "/v3/region-from-loc", {"latitude": 0, "longitude": 0}, auth)
    assert far.status_code == 404
    assert (
        raw(server, "/v3/region-from-loc", {"latitude": 37.9, "longitude": -122.2}).status_code
        == 401
    )
    idx = raw(
        server, "/v3/signal-index", {"region": "CAISO_NORTH", "signal_type": "co2_moer"}, auth
    )
    assert idx.json()["meta"]["units"] == "percentile"
    assert 0 <= idx.json()["data"][0]["value"] <= 100


def test_wt_recording_from_a_moer_csv(tmp_path):
    path = tmp_path / "moer.csv"
    path.write_text(
        "point_time,moer\n" + "".join(f"2022-04-05T{h:02d}:00:00Z,{800 + h}\n" for h in range(12))
    )
    data = ReplayData.from_files(watttime={"CAISO_NORTH": (37.8, -122.3, path)})
    with ReplayServer(data, CLOCK, wt_username=USER, wt_password=PASSWORD) as s:
        df, _ = wt(s)[0].historical("CAISO_NORTH", "2022-04-05T00:00Z", "2022-04-05T12:00Z")
    np.testing.assert_allclose(df.value, (800 + np.arange(12)) * LB)
    (tmp_path / "bad.csv").write_text("when,moer\n2022-04-05T00:00Z,1\n")
    with pytest.raises(SourceError):
        ReplayData.from_files(watttime={"X": (0.0, 0.0, tmp_path / "bad.csv")})


def test_wt_forecast_and_forecast_historical_blocks(server):
    server.set_clock(H)
    client, _ = wt(server)
    fc, _ = client.forecast("CAISO_NORTH")
    assert (fc.issued_at == H).all() and len(fc) == 24 and fc.ts.min() == H
    truth = MOER["CAISO_NORTH"].points.reindex(fc.ts).to_numpy() * LB
    assert not np.allclose(fc.value, truth)
    assert np.abs(fc.value / truth - 1).max() < 0.5

    fh, _ = client.forecast_historical("CAISO_NORTH", H - 5 * HOUR, H + 3 * HOUR)
    issues = sorted(fh.issued_at.unique())
    assert issues == list(pd.date_range(H - 5 * HOUR, H, freq="h"))  # per hour, none after clock
    assert (fh.groupby("issued_at").size() == 24).all()
    block = fh[fh.issued_at == H].sort_values("ts")
    np.testing.assert_allclose(block.value.to_numpy(), fc.value.to_numpy(), rtol=1e-12)


# -------------------------------------------------------------------------------------------------
# Open-Meteo
# -------------------------------------------------------------------------------------------------
def test_om_forecast_analysis_then_seeded_forecast(server):
    client = om(server)
    df, _ = client.forecast(LAT, LON, days=3)
    day0 = CLOCK.floor("D")
    assert df.ts.iloc[0] == day0 and len(df) == 72
    past = df.ts < H
    truth = WX.reindex(df.ts).reset_index(drop=True)
    np.testing.assert_array_equal(df.temperature_2m[past], truth.temperature_2m[past])
    np.testing.assert_array_equal(df.cloud_cover[past], truth.cloud_cover[past])
    np.testing.assert_allclose(
        df.wind_speed_100m[past], np.round(truth.wind_speed_10m[past] / 0.72, 1)
    )
    assert df.shortwave_radiation.notna().all() and (df.shortwave_radiation >= 0).all()
    fut = ~past
    assert (df.temperature_2m[fut] != truth.temperature_2m[fut]).mean() > 0.8
    assert df.cloud_cover.between(0, 100).all()

    again, _ = client.forecast(LAT, LON, days=3)
    cols = ["ts", "temperature_2m", "cloud_cover", "wind_speed_10m", "shortwave_radiation"]
    pd.testing.assert_frame_equal(df[cols], again[cols])
    server.set_clock(CLOCK + pd.Timedelta(minutes=50))  # same clock hour: same forecast
    later, _ = client.forecast(LAT, LON, days=3)
    pd.testing.assert_frame_equal(df[cols], later[cols])

    body = raw(
        server,
        server.openmeteo_urls["forecast_url"].replace(server.url, ""),
        {"latitude": LAT, "longitude": LON, "hourly": "shortwave_radiation", "forecast_days": 1},
    ).json()
    assert "reanalysis" in body["replay"]["what"]
    assert "shortwave_radiation" in body["replay"]["derived"]
    assert "sqrt(lead+1)" in body["replay"]["error_model"]["e"]


def test_om_forecast_error_grows_with_lead(server):
    client = om(server)
    e1, e48 = [], []
    for clock in pd.date_range("2022-03-26T00:10Z", "2022-04-09T00:10Z", freq="11h")[:30]:
        server.set_clock(clock)
        df, _ = client.forecast(LAT, LON, days=4)
        issue = clock.floor("h")
        err = (df.set_index("ts").temperature_2m - WX.temperature_2m).dropna()
        e1.append(abs(err[issue + HOUR]))
        e48.append(abs(err[issue + 48 * HOUR]))
    assert np.mean(e48) > 2 * np.mean(e1)


def test_om_archive_lags_the_clock(server):
    df, report = om(server).archive(LAT, LON, "2022-03-29", "2022-04-05")
    assert len(df) == 8 * 24
    cutoff = (CLOCK - 120 * HOUR).floor("h")
    old = df.ts <= cutoff
    np.testing.assert_array_equal(
        df.temperature_2m[old], WX.temperature_2m.reindex(df.ts[old]).to_numpy()
    )
    assert df.loc[~old, "temperature_2m"].isna().all() and (~old).sum() > 100
    assert report.counts["null_to_nan"] > 0


def test_om_historical_forecast_short_lead_until_the_clock(server):
    df, _ = om(server).historical_forecast(LAT, LON, "2022-04-04", "2022-04-06")
    known = df.ts <= H
    err = df.temperature_2m[known].to_numpy() - WX.temperature_2m.reindex(df.ts[known]).to_numpy()
    assert np.abs(err).max() < 3 and (err != 0).mean() > 0.8
    assert df.loc[~known, "temperature_2m"].isna().all()
    again, _ = om(server).historical_forecast(LAT, LON, "2022-04-04", "2022-04-06")
    np.testing.assert_array_equal(df.temperature_2m, again.temperature_2m)


def test_om_far_location_is_400_in_open_meteo_shape(server):
    with pytest.raises(ClientError) as err:
        om(server).forecast(0.0, 0.0, days=1)
    assert err.value.status == 400 and "No recorded weather" in str(err.value)


# -------------------------------------------------------------------------------------------------
# fault knobs
# -------------------------------------------------------------------------------------------------
def test_status_burst_is_retried(server):
    server.set_faults(Faults(status_burst=[503, 503]))
    client, sleeps = em(server)
    df, _ = client.history("XX")
    assert len(df) == 24 and sleeps == [1.0, 2.0]
    assert [p for _, p, _ in server.requests].count("/v3/carbon-intensity/history") == 3


def test_429_waits_retry_after(server):
    server.set_faults(Faults(status_burst=[429], retry_after="2"))
    client, sleeps = wt(server)
    df, _ = client.historical("CAISO_NORTH", H - 2 * HOUR, H)  # the /login takes the 429
    assert len(df) == 2 and sleeps == [2.0]


def test_timeout_burst_is_retried(server):
    server.set_faults(Faults(timeout_burst=1, timeout_s=0.5))
    client, sleeps = em(server, timeout=0.2)
    t0 = time.perf_counter()
    df, _ = client.history("XX")
    assert len(df) == 24 and len(sleeps) == 1
    assert time.perf_counter() - t0 >= 0.2
    assert len(server.requests) == 2


def test_html_burst_is_a_malformed_answer(server):
    server.set_faults(Faults(html_burst=1))
    client, _ = em(server)
    with pytest.raises(SourceError) as err:
        client.history("XX")
    assert not isinstance(err.value, HttpError) and "malformed JSON" in str(err.value)
    assert len(client.history("XX")[0]) == 24  # the burst is spent


def test_null_and_drop_hours(server):
    null, drop = H - 5 * HOUR, H - 7 * HOUR
    server.set_faults(Faults(null_hours={null}, drop_hours={drop}))
    body = raw(
        server, "/v3/carbon-intensity/history", {"zone": "XX"}, {"auth-token": TOKEN}
    ).json()["history"]
    by_time = {pd.Timestamp(i["datetime"]): i for i in body}
    assert by_time[null]["carbonIntensity"] is None and drop not in by_time and len(body) == 23
    client, _ = em(server)
    df, report = client.history("XX")
    assert null not in set(df.ts) and drop not in set(df.ts) and len(df) == 22
    assert report.counts["missing_value_dropped"] == 1

    w, _ = wt(server)
    dfw, _ = w.historical("CAISO_NORTH", H - 10 * HOUR, H)
    assert null not in set(dfw.ts) and drop not in set(dfw.ts) and len(dfw) == 8

    server.set_clock(CLOCK + 6 * 24 * HOUR)  # so the archive covers that day
    arc, _ = om(server).archive(LAT, LON, H.date(), H.date())
    assert drop not in set(arc.ts) and len(arc) == 23
    assert arc.set_index("ts").loc[null].isna()["temperature_2m"]
    assert arc.temperature_2m.notna().sum() == 22


def test_null_fraction_is_seeded(server):
    server.set_faults(Faults(null_fraction=0.5))
    client, _ = em(server)
    df, report = client.history("XX")
    assert 3 <= report.counts["missing_value_dropped"] <= 21
    again, _ = client.history("XX")
    assert list(df.ts) == list(again.ts)


def test_wattime_and_openmeteo_lag(server):
    server.set_faults(Faults(lag_hours={"watttime": 2, "openmeteo": 4}))
    w, _ = wt(server)
    dfw, _ = w.historical("CAISO_NORTH", H - 6 * HOUR, H + HOUR)
    assert dfw.ts.max() == H - 2 * HOUR
    hf, _ = om(server).historical_forecast(LAT, LON, H.date(), H.date())
    assert hf.dropna(subset=["temperature_2m"]).ts.max() == H - 4 * HOUR


def test_faults_are_validated():
    with pytest.raises(ValueError):
        Faults(lag_hours={"elecmaps": 1})
    with pytest.raises(ValueError):
        Faults(null_hours={"2022-04-01T00:30Z"})
    with pytest.raises(ValueError):
        Faults(null_fraction=2)


# -------------------------------------------------------------------------------------------------
# control, clock, environment
# -------------------------------------------------------------------------------------------------
def test_control_endpoints(server):
    r = httpx.post(server.url + "/replay/clock", json={"now": "2022-04-06T05:05:00Z"})
    assert r.status_code == 200 and server.clock == pd.Timestamp("2022-04-06T05:05:00Z")
    latest = raw(server, "/v3/carbon-intensity/latest", {"zone": "XX"}, {"auth-token": TOKEN})
    assert latest.headers["date"] == "Wed, 06 Apr 2022 05:05:00 GMT"
    assert latest.json()["datetime"] == "2022-04-06T05:00:00.000Z"
    assert (
        httpx.post(server.url + "/replay/clock", json={"now": "yesterday-ish"}).status_code == 400
    )

    r = httpx.post(server.url + "/replay/faults", json={"status_burst": [503], "null_hours": []})
    assert r.status_code == 200 and server.faults.status_burst == (503,)
    status = httpx.get(server.url + "/replay/status").json()  # control calls consume no burst
    assert status["pending"]["status_burst"] == [503]
    assert status["clock"] == "2022-04-06T05:05:00+00:00"
    spans = status["spans"]
    assert spans["electricitymaps"]["XX"]["lifecycle"]["count"] == len(_hours())
    assert set(spans["watttime"]) == {"CAISO_NORTH", "PJM_DC"}
    assert spans["openmeteo"]["alpha"]["derived"] == ["wind_speed_100m", "shortwave_radiation"]
    assert httpx.post(server.url + "/replay/faults", json={"nope": 1}).status_code == 400
    assert all(not p.startswith("/replay") for _, p, _ in server.requests)


def test_follow_wall_clock():
    with ReplayServer(DATA, CLOCK, follow_wall_clock=True) as s:
        time.sleep(0.3)
        elapsed = (s.clock - CLOCK).total_seconds()
        assert 0.3 <= elapsed < 10
        s.set_clock(H)
        assert 0 <= (s.clock - H).total_seconds() < 1


def test_env_points_the_clients_from_env(server, monkeypatch):
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)
    assert len(ElectricityMapsClient.from_env().history("XX")[0]) == 24
    assert len(WattTimeClient.from_env().historical("CAISO_NORTH", H - HOUR, H)[0]) == 1
    assert len(OpenMeteoClient.from_env().forecast(LAT, LON, days=1)[0]) == 24


def test_cli_specs():
    name, (lat, lon, files, off) = parse_weather_spec("sanjose=37.34,-121.89,-7:a/x.csv,b/y.csv")
    assert (name, lat, lon, off) == ("sanjose", 37.34, -121.89, -7.0)
    assert [str(f) for f in files] == ["a/x.csv", "b/y.csv"]
    assert parse_weather_spec("sj=37.3,-121.9:d/US-CAL-CISO/2022.csv")[1][3] == -7.0
    with pytest.raises(ValueError):
        parse_weather_spec("x=1,2:somewhere/2022.csv")  # no offset, unknown folder
    assert parse_watttime_spec("CAISO_NORTH=37.3,-121.9:m.csv")[1][:2] == (37.3, -121.9)
    with pytest.raises(ValueError):
        parse_watttime_spec("CAISO_NORTH:m.csv")
    assert split_multi(["--em-csv", "a", "b", "--watttime", "c"]) == {
        "--em-csv": ["a", "b"],
        "--weather": [],
        "--watttime": ["c"],
    }


# -------------------------------------------------------------------------------------------------
# the shared recordings
# -------------------------------------------------------------------------------------------------
@pytest.mark.shared_data
def test_replays_the_shared_files(shared_data):
    from sources.em_csv import read_em_csv
    from sources.weather_csv import read_weather_csv

    em_file = shared_data / "electricitymaps" / "GB_2022_hourly.csv"
    wx_file = shared_data / "weather" / "GB" / "2022.csv"
    data = ReplayData.from_files(
        em_csv=[em_file], weather={"london": (51.51, -0.13, [wx_file], 0.0)}
    )
    clock = pd.Timestamp("2022-06-01T12:05Z")
    with ReplayServer(data, clock, em_token=TOKEN) as s:
        df, _ = em(s)[0].history("GB", emission_factor="direct")
        truth = read_em_csv(em_file)[0]
        truth = truth[truth.factor == "direct"].set_index("ts").value
        settled = df.ts < clock.floor("h") - HOUR
        assert len(df) == 24
        np.testing.assert_array_equal(df.value[settled], truth.reindex(df.ts[settled]).to_numpy())

        arc, _ = om(s).archive(51.5, -0.12, "2022-05-20", "2022-05-20")
        wx = read_weather_csv(wx_file, location="london", utc_offset_hours=0.0)[0]
        wx = wx.set_index("ts").temperature_2m
        np.testing.assert_array_equal(arc.temperature_2m, wx.reindex(arc.ts).to_numpy())
