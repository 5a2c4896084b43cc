"""Baselines with the TFT's output shape: ``issued_at, target_time, series, p02 .. p98``.

* :func:`_seasonal` (served as :class:`forecasting.forecaster.SeasonalNaive`): the value at
  ``target_time - period`` if that is before the issue time, else the latest value at the same
  phase before it (``target_time - k period``, smallest such k); ``period`` 24 h is persistence,
  168 h the seasonal naive forecast.
* :func:`last_known`: persistence that tolerates gaps and lagging data (the pipeline's degraded mode).
* :class:`RegressionBaseline`: direct regression on the same inputs as the TFT (calendar, lagged
  targets and 7-day same-hour profiles, observed-only covariates, known-future covariates and their
  day-on-day changes): one ridge per lead hour, or one gradient-boosted tree model (``kind="gbm"``).

Point baselines get quantiles from their own recent errors: p_q = point + (q-quantile - median) of
the errors the same rule made over the ``resid_days`` days before the issue time (only data before
the issue time), so p50 is exactly the rule's value.
Light module (numpy, pandas; scikit-learn imported inside the regression).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.features import ISSUED_AT, TARGET_TIME, _future_lookup, hour_index
from forecasting.spec import (
    QUANTILES,
    SERIES,
    TS,
    ForecastInputError,
    SeriesSpec,
    as_utc,
    check_frame,
    qcol,
)

_HOUR_NS = 3_600 * 10**9


def _issues(issued_at) -> pd.DatetimeIndex:
    items = [issued_at] if isinstance(issued_at, str | pd.Timestamp) else list(issued_at)
    if not items:
        raise ForecastInputError("no issue times given")
    return pd.DatetimeIndex([as_utc(t) for t in items])


def _grid(history: pd.DataFrame, target: str):
    """Yield (name, start_hour, values) per series of a checked (gap-free) frame."""
    for name, g in history.groupby(SERIES, sort=True):
        yield name, int(hour_index(g[TS])[0]), g[target].to_numpy(float)


def _seasonal(
    history: pd.DataFrame,
    issued_at,
    horizon: int,
    period: int,
    *,
    target: str,
    resid_days: int,
    quantiles: Sequence[float],
) -> pd.DataFrame:
    spec = SeriesSpec(target=target, horizon=min(horizon, 168), target_lags=(), calendar=False)
    h = check_frame(history, spec, what="history", require_covariates=False)
    issues = _issues(issued_at)
    ih = hour_index(issues)
    lead = np.arange(horizon)
    k = lead // period + 1  # smallest k with target - k*period < issue
    out = []
    W = resid_days * 24
    for name, start, y in _grid(h, target):
        pos = ih - start  # position of the issue hour
        src = pos[:, None] + lead[None, :] - k[None, :] * period
        if (src < 0).any() or (pos > len(y)).any():
            bad = issues[((src < 0).any(axis=1)) | (pos > len(y))][0]
            raise ForecastInputError(
                f"series {name!r}: not enough history before {bad} for a {period} h "
                f"seasonal forecast {horizon} h ahead (or history ends before the issue time)"
            )
        point = y[src]
        frame = {
            ISSUED_AT: np.repeat(issues, horizon),
            TARGET_TIME: pd.to_datetime(
                (ih[:, None] + lead[None, :]).reshape(-1) * _HOUR_NS, utc=True
            ),
            SERIES: name,
            "p50": point.reshape(-1),
        }
        # error quantiles of the same rule over the resid window ending just before the issue
        ys = pd.Series(y)
        # centred on the median error so that p50 stays exactly the rule's value
        qv = {q: np.zeros_like(point) for q in quantiles}
        at = np.clip(pos - 1, 0, len(y) - 1)
        for kk in np.unique(k):
            err = ys - ys.shift(kk * period)
            cols = k == kk
            roll = err.rolling(W, min_periods=min(W, 48))
            med = roll.quantile(0.5).to_numpy()[at]
            for q in quantiles:
                v = np.nan_to_num(roll.quantile(q).to_numpy()[at] - med, nan=0.0)
                qv[q][:, cols] = v[:, None]
        for q in quantiles:
            if q == 0.5:
                continue
            frame[qcol(q)] = (point + qv[q]).reshape(-1)
        out.append(pd.DataFrame(frame))
    res = pd.concat(out, ignore_index=True)
    return _order_quantiles(res, quantiles)


def _order_quantiles(res: pd.DataFrame, quantiles: Sequence[float]) -> pd.DataFrame:
    cols = [qcol(q) for q in sorted({*quantiles, 0.5})]
    res[cols] = np.sort(res[cols].to_numpy(float), axis=1)
    return res[[ISSUED_AT, TARGET_TIME, SERIES, *cols]]


def last_known(
    history: pd.DataFrame,
    issued_at,
    horizon: int = 24,
    *,
    target: str = "value",
    max_days: int = 7,
    resid_days: int = 28,
    quantiles: Sequence[float] = QUANTILES,
) -> pd.DataFrame:
    """Persistence that tolerates gaps and lag: what a live system can still say when its data stops
    early or has holes (the hourly pipeline's degraded mode).

    For each target hour τ: the value at the same hour of day on the latest day before the issue time
    that has one (``τ − 24 k h`` for the smallest ``k ≥ 1`` with a value, looking back ``max_days`` days
    beyond the last value); when there is none, the series' last known value. Equals
    :func:`persistence`'s p50 on gap-free, up-to-date data. Quantiles: p50 plus the
    (q-quantile − median) of the day-on-day changes in the last ``resid_days`` days (NaN-aware).
    Raises :class:`ForecastInputError` naming the series when it has no value before the issue time.
    """
    issues = _issues(issued_at)
    need = {SERIES, TS, target}
    if not need <= set(history.columns):
        raise ForecastInputError(f"history: missing columns {sorted(need - set(history.columns))}")
    h = history[[SERIES, TS, target]].dropna(subset=[target])
    out = []
    lead = np.arange(horizon)
    for name, g in h.groupby(SERIES, sort=True):
        s = g.drop_duplicates(TS, keep="last").set_index(TS)[target].astype(float).sort_index()
        for t in issues:
            known = s[s.index < t]
            if known.empty:
                raise ForecastInputError(f"series {name!r}: no value before {t}")
            grid = known.reindex(
                pd.date_range(known.index[0], t - pd.Timedelta(hours=1), freq="h", tz="UTC")
            )
            y = grid.to_numpy()
            n = len(y)  # position n is the issue hour
            tgt = n + lead
            k = lead // 24 + 1
            point = np.full(horizon, np.nan)
            last_day = (n - 1 - np.flatnonzero(np.isfinite(y))[-1]) // 24 + 1
            for extra in range(last_day + max_days + 1):
                src = tgt - (k + extra) * 24
                ok = (src >= 0) & np.isnan(point)
                vals = np.where(ok, y[np.clip(src, 0, n - 1)], np.nan)
                point = np.where(np.isnan(point), vals, point)
                if not np.isnan(point).any():
                    break
            point = np.where(np.isnan(point), known.iloc[-1], point)
            d = pd.Series(y).diff(24).iloc[-resid_days * 24 :]
            med = float(d.median()) if d.notna().any() else 0.0
            frame = {
                ISSUED_AT: t,
                TARGET_TIME: t + pd.to_timedelta(lead, unit="h"),
                SERIES: name,
                "p50": point,
            }
            for q in quantiles:
                if q == 0.5:
                    continue
                qv = float(d.quantile(q)) - med if d.notna().any() else 0.0
                frame[qcol(q)] = point + qv
            out.append(pd.DataFrame(frame))
    if not out:
        raise ForecastInputError("history: no rows")
    return _order_quantiles(pd.concat(out, ignore_index=True), quantiles)


# --------------------------------------------------------------------------------------------------
# Regression


PROFILE_DAYS = 7
#: hours of history before an issue time the regression reads: the 168 h mean and the week lag of
#: the last lead, and the 7-day same-hour profiles (``_design``)
REGRESSION_HISTORY_H = 2 * 168 + 1


def _profile(
    v: np.ndarray, tgt: np.ndarray, k0: np.ndarray, days: int = PROFILE_DAYS
) -> np.ndarray:
    """Mean of ``v`` at the same hour of day over ``days`` days, starting ``k0`` days before each
    target hour (``k0`` per lead: the first day before the issue time)."""
    return np.mean([v[tgt - (k0[None, :] + j) * 24] for j in range(days)], axis=0)


def _design(
    h: pd.DataFrame,
    spec: SeriesSpec,
    issues: pd.DatetimeIndex,
    future: pd.DataFrame | None,
    *,
    training: bool,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows (issue, lead, series) with features; when ``training`` also the actual target.

    Features (all from before the issue time, or known-future): same hour 1 and 2 days before and
    one week before; the mean of the same hour over the last 7 days ("profile"); the last value and
    the means of the last 24 and 168 hours; every observed-only covariate at the last hour, at the
    same hour the day before and as a 7-day same-hour profile; every known-future covariate at the
    target hour and its change against the same hour the day before and against its own 7-day
    profile (weather forecasts: "sunnier than yesterday" is what moves solar-heavy grids).
    """
    H = spec.horizon
    lead = np.arange(H)
    ih = hour_index(issues)
    min_pos = REGRESSION_HISTORY_H
    parts, ys = [], []
    for name, g in h.groupby(SERIES, sort=True):
        start = int(hour_index(g[TS])[0])
        y = g[spec.target].to_numpy(float)
        pos = ih - start
        ok = pos >= min_pos
        if training:
            ok &= pos + H <= len(y)
        elif not ok.all() or (pos > len(y)).any():
            bad = issues[~ok | (pos > len(y))][0]
            raise ForecastInputError(
                f"series {name!r}: regression needs {min_pos} h of history before {bad}"
            )
        pos = pos[ok]
        n = len(pos)
        tgt = pos[:, None] + lead[None, :]
        k24 = lead // 24 + 1
        k168 = lead // 168 + 1
        f = {
            "issue_pos": np.repeat(np.arange(n), H),
            "lead": np.tile(lead, n),
            "series": name,
            ISSUED_AT: np.repeat(issues[ok], H),
            "pers": y[tgt - k24[None, :] * 24].reshape(-1),
            "pers2": y[tgt - (k24[None, :] + 1) * 24].reshape(-1),
            "seas": y[tgt - k168[None, :] * 168].reshape(-1),
            "profile": _profile(y, tgt, k24).reshape(-1),
            "last": np.repeat(y[pos - 1], H),
            "mean24": np.repeat(np.array([y[p - 24 : p].mean() for p in pos]), H),
            "mean168": np.repeat(np.array([y[p - 168 : p].mean() for p in pos]), H),
        }
        for c in spec.observed_reals:
            v = g[c].to_numpy(float)
            f["obs_" + c] = np.repeat(v[pos - 1], H)
            f["obsd_" + c] = v[tgt - k24[None, :] * 24].reshape(-1)
            f["obsp_" + c] = _profile(v, tgt, k24).reshape(-1)
        tt = pd.to_datetime((ih[ok][:, None] + lead[None, :]).reshape(-1) * _HOUR_NS, utc=True)
        f[TARGET_TIME] = tt
        d = pd.DataFrame(f)
        if spec.known_reals:
            if training:
                kv = {c: g[c].to_numpy(float)[tgt].reshape(-1) for c in spec.known_reals}
            else:
                keys = pd.DataFrame({SERIES: name, ISSUED_AT: d[ISSUED_AT], TS: tt})
                fut = _future_lookup(future, spec, keys)
                kv = {c: fut[c].to_numpy(float) for c in spec.known_reals}
            for c in spec.known_reals:
                v = g[c].to_numpy(float)  # past hours' values: known before the issue time
                d["kn_" + c] = kv[c]
                d["knd_" + c] = kv[c] - v[tgt - k24[None, :] * 24].reshape(-1)
                d["knp_" + c] = kv[c] - _profile(v, tgt, k24).reshape(-1)
        parts.append(d)
        if training:
            ys.append(y[tgt].reshape(-1))
    if not parts:
        raise ForecastInputError("no series")
    d = pd.concat(parts, ignore_index=True)
    return d, (np.concatenate(ys) if training else np.empty(0))


_NUM = ("pers", "pers2", "seas", "profile", "last", "mean24", "mean168")


def _num_cols(d: pd.DataFrame) -> list[str]:
    return [c for c in d.columns if c in _NUM or c.startswith(("obs", "kn"))]


def _x(d: pd.DataFrame, series_levels: list[str]) -> np.ndarray:
    hours = d[TARGET_TIME].dt.hour.to_numpy()
    wd = d[TARGET_TIME].dt.dayofweek.to_numpy()
    oh_h = (hours[:, None] == np.arange(24)[None, :]).astype(float)
    oh_w = (wd[:, None] == np.arange(7)[None, :]).astype(float)
    oh_s = (d[SERIES].to_numpy()[:, None] == np.array(series_levels)[None, :]).astype(float)
    return np.hstack([d[_num_cols(d)].to_numpy(float), oh_h, oh_w, oh_s])


def _x_trees(d: pd.DataFrame, series_levels: list[str]) -> np.ndarray:
    """Tree features: no one-hot needed; lead, hour, weekday and series code as plain numbers."""
    code = pd.Categorical(d[SERIES], categories=series_levels).codes
    return np.column_stack(
        [
            d[_num_cols(d)].to_numpy(float),
            d["lead"].to_numpy(float),
            d[TARGET_TIME].dt.hour.to_numpy(float),
            d[TARGET_TIME].dt.dayofweek.to_numpy(float),
            code.astype(float),
        ]
    )


@dataclass
class RegressionBaseline:
    """Direct multi-horizon regression on the features of :func:`_design`.

    ``kind="ridge"``: one standardised ridge per lead hour (``alpha``).
    ``kind="gbm"``: one gradient-boosted tree model (scikit-learn ``HistGradientBoostingRegressor``,
    absolute-error loss) over all lead hours, lead hour as a feature; for a strictly positive target
    it is fitted on ``log(target)``, so that it minimises relative error (what MAPE scores), and
    its median maps back exactly. Deterministic (fixed ``seed``).
    """

    spec: SeriesSpec
    alpha: float = 10.0
    kind: str = "ridge"
    seed: int = 0
    log_target: bool = False
    issue_hours: tuple[int, ...] | None = None
    models: list = field(default_factory=list)
    resid_q: dict[float, np.ndarray] = field(default_factory=dict)
    series_levels: list[str] = field(default_factory=list)

    def fit(self, frame: pd.DataFrame) -> RegressionBaseline:
        """Fit on ``frame`` (every window fully inside it); ``issue_hours`` restricts training issue
        times to those UTC hours of day (e.g. ``(0,)`` for a daily 00:00 issue)."""
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        h = check_frame(frame, self.spec, what="regression training frame", check_constant=True)
        self.series_levels = sorted(h[SERIES].unique())
        issues = pd.DatetimeIndex(sorted(h[TS].unique()))
        if self.issue_hours is not None:
            issues = issues[issues.hour.isin(self.issue_hours)]
        d, y = _design(h, self.spec, issues, None, training=True)
        if len(d) == 0:
            raise ForecastInputError("regression: too little history to build one training window")
        lead = d["lead"].to_numpy()
        self.models = []
        qs = [q for q in QUANTILES if q != 0.5]
        self.resid_q = {q: np.zeros(self.spec.horizon) for q in qs}
        if self.kind == "gbm":
            from sklearn.ensemble import HistGradientBoostingRegressor

            self.log_target = bool((y > 0).all())
            X = _x_trees(d, self.series_levels)
            mdl = HistGradientBoostingRegressor(
                loss="absolute_error",
                max_iter=500,
                learning_rate=0.05,
                random_state=self.seed,
                early_stopping=False,
            ).fit(X, np.log(y) if self.log_target else y)
            self.models = [mdl]
            fit = self._gbm_point(X)
        elif self.kind == "ridge":
            X = _x(d, self.series_levels)
            fit = np.empty(len(y))
            for h_ in range(self.spec.horizon):
                m = lead == h_
                mdl = make_pipeline(StandardScaler(), Ridge(alpha=self.alpha)).fit(X[m], y[m])
                self.models.append(mdl)
                fit[m] = mdl.predict(X[m])
        else:
            raise ValueError(f"RegressionBaseline kind must be 'ridge' or 'gbm', got {self.kind!r}")
        r = y - fit
        for h_ in range(self.spec.horizon):
            for q in qs:
                self.resid_q[q][h_] = np.quantile(r[lead == h_], q)
        return self

    def _gbm_point(self, X: np.ndarray) -> np.ndarray:
        p = self.models[0].predict(X)
        return np.exp(p) if self.log_target else p

    def predict(
        self, history: pd.DataFrame, issued_at, future_covariates: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        if not self.models:
            raise RuntimeError("RegressionBaseline.predict before fit")
        h = check_frame(history, self.spec, what="history")
        issues = _issues(issued_at)
        d, _ = _design(h, self.spec, issues, future_covariates, training=False)
        lead = d["lead"].to_numpy()
        if self.kind == "gbm":
            p50 = self._gbm_point(_x_trees(d, self.series_levels))
        else:
            X = _x(d, self.series_levels)
            p50 = np.empty(len(d))
            for h_ in range(self.spec.horizon):
                m = lead == h_
                if m.any():
                    p50[m] = self.models[h_].predict(X[m])
        res = d[[ISSUED_AT, TARGET_TIME, SERIES]].copy()
        res["p50"] = p50
        for q, v in self.resid_q.items():
            res[qcol(q)] = p50 + v[lead]
        return _order_quantiles(res, QUANTILES)
