"""What every replay route shares: the per-request context, errors, time formats, data faults.

Why: the three APIs format times and errors differently, but parameter parsing, the clock
snapshot and the null/drop faults must behave identically for all of them, so they live here once.
"""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sources.replay.data import ReplayData
from sources.replay.noise import hash_uniform
from sources.replay.state import Faults, ReplayState

HOUR = pd.Timedelta(hours=1)
FIVE_MIN = pd.Timedelta(minutes=5)


class ApiError(Exception):
    """An error answer: ``status`` and a message (shaped per API by the app)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Ctx:
    """One request: its query, headers and the clock/knobs snapshot it is answered with."""

    state: ReplayState
    data: ReplayData
    clock: pd.Timestamp
    faults: Faults
    query: Mapping[str, str]
    headers: Mapping[str, str]

    @property
    def hour(self) -> pd.Timestamp:
        """The clock's hour (the hour containing the clock)."""
        return self.clock.floor("h")

    @property
    def clock5(self) -> pd.Timestamp:
        return self.clock.floor("5min")

    @property
    def seed(self) -> int:
        return self.state.seed

    def last_hour(self, api: str) -> pd.Timestamp:
        """The newest hour of actuals ``api`` serves now: the clock's hour minus its lag."""
        return self.hour - self.faults.lag(api) * HOUR

    # -- parameters --
    def param(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        v = self.query.get(name)
        if v is None or v == "":
            if required:
                raise ApiError(400, f"missing required parameter '{name}'")
            return default
        return v

    def time_param(self, name: str) -> pd.Timestamp:
        raw = self.param(name, required=True)
        try:
            ts = pd.Timestamp(raw)
        except (TypeError, ValueError):
            raise ApiError(400, f"parameter '{name}'={raw!r} is not an ISO 8601 time") from None
        if ts is pd.NaT:
            raise ApiError(400, f"parameter '{name}' is not a time")
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")

    def float_param(self, name: str) -> float:
        raw = self.param(name, required=True)
        try:
            v = float(raw)
        except ValueError:
            raise ApiError(400, f"parameter '{name}'={raw!r} is not a number") from None
        if not math.isfinite(v):
            raise ApiError(400, f"parameter '{name}' must be finite")
        return v

    def int_param(self, name: str, default: int) -> int:
        raw = self.param(name)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise ApiError(400, f"parameter '{name}'={raw!r} is not an integer") from None

    # -- data faults --
    def null_mask(self, source: str, key: str, hours: pd.DatetimeIndex) -> np.ndarray:
        """Which of ``hours`` (hour starts) answer null: ``null_hours`` plus the seeded
        ``null_fraction`` draw keyed by (seed, source, key, hour, clock hour)."""
        f = self.faults
        mask = np.zeros(len(hours), dtype=bool)
        if f.null_hours:
            mask |= hours.isin(list(f.null_hours))
        if f.null_fraction > 0 and len(hours):
            seed = self.seed if f.seed is None else f.seed
            hrs = hours.asi8 // 3_600_000_000_000
            u = hash_uniform(seed, ("null", source, key, self.hour), hrs)
            mask |= u < f.null_fraction
        return mask

    def drop_mask(self, hours: pd.DatetimeIndex) -> np.ndarray:
        if not self.faults.drop_hours:
            return np.zeros(len(hours), dtype=bool)
        return hours.isin(list(self.faults.drop_hours))


# -------------------------------------------------------------------------------------------------
# formats
# -------------------------------------------------------------------------------------------------
def em_time(ts: pd.Timestamp) -> str:
    """``2022-04-01T00:00:00.000Z`` (Electricity Maps)."""
    ts = ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def wt_time(ts: pd.Timestamp) -> str:
    """``2022-04-01T00:00:00+00:00`` (WattTime)."""
    return ts.tz_convert("UTC").isoformat()


def http_date(ts: pd.Timestamp) -> str:
    """``Fri, 01 Apr 2022 00:05:00 GMT``: the ``Date`` header (the replay clock)."""
    return email.utils.formatdate(ts.timestamp(), usegmt=True)


def hour_range(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Hour starts ``t`` with ``start <= t <= end`` (both ends inclusive)."""
    lo = start.ceil("h")
    if end < lo:
        return pd.DatetimeIndex([], tz="UTC").as_unit("ns")
    return pd.date_range(lo, end.floor("h"), freq="h").as_unit("ns")


def clean(v: Any, ndigits: int | None = None) -> Any:
    """A JSON-safe number: NaN/inf → None, numpy scalars → Python, optionally rounded."""
    if v is None:
        return None
    v = float(v)
    if not math.isfinite(v):
        return None
    if ndigits is None:
        return v
    if ndigits == 0:
        return int(round(v))
    return round(v, ndigits)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
