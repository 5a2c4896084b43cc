"""Rolling-origin backtest: forecasts issued at many times, each from data before it, scored per
horizon bucket.

The forecaster is a fitted :class:`forecasting.forecaster.Forecaster`. Its ``predict`` reads only
rows with ``ts < issued_at`` for each issue time, so it can be handed the whole frame at once (fast,
batched). ``strict=True`` instead predicts once per issue time with the frame cut at that issue
time, which guarantees the property for any forecaster (slow for the TFT; use it to check a new
one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from forecasting.metrics import score
from forecasting.spec import TS, as_utc

if TYPE_CHECKING:
    from forecasting.forecaster import Forecaster


@dataclass
class BacktestResult:
    forecasts: pd.DataFrame  # issued_at, target_time, series, pXX..., actual
    scores: pd.DataFrame  # per horizon bucket
    scores_by_series: pd.DataFrame


def daily_issues(start, end, hour: int = 0) -> pd.DatetimeIndex:
    """One issue per day at ``hour`` UTC, from ``start`` to ``end`` inclusive (dates, UTC)."""
    s = pd.Timestamp(start, tz="UTC") if pd.Timestamp(start).tzinfo is None else pd.Timestamp(start)
    e = pd.Timestamp(end, tz="UTC") if pd.Timestamp(end).tzinfo is None else pd.Timestamp(end)
    return pd.date_range(s.normalize(), e.normalize(), freq="D") + pd.Timedelta(hours=hour)


def hourly_issues(start, end) -> pd.DatetimeIndex:
    """One issue per hour from ``start`` to ``end`` inclusive (tz-aware UTC)."""
    return pd.date_range(as_utc(start), as_utc(end), freq="h")


def backtest(
    forecaster: Forecaster,
    frame: pd.DataFrame,
    issued_ats: Sequence,
    target: str = "value",
    *,
    future_covariates=None,
    strict: bool = False,
) -> BacktestResult:
    issues = [as_utc(t) for t in issued_ats]
    if strict:
        parts = [forecaster.predict(frame[frame[TS] < t], [t], future_covariates) for t in issues]
        fc = pd.concat(parts, ignore_index=True)
    else:
        fc = forecaster.predict(frame, issues, future_covariates)
    bad = fc["target_time"] < fc["issued_at"]
    if bad.any():
        raise AssertionError("forecaster returned targets before their issue time")
    from forecasting.metrics import attach_actuals

    fc = attach_actuals(fc, frame, target)
    return BacktestResult(fc, score(fc, by=("bucket",)), score(fc, by=("series", "bucket")))
