"""gridflex forecasting: Temporal Fusion Transformer forecasts of grid carbon intensity and
data-centre load, with baselines and an honest rolling-origin evaluation. Plain library: DataFrames
in, forecast frames and checkpoints out (no Dagster, no DuckDB).

API (importing ``forecasting`` is light; torch / pytorch-forecasting load on first train/load)
--------------------------------------------------------------------------------------------
Input frame (long): ``series`` (str), ``ts`` (tz-aware UTC hour start, one row per series-hour, no
gaps, no NaN), the target column (default ``value``) and the covariate columns named in the spec
(for past rows too: a known-future column holds, for each past hour, the value that was forecast
for it).

Roles are declared in ``SeriesSpec`` (``forecasting.spec``)::

    SeriesSpec(target="value", static_categoricals=(), known_reals=(), observed_reals=(),
               encoder_length=168, horizon=24, target_lags=(168,), calendar=True,
               target_transform=None)          # "log1p" for heavy-tailed non-negative load

``known_reals`` are known-future covariates (weather *forecasts*, day-ahead prices);
``observed_reals`` are encoder-only; ``target_lags`` become known-future ``lag<L>`` columns and
must be >= ``horizon`` (else ``LeakageError``); ``calendar`` adds UTC ``hour`` and ``weekday``
categoricals (holiday-agnostic). ``series`` is always a static categorical.

Training / inference (``forecasting.tft``, re-exported here)::

    train(frame, spec, out_dir, config=TrainConfig(), **config_overrides) -> TrainedModel
        # overrides e.g. max_epochs=..., hidden_size=..., seed=...
        # TrainConfig.fast(): ~30-60 s for a few series x a few weeks; TrainConfig.tiny(): tests
        # writes out_dir/model.ckpt, out_dir/dataset_parameters.pt, out_dir/model.json
        # TrainedModel: .net, .spec, .config, .checkpoint_path, .metrics (val_mae, val_mape,
        #   val_pinball, val_coverage_p10_p90, interval_scale, train_seconds, epochs, history)
        # interval_scale: quantiles are widened around p50 by this factor (>= 1), fitted so that
        # p10-p90 covers 80 % of the validation period; predict applies it
    load(path) -> TrainedModel                 # path = out_dir or out_dir/model.ckpt
    predict(model, history, issued_at, future_covariates=None) -> DataFrame      # ~0.1-0.3 s
    predict_many(model, history, issued_ats, future_covariates=None) -> DataFrame
        # batched: 14 days x 24 hourly issues x 3 series ~ 10 s on a busy 2-core machine
    explain(model, history, issued_at, future_covariates=None) -> dict[str, pd.Series]
        # variable importances (static / encoder / decoder) and attention over encoder hours

Forecast frames (TFT and baselines alike): ``issued_at, target_time, series, p02, p10, p25, p50,
p75, p90, p98``. ``target_time`` runs from ``issued_at`` to ``issued_at + horizon - 1 h`` (the first
hour forecast is the one starting at the issue time). Only rows of ``history`` with
``ts < issued_at`` are read. Known-future covariates of the forecast hours come from
``future_covariates`` (``series, ts, <known reals>``; optionally ``issued_at`` for vintage forecasts
and ``available_at``, which is checked against the issue time). Passing the target or an
observed-only column there raises ``LeakageError``. The same frame may serve as history and
future_covariates when its known-future columns are genuine forecasts.

Baselines (``forecasting.baselines``; use them through the adapters below)::

    SeasonalNaive(24, H)   # persistence: t-24 h, else the latest same hour before the issue
    SeasonalNaive(168, H)  # seasonal naive: t-168 h
    RegressionBaseline(spec, kind="ridge" | "gbm")  # behind RegressionForecaster
    last_known(history, issued_at, horizon)  # gap-tolerant persistence (pipeline degraded mode)

One interface (``forecasting.forecaster``): every forecaster is a ``Forecaster``::

    f.fit(history, covariates=None, *, val_hours=None) -> f
    f.predict(history, issued_ats, future_covariates=None) -> forecast frame (ordered quantiles)
    f.save(dir); load_forecaster(dir)        # dir/forecaster.json names the class
    f.history_needed; f.horizon; f.name
    TFTForecaster(spec, config, seeds=1)   RegressionForecaster(spec, "ridge" | "gbm")
    SeasonalNaive(period=24 | 168, horizon)  # persistence | seasonal naive
    ServedForecaster(members, must_include=("tft",), days=14)   # the served ensemble
        .fit(history, val_hours=..., future_covariates=...)  # chooses members + correction on
        # the validation period (forecasting.ensemble.select), conformal intervals
        # (forecasting.conformal), scores served / members / persistence there (.validation)
        .predict(...); .issues_needed(issued_ats); .recalibrated(stored_vs_actuals); .description

Ensembles (``forecasting.ensemble``), chosen on a validation period, never on the test period::

    combine({"tft": f1, "ridge": f2}, weights=None)      # mean of quantiles
    recent_error_correction(fc, actuals, days=14, strength=0.5, past=None)
    select(val_forecasts, actuals, score_from=..., must_include=("tft",)) -> Ensemble (the choice)

Metrics and evaluation (``forecasting.metrics``, ``forecasting.backtest``)::

    mae(y, yhat); mape(y, yhat)      # % over non-zero actuals
    decision_scores(fc, k=4)          # per-day Spearman rank corr, regret of the best k-h window
    mape_by_day(fc)                   # D1 (leads 0-23 h), D2, ...
    pinball(y, q_pred, q); coverage(y, lo, hi)
    score(forecasts, actuals, target="value", by=("bucket",)) -> DataFrame
        # per horizon bucket 0-24 / 24-48 / 48-72 / 72-96 h: n, mae, mape (+ median, p90, p95), #
    #   pinball, coverage_p10_p90
    backtest(forecaster, frame, issued_ats, target="value") -> BacktestResult
        # forecaster: a fitted Forecaster; .forecasts, .scores, .scores_by_series
    daily_issues(start, end, hour=0); hourly_issues(start, end)

Errors: ``ForecastInputError`` (gaps, NaN, too little history, constant series, missing
covariates) and its subclass ``LeakageError`` (a feature from at or after the issue time).

Synthetic data for tests and demos: ``forecasting.synthetic.make_series(n_series, days, seed=...)``.
Benchmarks: ``forecasting.bench`` (``gridflex bench forecast-dacf`` / ``forecast-load``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forecasting.backtest import BacktestResult, backtest, daily_issues, hourly_issues
from forecasting.baselines import RegressionBaseline
from forecasting.metrics import coverage, mae, mape, pinball, score
from forecasting.spec import (
    QUANTILES,
    ForecastInputError,
    LeakageError,
    SeriesSpec,
    TrainConfig,
)

if TYPE_CHECKING:
    from forecasting.tft import TrainedModel

_TFT = {"train", "load", "predict", "predict_many", "explain", "TrainedModel"}
_FORECASTER = (
    "Forecaster",
    "TFTForecaster",
    "RegressionForecaster",
    "SeasonalNaive",
    "ServedForecaster",
    "load_forecaster",
)


def __getattr__(name: str) -> Any:
    # forecasting.tft is itself light (heavy imports are inside its functions); lazy anyway
    if name in _TFT:
        from forecasting import tft

        return getattr(tft, name)
    if name in _FORECASTER:
        from forecasting import forecaster

        return getattr(forecaster, name)
    raise AttributeError(f"module 'forecasting' has no attribute {name!r}")


__all__ = [
    "QUANTILES",
    "SeriesSpec",
    "TrainConfig",
    "ForecastInputError",
    "LeakageError",
    "TrainedModel",
    "train",
    "load",
    "predict",
    "predict_many",
    "explain",
    "RegressionBaseline",
    "mae",
    "mape",
    "pinball",
    "coverage",
    "score",
    "backtest",
    "BacktestResult",
    "daily_issues",
    "hourly_issues",
    *_FORECASTER,
]
