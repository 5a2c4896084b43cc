"""The one Forecaster interface: every adapter round-trips save/load with identical predictions,
reads nothing from at or after the issue time, returns ordered quantiles, and says how much history
it needs; the served ensemble reloads from its manifest. Tiny TFT (TrainConfig.tiny)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecasting.forecaster import (
    MANIFEST,
    QCOLS,
    Forecaster,
    RegressionForecaster,
    SeasonalNaive,
    ServedForecaster,
    TFTForecaster,
    load_forecaster,
)
from forecasting.spec import ForecastInputError, SeriesSpec, TrainConfig
from forecasting.synthetic import make_series

VAL_H = 48
SPEC = SeriesSpec(
    known_reals=("temp_fc",),
    observed_reals=("gen",),
    encoder_length=48,
    horizon=24,
    target_lags=(168,),
)
NAMES = ["persistence", "seasonal_naive", "ridge", "gbm", "tft", "served"]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return make_series(2, 28, seed=3)


@pytest.fixture(scope="module")
def known(data) -> pd.DataFrame:
    # temp_fc plays a weather *forecast*: its value for an hour is known before the hour
    return data[["series", "ts", "temp_fc"]]


@pytest.fixture(scope="module")
def fitted(data, known, tmp_path_factory) -> dict[str, Forecaster]:
    root = tmp_path_factory.mktemp("fc")
    tft = TFTForecaster(SPEC, TrainConfig.tiny(), workdir=root / "tft").fit(data, val_hours=VAL_H)
    out: dict[str, Forecaster] = {
        "persistence": SeasonalNaive(24, 24),
        "seasonal_naive": SeasonalNaive(168, 24),
        "ridge": RegressionForecaster(SPEC, "ridge").fit(data),
        "gbm": RegressionForecaster(SPEC, "gbm").fit(data),
        "tft": tft,
    }
    served = ServedForecaster(
        {"tft": tft, "ridge": RegressionForecaster(SPEC, "ridge")},
        must_include=("tft",),
        days=3,
        strengths=(0.5,),  # force a correction, so predict recomputes earlier issues
    )
    out["served"] = served.fit(data, val_hours=VAL_H, future_covariates=known, fitted=("tft",))
    return out


ISSUES = pd.DatetimeIndex(["2024-01-26 00:00", "2024-01-26 13:00", "2024-01-27 00:00"], tz="UTC")


@pytest.mark.parametrize("name", NAMES)
def test_is_a_forecaster_and_round_trips_save_load(fitted, data, known, name, tmp_path):
    f = fitted[name]
    assert isinstance(f, Forecaster)
    before = f.predict(data, ISSUES, known)
    f.save(tmp_path / name)
    assert json.loads((tmp_path / name / MANIFEST).read_text())["kind"] == f.kind
    g = load_forecaster(tmp_path / name)
    assert type(g) is type(f) and g.history_needed == f.history_needed
    pd.testing.assert_frame_equal(g.predict(data, ISSUES, known), before)


@pytest.mark.parametrize("name", NAMES)
def test_quantiles_ordered_and_keys(fitted, data, known, name):
    fc = fitted[name].predict(data, ISSUES, known)
    assert list(fc.columns) == ["issued_at", "target_time", "series", *QCOLS]
    assert len(fc) == len(ISSUES) * 2 * 24
    assert fc.groupby(["issued_at", "series"]).size().eq(24).all()
    assert (fc["target_time"] >= fc["issued_at"]).all()
    q = fc[QCOLS].to_numpy()
    assert np.isfinite(q).all() and (np.diff(q, axis=1) >= 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_nothing_after_the_issue_time_is_read(fitted, data, known, name):
    """Poison every value at or after the issue time (target, observed and the history's copy of
    the known covariate): the forecast must not move. The forecast hours' known covariates come
    from ``known`` (forecasts of them exist at the issue time)."""
    f = fitted[name]
    t = pd.Timestamp("2024-01-26 13:00", tz="UTC")
    clean = f.predict(data, [t], known)
    poisoned = data.copy()
    late = poisoned["ts"] >= t
    poisoned.loc[late, "value"] = poisoned.loc[late, "value"] * 50 + 1e4
    poisoned.loc[late, "gen"] = -1e5
    poisoned.loc[late, "temp_fc"] = 1e3
    pd.testing.assert_frame_equal(f.predict(poisoned, [t], known), clean)
    # and with the history cut at the issue time
    pd.testing.assert_frame_equal(f.predict(data[data["ts"] < t], [t], known), clean)


@pytest.mark.parametrize("name", NAMES)
def test_history_needed_is_what_it_needs(fitted, data, known, name):
    f = fitted[name]
    t = pd.Timestamp("2024-01-27 00:00", tz="UTC")
    need = pd.Timedelta(hours=f.history_needed)
    enough = data[(data["ts"] >= t - need) & (data["ts"] < t)]
    assert len(f.predict(enough, [t], known)) == 48
    with pytest.raises(ForecastInputError):
        f.predict(enough[enough["ts"] > enough["ts"].min()], [t], known)


def test_served_manifest_names_members_choice_and_validation(fitted, tmp_path):
    s = fitted["served"]
    s.save(tmp_path / "s")
    m = json.loads((tmp_path / "s" / MANIFEST).read_text())
    assert m["kind"] == "served" and m["weights"] == s.weights and m["strength"] == 0.5
    assert set(m["members"]) == set(s.weights) and "tft" in s.weights
    for name, v in m["members"].items():
        assert (tmp_path / "s" / v["dir"] / MANIFEST).exists(), name
    assert m["served"] == s.description and s.description.startswith("tft")
    scores = m["validation"]["scores"]
    assert {"served", "persistence", "tft", "ridge"} <= set(scores)
    assert scores["served"]["n"] == scores["persistence"]["n"] == scores["tft"]["n"] > 0
    back = ServedForecaster.load(tmp_path / "s")
    assert back.weights == s.weights and back.validation == s.validation
    assert back.calibrator.offsets == s.calibrator.offsets


def test_served_batch_equals_single_issue_calls(fitted, data, known):
    """The backtest predicts many issues at once, the pipeline one at a time: the same numbers."""
    s = fitted["served"]
    batch = s.predict(data, ISSUES, known)
    one = pd.concat([s.predict(data, [t], known) for t in ISSUES], ignore_index=True)
    pd.testing.assert_frame_equal(batch, one)


def test_served_is_the_chosen_members_corrected_and_calibrated(fitted, data, known):
    from forecasting.ensemble import combine, recent_error_correction

    s = fitted["served"]
    t = ISSUES[-1]
    need = s.issues_needed([t], data["ts"].min())
    assert len(need) == s.days + 1 and need[-1] == t and need[0] == t - pd.Timedelta(days=s.days)
    comb = combine({n: s.members[n].predict(data, need, known) for n in s.weights}, s.weights)
    corr = recent_error_correction(
        comb, data[data.ts < t][["series", "ts", "value"]], days=s.days, strength=s.strength
    )
    expect = s.calibrator.apply(corr[corr.issued_at == t])
    got = s.predict(data, [t], known)
    np.testing.assert_allclose(got["p50"], expect.sort_values(["series", "target_time"])["p50"])
    # conformal p10/p90 around that p50, not the members' own quantiles
    assert not np.allclose(got["p90"], corr[corr.issued_at == t]["p90"])


def test_served_drops_a_member_without_enough_history(data, known):
    short = data[data.ts >= data.ts.max() - pd.Timedelta(hours=300)]
    s = ServedForecaster(
        {"naive": SeasonalNaive(24, 24), "ridge": RegressionForecaster(SPEC)}, days=1
    )
    s.fit(short, val_hours=VAL_H, future_covariates=known)
    assert set(s.weights) == {"naive"} and "ridge" not in s.validation["scores"]


def test_too_little_history_for_the_tft_says_what_the_tft_needs(data, known, tmp_path):
    # SPEC: 48 h encoder + 168 h lag = 216 h; the TFT also needs 2 x 24 h of training windows
    # before its 48 h validation: 312 h. The message used to say 264 (the TFT's windows left out),
    # so a user who gave it 264 h failed again, in the TFT's own check.
    short = data[data.ts >= data.ts.max() - pd.Timedelta(hours=249)]  # 250 h a series
    s = ServedForecaster(
        {"tft": TFTForecaster(SPEC, TrainConfig.tiny(), workdir=tmp_path)}, must_include=("tft",)
    )
    with pytest.raises(ForecastInputError, match="has 250 hours, needs at least 312"):
        s.fit(short, val_hours=VAL_H, future_covariates=known)


def test_a_combination_that_loses_to_persistence_on_validation_is_not_served(tmp_path):
    # a random-walk level: the same hour a week ago (the only member) is far worse than yesterday's
    rng = np.random.default_rng(0)
    ts = pd.date_range("2024-01-01", periods=24 * 30, freq="h", tz="UTC")
    v = 400 + rng.normal(0, 5, len(ts)).cumsum() + 50 * np.sin(2 * np.pi * ts.hour / 24)
    h = pd.DataFrame({"series": "a", "ts": ts, "value": np.maximum(v, 50.0)})

    def served(**kw):
        return ServedForecaster(
            {"weekly": SeasonalNaive(168, 24)}, must_include=("weekly",), days=1, **kw
        ).fit(h, val_hours=240)

    kept = served()  # the default: the combination is served whatever it scores
    assert kept.chosen == ["weekly"] and not kept.validation["fallback"]
    s = served(fallback_to_persistence=True)
    sc = s.validation["scores"]
    assert sc["weekly"]["mape"] > sc["persistence"]["mape"]
    assert s.chosen == ["persistence"]
    assert "weekly lost to persistence on validation, MAPE" in s.description
    assert sc["served"]["mape"] == pytest.approx(sc["persistence"]["mape"])
    t = ts[-1] + pd.Timedelta(hours=1)
    got = s.predict(h, [t])
    np.testing.assert_allclose(got["p50"], SeasonalNaive(24, 24).predict(h, [t])["p50"])
    assert (got["p10"] < got["p50"]).all() and (got["p90"] > got["p50"]).all()  # its own intervals
    back = load_forecaster(s.save(tmp_path / "served"))
    assert back.description == s.description and back.fallback_to_persistence
    np.testing.assert_allclose(back.predict(h, [t])[QCOLS], got[QCOLS])


def test_regression_kind_is_checked():
    with pytest.raises(ValueError, match="ridge"):
        RegressionForecaster(SPEC, "forest")


def test_recalibrating_replay_reads_only_actuals_before_each_issue(fitted, data, known):
    """The benchmark's replay of the pipeline's interval refresh: p50 as predict's, intervals from
    residuals whose actuals precede each issue (poisoning later actuals changes nothing)."""
    s = fitted["served"]
    issues = pd.date_range("2024-01-25 00:00", "2024-01-27 00:00", freq="6h", tz="UTC")
    a = s.predict_recalibrating(data, issues, known, keep_days=2)
    plain = s.predict(data, issues, known)
    np.testing.assert_allclose(a["p50"], plain["p50"])
    assert not np.allclose(a["p90"], plain["p90"])  # refreshed from the earlier issues' errors
    t = issues[4]
    poisoned = data.assign(value=np.where(data.ts >= t, data.value * 9 + 50, data.value))
    b = s.predict_recalibrating(poisoned, issues[:5], known, keep_days=2)
    pd.testing.assert_frame_equal(b, a[a.issued_at <= t].reset_index(drop=True))


def test_a_bare_tft_checkpoint_loads_as_a_tft_forecaster(fitted, data, known):
    """Model directories written before the manifest (tft.train's checkpoint alone) still load."""
    tft = fitted["tft"]
    bare = tft.models[0].checkpoint_path.parent
    assert not (bare / MANIFEST).exists()
    g = load_forecaster(bare)
    assert isinstance(g, TFTForecaster)
    pd.testing.assert_frame_equal(g.predict(data, ISSUES, known), tft.predict(data, ISSUES, known))
