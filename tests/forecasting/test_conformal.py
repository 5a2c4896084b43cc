"""Split-conformal intervals per lead bucket: hand-checked quantile rule, target coverage out of
sample on a generated series, and a refresh that follows a change in the errors. Fast (no torch)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.conformal import ConformalCalibrator, conformal_quantile
from forecasting.forecaster import SeasonalNaive
from forecasting.metrics import attach_actuals, coverage


def test_conformal_quantile_is_the_finite_sample_order_statistic():
    r = np.arange(1.0, 20.0)  # n = 19: (n + 1) q = 2 and 18
    assert conformal_quantile(r, 0.1) == 2.0
    assert conformal_quantile(r, 0.9) == 18.0
    assert conformal_quantile(r[:3], 0.02) == 1.0 and conformal_quantile(r[:3], 0.98) == 3.0
    assert conformal_quantile(np.array([]), 0.9) == 0.0


def _series(days: int, seed: int, sd_after: float | None = None, change_day: int = 0):
    """Daily cycle + AR(1) noise, positive (gCO2/kWh-like)."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2024-01-01", periods=days * 24, freq="h", tz="UTC")
    e = np.zeros(len(ts))
    for i in range(1, len(ts)):
        sd = sd_after if sd_after and i >= change_day * 24 else 15.0
        e[i] = 0.8 * e[i - 1] + rng.normal(0, sd)
    v = 300 + 80 * np.sin(2 * np.pi * ts.hour / 24) + e
    return pd.DataFrame({"series": "a", "ts": ts, "value": np.maximum(v, 20.0)})


def _forecasts(frame, start, end, hour_step=6):
    issues = pd.date_range(start, end, freq=f"{hour_step}h", tz="UTC")
    f = SeasonalNaive(24, 48).predict(frame, issues)
    return attach_actuals(f, frame).dropna(subset=["actual"])


def test_series_with_different_error_levels_are_each_calibrated():
    # a steady series and one with 4x the noise, served by one forecaster: one pooled residual set
    # over-covers the first and under-covers the second; per-series groups calibrate each
    calm = _series(90, seed=1)
    wild = _series(90, seed=2, sd_after=60.0).assign(series="b")
    frame = pd.concat([calm, wild], ignore_index=True)
    fit = _forecasts(frame, "2024-01-08", "2024-02-14")
    test = _forecasts(frame, "2024-02-20", "2024-03-28")

    def cov_by_series(cal):
        out = cal.apply(test)
        return {n: coverage(g["actual"], g["p10"], g["p90"]) for n, g in out.groupby("series")}

    pooled = cov_by_series(ConformalCalibrator(by_series=False).fit(fit))
    assert pooled["a"] > 0.9 and pooled["b"] < 0.7, pooled
    cal = ConformalCalibrator().fit(fit)
    assert set(cal.series_offsets) == {"a", "b"}
    per = cov_by_series(cal)
    assert all(0.75 <= c <= 0.85 for c in per.values()), per
    # the refresh keeps the groups; a series never seen uses the offsets of all series
    again = cal.refreshed(test.iloc[:200])
    assert set(again.series_offsets) == {"a", "b"}
    other = test[test.series == "a"].assign(series="c").head(48)
    np.testing.assert_allclose(
        cal.apply(other)["p90"], ConformalCalibrator(by_series=False).fit(fit).apply(other)["p90"]
    )
    back = ConformalCalibrator.from_dict(cal.to_dict())
    assert back.series_offsets == cal.series_offsets


def test_generated_series_hits_the_target_coverage_out_of_sample():
    frame = _series(90, seed=1)
    fit = _forecasts(frame, "2024-01-08", "2024-02-14")  # calibration period
    test = _forecasts(frame, "2024-02-20", "2024-03-28")  # later, never seen by the fit
    cal = ConformalCalibrator().fit(fit)
    assert cal.relative and set(cal.counts) >= {"0-6", "24-48"}
    out = cal.apply(test)
    cov = coverage(out["actual"], out["p10"], out["p90"])
    assert 0.75 <= cov <= 0.85, cov
    # per bucket too (none far off), and wider at longer leads where errors are larger
    lead = (out.target_time - out.issued_at) / pd.Timedelta(hours=1)
    for lo, hi in ((0, 6), (6, 12), (12, 24), (24, 48)):
        m = (lead >= lo) & (lead < hi)
        assert 0.7 <= coverage(out.actual[m], out.p10[m], out.p90[m]) <= 0.9
    assert (out.p50 == test.p50).all()  # the median is left alone
    # the naive rule's own quantiles (recent error spread) are not calibrated here
    raw = coverage(test["actual"], test["p10"], test["p90"])
    assert abs(raw - 0.8) > abs(cov - 0.8)


def test_refresh_follows_larger_errors_as_actuals_arrive():
    frame = _series(80, seed=2, sd_after=40.0, change_day=45)  # noise x2.7 from day 45
    cal = ConformalCalibrator().fit(_forecasts(frame, "2024-01-08", "2024-02-10"))
    recent = _forecasts(frame, "2024-02-16", "2024-03-01")  # after the change, before the test
    test = _forecasts(frame, "2024-03-03", "2024-03-18")
    stale = cal.apply(test)
    fresh = cal.refreshed(recent, max_per_bucket=300).apply(test)
    c_stale = coverage(stale.actual, stale.p10, stale.p90)
    c_fresh = coverage(fresh.actual, fresh.p10, fresh.p90)
    assert c_stale < 0.7 and 0.72 <= c_fresh <= 0.9, (c_stale, c_fresh)
    # a refresh with nothing new changes nothing
    same = cal.refreshed(recent.iloc[:0])
    assert same.offsets == cal.offsets


def test_round_trip_and_additive_for_a_target_that_can_be_zero():
    f = pd.DataFrame(
        {
            "issued_at": pd.Timestamp("2024-01-01", tz="UTC"),
            "target_time": pd.date_range("2024-01-01", periods=60, freq="h", tz="UTC"),
            "series": "a",
            "p50": 1.0,
            "actual": np.r_[np.zeros(30), np.ones(30) * 2],
        }
    )
    f = pd.concat(
        [
            f.assign(
                issued_at=f.issued_at + pd.Timedelta(days=k),
                target_time=f.target_time + pd.Timedelta(days=k),
            )
            for k in range(3)
        ]
    )
    cal = ConformalCalibrator(min_n=10).fit(f)
    assert not cal.relative
    back = ConformalCalibrator.from_dict(cal.to_dict())
    assert back.offsets == cal.offsets
    out = back.apply(f.assign(p10=0.0, p90=0.0, p02=0.0, p25=0.0, p75=0.0, p98=0.0))
    assert out["p10"].min() == pytest.approx(0.0) and out["p90"].max() == pytest.approx(2.0)
