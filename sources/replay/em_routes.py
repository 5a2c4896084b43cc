"""Electricity Maps API v3 carbon-intensity routes, answered from the recorded exports.

Shapes follow ``shared/design/sources.md``. Semantics (``H`` = the clock's hour, ``L = H - lag``,
``E = faults.em_estimated_hours``):

- ``latest``: the newest recorded hour ``<= L``; ``history``: hours ``H-23 .. H`` that are ``<= L``;
  ``past-range``: hours in ``[start, end]`` (end inclusive, like the real API), ``<= L``, at most 10
  days (else 400), paid tier only (free → 403); ``forecast``: ``horizonHours`` (24/48/72) hours
  from ``H``, recorded future · ``exp(0.02 · e_lead)`` (``sources.replay.noise``), paid only.
- ``emissionFactorType`` defaults to ``lifecycle``; every item says its factor.
- Revisions: hours ``t > L - E`` are served estimated (``isEstimated: true``,
  ``TIME_SLICER_AVERAGE``, value ``· (1 ± revision_shift·u)``, ``updatedAt`` = the clock floored
  to 5 minutes). Older hours carry the recorded value and flag, ``updatedAt = t + E + lag`` — the
  moment they left the estimated window, strictly later than any estimate of them and never after
  the clock. ``createdAt = min(t + 1 h, updatedAt)``.
- ``temporalGranularity=15_minutes|5_minutes`` repeats each hourly value on the finer grid (the
  recording is hourly); clients averaging back to the hour get the recorded value.
"""

from __future__ import annotations

import hmac
from typing import Any

import numpy as np
import pandas as pd

from sources.replay.common import HOUR, ApiError, Ctx, clean, em_time, hour_range
from sources.replay.noise import EM_SIGMA, random_walk, revision_factor, rng

API = "electricitymaps"
FACTORS = ("lifecycle", "direct")
STEPS = {"hourly": 1, "15_minutes": 4, "5_minutes": 12}
MAX_PAST_RANGE = pd.Timedelta(days=10)
HORIZONS = (24, 48, 72)


def _auth(ctx: Ctx) -> None:
    token = ctx.headers.get("auth-token")
    if not token:
        raise ApiError(401, "missing auth-token header")
    if not hmac.compare_digest(token.encode(), ctx.state.em_token.encode()):
        raise ApiError(401, "invalid auth-token")


def _paid(ctx: Ctx, what: str) -> None:
    if ctx.state.em_tier != "paid":
        raise ApiError(403, f"{what} requires a paid plan")


def _zone_factor(ctx: Ctx) -> tuple[str, str, pd.DataFrame]:
    zone = ctx.param("zone")
    if zone is None:
        if ctx.param("lat") is not None or ctx.param("lon") is not None:
            raise ApiError(400, "the replay resolves zones by 'zone' only, not lat/lon")
        raise ApiError(400, "missing required parameter 'zone'")
    factor = ctx.param("emissionFactorType", "lifecycle")
    if factor not in FACTORS:
        raise ApiError(400, f"emissionFactorType must be one of {', '.join(FACTORS)}")
    if not any(z == zone for z, _ in ctx.data.carbon):
        raise ApiError(404, f"zone '{zone}' not found")
    series = ctx.data.carbon.get((zone, factor))
    if series is None:
        raise ApiError(404, f"zone '{zone}' has no {factor} data")
    return zone, factor, series


def _steps(ctx: Ctx) -> int:
    g = ctx.param("temporalGranularity", "hourly")
    if g not in STEPS:
        raise ApiError(400, f"temporalGranularity must be one of {', '.join(STEPS)}")
    return STEPS[g]


def _items(
    ctx: Ctx, zone: str, factor: str, series: pd.DataFrame, hours: pd.DatetimeIndex, steps: int
) -> list[dict[str, Any]]:
    """Actuals for ``hours`` (already ``<= L``) with revisions and data faults applied."""
    f = ctx.faults
    last = ctx.last_hour(API)
    est_hours = int(f.em_estimated_hours)
    settled = (est_hours + f.lag(API)) * HOUR
    hours = hours[hours.isin(series.index)]
    hours = hours[~ctx.drop_mask(hours)]
    nulls = ctx.null_mask(API, zone, hours)
    rows = series.loc[hours]
    now5 = em_time(ctx.clock5)
    out = []
    for t, is_null, value, rec_est, rec_method in zip(
        hours,
        nulls,
        rows["value"].to_numpy(),
        rows["is_estimated"].to_numpy(),
        rows["estimation_method"].to_numpy(),
        strict=True,
    ):
        if t > last - est_hours * HOUR:
            value = round(float(value) * revision_factor(ctx.seed, zone, t, f.revision_shift), 2)
            estimated, method = True, "TIME_SLICER_AVERAGE"
            updated_s = now5
            created_s = em_time(min(t + HOUR, ctx.clock5))
        else:
            estimated, method = bool(rec_est), rec_method
            updated = t + settled
            updated_s, created_s = em_time(updated), em_time(min(t + HOUR, updated))
        item = {
            "zone": zone,
            "carbonIntensity": None if is_null else clean(value),
            "datetime": None,
            "updatedAt": updated_s,
            "createdAt": created_s,
            "emissionFactorType": factor,
            "isEstimated": estimated,
            "estimationMethod": method,
        }
        for k in range(steps):
            out.append({**item, "datetime": em_time(t + k * (HOUR / steps))})
    return out


def latest(ctx: Ctx) -> dict[str, Any]:
    _auth(ctx)
    zone, factor, series = _zone_factor(ctx)
    last = ctx.last_hour(API)
    idx = series.index[series.index <= last]
    idx = idx[~ctx.drop_mask(idx)]
    if not len(idx):
        raise ApiError(404, f"no data for zone '{zone}' at or before {em_time(last)}")
    return _items(ctx, zone, factor, series, idx[-1:], 1)[0]


def history(ctx: Ctx) -> dict[str, Any]:
    _auth(ctx)
    zone, factor, series = _zone_factor(ctx)
    steps = _steps(ctx)
    hours = hour_range(ctx.hour - 23 * HOUR, min(ctx.hour, ctx.last_hour(API)))
    return {"zone": zone, "history": _items(ctx, zone, factor, series, hours, steps)}


def past_range(ctx: Ctx) -> dict[str, Any]:
    _auth(ctx)
    zone, factor, series = _zone_factor(ctx)
    steps = _steps(ctx)
    _paid(ctx, "carbon-intensity/past-range")
    start, end = ctx.time_param("start"), ctx.time_param("end")
    if end < start:
        raise ApiError(400, "'end' must not be before 'start'")
    if end - start > MAX_PAST_RANGE:
        raise ApiError(
            400,
            f"past-range spans {end - start}; hourly requests are limited to 10 days per call",
        )
    hours = hour_range(start, min(end, ctx.last_hour(API)))
    return {"zone": zone, "data": _items(ctx, zone, factor, series, hours, steps)}


def forecast(ctx: Ctx) -> dict[str, Any]:
    _auth(ctx)
    zone, factor, series = _zone_factor(ctx)
    _paid(ctx, "carbon-intensity/forecast")
    horizon = ctx.int_param("horizonHours", 24)
    if horizon not in HORIZONS:
        raise ApiError(400, f"horizonHours must be one of {', '.join(map(str, HORIZONS))}")
    issue = ctx.hour
    hours = pd.date_range(issue, periods=horizon, freq="h").as_unit("ns")
    # one walk per zone and issue hour: the direct and lifecycle forecasts err alike, as one
    # model's would
    walk = random_walk(rng(ctx.seed, "em-forecast", zone, issue), horizon)[:, 0]
    recorded = series["value"].reindex(hours).to_numpy()
    values = recorded * np.exp(EM_SIGMA * walk)
    keep = ~np.isnan(recorded) & ~ctx.drop_mask(hours)
    nulls = ctx.null_mask(API, zone, hours)
    items = [
        {
            "carbonIntensity": None if n else clean(v, 2),
            "datetime": em_time(t),
            "emissionFactorType": factor,
        }
        for t, v, n, k in zip(hours, values, nulls, keep, strict=True)
        if k
    ]
    return {
        "zone": zone,
        "forecast": items,
        "updatedAt": em_time(issue),
        "emissionFactorType": factor,
    }


ROUTES = [
    ("/v3/carbon-intensity/latest", latest),
    ("/v3/carbon-intensity/history", history),
    ("/v3/carbon-intensity/past-range", past_range),
    ("/v3/carbon-intensity/forecast", forecast),
]
