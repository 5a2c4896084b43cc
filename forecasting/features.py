"""Hourly UTC long frames -> the model table the TFT and the regression baseline read.

Two builders, one per use:

* :func:`make_model_table` (training): every hour of every series, with calendar features, lagged
  targets (``lag<L>``: value L hours before the row's hour) and an integer ``time_idx``.
* :func:`make_windows` (inference, one or many issue times): for each (series, issue time) an
  encoder block of the ``encoder_length`` hours before the issue time and a decoder block of
  ``horizon`` hours from it. The decoder's target and observed-only columns are *not* read from the
  input: they are filled with the last encoder value (the TFT never reads them; they are only there
  because ``TimeSeriesDataSet`` wants a full table). Known-future covariates of the decoder come
  from ``future_covariates`` only, and the builder refuses (``LeakageError``) any input that would
  carry information from at or after the issue time.

Light module (pandas + numpy).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecasting.spec import (
    SERIES,
    TS,
    ForecastInputError,
    LeakageError,
    SeriesSpec,
    as_utc,
    check_frame,
)

GID = "_gid"
TIME_IDX = "time_idx"
ISSUED_AT = "issued_at"
TARGET_TIME = "target_time"
_HOUR_NS = 3_600 * 10**9


def hour_index(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Hours since 1970-01-01 UTC: one global integer clock for every series."""
    # unit-safe: frames from DuckDB/Arrow arrive as datetime64[us], not [ns]
    idx = pd.DatetimeIndex(ts).as_unit("ns")
    return np.asarray(idx.asi8, dtype=np.int64) // _HOUR_NS


def add_calendar(table: pd.DataFrame) -> pd.DataFrame:
    """UTC hour of day and weekday as string categoricals (holiday-agnostic)."""
    table["hour"] = table[TS].dt.hour.astype(str)
    table["weekday"] = table[TS].dt.dayofweek.astype(str)
    return table


def make_model_table(
    frame: pd.DataFrame,
    spec: SeriesSpec,
    *,
    check_constant: bool = True,
    min_rows: int | None = None,
) -> pd.DataFrame:
    """Training table: validated frame + ``time_idx``, ``_gid``, calendar and lag columns.

    The first ``spec.longest_lag`` hours of each series (whose lags are undefined) are dropped.
    Lags are computed by shifting within a series on the gap-free hourly grid (checked), so ``lagL``
    at hour t is exactly the target at t - L h; with L >= horizon (enforced by :class:`SeriesSpec`)
    no decoder hour of any window can see a value from at or after its issue time.
    """
    need = min_rows if min_rows is not None else spec.history_needed + spec.horizon
    t = check_frame(
        frame, spec, what="training frame", check_constant=check_constant, min_rows=need
    )
    t[TIME_IDX] = hour_index(t[TS])
    t[GID] = t[SERIES]
    if spec.calendar:
        add_calendar(t)
    g = t.groupby(SERIES, sort=False)[spec.target]
    for lag, col in zip(spec.target_lags, spec.lag_columns, strict=True):
        t[col] = g.shift(lag)
    if spec.profile_days:
        t["profile"] = np.mean([g.shift(lag).to_numpy() for lag in spec.profile_lags], axis=0)
    if spec.known_lag_columns:
        t = t.dropna(subset=spec.known_lag_columns).reset_index(drop=True)
    return t


def _future_lookup(
    future: pd.DataFrame | None,
    spec: SeriesSpec,
    keys: pd.DataFrame,
) -> pd.DataFrame:
    """Known-future covariates for decoder rows ``keys`` (series, ts, issued_at),
    leakage-checked."""
    cols = list(spec.known_reals)
    if not cols:
        return pd.DataFrame(index=keys.index)
    if future is None:
        raise ForecastInputError(
            f"the model needs known-future covariates {cols} for the forecast hours: pass "
            "future_covariates (series, ts, ...) with values known at the issue time"
        )
    forbidden = [c for c in (spec.target, *spec.observed_reals) if c in future.columns]
    if forbidden:
        raise LeakageError(
            f"future_covariates carries {forbidden}: the target and observed-only columns are not "
            "known ahead; passing them for forecast hours would leak the future"
        )
    missing = [c for c in [SERIES, TS, *cols] if c not in future.columns]
    if missing:
        raise ForecastInputError(f"future_covariates: missing columns {missing}")
    f = future.copy()
    f[SERIES] = f[SERIES].astype(str)
    if not isinstance(f[TS].dtype, pd.DatetimeTZDtype):
        raise ForecastInputError("future_covariates: 'ts' must be tz-aware UTC")
    f[TS] = f[TS].dt.tz_convert("UTC")
    on = [SERIES, TS]
    if ISSUED_AT in f.columns:  # vintage forecasts: one set of rows per issue time
        f[ISSUED_AT] = f[ISSUED_AT].dt.tz_convert("UTC")
        on = [SERIES, ISSUED_AT, TS]
    extra = ["available_at"] if "available_at" in f.columns else []
    f = f[on + cols + extra]
    if f.duplicated(on).any():
        raise ForecastInputError(f"future_covariates: duplicate rows for keys {on}")
    m = keys.merge(f, on=on, how="left", validate="many_to_one")
    m.index = keys.index
    if extra:
        late = m["available_at"].dt.tz_convert("UTC") > m[ISSUED_AT]
        if late.any():
            r = m.loc[late].iloc[0]
            raise LeakageError(
                f"future_covariates: value for {r[SERIES]!r} at {r[TS]} became available at "
                f"{r['available_at']}, after the issue time {r[ISSUED_AT]}"
            )
    nan = m[cols].isna().any(axis=1)
    if nan.any():
        r = m.loc[nan].iloc[0]
        raise ForecastInputError(
            f"future_covariates: no value of {cols} for series {r[SERIES]!r} at {r[TS]} "
            f"(issue {r[ISSUED_AT]}); {int(nan.sum())} decoder rows lack them"
        )
    return m[cols]


def make_windows(
    history: pd.DataFrame,
    spec: SeriesSpec,
    issued_ats: Sequence | pd.Timestamp,
    future_covariates: pd.DataFrame | None = None,
    *,
    series: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Inference table: one group ``_gid = "<series>|<issue iso>"`` per (series, issue time).

    ``history``: long frame; only rows with ``ts < issued_at`` are read for a given issue time (the
    encoder and the lags). Every series must have a gap-free stretch of ``spec.history_needed``
    hours ending at ``issued_at - 1 h``, else :class:`ForecastInputError` (too little history /
    gap).
    ``future_covariates``: known-future reals for the decoder hours, keyed (series, ts) or, for
    vintage forecasts, (series, issued_at, ts); an ``available_at`` column, if present, is checked
    against the issue time. Returns the table with columns ``series, ts, issued_at, _gid,
    time_idx``, the target, covariates, calendar and lag columns.
    """
    issues = [
        as_utc(t)
        for t in ([issued_ats] if isinstance(issued_ats, str | pd.Timestamp) else list(issued_ats))
    ]
    if not issues:
        raise ForecastInputError("no issue times given")
    missing_known = [c for c in spec.known_reals if c not in history.columns]
    if (
        missing_known
        and future_covariates is not None
        and all(c in future_covariates.columns for c in missing_known)
        and (ISSUED_AT not in future_covariates.columns)
    ):
        # past hours' known-future values taken from future_covariates (same series, ts)
        fc = future_covariates[[SERIES, TS, *missing_known]].assign(
            **{SERIES: future_covariates[SERIES].astype(str)}
        )
        history = history.assign(**{SERIES: history[SERIES].astype(str)}).merge(
            fc, on=[SERIES, TS], how="left"
        )
    h = check_frame(history, spec, what="history")
    if series is not None:
        h = h[h[SERIES].isin([str(s) for s in series])]
    enc, H, L = spec.encoder_length, spec.horizon, spec.longest_lag
    need = enc + L
    num_cols = [spec.target, *spec.observed_reals]
    hist_known = list(spec.known_reals)
    blocks = []
    issue_arr = pd.DatetimeIndex(issues)
    issue_h = hour_index(issue_arr)
    for name, g in h.groupby(SERIES, sort=True):
        tidx = hour_index(g[TS])
        start = tidx[0]
        # position of the issue hour on this series' (gap-free, checked) grid
        pos = issue_h - start
        short = pos < need
        if short.any():
            t0 = issue_arr[short.nonzero()[0][0]]
            raise ForecastInputError(
                f"series {name!r}: too little history before {t0} "
                f"(has {max(int(pos[short][0]), 0)} h, "
                f"needs {need} h = encoder {enc} + longest lag {L})"
            )
        # rows at or after the issue time are never read: the encoder ends at pos - 1
        late = pos > len(g)
        if late.any():
            t0 = issue_arr[late.nonzero()[0][0]]
            raise ForecastInputError(
                f"series {name!r}: history ends {g[TS].iloc[-1]}, more than an hour before the "
                f"issue "
                f"time {t0}; the encoder would have a gap"
            )
        y = g[spec.target].to_numpy(float)
        n_iss = len(issues)
        rel = np.arange(-enc, H)
        rows = pos[:, None] + rel[None, :]  # (n_iss, enc+H) positions on the series grid
        enc_rows = rows[:, :enc]
        iso = np.array([f"{name}|{t.isoformat()}" for t in issue_arr], dtype=object)
        block = {
            GID: np.repeat(iso, enc + H),
            SERIES: np.repeat(name, n_iss * (enc + H)),
            ISSUED_AT: np.repeat(issue_arr, enc + H),
            TIME_IDX: (start + rows).reshape(-1),
        }
        last = pos - 1
        for c in num_cols:
            v = g[c].to_numpy(float)
            dec = np.repeat(v[last][:, None], H, axis=1)
            block[c] = np.concatenate([v[enc_rows], dec], axis=1).reshape(-1)
        for c in hist_known:
            v = g[c].to_numpy(float)
            dec_nan = np.full((n_iss, H), np.nan)
            block[c] = np.concatenate([v[enc_rows], dec_nan], axis=1).reshape(-1)
        for lag, col in zip(spec.target_lags, spec.lag_columns, strict=True):
            src = rows - lag
            assert (src[:, enc:] < pos[:, None]).all()  # lag >= horizon: only pre-issue values
            block[col] = y[src].reshape(-1)
        if spec.profile_days:
            assert (rows[:, enc:] - min(spec.profile_lags) < pos[:, None]).all()
            block["profile"] = np.mean(
                [y[rows - lag] for lag in spec.profile_lags], axis=0
            ).reshape(-1)
        for c in spec.static_categoricals:
            block[c] = np.repeat(str(g[c].iloc[0]), n_iss * (enc + H))
        blocks.append(pd.DataFrame(block))
    if not blocks:
        raise ForecastInputError("history has no rows for the requested series")
    t = pd.concat(blocks, ignore_index=True)
    t[TS] = pd.to_datetime(t[TIME_IDX] * _HOUR_NS, utc=True)
    t["_decoder"] = t[TS] >= t[ISSUED_AT]
    if hist_known:
        dec = t["_decoder"].to_numpy()
        keys = t.loc[dec, [SERIES, ISSUED_AT, TS]]
        vals = _future_lookup(future_covariates, spec, keys)
        t.loc[dec, hist_known] = vals.to_numpy(float)
    elif future_covariates is not None:
        forbidden = [
            c for c in (spec.target, *spec.observed_reals) if c in future_covariates.columns
        ]
        if forbidden:
            raise LeakageError(f"future_covariates carries {forbidden}: not known ahead")
    assert_no_leakage(t, spec)
    if spec.calendar:
        add_calendar(t)
    return t


def assert_no_leakage(windows: pd.DataFrame, spec: SeriesSpec) -> None:
    """Refuse a window table whose encoder reaches the issue time or whose decoder target/observed
    values differ from the last encoder value (i.e. were read from after the issue time)."""
    enc = windows[~windows["_decoder"]]
    if (enc[TS] >= enc[ISSUED_AT]).any():
        raise LeakageError("encoder rows at or after the issue time")
    dec = windows[windows["_decoder"]]
    if len(dec):
        last = enc.groupby([SERIES, ISSUED_AT])[[spec.target, *spec.observed_reals]].last()
        d = dec.join(last, on=[SERIES, ISSUED_AT], rsuffix="__last")
        for c in [spec.target, *spec.observed_reals]:
            a, b = d[c].to_numpy(float), d[c + "__last"].to_numpy(float)
            if not np.allclose(a, b, equal_nan=True):
                raise LeakageError(f"decoder column {c!r} holds values from after the issue time")
