"""WattTime API v3 routes (``/login``, ``/v3/region-from-loc``, ``/v3/historical``,
``/v3/forecast``, ``/v3/forecast/historical``, ``/v3/signal-index``) from recorded MOER values.

Semantics (``C5`` = the clock floored to 5 minutes):

- ``/login`` (HTTP Basic) issues a random bearer token, valid ``token_ttl_s`` seconds of *wall*
  time; a missing, unknown or expired token answers 401 everywhere else.
- Without a subscription (``wt_subscription=False``) only ``CAISO_NORTH`` answers data; any other
  region → 403. Only ``signal_type=co2_moer`` is recorded (others → 400).
- ``historical``: 5-minute points in ``[start, end)``, none after ``C5 - lag``.
- ``forecast``: ``horizon_hours`` (1–72, default 24) of 5-minute points from ``generated_at = C5``:
  recorded future ``· exp(0.03 · e)``, ``e`` a random walk in 5-minute steps with
  ``sd(e) = sqrt(lead_hours + 1)``, seeded by (seed, region, generated_at).
- ``forecast/historical``: one block per whole hour in ``[start, end)`` not after the clock, each
  exactly what ``forecast`` answers when the clock is that hour (same seed, same numbers). At most
  32 days per request (a replay limit that keeps answers a sensible size: 768 blocks of 288 points).
- ``signal-index``: the percentile (0–100) of the current value among the next 24 h of recorded
  values.
Units are ``lbs_co2_per_mwh`` throughout (the recording is taken to be in those units).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

import numpy as np
import pandas as pd

from sources.replay.common import HOUR, ApiError, Ctx, clean, wt_time
from sources.replay.data import MoerRegion
from sources.replay.noise import WT_SIGMA, random_walk, rng

API = "watttime"
FREE_REGION = "CAISO_NORTH"
SIGNALS = ("co2_moer",)
UNITS = "lbs_co2_per_mwh"
MAX_REGION_KM = 100.0
MAX_FORECAST_HISTORY = pd.Timedelta(days=32)


def login(ctx: Ctx) -> dict[str, Any]:
    header = ctx.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise ApiError(401, "HTTP Basic credentials required")
    try:
        user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(401, "malformed HTTP Basic credentials") from None
    ok_user = hmac.compare_digest(user.encode(), ctx.state.wt_username.encode())
    ok_pw = hmac.compare_digest(password.encode(), ctx.state.wt_password.encode())
    if not (ok_user and ok_pw):
        raise ApiError(401, "invalid username or password")
    return {"token": ctx.state.issue_token()}


def _bearer(ctx: Ctx) -> None:
    scheme, _, token = ctx.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "bearer token required (GET /login first)")
    if not ctx.state.token_ok(token.strip()):
        raise ApiError(401, "token invalid or expired; log in again")


def _signal(ctx: Ctx) -> str:
    signal = ctx.param("signal_type", "co2_moer")
    if signal not in SIGNALS:
        raise ApiError(400, f"signal_type {signal!r} is not recorded in this replay (co2_moer)")
    return signal


def _region(ctx: Ctx) -> MoerRegion:
    name = ctx.param("region", required=True)
    if not ctx.state.wt_subscription and name != FREE_REGION:
        raise ApiError(403, f"region {name!r} requires a subscription (only {FREE_REGION} is free)")
    region = ctx.data.moer.get(name)
    if region is None:
        raise ApiError(404, f"region {name!r} not found")
    return region


def _meta(region: MoerRegion, signal: str, **extra: Any) -> dict[str, Any]:
    first = region.points.index[0].date().isoformat() if len(region.points) else None
    return {
        "region": region.name,
        "signal_type": signal,
        "units": UNITS,
        **extra,
        "data_point_period_seconds": 300,
        "model": {"date": first, "type": "replay"},
        "generated_at_period_seconds": 300,
        "warnings": [],
    }


def _points(
    ctx: Ctx,
    region: MoerRegion,
    times: pd.DatetimeIndex,
    values: np.ndarray,
    ndigits: int | None = None,
) -> list:
    """``[{point_time, value}]`` without recorded gaps, dropped or null hours (WattTime omits
    points it does not have)."""
    hours = times.floor("h")
    keep = ~np.isnan(values) & ~ctx.drop_mask(hours) & ~ctx.null_mask(API, region.name, hours)
    stamps = times[keep].strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return [
        {"point_time": t, "value": clean(v, ndigits)}
        for t, v in zip(stamps, values[keep], strict=True)
    ]


def historical(ctx: Ctx) -> dict[str, Any]:
    _bearer(ctx)
    signal = _signal(ctx)
    region = _region(ctx)
    start, end = ctx.time_param("start"), ctx.time_param("end")
    if end <= start:
        raise ApiError(400, "'end' must be after 'start'")
    until = ctx.clock5 - ctx.faults.lag(API) * HOUR
    s = region.points
    s = s[(s.index >= start) & (s.index < end) & (s.index <= until)]
    return {
        "data": _points(ctx, region, s.index, s.to_numpy(dtype=float)),
        "meta": _meta(region, signal, generated_at=wt_time(ctx.clock)),
    }


def _forecast_block(ctx: Ctx, region: MoerRegion, issued: pd.Timestamp, horizon: int) -> list:
    n = horizon * 12
    times = pd.date_range(issued, periods=n, freq="5min").as_unit("ns")
    recorded = region.points.reindex(times).to_numpy(dtype=float)
    walk = random_walk(rng(ctx.seed, "wt-forecast", region.name, issued), n, steps_per_hour=12)
    return _points(ctx, region, times, recorded * np.exp(WT_SIGMA * walk[:, 0]), 2)


def _horizon(ctx: Ctx) -> int:
    horizon = ctx.int_param("horizon_hours", 24)
    if not 1 <= horizon <= 72:
        raise ApiError(400, "horizon_hours must be between 1 and 72")
    return horizon


def forecast(ctx: Ctx) -> dict[str, Any]:
    _bearer(ctx)
    signal = _signal(ctx)
    region = _region(ctx)
    horizon = _horizon(ctx)
    issued = ctx.clock5
    return {
        "data": _forecast_block(ctx, region, issued, horizon),
        "meta": _meta(region, signal, generated_at=wt_time(issued)),
    }


def forecast_historical(ctx: Ctx) -> dict[str, Any]:
    _bearer(ctx)
    signal = _signal(ctx)
    region = _region(ctx)
    horizon = _horizon(ctx)
    start, end = ctx.time_param("start"), ctx.time_param("end")
    if end <= start:
        raise ApiError(400, "'end' must be after 'start'")
    if end - start > MAX_FORECAST_HISTORY:
        raise ApiError(400, "forecast/historical is limited to 32 days per request in the replay")
    last = min(end - pd.Timedelta(1, "ns"), ctx.clock)
    issues = (
        pd.date_range(start.ceil("h"), last.floor("h"), freq="h") if start.ceil("h") <= last else []
    )
    data = [
        {"generated_at": wt_time(t), "forecast": _forecast_block(ctx, region, t, horizon)}
        for t in issues
    ]
    return {"data": data, "meta": _meta(region, signal)}


def region_from_loc(ctx: Ctx) -> dict[str, Any]:
    _bearer(ctx)
    signal = _signal(ctx)
    lat, lon = ctx.float_param("latitude"), ctx.float_param("longitude")
    region = ctx.data.nearest_region(lat, lon, MAX_REGION_KM)
    if region is None:
        raise ApiError(404, f"no region within {MAX_REGION_KM:g} km of {lat}, {lon}")
    return {"region": region.name, "region_full_name": region.full_name, "signal_type": signal}


def signal_index(ctx: Ctx) -> dict[str, Any]:
    _bearer(ctx)
    signal = _signal(ctx)
    region = _region(ctx)
    now = ctx.clock5
    s = region.points
    window = s[(s.index >= now) & (s.index < now + 24 * HOUR)]
    if now not in s.index or not len(window):
        raise ApiError(404, f"no data for {region.name} at {wt_time(now)}")
    pct = 100.0 * float((window.to_numpy() < s.loc[now]).mean())
    meta = _meta(region, signal, generated_at=wt_time(now))
    meta["units"] = "percentile"
    return {"data": [{"point_time": wt_time(now), "value": round(pct, 1)}], "meta": meta}


ROUTES = [
    ("/login", login),
    ("/v3/region-from-loc", region_from_loc),
    ("/v3/historical", historical),
    ("/v3/forecast", forecast),
    ("/v3/forecast/historical", forecast_historical),
    ("/v3/signal-index", signal_index),
]
