"""Benchmarks behind ``gridflex bench forecast-dacf`` and ``gridflex bench forecast-load``. Every
forecaster is fitted and predicted through :mod:`forecasting.forecaster`, the objects the hourly
pipeline serves.

DACF protocol (carbonfirst/DACF, e-Energy '22), as implemented here:

* Train and validate on data up to 2021-06-30 23:00 UTC only (the last ``val_days`` of that are the
  validation period: TFT early stopping, the served ensemble's choice, its conformal intervals);
  nothing from the test period is seen in training or in any choice.
* One global TFT over all regions given (``series`` = region is its static categorical; one
  normaliser per region), generation shares that a region lacks are 0. Ridge and GBM are fitted per
  region. Each region's served forecaster (:class:`forecasting.forecaster.ServedForecaster`) shares
  the TFT.
* One forecast per test day D (2021-07-01 .. 2021-12-31), issued at D 00:00 UTC for ``horizon``
  hours (default 24; 96 for D1-D4), from carbon intensity and generation observed up to D-1
  23:00 UTC. D1 is the published protocol (4,416 test hours); D2-D4 are scored where actuals
  exist.
* Known-future inputs: the file's GFS weather forecast for the hours of D (the day-ahead forecast,
  known at the issue time as in the published protocol). For D2-D4 hours nothing fresher than that
  was issued by D 00:00, so their weather inputs are the GFS values of the same hour on D (weather
  persistence): no weather for hours after D is read. UTC calendar; lagged intensity >= horizon;
  same-hour profiles. The file's ``avg_*_production_forecast`` columns (the published model's own
  first-stage outputs) are not used.
* Scores on the test period: hourly MAPE (mean/median/p90/p95) of D1 for the served forecast, each
  member alone, the published forecast, persistence and seasonal naive; MAPE per forecast day
  D1-D4; p10-p90 coverage (intervals refreshed as actuals arrive, over a sliding ``val_days``
  window, as the pipeline refreshes them; and, beside it, with the validation residuals only);
  per-day Spearman rank correlation of forecast vs actual hours and the
  regret of running a ``window_h``-hour block in the forecast's cleanest window of each day instead
  of the actual cleanest (:func:`forecasting.metrics.decision_scores`). The validation scores of
  the served forecast, each member and persistence are reported beside them.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecasting import metrics
from forecasting.backtest import daily_issues
from forecasting.datasets import dacf_columns, load_dacf, load_helios
from forecasting.forecaster import (
    MANIFEST,
    RegressionForecaster,
    SeasonalNaive,
    ServedForecaster,
    TFTForecaster,
)
from forecasting.spec import SERIES, TS, SeriesSpec, TrainConfig

TRAIN_END = pd.Timestamp("2021-06-30 23:00", tz="UTC")
#: Validation = the last days of the training period (TFT early stopping, ensemble choice).
VAL_DAYS = 30
#: Days of past errors the recent-error correction averages.
CORRECTION_DAYS = 14
#: TFT inputs: days of the same-hour profile (0: none) and the target transformation.
PROFILE_DAYS = 7
TARGET_TRANSFORM: str | None = "log1p"
#: Forecast horizon of the benchmark (24: the published day-ahead protocol; 96 scores D1-D4 with
#: models trained for 96 h, whose D1 is worse: no 24 h lag) and the TFT's encoder.
HORIZON = 24
ENCODER = 168
#: TFTs trained with successive seeds and averaged into the TFT member.
TFT_SEEDS = 1
TEST_START, TEST_END = "2021-07-01", "2021-12-31"
REGIONS = ("CISO", "ERCO", "PJM")


def dacf_config(**overrides: Any) -> TrainConfig:
    """Training configuration of the global DACF TFT, sized for 2 shared CPU cores: it stops at 20
    min of wall clock at the latest (then the epochs it reaches, and so the result, depend on how
    busy the machine is; the JSON says how many)."""
    base = TrainConfig(
        max_epochs=30,
        hidden_size=24,
        attention_head_size=2,
        hidden_continuous_size=12,
        dropout=0.1,
        learning_rate=0.005,
        batch_size=128,
        limit_train_batches=100,
        limit_val_batches=1.0,
        patience=4,
        val_hours=24 * VAL_DAYS,
        max_time_s=20 * 60,
    )
    return replace(base, **overrides)


def dacf_spec(
    frame: pd.DataFrame,
    *,
    encoder_length: int = 72,
    n_shares: int = 4,
    horizon: int = 24,
    profile_days: int = PROFILE_DAYS,
    target_transform: str | None = TARGET_TRANSFORM,
) -> SeriesSpec:
    """Known: GFS weather + calendar + the intensity 24 h (if ``horizon`` <= 24) and 168 h before
    + the same-hour profile; observed: total generation and the ``n_shares`` generation shares that
    vary most in ``frame``. ``log1p`` target: the loss weighs relative errors, as MAPE does."""
    known, observed = dacf_columns(frame)
    shares = [c for c in observed if c.startswith("share_")]
    top = frame[shares].std().sort_values(ascending=False).index[:n_shares]
    observed = ("gen_total", *[c for c in shares if c in set(top)])
    return SeriesSpec(
        target="value",
        known_reals=known,
        observed_reals=observed,
        encoder_length=encoder_length,
        horizon=horizon,
        target_lags=tuple(lag for lag in (24, 168) if lag >= horizon) or (168,),
        profile_days=profile_days,
        target_transform=target_transform,
    )


def _mape_stats(actual, pred) -> dict[str, float]:
    ape = metrics.mape_values(actual, pred)
    return {
        "mean": float(np.mean(ape)),
        "median": float(np.median(ape)),
        "p90": float(np.percentile(ape, 90)),
        "p95": float(np.percentile(ape, 95)),
    }


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def add_day_on_day(
    frame: pd.DataFrame, cols: tuple[str, ...]
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Add ``<c>_dod`` = value minus the value 24 h earlier (per series) and drop each series'
    first day. For forecast columns both values are forecasts known at the issue time, so the
    change is known-future too."""
    out = frame.sort_values([SERIES, TS]).copy()
    g = out.groupby(SERIES, sort=False)
    new = []
    for c in cols:
        out[c + "_dod"] = out[c] - g[c].shift(24)
        new.append(c + "_dod")
    out = out.dropna(subset=new).reset_index(drop=True)
    return out, tuple(new)


def vintage_covariates(frame: pd.DataFrame, cols, issues, horizon: int) -> pd.DataFrame:
    """Known-future covariates as known at each issue time (daily issues at 00:00): for target hour
    t + L, the value at t + L for L < 24 (the day-ahead forecast of day D, issued before D) and at
    t + (L mod 24) beyond (the same hour of D: nothing fresher was issued by t). Keyed (series,
    issued_at, ts)."""
    cols = list(cols)
    f = frame[[SERIES, TS, *cols]].set_index([SERIES, TS]).sort_index()
    lead = np.arange(horizon)
    src_off = pd.to_timedelta(lead % 24, unit="h")
    out = []
    for s in frame[SERIES].unique():
        fs = f.loc[s]
        for t in pd.DatetimeIndex(issues):
            vals = fs.reindex(t + src_off)
            out.append(
                pd.DataFrame(
                    {
                        SERIES: s,
                        "issued_at": t,
                        TS: t + pd.to_timedelta(lead, unit="h"),
                        **{c: vals[c].to_numpy() for c in cols},
                    }
                )
            )
    return pd.concat(out, ignore_index=True).dropna()


def load_regions(data_dir, regions) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The regions' :func:`load_dacf` frames stacked (shares a region lacks = 0) and their
    published test-period forecasts."""
    frames, published = [], {}
    for r in regions:
        f, pub, notes = load_dacf(data_dir, r)
        for n in notes:
            _log(f"[{r}] note: {n}")
        frames.append(f)
        published[r] = pub
    frame = pd.concat(frames, ignore_index=True)
    shares = [c for c in frame.columns if c.startswith("share_")]
    frame[shares] = frame[shares].fillna(0.0)
    return frame, published


def run_dacf(
    data_dir: str | Path,
    regions: str | list[str] | tuple[str, ...] = REGIONS,
    *,
    config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    val_days: int = VAL_DAYS,
    correction_days: int = CORRECTION_DAYS,
    profile_days: int = PROFILE_DAYS,
    target_transform: str | None = TARGET_TRANSFORM,
    horizon: int = HORIZON,
    encoder_length: int = ENCODER,
    reuse: bool = False,
    tft_seeds: int = TFT_SEEDS,
    window_h: int = metrics.WINDOW_H,
) -> list[dict[str, Any]]:
    """Train one global TFT on the regions' training period, a served forecaster per region, then
    forecast each test day; one result dict per region (see the module docstring). ``out_dir``:
    ``<out>/tft`` (the TFT) and ``<out>/<region>`` (each served forecaster, with a manifest).
    ``reuse``: load the TFT an earlier run left in ``<out>/tft`` (same inputs) instead of training
    it again; train_seconds and epochs are then that run's."""
    regions = [regions] if isinstance(regions, str) else list(regions)
    frame, published = load_regions(data_dir, regions)
    train0 = frame[frame[TS] <= TRAIN_END]
    spec = dacf_spec(
        train0,
        encoder_length=encoder_length,
        horizon=horizon,
        profile_days=profile_days,
        target_transform=target_transform,
    )
    frame, dod = add_day_on_day(frame, spec.known_reals)
    train_frame = frame[frame[TS] <= TRAIN_END]
    tft_spec = replace(spec, known_reals=(*spec.known_reals, *dod))
    reg_spec = replace(spec, encoder_length=72, target_transform=None)
    val_hours = 24 * val_days
    cfg = replace(config or dacf_config(), progress_bar=progress, val_hours=val_hours)
    root = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="gridflex-dacf-"))
    back = pd.Timedelta(days=correction_days)
    test_issues = daily_issues(TEST_START, TEST_END, hour=0)
    all_issues = daily_issues(
        pd.Timestamp(TRAIN_END.normalize()) - pd.Timedelta(days=val_days) - 2 * back, TEST_END
    )
    known = vintage_covariates(frame, tft_spec.known_reals, all_issues, horizon)

    tft_dir = root / "tft"
    if reuse and (tft_dir / MANIFEST).exists():
        tftf = TFTForecaster.load(tft_dir)
        if tftf.spec != tft_spec:
            raise ValueError(
                f"{tft_dir}: the saved TFT was trained with other inputs "
                f"({tftf.spec}); train afresh without --reuse"
            )
        _log(f"reusing the TFT in {tft_dir} (trained by an earlier run)")
    else:
        _log(
            f"training one global TFT on {', '.join(regions)} ({len(train_frame)} h up to "
            f"{TRAIN_END}, horizon {horizon} h, encoder {encoder_length} h) -> {tft_dir}"
        )
        tftf = TFTForecaster(tft_spec, cfg, seeds=tft_seeds, workdir=tft_dir / "_train")
        tftf.fit(train_frame, val_hours=val_hours)
        tftf.save(tft_dir)
    tm = tftf.metrics
    _log(f"TFT trained in {tm['train_seconds']:.0f} s, epochs {tm['epochs']}")

    results = []
    for r in regions:
        t0 = time.perf_counter()
        fr = frame[frame[SERIES] == r].reset_index(drop=True)
        tr = fr[fr[TS] <= TRAIN_END]
        kn = known[known[SERIES] == r]
        members = {
            "tft": tftf,
            "ridge": RegressionForecaster(reg_spec, "ridge", issue_hours=(0,)),
            "gbm": RegressionForecaster(reg_spec, "gbm", issue_hours=(0,)),
        }
        served = ServedForecaster(
            members,
            must_include=("tft",),
            days=correction_days,
            val_issue_hours=(0,),
            fallback_to_persistence=True,  # as the pipeline serves it
        )
        served.fit(tr, val_hours=val_hours, future_covariates=kn, fitted=("tft",))
        served.save(root / r)
        _log(f"[{r}] served: {served.description} (chosen on {val_days} validation days)")
        # intervals refreshed as actuals arrive (sliding 30 days, as the pipeline does from its
        # stored forecasts); the static ones (validation residuals only) are scored beside them
        static = served.predict(fr, test_issues, kn)
        test = {"served": served.predict_recalibrating(fr, test_issues, kn, keep_days=val_days)}
        assert np.allclose(test["served"]["p50"], static["p50"])
        for n, m in served.fitted_members.items():
            test[n] = m.predict(fr, test_issues, kn)
        test["persistence"] = SeasonalNaive(24, horizon).predict(fr, test_issues)
        test["seasonal_naive"] = SeasonalNaive(168, horizon).predict(fr, test_issues)
        res = _score_region(r, test, fr, published[r], window_h)
        st = metrics.attach_actuals(static, fr)
        d1 = st[(st["target_time"] - st["issued_at"]) < pd.Timedelta(hours=24)]
        res["coverage_p10_p90_static"] = metrics.coverage(d1["actual"], d1["p10"], d1["p90"])
        res.update(
            {
                "served": served.description,
                "ensemble": {
                    "weights": served.weights,
                    "strength": served.strength,
                    "days": served.days,
                },
                "validation": served.validation,
                "train_seconds": tm["train_seconds"],
                "epochs": tm["epochs"][0] if len(tm["epochs"]) == 1 else tm["epochs"],
                "tft_seeds": len(tftf.models),
                "tft_regions": regions,
                "tft_val_mape": tm["val_mape"][0] if len(tm["val_mape"]) == 1 else tm["val_mape"],
                "region_seconds": round(time.perf_counter() - t0, 1),
                "horizon_h": horizon,
                "tft_inputs": {
                    "encoder_length": encoder_length,
                    "profile_days": profile_days,
                    "target_transform": target_transform,
                    "hidden_size": cfg.hidden_size,
                    "learning_rate": cfg.learning_rate,
                },
                "forecaster_dir": str(root / r),
                "issue": f"00:00 UTC of each test day, data up to 23:00 of the day before, "
                f"{horizon} h ahead; D1 = the published protocol",
            }
        )
        results.append(res)
    return results


def _score_region(region, test: dict[str, pd.DataFrame], frame, published, window_h) -> dict:
    pub = published.set_index(TS)
    res: dict[str, Any] = {"region": region}
    d1 = {}
    for n, f in test.items():
        f = metrics.attach_actuals(f, frame)
        test[n] = f
        lead = (f["target_time"] - f["issued_at"]) / pd.Timedelta(hours=1)
        d1[n] = f[lead < 24]
    served_d1 = d1["served"].set_index("target_time")
    assert served_d1.index.equals(pub.index), "test hours differ from the published file's"
    pub_fc = pd.DataFrame(
        {
            "issued_at": pub.index.floor("D"),
            "target_time": pub.index,
            SERIES: region,
            "p50": pub["published"].to_numpy(),
            "actual": pub["actual"].to_numpy(),
        }
    )
    for n, f in {**d1, "published": pub_fc}.items():
        prefix = "" if n == "served" else f"{n}_"
        st = _mape_stats(f["actual"], f["p50"])
        for k in ("mean", "median", "p90", "p95"):
            res[f"{prefix}mape_{k}"] = st[k]
    res["coverage_p10_p90"] = metrics.coverage(
        d1["served"]["actual"], d1["served"]["p10"], d1["served"]["p90"]
    )
    res["coverage_p10_p90_all_leads"] = metrics.coverage(
        *(test["served"].dropna(subset=["actual"])[c] for c in ("actual", "p10", "p90"))
    )
    for n in test:
        if n != "served":
            res[f"{n}_coverage_p10_p90"] = metrics.coverage(
                d1[n]["actual"], d1[n]["p10"], d1[n]["p90"]
            )
    res["pinball"] = metrics.mean_pinball(d1["served"]["actual"], d1["served"])
    res["mape_by_day"] = {n: metrics.mape_by_day(f) for n, f in test.items()}
    res["decision"] = {
        n: metrics.decision_scores(f, window_h) for n, f in {**test, "published": pub_fc}.items()
    }
    return res


# --------------------------------------------------------------------------------------------------
# Load (Helios GPU demand)

LOAD_TEST_DAYS = 56


def load_config(**overrides: Any) -> TrainConfig:
    base = TrainConfig(
        max_epochs=30,
        hidden_size=16,
        attention_head_size=2,
        hidden_continuous_size=8,
        dropout=0.2,
        learning_rate=0.005,
        batch_size=64,
        limit_train_batches=50,
        patience=5,
        val_hours=24 * 14,
        max_time_s=15 * 60,
    )
    return replace(base, **overrides)


def load_spec() -> SeriesSpec:
    return SeriesSpec(
        target="value",
        encoder_length=168,
        horizon=24,
        target_lags=(24, 168),
        target_transform="log1p",
    )


def run_load(
    path: str | Path,
    *,
    config: TrainConfig | None = None,
    test_days: int = LOAD_TEST_DAYS,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Helios GPU demand: train on all but the last ``test_days`` days, then forecast each test day
    (issued 00:00 UTC, 24 h ahead, from data before it); TFT vs persistence, seasonal naive and the
    ridge, all through :mod:`forecasting.forecaster`."""
    frame = load_helios(path)
    spec = load_spec()
    cfg = replace(config or load_config(), progress_bar=progress)
    last_day = frame[TS].max().normalize()
    test_start = last_day - pd.Timedelta(days=test_days - 1)
    train_frame = frame[frame[TS] < test_start]
    issues = daily_issues(test_start, last_day, hour=0)
    issues = issues[issues + pd.Timedelta(hours=spec.horizon - 1) <= frame[TS].max()]
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="gridflex-load-"))
    _log(f"[load] training TFT on {len(train_frame)} h before {test_start} -> {out}")
    forecasters = {
        "tft": TFTForecaster(spec, cfg, workdir=out / "_train"),
        "persistence": SeasonalNaive(24, spec.horizon),
        "seasonal_naive": SeasonalNaive(168, spec.horizon),
        "ridge": RegressionForecaster(spec, "ridge", issue_hours=(0,)),
    }
    res: dict[str, Any] = {
        "series": "helios-venus",
        "test_start": str(test_start),
        "test_days": len(issues),
    }
    fcs = {}
    for name, f in forecasters.items():
        f.fit(train_frame, val_hours=cfg.val_hours)
        f.save(out / name)
        fcs[name] = metrics.attach_actuals(f.predict(frame, issues), frame)
        s = metrics.score_frame(fcs[name])
        res[f"{name}_mae"] = s["mae"]
        res[f"{name}_mape"] = s["mape"]
        res[f"{name}_mape_median"] = s["mape_median"]
        res[f"{name}_coverage_p10_p90"] = s["coverage_p10_p90"]
        res[f"{name}_pinball"] = s["pinball"]
        res[f"{name}_rank_corr"] = metrics.decision_scores(fcs[name])["rank_corr"]
    best = min(res["persistence_mae"], res["seasonal_naive_mae"])
    res["mae_reduction_vs_best_naive"] = 1 - res["tft_mae"] / best
    res["mape_defined_hours"] = int((fcs["tft"]["actual"] != 0).sum())
    tm = forecasters["tft"].metrics
    res["train_seconds"] = tm["train_seconds"]
    res["epochs"] = tm["epochs"][0]
    res["checkpoint"] = str(out / "tft")
    return res
