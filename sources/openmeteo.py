"""Open-Meteo weather (no key): forecasts, reanalysis archive and past forecasts, as tidy hourly UTC
frames with :data:`~sources.frames.WEATHER_COLUMNS`.

Open-Meteo answers with column arrays (``hourly.time``, ``hourly.temperature_2m``, …). The adapter
asks for ``timezone=UTC``, and still converts with ``utc_offset_seconds`` if the answer is in local
time. It maps the older variable names (``cloudcover``, ``windspeed_10m``, ``windspeed_100m``,
``relativehumidity_2m``) to the current ones, converts wind to km/h and temperature to °C when the
``hourly_units`` say otherwise, and turns ``null`` into NaN, counting the cells (``null_to_nan``). A
variable missing from the answer becomes a NaN column, counted as ``missing_variable``.

Three endpoints, three ``source`` values (so their rows never overwrite one another):

- :meth:`OpenMeteoClient.forecast` → ``kind="forecast"``, ``source="openmeteo_forecast"``,
  ``issued_at`` = the answer's time floored to the hour (its HTTP ``Date`` header, else the local
  clock): Open-Meteo does not say which model run it served; the report's notes say so. The answer
  also holds the past hours of the current day: those rows are the model's *analysis*, not a
  forecast, and come back as ``kind="analysis"``, ``source="openmeteo_analysis"``, ``issued_at``
  NaT (the best estimate of what happened until the archive has the day).
- :meth:`OpenMeteoClient.historical_forecast` → ``kind="forecast"``,
  ``source="openmeteo_historical_forecast"``. Its issue time is **approximate**: the endpoint
  stitches, for each hour, the latest model run before that hour (the first hours of successive
  runs), so each row is a short-lead forecast. ``issued_at = ts - assumed_lead_hours`` (default 0:
  the row was known at the latest by its own hour). Used as a day-ahead covariate it flatters
  accuracy; filter on ``issued_at`` accordingly.
- :meth:`OpenMeteoClient.archive` → ``kind="observed"`` (reanalysis), ``issued_at`` NaT,
  ``source="openmeteo_archive"``.

Note: Open-Meteo's ``shortwave_radiation`` at time ``T`` is the mean over the hour *ending* at
``T``; it is passed through on Open-Meteo's time stamp, unshifted.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pandas as pd

from sources.frames import WEATHER_COLUMNS, RepairReport, SourceError, utc_now
from sources.http import HttpClient, TimeLike, finish_frame, is_number, parse_times, to_utc

SOURCE = "openmeteo"
DEFAULT_FORECAST_URL = "https://api.open-meteo.com/v1/forecast"
DEFAULT_ARCHIVE_URL = "https://archive-api.open-meteo.com/v1/archive"
DEFAULT_HISTORICAL_FORECAST_URL = "https://historical-forecast-api.open-meteo.com/v1/forecast"
ENV_URLS = {
    "forecast_url": "OPENMETEO_FORECAST_URL",
    "archive_url": "OPENMETEO_ARCHIVE_URL",
    "historical_forecast_url": "OPENMETEO_HISTORICAL_FORECAST_URL",
}

#: Variables asked for, in WEATHER_COLUMNS order.
HOURLY = [
    "temperature_2m",
    "relative_humidity_2m",
    "cloud_cover",
    "wind_speed_10m",
    "wind_speed_100m",
    "shortwave_radiation",
]
#: Older Open-Meteo names → current names.
ALIASES = {
    "cloudcover": "cloud_cover",
    "windspeed_10m": "wind_speed_10m",
    "windspeed_100m": "wind_speed_100m",
    "relativehumidity_2m": "relative_humidity_2m",
}
_KMH = {
    "km/h": 1.0,
    "kmh": 1.0,
    "m/s": 3.6,
    "ms": 3.6,
    "mph": 1.609344,
    "mp/h": 1.609344,
    "kn": 1.852,
    "knots": 1.852,
}
_PCT = {"%": 1.0}
_WM2 = {"W/m²": 1.0, "W/m2": 1.0, "W m-2": 1.0}


class OpenMeteoClient:
    """Client for the Open-Meteo forecast, archive and historical-forecast endpoints.

    Args:
        forecast_url, archive_url, historical_forecast_url: full endpoint URLs (configurable for
            self-hosted or commercial instances).
        timeout, max_attempts, retry_after_cap: see :class:`sources.http.HttpClient`.
        transport, sleep: test seams. clock: request time (``received_at``, forecast ``issued_at``).
    """

    def __init__(
        self,
        forecast_url: str = DEFAULT_FORECAST_URL,
        archive_url: str = DEFAULT_ARCHIVE_URL,
        historical_forecast_url: str = DEFAULT_HISTORICAL_FORECAST_URL,
        *,
        timeout: float = 30.0,
        max_attempts: int = 4,
        retry_after_cap: float = 120.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], pd.Timestamp] = utc_now,
    ):
        self.forecast_url = forecast_url
        self.archive_url = archive_url
        self.historical_forecast_url = historical_forecast_url
        self._clock = clock
        self.http = HttpClient(
            SOURCE,
            "",
            timeout=timeout,
            max_attempts=max_attempts,
            retry_after_cap=retry_after_cap,
            auth_hint="Open-Meteo needs no key; check the OPENMETEO_*_URL settings",
            transport=transport,
            sleep=sleep,
        )

    @classmethod
    def from_env(cls, **kwargs: Any) -> OpenMeteoClient:
        """Endpoint URLs from ``OPENMETEO_FORECAST_URL`` / ``OPENMETEO_ARCHIVE_URL`` /
        ``OPENMETEO_HISTORICAL_FORECAST_URL`` when set (no key is needed)."""
        for arg, env in ENV_URLS.items():
            if os.environ.get(env):
                kwargs.setdefault(arg, os.environ[env])
        return cls(**kwargs)

    def __repr__(self) -> str:
        return f"OpenMeteoClient(forecast_url={self.forecast_url!r})"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> OpenMeteoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- endpoints --
    def forecast(
        self, lat: float, lon: float, days: int = 3, *, location: str | None = None
    ) -> tuple[pd.DataFrame, RepairReport]:
        """The current forecast, ``days`` days ahead (1–16). ``issued_at`` is the answer's time
        (``Date`` header, else the request time) floored to the hour: Open-Meteo serves its latest
        run without saying when it was issued. Rows before that hour are ``kind="analysis"``."""
        if not 1 <= days <= 16:
            raise ValueError(f"days must be in 1..16, got {days}")
        received = self._clock()
        params = {**_base_params(lat, lon), "forecast_days": days}
        df, report = self._fetch(
            self.forecast_url, params, location or _name(lat, lon), "openmeteo_forecast", received
        )
        now = self.http.server_time or received
        issued = now.floor("h")
        past = df["ts"] < issued
        df["kind"] = np.where(past, "analysis", "forecast")
        df["source"] = np.where(past, "openmeteo_analysis", "openmeteo_forecast")
        df["issued_at"] = pd.Series(issued, index=df.index).where(~past, pd.NaT)
        report.notes.append(
            "forecast issued_at is the answer's time floored to the hour "
            f"({issued.isoformat()}), not the model run time"
        )
        if past.any():
            report.notes.append(
                f"{int(past.sum())} row(s) before {issued.isoformat()} are the model's analysis "
                "(kind='analysis'), not forecasts"
            )
        return finish_frame(df, WEATHER_COLUMNS), report

    def archive(
        self,
        lat: float,
        lon: float,
        start: TimeLike | dt.date,
        end: TimeLike | dt.date,
        *,
        location: str | None = None,
    ) -> tuple[pd.DataFrame, RepairReport]:
        """Observed (reanalysis) weather for the days ``start``..``end`` inclusive."""
        received = self._clock()
        params = {**_base_params(lat, lon), **_dates(start, end)}
        df, report = self._fetch(
            self.archive_url, params, location or _name(lat, lon), "openmeteo_archive", received
        )
        df["kind"] = "observed"
        df["issued_at"] = pd.NaT
        return finish_frame(df, WEATHER_COLUMNS), report

    def historical_forecast(
        self,
        lat: float,
        lon: float,
        start: TimeLike | dt.date,
        end: TimeLike | dt.date,
        *,
        location: str | None = None,
        assumed_lead_hours: int = 0,
    ) -> tuple[pd.DataFrame, RepairReport]:
        """Past forecasts for the days ``start``..``end`` inclusive.

        The issue time is approximate: the endpoint stitches, for each hour, the latest model run
        before that hour, so the real lead is a few hours at most. ``issued_at`` is set to
        ``ts - assumed_lead_hours`` (default 0) and the report's notes say so.
        """
        received = self._clock()
        params = {**_base_params(lat, lon), **_dates(start, end)}
        df, report = self._fetch(
            self.historical_forecast_url,
            params,
            location or _name(lat, lon),
            "openmeteo_historical_forecast",
            received,
        )
        df["kind"] = "forecast"
        df["issued_at"] = df["ts"] - pd.Timedelta(hours=assumed_lead_hours)
        report.notes.append(
            "historical-forecast issued_at is approximate: ts - "
            f"{assumed_lead_hours} h (the endpoint stitches the latest run before "
            "each hour)"
        )
        return finish_frame(df, WEATHER_COLUMNS), report

    # -- internals --
    def _fetch(
        self, url: str, params: dict[str, Any], location: str, source: str, received: pd.Timestamp
    ) -> tuple[pd.DataFrame, RepairReport]:
        payload = self.http.get_json(url, params)
        where = self.http.describe(url, params)
        report = RepairReport(source)
        df = _parse_hourly(payload, where, report)
        df["location"] = location
        df["source"] = source
        df["received_at"] = received
        return df, report


def _name(lat: float, lon: float) -> str:
    return f"{lat:.4f},{lon:.4f}"


def _base_params(lat: float, lon: float) -> dict[str, Any]:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"latitude/longitude out of range: {lat}, {lon}")
    return {"latitude": lat, "longitude": lon, "hourly": ",".join(HOURLY), "timezone": "UTC"}


def _dates(start: TimeLike | dt.date, end: TimeLike | dt.date) -> dict[str, str]:
    d0, d1 = to_utc(start, "start").date(), to_utc(end, "end").date()
    if d1 < d0:
        raise ValueError(f"end {d1} is before start {d0}")
    return {"start_date": d0.isoformat(), "end_date": d1.isoformat()}


def _unit_factor(var: str, unit: Any, where: str) -> Callable[[np.ndarray], np.ndarray]:
    """How to bring ``var`` from ``unit`` to the frame's unit (°C, %, km/h, W/m²)."""
    if unit is None:
        return lambda a: a
    if var == "temperature_2m":
        if unit in ("°C", "C", "degC"):
            return lambda a: a
        if unit in ("°F", "F", "degF"):
            return lambda a: (a - 32.0) * 5.0 / 9.0
    else:
        table = {
            "relative_humidity_2m": _PCT,
            "cloud_cover": _PCT,
            "wind_speed_10m": _KMH,
            "wind_speed_100m": _KMH,
            "shortwave_radiation": _WM2,
        }[var]
        if unit in table:
            k = table[unit]
            return lambda a: a * k
    raise SourceError(where, f"unknown unit {unit!r} for {var}")


def _parse_hourly(payload: Any, where: str, report: RepairReport) -> pd.DataFrame:
    if not isinstance(payload, dict):
        raise SourceError(where, f"expected a JSON object, got {type(payload).__name__}")
    hourly = payload.get("hourly")
    if not isinstance(hourly, dict):
        raise SourceError(where, "missing key 'hourly' (an object of column arrays)")
    times = hourly.get("time")
    if not isinstance(times, list):
        raise SourceError(where, "missing key 'hourly.time' (a list)")
    offset = payload.get("utc_offset_seconds", 0)
    if not is_number(offset):
        raise SourceError(where, f"utc_offset_seconds={offset!r} is not a number")
    units = payload.get("hourly_units") or {}
    renamed = {ALIASES.get(k, k): k for k in hourly if k in ALIASES and ALIASES[k] not in hourly}
    columns = {k: k for k in hourly}
    columns.update(renamed)  # current name -> key in the payload

    ts = parse_times(times, where, "hourly.time")
    if offset:
        # Local wall times: UTC = local - offset.
        ts = ts - pd.Timedelta(seconds=offset)
        report.notes.append(f"{where}: times were in UTC{offset / 3600:+g} h; converted to UTC")
    if (ts != ts.floor("h")).any():
        i = int(np.flatnonzero(ts != ts.floor("h"))[0])
        raise SourceError(where, f"hourly.time {times[i]!r} is not on the hour in UTC", row=i)
    out = pd.DataFrame({"ts": ts})
    for var in HOURLY:
        key = columns.get(var)
        if key is None:
            out[var] = np.nan
            report.add("missing_variable", len(ts), f"{where}: {var} absent from the response; NaN")
            continue
        values = hourly[key]
        if not isinstance(values, list) or len(values) != len(times):
            n = len(values) if isinstance(values, list) else type(values).__name__
            raise SourceError(where, f"hourly.{key} has {n} values, hourly.time has {len(times)}")
        arr = np.empty(len(values), dtype="float64")
        nulls = 0
        for i, v in enumerate(values):
            if v is None:
                arr[i] = np.nan
                nulls += 1
            elif is_number(v):
                arr[i] = float(v)
            else:
                raise SourceError(where, f"hourly.{key}={v!r} is not a number", row=i)
        report.add("null_to_nan", nulls, f"{where}: {nulls} null {var} value(s) kept as NaN")
        out[var] = _unit_factor(var, units.get(key), where)(arr)
    dup = out["ts"].duplicated()
    report.add("duplicate_dropped", int(dup.sum()), f"{where}: {int(dup.sum())} repeated time(s)")
    return out[~dup].reset_index(drop=True)
