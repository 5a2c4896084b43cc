"""Tiny TFT on generated data: trains, checkpoints, reloads identically, quantiles ordered, no
leakage.

One model is trained per session (module fixture) and shared by the tests; the training itself is
marked slow-free because it takes ~10-20 s with a hidden size of 4, 1 epoch and 3 batches.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting import tft
from forecasting.features import make_model_table, make_windows
from forecasting.spec import ForecastInputError, LeakageError, SeriesSpec, TrainConfig
from forecasting.synthetic import make_series

SPEC = SeriesSpec(
    known_reals=("temp_fc",),
    observed_reals=("gen",),
    encoder_length=48,
    horizon=24,
    target_lags=(24, 168),
)
ISSUE = pd.Timestamp("2024-01-20", tz="UTC")


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return make_series(2, 24, seed=1)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("tft")
    model = tft.train(data[data.ts < ISSUE], SPEC, out, TrainConfig.tiny(seed=7))
    return model, out


def known(data):
    return data[["series", "ts", "temp_fc"]]


def test_train_writes_checkpoint_params_and_metrics(trained):
    model, out = trained
    assert (out / "model.ckpt").exists()
    assert (out / "dataset_parameters.pt").exists()
    assert (out / "model.json").exists()
    for k in (
        "val_mae",
        "val_mape",
        "val_pinball",
        "val_coverage_p10_p90",
        "train_seconds",
        "epochs",
    ):
        assert k in model.metrics
    assert model.metrics["epochs"] >= 1


def test_predict_shape_and_quantile_order(trained, data):
    model, _ = trained
    fc = tft.predict(model, data, ISSUE, known(data))
    assert list(fc.columns) == [
        "issued_at",
        "target_time",
        "series",
        "p02",
        "p10",
        "p25",
        "p50",
        "p75",
        "p90",
        "p98",
    ]
    assert len(fc) == 2 * 24
    assert (fc.issued_at == ISSUE).all()
    assert fc.target_time.min() == ISSUE
    assert fc.target_time.max() == ISSUE + pd.Timedelta(hours=23)
    q = fc[["p02", "p10", "p25", "p50", "p75", "p90", "p98"]].to_numpy()
    assert np.isfinite(q).all()
    assert (np.diff(q, axis=1) >= 0).all()


def test_reload_gives_identical_predictions(trained, data):
    model, out = trained
    a = tft.predict(model, data, ISSUE, known(data))
    b = tft.predict(tft.load(out), data, ISSUE, known(data))
    c = tft.predict(tft.load(out / "model.ckpt"), data, ISSUE, known(data))
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)


def test_predict_many_matches_single_issue(trained, data):
    model, _ = trained
    issues = pd.date_range(ISSUE, periods=5, freq="7h")
    many = tft.predict_many(model, data, issues, known(data))
    assert len(many) == 5 * 2 * 24
    one = tft.predict(model, data, issues[3], known(data))
    got = many[many.issued_at == issues[3]].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, one, atol=1e-4, rtol=1e-4)


def test_future_rows_of_history_are_not_used(trained, data):
    """Changing the target after the issue time must not change the forecast."""
    model, _ = trained
    a = tft.predict(model, data, ISSUE, known(data))
    poisoned = data.copy()
    after = poisoned.ts >= ISSUE
    poisoned.loc[after, "value"] *= 10
    poisoned.loc[after, "gen"] = -1e6
    b = tft.predict(model, poisoned, ISSUE, known(data))
    pd.testing.assert_frame_equal(a, b)


def test_explain_returns_importances_and_attention(trained, data):
    model, _ = trained
    ex = tft.explain(model, data, ISSUE, known(data))
    assert set(ex) == {"static_variables", "encoder_variables", "decoder_variables", "attention"}
    assert ex["encoder_variables"].sum() == pytest.approx(1.0)
    assert "temp_fc" in ex["decoder_variables"].index
    assert len(ex["attention"]) == SPEC.encoder_length


def test_deterministic_with_seed(data, tmp_path, trained):
    model, _ = trained
    again = tft.train(data[data.ts < ISSUE], SPEC, tmp_path, TrainConfig.tiny(seed=7))
    pd.testing.assert_frame_equal(
        tft.predict(model, data, ISSUE, known(data)), tft.predict(again, data, ISSUE, known(data))
    )


# --- leakage and bad input (no training needed)
# ------------------------------------------------------


def test_builder_refuses_future_target_in_covariates(data):
    fut = data[["series", "ts", "temp_fc", "value"]]
    with pytest.raises(LeakageError, match="value"):
        make_windows(data, SPEC, ISSUE, fut)


def test_builder_refuses_covariate_available_after_issue(data):
    fut = known(data).assign(available_at=ISSUE - pd.Timedelta(hours=1))
    make_windows(data, SPEC, ISSUE, fut)  # all known an hour before: fine
    late = fut.copy()
    at5 = late.ts == ISSUE + pd.Timedelta(hours=5)
    late.loc[at5, "available_at"] = ISSUE + pd.Timedelta(hours=2)
    with pytest.raises(LeakageError, match="available"):
        make_windows(data, SPEC, ISSUE, late)


def test_builder_windows_use_only_past(data):
    w = make_windows(data, SPEC, ISSUE, known(data))
    enc = w[~w._decoder]
    dec = w[w._decoder]
    assert (enc.ts < ISSUE).all() and (dec.ts >= ISSUE).all()
    last = data[(data.ts == ISSUE - pd.Timedelta(hours=1))].set_index("series")["value"]
    for s, g in dec.groupby("series"):
        # decoder target is the last known value, not the future
        assert (g["value"] == last[s]).all()
        src = data[data.series == s].set_index("ts")["value"]
        np.testing.assert_array_equal(
            g["lag24"].to_numpy(), src.reindex(g.ts - pd.Timedelta(hours=24)).to_numpy()
        )
        assert (g.ts - pd.Timedelta(hours=24) < ISSUE).all()


def test_profile_is_the_same_hour_mean_of_days_before_the_issue(data):
    from dataclasses import replace

    spec = replace(SPEC, profile_days=3)
    assert spec.profile_lags == [24, 48, 72] and "profile" in spec.known_lag_columns
    w = make_windows(data, spec, ISSUE, known(data))
    t = make_model_table(data, spec)
    for s, g in w[w._decoder].groupby("series"):
        src = data[data.series == s].set_index("ts")["value"]
        expect = np.mean(
            [src.reindex(g.ts - pd.Timedelta(hours=24 * k)).to_numpy() for k in (1, 2, 3)], axis=0
        )
        np.testing.assert_allclose(g["profile"].to_numpy(), expect)
        # training rows carry the same definition
        tr = t[(t.series == s) & t.ts.isin(g.ts)].set_index("ts")["profile"]
        np.testing.assert_allclose(tr.reindex(g.ts).to_numpy(), expect)
    # horizon 48: the profile starts two days back so that no lead reads the issue day
    spec48 = SeriesSpec(encoder_length=24, horizon=48, target_lags=(48,), profile_days=2)
    assert spec48.profile_lags == [48, 72] and spec48.history_needed == 24 + 72
    with pytest.raises(ValueError, match="profile_days"):
        SeriesSpec(profile_days=-1)


def test_profile_model_trains_and_predicts(data, tmp_path):
    from dataclasses import replace

    spec = replace(SPEC, profile_days=2, target_transform="log1p")
    m = tft.train(data[data.ts < ISSUE], spec, tmp_path, TrainConfig.tiny(seed=3))
    out = tft.predict(m, data, ISSUE, known(data))
    assert len(out) == 2 * 24 and np.isfinite(out["p50"]).all()
    assert (np.diff(out[["p10", "p50", "p90"]].to_numpy(), axis=1) >= 0).all()


def test_missing_known_covariates_refused(data):
    with pytest.raises(ForecastInputError, match="future_covariates"):
        make_windows(data, SPEC, ISSUE, None)
    short = known(data)[known(data).ts < ISSUE + pd.Timedelta(hours=10)]
    with pytest.raises(ForecastInputError, match="no value"):
        make_windows(data, SPEC, ISSUE, short)


def test_too_little_history_refused(data):
    with pytest.raises(ForecastInputError, match="too little history"):
        make_windows(data, SPEC, data.ts.min() + pd.Timedelta(hours=100), known(data))
    with pytest.raises(ForecastInputError, match="needs at least"):
        make_model_table(data[data.ts < data.ts.min() + pd.Timedelta(days=8)], SPEC)


def test_gap_and_nan_and_constant_refused_by_train(data, tmp_path):
    gap = data.drop(index=data.index[30])
    with pytest.raises(ForecastInputError, match="gap"):
        tft.train(gap, SPEC, tmp_path, TrainConfig.tiny())
    nan = data.copy()
    nan.loc[nan.index[40], "temp_fc"] = np.nan
    with pytest.raises(ForecastInputError, match="NaN"):
        tft.train(nan, SPEC, tmp_path, TrainConfig.tiny())
    const = data.copy()
    const.loc[const.series == "s1", "value"] = 42.0
    with pytest.raises(ForecastInputError, match="constant"):
        tft.train(const, SPEC, tmp_path, TrainConfig.tiny())


def test_unknown_series_refused(trained, data):
    model, _ = trained
    other = data.assign(series=data.series.str.replace("s", "x"))
    with pytest.raises(ForecastInputError, match="not in the training data"):
        tft.predict(model, other, ISSUE, known(other))


def test_known_covariates_may_come_only_from_future_covariates(trained, data):
    model, _ = trained
    a = tft.predict(model, data, ISSUE, known(data))
    b = tft.predict(model, data.drop(columns=["temp_fc"]), ISSUE, known(data))
    pd.testing.assert_frame_equal(a, b)


def test_interval_scale_widens_to_nominal_coverage():
    y = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    p50 = np.full(10, 4.5)
    # the raw interval [3.5, 5.5] covers 2/10; widening by s covers |y - 4.5| <= s
    s = tft.interval_scale(y, p50, p50 - 1, p50 + 1)
    assert s == pytest.approx(3.5)
    assert tft.interval_scale(y, p50, p50 - 10, p50 + 10) == 1.0  # never narrows
