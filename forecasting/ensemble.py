"""Combine forecasters and correct a forecast by its own recent errors; both chosen on validation.

Why: on the DACF grids a single model trained on 18 months drifts during the next six (California
added solar and batteries through 2021, so a model fitted on 2020 over-forecasts the midday hours
by 5-10 %). Two standard remedies, neither of which fits anything on the test period:

* :func:`combine`: the weighted mean of several forecasters' quantiles (quantile averaging). The
  TFT, the ridge and the gradient-boosted baselines make different errors; their mean is better
  than each (the forecast-combination result of the M-competitions).
* :func:`recent_error_correction`: scale each forecast by ``exp(strength * mean log error)`` of the
  same forecaster at the same hour of day over the last ``days`` days *observed before the issue
  time* (additive errors for a target that can be 0). It is a fixed function of past forecasts and
  past actuals, like a lagged target; ``strength`` = 0 switches it off.

:func:`select` picks the members' weights (equal weights over a candidate subset) and the strength
on a validation period; :class:`forecasting.forecaster.ServedForecaster` serves the choice. Light
module (numpy, pandas).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from forecasting.features import ISSUED_AT, TARGET_TIME, hour_index
from forecasting.metrics import attach_actuals, mape_values
from forecasting.spec import SERIES, ForecastInputError

KEYS = [ISSUED_AT, TARGET_TIME, SERIES]


def _qcols(frame: pd.DataFrame) -> list[str]:
    return sorted(
        (c for c in frame.columns if c.startswith("p") and c[1:].isdigit()),
        key=lambda c: int(c[1:]),
    )


def combine(
    forecasts: Mapping[str, pd.DataFrame], weights: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Weighted mean of the quantile columns of forecast frames with the same keys
    (``issued_at, target_time, series``) and the same quantile columns. ``weights`` default to
    equal; they are normalised to sum to 1. A key missing from one member is an error (a silent
    mean over fewer members would change the forecast's character from one hour to the next)."""
    names = [n for n in forecasts if weights is None or weights.get(n, 0) > 0]
    if not names:
        raise ForecastInputError("combine: no forecasts with a positive weight")
    w = np.array([1.0 if weights is None else float(weights[n]) for n in names])
    w = w / w.sum()
    first = forecasts[names[0]]
    cols = _qcols(first)
    base = first[KEYS].sort_values(KEYS).reset_index(drop=True)
    acc = np.zeros((len(base), len(cols)))
    for n, wi in zip(names, w, strict=True):
        f = forecasts[n]
        if _qcols(f) != cols:
            raise ForecastInputError(f"combine: {n!r} has quantiles {_qcols(f)}, expected {cols}")
        f = f.sort_values(KEYS).reset_index(drop=True)
        if len(f) != len(base) or not f[KEYS].equals(base):
            raise ForecastInputError(
                f"combine: {n!r} does not cover the same (issued_at, target_time, series) rows as "
                f"{names[0]!r} ({len(f)} vs {len(base)} rows)"
            )
        acc += wi * f[cols].to_numpy(float)
    out = base.copy()
    out[cols] = np.sort(acc, axis=1)
    return out


def recent_error_correction(
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    *,
    days: int = 14,
    strength: float = 0.5,
    target: str = "value",
    multiplicative: bool | None = None,
    past: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Correct every row by the forecaster's mean error at the same hour of day over the ``days``
    most recent days whose actuals are known before the row's issue time.

    ``past``: earlier forecasts of the same forecaster (e.g. as stored by the pipeline) whose errors
    count too; only ``forecasts`` rows are returned.

    ``forecasts`` must include the forecaster's earlier issues (at least ``days`` days before the
    first issue to be corrected; rows without enough earlier errors — fewer than half of ``days`` —
    are left as they are). ``actuals``: long ``series, ts, <target>``; only actuals with
    ``ts < issued_at`` are used for a row. Where a target hour was forecast by several issues, its
    error is the mean over them. ``multiplicative`` (default: target and p50 all > 0) corrects by
    ``exp(strength * mean(log actual - log p50))``, else adds ``strength * mean(actual - p50)``.
    """
    if strength == 0:
        return forecasts.copy()
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    f = attach_actuals(forecasts, actuals, target)
    pool = (
        f
        if past is None
        else pd.concat(
            [attach_actuals(past[KEYS + ["p50"]], actuals, target), f[KEYS + ["p50", "actual"]]],
            ignore_index=True,
        )
    )
    cols = _qcols(forecasts)
    if multiplicative is None:
        a = pool["actual"].dropna()
        multiplicative = bool((a > 0).all() and (pool["p50"] > 0).all())
    with np.errstate(divide="ignore", invalid="ignore"):
        if multiplicative:
            err = np.log(pool["actual"]) - np.log(pool["p50"])
        else:
            err = pool["actual"] - pool["p50"]
    pool = pool.assign(_err=err, _t=hour_index(pool[TARGET_TIME]))
    f = f.assign(_t=hour_index(f[TARGET_TIME]), _i=hour_index(f[ISSUED_AT]))
    errors = {str(k): v for k, v in pool.groupby(SERIES, sort=False)}
    out = forecasts.copy()
    adj = np.zeros(len(f))
    for name, g in f.groupby(SERIES, sort=False):
        pe = errors.get(str(name))
        if pe is None:
            continue
        e = pe.dropna(subset=["_err"]).groupby("_t")["_err"].mean()
        e = e[np.isfinite(e)]
        if e.empty:
            continue
        t0 = int(e.index.min())
        grid = np.full(int(e.index.max()) - t0 + 1, np.nan)
        grid[e.index.to_numpy() - t0] = e.to_numpy()
        t = g["_t"].to_numpy()
        k0 = (t - g["_i"].to_numpy()) // 24 + 1  # first day back that is before the issue time
        src = t[:, None] - (k0[:, None] + np.arange(days)[None, :]) * 24 - t0
        ok = (src >= 0) & (src < len(grid))
        vals = np.where(ok, grid[np.clip(src, 0, len(grid) - 1)], np.nan)
        n = np.sum(~np.isnan(vals), axis=1)
        mean = np.where(n >= max(1, days // 2), np.nansum(vals, axis=1) / np.maximum(n, 1), 0.0)
        adj[g.index.to_numpy()] = strength * mean
    q = out[cols].to_numpy(float)
    out[cols] = q * np.exp(adj)[:, None] if multiplicative else q + adj[:, None]
    return out


@dataclass
class Ensemble:
    """A choice made by :func:`select`: members and weights, correction window and strength, and the
    validation MAPE of every candidate. :class:`forecasting.forecaster.ServedForecaster` serves it
    (and calibrates its intervals)."""

    weights: dict[str, float]
    days: int = 14
    strength: float = 0.0
    validation: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def select(
    forecasts: Mapping[str, pd.DataFrame],
    actuals: pd.DataFrame,
    *,
    score_from,
    must_include: Sequence[str] = (),
    days: int = 14,
    strengths: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    target: str = "value",
) -> Ensemble:
    """Pick the subset of members (equal weights; every subset containing ``must_include``) and the
    correction strength with the lowest mean MAPE on issues from ``score_from`` on (earlier issues
    in ``forecasts`` only feed the correction). Nothing outside the validation forecasts and their
    actuals is read."""
    names = list(forecasts)
    start = pd.Timestamp(score_from)
    subsets = [
        s
        for r in range(1, len(names) + 1)
        for s in combinations(names, r)
        if set(must_include) <= set(s)
    ]
    if not subsets:
        raise ForecastInputError(f"select: no subset of {names} contains {list(must_include)}")
    scores: dict[str, float] = {}
    best: tuple[float, tuple[str, ...], float, pd.DataFrame] | None = None
    for s in subsets:
        comb = combine({n: forecasts[n] for n in s})
        for st in strengths:
            c = recent_error_correction(comb, actuals, days=days, strength=st, target=target)
            c = attach_actuals(c[c[ISSUED_AT] >= start], actuals, target).dropna(subset=["actual"])
            if c.empty:
                raise ForecastInputError(f"select: no validation rows with actuals from {start}")
            m = float(np.mean(mape_values(c["actual"], c["p50"])))
            scores[f"{'+'.join(s)}@{st:g}"] = m
            if best is None or m < best[0] - 1e-12:
                best = (m, s, st, c)
    assert best is not None
    _, s, st, c = best
    ens = Ensemble(weights={n: 1.0 / len(s) for n in s}, days=days, strength=st, validation=scores)
    ens.validation["chosen_mape"] = best[0]
    return ens


__all__ = ["combine", "recent_error_correction", "select", "Ensemble"]
