"""Rolling-origin backtest: forecasts issued at many times, each from data before it, scored per
horizon bucket.

A forecaster is any ``f(history, issued_ats) -> forecast frame``. The library's forecasters
(``tft.predict_many``, the baselines) read only rows with ``ts < issued_at`` for each issue time, so
they can be handed the whole frame at once (fast, batched). ``strict=True`` instead calls the
forecaster once per issue time with the frame cut at that issue time, which guarantees the property
for any callable (slow for the TFT; use it to check a new forecaster).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from forecasting.metrics import score
from forecasting.spec import TS, as_utc

Forecaster = Callable[[pd.DataFrame, Sequence[pd.Timestamp]], pd.DataFrame]


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


def backtest(forecaster: Forecaster, frame: pd.DataFrame, issued_ats: Sequence,
             target: str = "value", *, strict: bool = False) -> BacktestResult:
    issues = [as_utc(t) for t in issued_ats]
    if strict:
        parts = [forecaster(frame[frame[TS] < t], [t]) for t in issues]
        fc = pd.concat(parts, ignore_index=True)
    else:
        fc = forecaster(frame, issues)
    bad = fc["target_time"] < fc["issued_at"]
    if bad.any():
        raise AssertionError("forecaster returned targets before their issue time")
    from forecasting.metrics import attach_actuals

    fc = attach_actuals(fc, frame, target)
    return BacktestResult(fc, score(fc, by=("bucket",)), score(fc, by=("series", "bucket")))
