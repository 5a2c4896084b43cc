"""Decision-relevant scores (rank correlation of hours, regret of the chosen k-hour window, MAPE per
forecast day) on hand-computed cases, and marts.forecast_accuracy computing the same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting import metrics

T0 = pd.Timestamp("2024-03-01", tz="UTC")


def test_window_regret_hand_computed():
    a = np.array([5, 5, 1, 1, 5, 5, 9, 9], float)
    assert metrics.window_regret(a, a, k=2) == (0.0, 0.0)
    # the forecast thinks hours 6-7 are cleanest: actual mean there 9, best window (2-3) 1
    p = np.array([5, 5, 6, 6, 5, 5, 0, 0], float)
    reg, pct = metrics.window_regret(a, p, k=2)
    assert reg == pytest.approx(8.0) and pct == pytest.approx(800.0)
    with pytest.raises(ValueError):
        metrics.window_regret(a[:1], p[:1], k=2)


def test_spearman_is_rank_based():
    x = np.arange(24.0)
    assert metrics.spearman(x, x**3) == pytest.approx(1.0)
    assert metrics.spearman(x, -np.exp(x / 5)) == pytest.approx(-1.0)
    assert np.isnan(metrics.spearman(x, np.ones(24)))


def _frame(actual, p50, days=2, horizon=48):
    tt = T0 + pd.to_timedelta(np.arange(horizon), unit="h")
    return pd.DataFrame(
        {
            "issued_at": T0,
            "target_time": tt,
            "series": "a",
            "p50": p50[:horizon],
            "actual": actual[:horizon],
        }
    )


def test_decision_scores_and_mape_by_day():
    hours = np.arange(48)
    actual = 300 + 100 * np.sin(2 * np.pi * hours / 24)
    perfect = metrics.decision_scores(_frame(actual, actual * 1.1))  # level off, order right
    assert perfect["days"] == 1 and perfect["rank_corr"] == pytest.approx(1.0)
    assert perfect["window_regret"] == pytest.approx(0.0)
    flipped = metrics.decision_scores(_frame(actual, 600 - actual))
    assert flipped["rank_corr"] == pytest.approx(-1.0) and flipped["window_regret"] > 100
    both = metrics.decision_scores(_frame(actual, actual), day=None)
    assert both["days"] == 2
    # an incomplete day is not scored
    part = _frame(actual, actual).iloc[:30]
    assert metrics.decision_scores(part, day=1)["days"] == 0
    by_day = metrics.mape_by_day(_frame(actual, np.r_[actual[:24] * 1.1, actual[24:] * 0.8]))
    assert by_day == pytest.approx({"D1": 10.0, "D2": 20.0})


def test_forecast_accuracy_mart_has_the_same_decision_scores(tmp_path):
    """Two issues of a load forecast (the mart's load branch needs no plan): each issue's first-day
    rank correlation and 4 h window regret in marts.forecast_accuracy equal forecasting.metrics'."""
    from warehouse import Warehouse

    rng = np.random.default_rng(0)
    wh = Warehouse(tmp_path / "wh.duckdb")
    ts = pd.date_range(T0, periods=72, freq="h", tz="UTC")
    actual = 100 + 30 * np.sin(2 * np.pi * ts.hour / 24) + rng.normal(0, 5, len(ts))
    wh.replace_window(
        "staging.load",
        pd.DataFrame(
            {
                "site": "s1",
                "series": "chat",
                "ts": ts,
                "value": actual,
                "unit": "requests",
                "source": "test",
                "received_at": T0,
            }
        ),
    )
    rows = []
    for i, t in enumerate([T0, T0 + pd.Timedelta(hours=5), T0 + pd.Timedelta(hours=60)]):
        tt = pd.date_range(t, periods=24, freq="h", tz="UTC")
        p50 = 100 + 30 * np.sin(2 * np.pi * (tt.hour + 3 * i) / 24) + rng.normal(0, 5, 24)
        rows.append(
            pd.DataFrame(
                {
                    "issued_at": t,
                    "target_time": tt,
                    "series": "chat",
                    "model": "m",
                    "p10": p50 - 10,
                    "p50": p50,
                    "p90": p50 + 10,
                    "degraded": False,
                }
            )
        )
    fc = pd.concat(rows, ignore_index=True)
    wh.replace_window("forecasts.load", fc)
    mart = wh.query(
        "select * from marts.forecast_accuracy where target = 'load' "
        "order by issued_at, target_time"
    )
    late = mart[mart.issued_at == T0 + pd.Timedelta(hours=60)]
    assert len(late) == 12 and late.day_rank_corr.isna().all() and late.window_regret.isna().all()
    mart = mart[mart.issued_at < T0 + pd.Timedelta(hours=60)]
    assert len(mart) == 48 and mart.day_rank_corr.notna().all()
    act = dict(zip(ts, actual, strict=True))
    for t, g in mart.groupby("issued_at"):
        f = fc[fc.issued_at == t].assign(actual=lambda d: d.target_time.map(act))
        want = metrics.decision_scores(f)
        assert g.day_rank_corr.nunique() == 1
        assert g.day_rank_corr.iloc[0] == pytest.approx(want["rank_corr"])
        assert g.window_regret.iloc[0] == pytest.approx(want["window_regret"])
        assert g.window_regret_pct.iloc[0] == pytest.approx(want["window_regret_pct"])
    assert (mart.window_regret >= 0).all()
