"""Loaders and baselines on the real data in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting import metrics
from forecasting.backtest import daily_issues
from forecasting.bench import TRAIN_END, dacf_spec
from forecasting.datasets import load_dacf, load_helios
from forecasting.features import make_windows
from forecasting.forecaster import SeasonalNaive

pytestmark = pytest.mark.shared_data

#: e-Energy '22 Table 4/5 (published) and DATA.md (same hour yesterday) mean MAPE, %
PUBLISHED = {"CISO": 7.41, "PJM": 3.30, "ERCO": 8.05}
PERSISTENCE = {"CISO": 10.85, "PJM": 4.56, "ERCO": 14.65}


@pytest.mark.parametrize("region", ["CISO", "PJM", "ERCO"])
def test_dacf_loader_and_reference_scores(shared_data, region):
    frame, published, notes = load_dacf(shared_data / "dacf", region)
    assert len(frame) == 17_544 and len(published) == 4_416
    assert not any(c.startswith("avg_") for c in frame.columns)  # published model outputs dropped
    last_day = frame[frame.ts >= "2021-12-31 00:00+00:00"]
    assert last_day[["wx_temperature", "wx_wind_speed"]].ne(0).all().all()  # zeros repaired
    assert last_day["wx_dswrf"].gt(0).any()
    assert notes
    assert metrics.mape(published["actual"], published["published"]) == pytest.approx(
        PUBLISHED[region], abs=0.01
    )
    issues = daily_issues("2021-07-01", "2021-12-31")
    p = metrics.attach_actuals(SeasonalNaive(24, 24).predict(frame, issues), frame)
    assert len(p) == 4_416
    assert metrics.mape(p["actual"], p["p50"]) == pytest.approx(PERSISTENCE[region], abs=0.06)


def test_dacf_test_windows_read_nothing_from_the_test_day(shared_data):
    frame, _, _ = load_dacf(shared_data / "dacf", "CISO")
    spec = dacf_spec(frame)
    issue = pd.Timestamp("2021-07-01", tz="UTC")
    w = make_windows(frame, spec, issue, frame[["series", "ts", *spec.known_reals]])
    assert w.loc[~w._decoder, "ts"].max() == TRAIN_END
    # the decoder's target/observed columns are the last pre-issue values, not the day's actuals
    assert w.loc[w._decoder, "value"].nunique() == 1


def test_helios_hourly(shared_data):
    h = load_helios(shared_data / "load" / "helios-venus" / "cluster_throughput.csv")
    assert h["ts"].dt.tz is not None
    assert h["ts"].diff().dropna().eq(pd.Timedelta(hours=1)).all()
    assert h["value"].max() == pytest.approx(40_237, rel=0.01) or h["value"].max() > 40_000
    assert h["value"].min() >= 0
    assert 170 <= len(h) / 24 <= 181
