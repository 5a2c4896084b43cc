"""Point and probabilistic scores, and per-horizon-bucket scoring of forecast frames.

Light module (numpy + pandas). Conventions:

* ``mape`` is in percent and skips hours whose actual is 0 (undefined there); it raises if none is
  left. ``mape_values`` returns the per-hour absolute percentage errors (for median/p90/p95).
* ``pinball(y, q_pred, q)`` is the mean quantile loss of one quantile; ``mean_pinball`` averages it
  over the ``pXX`` columns of a forecast frame.
* ``coverage(y, lo, hi)`` is the fraction of actuals in ``[lo, hi]`` (p10-p90: nominal 0.8).
* Lead time of a row = ``target_time - issued_at`` in hours, 0 for the issue hour itself; horizon
  bucket ``"0-24"`` holds leads 0..23, ``"24-48"`` leads 24..47, and so on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.spec import SERIES

BUCKETS: tuple[tuple[int, int], ...] = ((0, 24), (24, 48), (48, 72), (72, 96), (96, 168))


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def mae(y, yhat) -> float:
    y, yhat = _arr(y), _arr(yhat)
    if y.shape != yhat.shape or y.size == 0:
        raise ValueError(f"mae: need equal non-empty shapes, got {y.shape} and {yhat.shape}")
    return float(np.mean(np.abs(y - yhat)))


def mape_values(y, yhat) -> np.ndarray:
    """Absolute percentage errors (%) of the hours with a non-zero actual."""
    y, yhat = _arr(y), _arr(yhat)
    if y.shape != yhat.shape:
        raise ValueError(f"mape: shapes differ {y.shape} vs {yhat.shape}")
    ok = y != 0
    return 100.0 * np.abs(y[ok] - yhat[ok]) / np.abs(y[ok])


def mape(y, yhat) -> float:
    v = mape_values(y, yhat)
    if v.size == 0:
        raise ValueError("mape: undefined, every actual is 0")
    return float(np.mean(v))


def pinball(y, q_pred, q: float) -> float:
    """Mean pinball (quantile) loss: max(q * (y - p), (q - 1) * (y - p))."""
    if not 0 < q < 1:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    d = _arr(y) - _arr(q_pred)
    return float(np.mean(np.maximum(q * d, (q - 1) * d)))


def coverage(y, lo, hi) -> float:
    y, lo, hi = _arr(y), _arr(lo), _arr(hi)
    if (lo > hi + 1e-9).any():
        raise ValueError("coverage: lower bound above upper bound (quantiles crossed)")
    return float(np.mean((y >= lo) & (y <= hi)))


def quantile_columns(frame: pd.DataFrame) -> dict[float, str]:
    """{0.1: "p10", ...} for the ``pXX`` columns present."""
    out = {}
    for c in frame.columns:
        if len(c) == 3 and c[0] == "p" and c[1:].isdigit():
            out[int(c[1:]) / 100] = c
    return dict(sorted(out.items()))


def mean_pinball(y, frame: pd.DataFrame) -> float:
    qs = {q: c for q, c in quantile_columns(frame).items() if 0 < q < 1}
    return float(np.mean([pinball(y, frame[c], q) for q, c in qs.items()]))


def bucket_label(lead_h) -> np.ndarray:
    lead = _arr(lead_h)
    out = np.full(lead.shape, "", dtype=object)
    for lo, hi in BUCKETS:
        out[(lead >= lo) & (lead < hi)] = f"{lo}-{hi}"
    return out


def attach_actuals(
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    target: str = "value",
) -> pd.DataFrame:
    """Join actuals (series, ts, target) onto a forecast frame by (series, target_time)."""
    a = actuals[[SERIES, "ts", target]].rename(columns={"ts": "target_time", target: "actual"})
    a = a.assign(**{SERIES: a[SERIES].astype(str)})
    f = forecasts.merge(a, on=[SERIES, "target_time"], how="left")
    return f


def score(
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame | None = None,
    *,
    target: str = "value",
    by: tuple[str, ...] = ("bucket",),
) -> pd.DataFrame:
    """Scores per horizon bucket (and optionally per series): n, MAE, MAPE, mean pinball, p10-p90
    coverage. ``forecasts`` needs ``issued_at, target_time, series, p50`` (+ quantiles); actuals are
    joined from ``actuals`` or read from an ``actual`` column. Rows without an actual are
    dropped."""
    f = forecasts if actuals is None else attach_actuals(forecasts, actuals, target)
    f = f.dropna(subset=["actual"]).copy()
    lead = (f["target_time"] - f["issued_at"]) / pd.Timedelta(hours=1)
    f["bucket"] = bucket_label(lead)
    f["all"] = "all"
    rows = []
    for keys, g in f.groupby(list(by), sort=True):
        keys = keys if isinstance(keys, tuple) else (keys,)
        r = dict(zip(by, keys, strict=True))
        r.update(score_frame(g))
        rows.append(r)
    return pd.DataFrame(rows)


def score_frame(g: pd.DataFrame) -> dict[str, float]:
    """MAE, MAPE (mean/median/p90/p95 of hourly APE), pinball, coverage of one forecast frame with
    an
    ``actual`` column."""
    ape = mape_values(g["actual"], g["p50"])
    r: dict[str, float] = {"n": int(len(g)), "mae": mae(g["actual"], g["p50"])}
    r["mape"] = float(np.mean(ape)) if ape.size else float("nan")
    r["mape_median"] = float(np.median(ape)) if ape.size else float("nan")
    r["mape_p90"] = float(np.percentile(ape, 90)) if ape.size else float("nan")
    r["mape_p95"] = float(np.percentile(ape, 95)) if ape.size else float("nan")
    qc = quantile_columns(g)
    r["pinball"] = mean_pinball(g["actual"], g) if len(qc) > 1 else float("nan")
    r["coverage_p10_p90"] = (
        coverage(g["actual"], g["p10"], g["p90"])
        if {"p10", "p90"} <= set(g.columns)
        else float("nan")
    )
    return r


# --------------------------------------------------------------------------------------------------
# decision-relevant scores: what a scheduler reads is the ranking of hours, not their level

#: hours of the window a scheduler picks in each day (``window_regret``)
WINDOW_H = 4


def _days(f: pd.DataFrame):
    """Complete forecast days of a frame with ``actual``: groups (series, issued_at, d) of the 24
    rows with leads 24 d .. 24 d + 23 (d = 0 is the issue's first day), sorted by target time."""
    lead = ((f["target_time"] - f["issued_at"]) / pd.Timedelta(hours=1)).astype(int)
    g = f.assign(_day=lead // 24).dropna(subset=["actual"]).sort_values("target_time")
    for key, d in g.groupby([SERIES, "issued_at", "_day"], sort=True):
        if len(d) == 24:
            yield key, d


def window_regret(actual, forecast, k: int = WINDOW_H) -> tuple[float, float]:
    """Regret of running a k-hour contiguous block in the window that looks cleanest on the
    forecast instead of the one that was: (mean actual of the forecast's best window - mean actual
    of the actual best window, the same as % of the latter). Both windows from one day's hours."""
    a, p = _arr(actual), _arr(forecast)
    if len(a) < k:
        raise ValueError(f"window_regret: {len(a)} hours, fewer than the window {k}")
    kern = np.ones(k) / k
    wa, wp = np.convolve(a, kern, "valid"), np.convolve(p, kern, "valid")
    best = float(wa.min())
    reg = float(wa[int(np.argmin(wp))] - best)
    return reg, (100.0 * reg / best if best else float("nan"))


def spearman(x, y) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    rx = pd.Series(_arr(x)).rank().to_numpy()
    ry = pd.Series(_arr(y)).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def decision_scores(f: pd.DataFrame, k: int = WINDOW_H, day: int | None = 0) -> dict[str, float]:
    """Mean per-day Spearman correlation of p50 vs actual hours (``rank_corr``) and the mean regret
    of choosing each day's best k-hour window on p50 (``window_regret`` in the target's unit,
    ``window_regret_pct``), over the complete forecast days (:func:`_days`) of forecast day ``day``
    (0 = D1; ``None``: all)."""
    rho, reg, pct = [], [], []
    for (_, _, d), g in _days(f):
        if day is not None and d != day:
            continue
        rho.append(spearman(g["p50"], g["actual"]))
        r, rp = window_regret(g["actual"], g["p50"], k)
        reg.append(r)
        pct.append(rp)
    if not rho:
        return {
            "days": 0,
            "rank_corr": float("nan"),
            "window_regret": float("nan"),
            "window_regret_pct": float("nan"),
            "window_h": k,
        }
    return {
        "days": len(rho),
        "rank_corr": float(np.nanmean(rho)),
        "window_regret": float(np.mean(reg)),
        "window_regret_pct": float(np.nanmean(pct)),
        "window_h": k,
    }


def mape_by_day(f: pd.DataFrame) -> dict[str, float]:
    """Mean MAPE per forecast day of the issue: ``D1`` (leads 0-23 h), ``D2`` (24-47 h), ..."""
    lead = ((f["target_time"] - f["issued_at"]) / pd.Timedelta(hours=1)).astype(int)
    g = f.dropna(subset=["actual"]).assign(_d=lead // 24)
    out = {}
    for d, x in g.groupby("_d", sort=True):
        v = mape_values(x["actual"], x["p50"])
        out[f"D{int(d) + 1}"] = float(np.mean(v)) if v.size else float("nan")
    return out
