"""Open-Meteo routes: forecast, archive and historical-forecast, from recorded reanalysis.

The recording is what happened (reanalysis), so (``H`` = the clock's hour):

- ``forecast`` (``forecast_days`` 0–16, default 7; ``past_days`` 0–92): hours from 00:00 UTC of the
  clock's day (minus ``past_days``). Hours before ``H`` are the recorded values (the "analysis");
  hours from ``H`` on are recorded + the seeded lead-dependent error of
  :data:`sources.replay.noise.OM_FORMULA` (lead 0 at ``H``). Same clock hour and seed → same
  forecast.
- ``historical-forecast``: each hour up to ``H - lag`` is recorded + the lead-1 error
  (``sqrt(2)·z``, ``z`` seeded per location and hour); later hours are ``null``.
- ``archive``: recorded values up to ``min(clock - archive_lag_hours, H - lag)`` (the reanalysis
  lags by ~5 days); later hours are ``null``, as the real archive answers.

Requests name ``latitude``/``longitude`` (the nearest recorded location within 50 km answers, else
400 ``{"error": true, "reason": …}``), ``hourly`` (variables; older names like ``cloudcover`` are
accepted and echoed), ``timezone`` (only ``UTC``/``GMT``) and whole days ``start_date``/``end_date``
(inclusive). Values are rounded like Open-Meteo's (temperature, wind, radiation to 0.1; humidity
and cloud cover to whole %). A top-level ``replay`` object says what the answer really is: the
clock, the derived variables and the error model.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import numpy as np
import pandas as pd

from sources.replay.common import HOUR, ApiError, Ctx, clean
from sources.replay.data import WEATHER_VARS, WeatherSite, haversine_km, shortwave
from sources.replay.noise import OM_FORMULA, OM_SCALE, random_walk, rng

API = "openmeteo"
MAX_KM = 50.0
UNITS = {
    "temperature_2m": "°C",
    "relative_humidity_2m": "%",
    "cloud_cover": "%",
    "wind_speed_10m": "km/h",
    "wind_speed_100m": "km/h",
    "shortwave_radiation": "W/m²",
}
PRECISION = {
    "temperature_2m": 1,
    "relative_humidity_2m": 0,
    "cloud_cover": 0,
    "wind_speed_10m": 1,
    "wind_speed_100m": 1,
    "shortwave_radiation": 1,
}
ALIASES = {
    "cloudcover": "cloud_cover",
    "windspeed_10m": "wind_speed_10m",
    "windspeed_100m": "wind_speed_100m",
    "relativehumidity_2m": "relative_humidity_2m",
}
DERIVED_NOTE = {
    "wind_speed_100m": "not recorded: wind_speed_10m / 0.72 (power law, alpha 0.14)",
    "shortwave_radiation": "not recorded: clear-sky irradiance of the hour ending at the time "
    "stamp × (1 - 0.75·(cloud_cover/100)^3.4)",
}
RECORDING = "replay of recorded reanalysis (Open-Meteo historical weather), not a live forecast"


def _site(ctx: Ctx) -> tuple[WeatherSite, float]:
    lat, lon = ctx.float_param("latitude"), ctx.float_param("longitude")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ApiError(400, "Latitude must be in range of -90 to 90°. Longitude -180 to 180°.")
    site = ctx.data.nearest_weather(lat, lon, MAX_KM)
    if site is None:
        raise ApiError(
            400, f"No recorded weather within {MAX_KM:g} km of {lat}, {lon} in this replay"
        )
    return site, haversine_km(lat, lon, site.lat, site.lon)


def _variables(ctx: Ctx) -> list[tuple[str, str]]:
    """``(name as asked, canonical name)`` for each ``hourly`` variable."""
    raw = ctx.param("hourly")
    out = []
    for name in (raw or "").split(","):
        name = name.strip()
        if not name:
            continue
        var = ALIASES.get(name, name)
        if var not in WEATHER_VARS:
            raise ApiError(400, f"Parameter 'hourly' has an invalid value '{name}'")
        out.append((name, var))
    return out


def _check_timezone(ctx: Ctx) -> None:
    tz = (ctx.param("timezone", "GMT") or "GMT").upper()
    if tz not in ("UTC", "GMT"):
        raise ApiError(400, f"the replay answers in UTC only (timezone={tz!r} asked)")


def _date(ctx: Ctx, name: str) -> dt.date:
    raw = ctx.param(name, required=True)
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"Parameter '{name}' is invalid: {raw!r} (YYYY-MM-DD)") from None


def _day_hours(ctx: Ctx) -> pd.DatetimeIndex:
    d0, d1 = _date(ctx, "start_date"), _date(ctx, "end_date")
    if d1 < d0:
        raise ApiError(400, "End-date must be larger or equal than start-date")
    start = pd.Timestamp(d0, tz="UTC")
    return pd.date_range(start, pd.Timestamp(d1, tz="UTC") + 23 * HOUR, freq="h").as_unit("ns")


def _recorded(site: WeatherSite, times: pd.DatetimeIndex) -> pd.DataFrame:
    return site.frame.reindex(times)


def _add_error(frame: pd.DataFrame, rows: np.ndarray, e: np.ndarray) -> None:
    """Add the weather error ``e`` (``(len(rows), 4)``: temperature, cloud, humidity, wind; each
    with variance lead + 1) to ``frame`` at ``rows`` in place."""
    if not rows.any():
        return
    f = frame.loc[rows]
    cloud = f["cloud_cover"].to_numpy()
    new_cloud = np.clip(cloud + OM_SCALE["cloud_cover"] * e[:, 1], 0, 100)
    clear = f["_clear"].to_numpy()
    sw = f["shortwave_radiation"].to_numpy()
    sw_new = np.maximum(0.0, sw + shortwave(clear, new_cloud) - shortwave(clear, cloud))
    wind = np.exp(OM_SCALE["wind"] * e[:, 3])
    frame.loc[rows, "temperature_2m"] = f["temperature_2m"].to_numpy() + (
        OM_SCALE["temperature_2m"] * e[:, 0]
    )
    frame.loc[rows, "cloud_cover"] = new_cloud
    frame.loc[rows, "relative_humidity_2m"] = np.clip(
        f["relative_humidity_2m"].to_numpy() + OM_SCALE["relative_humidity_2m"] * e[:, 2], 0, 100
    )
    frame.loc[rows, "wind_speed_10m"] = f["wind_speed_10m"].to_numpy() * wind
    frame.loc[rows, "wind_speed_100m"] = f["wind_speed_100m"].to_numpy() * wind
    frame.loc[rows, "shortwave_radiation"] = sw_new


def _answer(
    ctx: Ctx,
    site: WeatherSite,
    distance_km: float,
    frame: pd.DataFrame,
    t0: float,
    note: dict[str, Any],
) -> dict[str, Any]:
    variables = _variables(ctx)
    times = pd.DatetimeIndex(frame.index)
    hours = times.floor("h")
    keep = ~ctx.drop_mask(hours)
    nulls = ctx.null_mask(API, site.name, hours)
    frame = frame.copy()
    frame.loc[nulls, list(WEATHER_VARS)] = np.nan
    frame = frame[keep]
    out: dict[str, Any] = {
        "latitude": site.lat,
        "longitude": site.lon,
        "generationtime_ms": None,
        "utc_offset_seconds": 0,
        "timezone": "GMT",
        "timezone_abbreviation": "GMT",
        "elevation": site.elevation,
    }
    if variables:
        out["hourly_units"] = {"time": "iso8601", **{n: UNITS[v] for n, v in variables}}
        hourly: dict[str, list] = {"time": list(frame.index.strftime("%Y-%m-%dT%H:%M"))}
        for name, var in variables:
            nd = PRECISION[var]
            hourly[name] = [clean(x, nd) for x in frame[var].to_numpy()]
        out["hourly"] = hourly
    derived = {v: DERIVED_NOTE[v] for v in site.derived if v in {x for _, x in variables}}
    out["replay"] = {
        "what": RECORDING,
        "clock": ctx.clock.isoformat(),
        "location": site.name,
        "distance_km": round(distance_km, 2),
        "derived": derived,
        **note,
    }
    out["generationtime_ms"] = round((time.perf_counter() - t0) * 1000.0, 3)
    return out


def forecast(ctx: Ctx) -> dict[str, Any]:
    t0 = time.perf_counter()
    _check_timezone(ctx)
    site, dist = _site(ctx)
    days = ctx.int_param("forecast_days", 7)
    past = ctx.int_param("past_days", 0)
    if not 0 <= days <= 16:
        raise ApiError(400, "Forecast days is invalid. Allowed range 0 to 16.")
    if not 0 <= past <= 92:
        raise ApiError(400, "Past days is invalid. Allowed range 0 to 92.")
    day0 = ctx.clock.floor("D")
    times = pd.date_range(
        day0 - past * 24 * HOUR, day0 + days * 24 * HOUR, freq="h", inclusive="left"
    ).as_unit("ns")
    frame = _recorded(site, times)
    issue = ctx.hour
    future = np.asarray(times >= issue)
    walk = random_walk(rng(ctx.seed, "om-forecast", site.name, issue), int(future.sum()), cols=4)
    _add_error(frame, future, walk)
    note = {
        "endpoint": "forecast",
        "issued_at": issue.isoformat(),
        "analysis": "hours before issued_at are recorded values (the analysis)",
        "error_model": OM_FORMULA,
    }
    return _answer(ctx, site, dist, frame, t0, note)


def historical_forecast(ctx: Ctx) -> dict[str, Any]:
    t0 = time.perf_counter()
    _check_timezone(ctx)
    site, dist = _site(ctx)
    times = _day_hours(ctx)
    frame = _recorded(site, times)
    until = min(ctx.hour, ctx.last_hour(API))
    avail = np.asarray(times <= until)
    frame.loc[~avail, list(WEATHER_VARS)] = np.nan
    if avail.any():
        days = times[avail].floor("D")
        z = np.empty((int(avail.sum()), 4))
        for day in days.unique():
            sel = np.asarray(days == day)
            draws = rng(ctx.seed, "om-historical-forecast", site.name, day).standard_normal((24, 4))
            z[sel] = draws[times[avail][sel].hour]
        _add_error(frame, avail, np.sqrt(2.0) * z)
    note = {
        "endpoint": "historical-forecast",
        "available_until": until.isoformat(),
        "error_model": {
            **OM_FORMULA,
            "e": "lead-1 error: sqrt(2)·z, z ~ N(0,1) seeded per location and hour",
        },
    }
    return _answer(ctx, site, dist, frame, t0, note)


def archive(ctx: Ctx) -> dict[str, Any]:
    t0 = time.perf_counter()
    _check_timezone(ctx)
    site, dist = _site(ctx)
    times = _day_hours(ctx)
    frame = _recorded(site, times)
    lag = ctx.faults.archive_lag_hours
    until = min((ctx.clock - lag * HOUR).floor("h"), ctx.last_hour(API))
    frame.loc[(times > until), list(WEATHER_VARS)] = np.nan
    note = {
        "endpoint": "archive",
        "available_until": until.isoformat(),
        "archive_lag_hours": lag,
    }
    return _answer(ctx, site, dist, frame, t0, note)


ROUTES = [
    ("/openmeteo/v1/forecast", forecast),
    ("/openmeteo/archive/v1/archive", archive),
    ("/openmeteo/historical-forecast/v1/forecast", historical_forecast),
]
