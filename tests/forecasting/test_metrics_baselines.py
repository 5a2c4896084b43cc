"""Metrics and baselines on hand-computed cases; input checks. Fast (no torch)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting import baselines, metrics
from forecasting.backtest import backtest, daily_issues
from forecasting.forecaster import SeasonalNaive
from forecasting.spec import ForecastInputError, LeakageError, SeriesSpec, check_frame
from forecasting.synthetic import make_series

UTC = "UTC"


def frame_from(values, start="2024-01-01", series="a") -> pd.DataFrame:
    ts = pd.date_range(start, periods=len(values), freq="h", tz=UTC)
    return pd.DataFrame({"series": series, "ts": ts, "value": np.asarray(values, float)})


# --- metrics
# ---------------------------------------------------------------------------------------


def test_mae_mape_hand_computed():
    y, p = [100, 200, 400], [110, 180, 400]
    assert metrics.mae(y, p) == pytest.approx((10 + 20 + 0) / 3)
    assert metrics.mape(y, p) == pytest.approx((10 + 10 + 0) / 3)


def test_mape_skips_zero_actuals_and_refuses_all_zero():
    assert metrics.mape([0, 100], [5, 90]) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="undefined"):
        metrics.mape([0, 0], [1, 2])


def test_pinball_hand_computed():
    # q=0.9: under-forecast by 10 costs 9, over-forecast by 10 costs 1
    assert metrics.pinball([10], [0], 0.9) == pytest.approx(9.0)
    assert metrics.pinball([0], [10], 0.9) == pytest.approx(1.0)
    assert metrics.pinball([10, 0], [0, 10], 0.5) == pytest.approx(5.0)


def test_coverage_and_crossed_quantiles():
    assert metrics.coverage([1, 5, 10], [0, 0, 0], [2, 6, 9]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="crossed"):
        metrics.coverage([1], [3], [2])


def test_score_per_bucket():
    issued = pd.Timestamp("2024-01-02", tz=UTC)
    tt = issued + pd.to_timedelta(np.arange(48), "h")
    f = pd.DataFrame(
        {
            "issued_at": issued,
            "target_time": tt,
            "series": "a",
            "p10": 0.0,
            "p50": 10.0,
            "p90": 20.0,
            "actual": np.r_[np.full(24, 10.0), np.full(24, 30.0)],
        }
    )
    s = metrics.score(f).set_index("bucket")
    assert list(s.index) == ["0-24", "24-48"]
    assert s.loc["0-24", "mae"] == 0 and s.loc["24-48", "mae"] == 20
    assert s.loc["0-24", "coverage_p10_p90"] == 1 and s.loc["24-48", "coverage_p10_p90"] == 0
    assert s.loc["24-48", "mape"] == pytest.approx(100 * 20 / 30)


# --- baselines
# -------------------------------------------------------------------------------------


def test_persistence_same_hour_yesterday_and_latest_for_long_leads():
    v = np.arange(24 * 10, dtype=float)  # value = hour number
    f = frame_from(v)
    issued = pd.Timestamp("2024-01-08 05:00", tz=UTC)  # hour 173
    out = SeasonalNaive(24, 48).predict(f, issued)
    lead = ((out.target_time - issued) / pd.Timedelta(hours=1)).to_numpy()
    target_h = 173 + lead
    expect = np.where(lead < 24, target_h - 24, target_h - 48)
    np.testing.assert_array_equal(out.p50.to_numpy(), expect)
    assert (out.p50 < 173).all()  # never a value at/after the issue time
    assert list(out.columns[:3]) == ["issued_at", "target_time", "series"]
    q = out[["p02", "p10", "p25", "p50", "p75", "p90", "p98"]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()


def test_seasonal_naive_same_hour_last_week():
    v = np.arange(24 * 20, dtype=float)
    f = frame_from(v)
    issued = pd.Timestamp("2024-01-15 00:00", tz=UTC)  # hour 336
    out = SeasonalNaive(168, 24).predict(f, [issued])
    np.testing.assert_array_equal(out.p50.to_numpy(), np.arange(336, 360) - 168)


def test_persistence_ignores_rows_after_issue_time():
    f = make_series(1, 20, with_covariate=False)
    issued = pd.Timestamp("2024-01-12", tz=UTC)
    a = SeasonalNaive().predict(f, issued)
    b = SeasonalNaive().predict(f[f.ts < issued], issued)
    pd.testing.assert_frame_equal(a, b)


def test_persistence_quantiles_from_past_errors():
    # perfectly daily-periodic series: persistence is exact and the interval collapses onto it
    v = np.tile(np.arange(24, dtype=float) + 100, 40)
    out = SeasonalNaive().predict(frame_from(v), pd.Timestamp("2024-02-01", tz=UTC))
    np.testing.assert_allclose(out.p10, out.p50)
    np.testing.assert_allclose(out.p90, out.p50)


def test_persistence_too_little_history():
    with pytest.raises(ForecastInputError, match="not enough history"):
        SeasonalNaive().predict(
            frame_from(np.ones(10) + np.arange(10)), pd.Timestamp("2024-01-01 10:00", tz=UTC)
        )


@pytest.mark.parametrize("kind", ["ridge", "gbm"])
def test_regression_learns_a_known_covariate(kind):
    f = make_series(2, 40)
    spec = SeriesSpec(
        known_reals=("temp_fc",),
        observed_reals=("gen",),
        encoder_length=48,
        horizon=24,
        target_lags=(24, 168),
    )
    issue = pd.Timestamp("2024-02-03", tz=UTC)
    train = f[f.ts < issue]
    rb = baselines.RegressionBaseline(spec, kind=kind).fit(train)
    out = rb.predict(f, daily_issues("2024-02-03", "2024-02-08"), f[["series", "ts", "temp_fc"]])
    assert len(out) == 2 * 6 * 24
    sr = metrics.score(out, f)
    sp = metrics.score(SeasonalNaive().predict(f, daily_issues("2024-02-03", "2024-02-08")), f)
    assert sr["mae"].iloc[0] < sp["mae"].iloc[0]
    with pytest.raises(LeakageError):
        rb.predict(f, [issue], f[["series", "ts", "temp_fc", "value"]])


def test_regression_kind_is_checked():
    f = make_series(1, 30)
    spec = SeriesSpec(known_reals=("temp_fc",), encoder_length=24, horizon=24, target_lags=(24,))
    with pytest.raises(ValueError, match="ridge' or 'gbm"):
        baselines.RegressionBaseline(spec, kind="forest").fit(f)


def test_regression_reads_nothing_at_or_after_the_issue_time():
    f = make_series(1, 40)
    spec = SeriesSpec(
        known_reals=("temp_fc",),
        observed_reals=("gen",),
        encoder_length=24,
        horizon=24,
        target_lags=(24,),
    )
    issue = pd.Timestamp("2024-02-05", tz=UTC)
    rb = baselines.RegressionBaseline(spec, kind="ridge").fit(f[f.ts < issue])
    a = rb.predict(f, [issue], f[["series", "ts", "temp_fc"]])
    g = f.copy()
    late = g.ts >= issue
    g.loc[late, "value"] *= 3  # the future target and observed covariate change...
    g.loc[late, "gen"] *= 3
    b = rb.predict(g, [issue], f[["series", "ts", "temp_fc"]])
    pd.testing.assert_frame_equal(a, b)  # ...and the forecast does not


def test_backtest_strict_equals_batched_for_persistence():
    f = make_series(2, 20, with_covariate=False)
    issues = daily_issues("2024-01-15", "2024-01-18")
    fc = SeasonalNaive(24, 24)
    a = backtest(fc, f, issues)
    b = backtest(fc, f, issues, strict=True)
    pd.testing.assert_frame_equal(a.scores, b.scores)
    assert set(a.scores["bucket"]) == {"0-24"}


# --- input checks
# ----------------------------------------------------------------------------------

SPEC = SeriesSpec(encoder_length=24, horizon=24, target_lags=(24,))


def test_gap_is_refused():
    f = frame_from(np.arange(100.0)).drop(index=50)
    with pytest.raises(ForecastInputError, match="gap"):
        check_frame(f, SPEC)


def test_nan_is_refused():
    f = frame_from(np.arange(100.0))
    f.loc[10, "value"] = np.nan
    with pytest.raises(ForecastInputError, match="NaN"):
        check_frame(f, SPEC)


def test_naive_timestamps_and_duplicates_refused():
    f = frame_from(np.arange(10.0))
    with pytest.raises(ForecastInputError, match="tz-aware"):
        check_frame(f.assign(ts=f.ts.dt.tz_localize(None)), SPEC)
    with pytest.raises(ForecastInputError, match="duplicate"):
        check_frame(pd.concat([f, f.iloc[[3]]]), SPEC)


def test_constant_series_refused():
    with pytest.raises(ForecastInputError, match="constant"):
        check_frame(frame_from(np.full(100, 5.0)), SPEC, check_constant=True)


def test_lag_shorter_than_horizon_is_leakage():
    with pytest.raises(LeakageError, match="lags"):
        SeriesSpec(horizon=48, target_lags=(24,))
