"""Forecast combination and recent-error correction on hand-computed cases. Fast (no torch)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting import ensemble
from forecasting.backtest import daily_issues
from forecasting.spec import QUANTILES, ForecastInputError, qcol

UTC = "UTC"
QC = [qcol(q) for q in QUANTILES]


def fc_frame(issues, point, *, spread=10.0, series="a", horizon=24) -> pd.DataFrame:
    """Forecast frame with p50 = point(target_time) and symmetric quantiles around it."""
    rows = []
    for i in pd.DatetimeIndex(issues):
        for h in range(horizon):
            t = i + pd.Timedelta(hours=h)
            p = float(point(t))
            rows.append(
                {
                    "issued_at": i,
                    "target_time": t,
                    "series": series,
                    **{c: p + spread * (q - 0.5) for c, q in zip(QC, QUANTILES, strict=True)},
                }
            )
    return pd.DataFrame(rows)


def actuals_frame(start, days, value, series="a") -> pd.DataFrame:
    ts = pd.date_range(start, periods=days * 24, freq="h", tz=UTC)
    return pd.DataFrame({"series": series, "ts": ts, "value": [float(value(t)) for t in ts]})


def level(t):  # a daily profile that the correction must keep hour by hour
    return 200.0 + 50.0 * np.sin(2 * np.pi * t.hour / 24)


def test_combine_is_the_weighted_mean_of_quantiles():
    iss = daily_issues("2024-01-10", "2024-01-11")
    a = fc_frame(iss, lambda t: 100.0)
    b = fc_frame(iss, lambda t: 200.0)
    out = ensemble.combine({"a": a, "b": b}, {"a": 3, "b": 1})
    np.testing.assert_allclose(out["p50"], 125.0)
    np.testing.assert_allclose(out["p90"] - out["p50"], 4.0)  # spreads average too
    out2 = ensemble.combine({"a": a, "b": b})
    np.testing.assert_allclose(out2["p50"], 150.0)
    assert ensemble.combine({"a": a, "b": b}, {"a": 1, "b": 0})["p50"].eq(100.0).all()


def test_combine_refuses_members_with_different_rows():
    a = fc_frame(daily_issues("2024-01-10", "2024-01-11"), lambda t: 100.0)
    b = fc_frame(daily_issues("2024-01-10", "2024-01-10"), lambda t: 100.0)
    with pytest.raises(ForecastInputError, match="does not cover the same"):
        ensemble.combine({"a": a, "b": b})
    with pytest.raises(ForecastInputError, match="positive weight"):
        ensemble.combine({"a": a}, {"a": 0})


def test_correction_removes_a_persistent_relative_bias_hour_by_hour():
    iss = daily_issues("2024-01-01", "2024-01-31")
    fc = fc_frame(iss, lambda t: 1.1 * level(t))  # 10 % too high at every hour
    act = actuals_frame("2024-01-01", 31, level)
    out = ensemble.recent_error_correction(fc, act, days=7, strength=1.0)
    later = out["issued_at"] >= pd.Timestamp("2024-01-08", tz=UTC)
    expect = np.array([level(t) for t in out.loc[later, "target_time"]])
    np.testing.assert_allclose(out.loc[later, "p50"], expect, rtol=1e-9)
    # quantiles scaled by the same factor: interval keeps its relative width
    np.testing.assert_allclose(out.loc[later, "p90"] - out.loc[later, "p50"], 4.0 / 1.1)
    # the first days lack 7 // 2 = 3 earlier days of errors: left as they were
    first = out["issued_at"] < pd.Timestamp("2024-01-04", tz=UTC)
    pd.testing.assert_frame_equal(out[first], fc[first])
    # half strength: halfway in log space
    half = ensemble.recent_error_correction(fc, act, days=7, strength=0.5)
    np.testing.assert_allclose(half.loc[later, "p50"], expect * np.sqrt(1.1), rtol=1e-9)


def test_correction_uses_only_actuals_before_the_issue_time():
    iss = daily_issues("2024-01-01", "2024-01-20")
    fc = fc_frame(iss, lambda t: 1.1 * level(t))
    act = actuals_frame("2024-01-01", 20, level)
    a = ensemble.recent_error_correction(fc, act, days=7, strength=1.0)
    issue = pd.Timestamp("2024-01-15", tz=UTC)
    act2 = act.copy()
    act2.loc[act2.ts >= issue, "value"] *= 5  # the future changes...
    b = ensemble.recent_error_correction(fc, act2, days=7, strength=1.0)
    keep = a["issued_at"] <= issue
    pd.testing.assert_frame_equal(a[keep], b[keep])  # ...forecasts issued by then do not
    assert not np.allclose(a.loc[~keep, "p50"], b.loc[~keep, "p50"])


def test_correction_is_additive_for_a_target_that_can_be_zero():
    iss = daily_issues("2024-01-01", "2024-01-10")
    fc = fc_frame(iss, lambda t: 5.0)
    act = actuals_frame("2024-01-01", 10, lambda t: 0.0 if t.hour == 3 else 2.0)
    out = ensemble.recent_error_correction(fc, act, days=3, strength=1.0)
    last = out[out["issued_at"] == iss[-1]].set_index(
        out.loc[out["issued_at"] == iss[-1], "target_time"].dt.hour
    )
    assert last.loc[3, "p50"] == pytest.approx(0.0)
    assert last.loc[4, "p50"] == pytest.approx(2.0)


def test_select_picks_the_better_member_and_the_strength_on_validation():
    iss = daily_issues("2024-01-01", "2024-01-31")
    act = actuals_frame("2024-01-01", 31, level)
    good = fc_frame(iss, lambda t: 1.1 * level(t))  # biased but perfectly shaped
    bad = fc_frame(iss, lambda t: 200.0)  # flat
    ens = ensemble.select({"tft": good, "flat": bad}, act, score_from="2024-01-15T00:00Z", days=7)
    assert ens.weights == {"tft": 1.0}
    assert ens.strength == 1.0
    assert ens.validation["chosen_mape"] == pytest.approx(0.0, abs=1e-9)
    assert ens.validation["tft@0"] == pytest.approx(10.0)
    forced = ensemble.select(
        {"tft": good, "flat": bad},
        act,
        score_from="2024-01-15T00:00Z",
        days=7,
        must_include=("flat",),
    )
    assert "flat" in forced.weights
    with pytest.raises(ForecastInputError, match="no subset"):
        ensemble.select({"a": good}, act, score_from="2024-01-15T00:00Z", must_include=("x",))


def test_correction_reads_errors_of_past_stored_forecasts():
    iss = daily_issues("2024-01-01", "2024-01-20")
    fc = fc_frame(iss, lambda t: 1.1 * level(t))
    act = actuals_frame("2024-01-01", 20, level)
    now = fc["issued_at"] == iss[-1]
    alone = ensemble.recent_error_correction(fc[now], act, days=7, strength=1.0)
    pd.testing.assert_frame_equal(alone.reset_index(drop=True), fc[now].reset_index(drop=True))
    with_past = ensemble.recent_error_correction(fc[now], act, days=7, strength=1.0, past=fc[~now])
    expect = np.array([level(t) for t in with_past["target_time"]])
    np.testing.assert_allclose(with_past["p50"], expect, rtol=1e-9)
