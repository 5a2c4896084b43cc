"""What a forecasting problem is (:class:`SeriesSpec`), how to train it (:class:`TrainConfig`), and
the input checks every entry point runs first.

Light module: pandas and numpy only, so pipelines can import it without paying for torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

#: Column names of the long input frame.
SERIES = "series"
TS = "ts"

#: Quantiles every forecaster returns (TFT: pytorch-forecasting's default QuantileLoss set).
QUANTILES: tuple[float, ...] = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)


def qcol(q: float) -> str:
    """Column name of quantile ``q``: 0.1 -> ``p10``, 0.02 -> ``p02``, 0.5 -> ``p50``."""
    return f"p{round(q * 100):02d}"


class ForecastInputError(ValueError):
    """Input that would give garbage forecasts: gaps, NaN, too little history, a constant series."""


class LeakageError(ForecastInputError):
    """A feature would carry information from at or after the issue time into the forecast."""


@dataclass(frozen=True)
class SeriesSpec:
    """Roles of the columns of a long frame ``series, ts, <target>, <covariates...>``.

    * ``target``: the column forecast (default ``value``).
    * ``static_categoricals``: columns constant within a series (site, zone, kind). ``series``
      itself is always a static categorical and the group of the target normaliser.
    * ``known_reals``: known-future covariates: values for a target hour are known at the issue time
      (weather *forecasts*, day-ahead prices, planned capacity). At inference they come from
      ``future_covariates``; passing observations (reanalysis) here is leakage the caller must
      declare.
    * ``observed_reals``: observed-only covariates (generation mix, realised load): encoder side
    only.
    * ``target_lags``: lagged targets used as known-future reals (``lag168`` = value 168 h before
      the target hour). A lag below ``horizon`` would read values after the issue time, so it is
      refused.
    * ``calendar``: add ``hour`` and ``weekday`` (UTC, holiday-agnostic) as known-future
    categoricals.
    * ``profile_days``: add ``profile``, the mean of the target at the same hour of day over the
      ``profile_days`` most recent days that are all before the issue time (lags 24*k0, ...,
      24*(k0 + profile_days - 1) with k0 = ceil(horizon / 24)), as a known-future real: a
      smoothed "yesterday" that follows a drifting daily shape (solar growth) better than one day.
    * ``target_transform``: target normaliser transformation (``None``, ``"log1p"``,
    ``"softplus"``):
      ``log1p`` suits heavy-tailed non-negative load.
    """

    target: str = "value"
    static_categoricals: tuple[str, ...] = ()
    known_reals: tuple[str, ...] = ()
    observed_reals: tuple[str, ...] = ()
    encoder_length: int = 168
    horizon: int = 24
    target_lags: tuple[int, ...] = (168,)
    calendar: bool = True
    target_transform: str | None = None
    profile_days: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.horizon <= 168:
            raise ValueError(f"horizon must be 1..168 h, got {self.horizon}")
        if self.encoder_length < 1:
            raise ValueError(f"encoder_length must be >= 1, got {self.encoder_length}")
        bad = [lag for lag in self.target_lags if lag < self.horizon]
        if bad:
            raise LeakageError(
                f"target lags {bad} are shorter than the horizon {self.horizon} h: for the later "
                "target "
                "hours they would read values at or after the issue time. Use lags >= horizon "
                "(or leave the recent past to the encoder)."
            )
        roles = [*self.static_categoricals, *self.known_reals, *self.observed_reals]
        dup = {c for c in roles if roles.count(c) > 1}
        if dup:
            raise ValueError(f"columns given more than one role: {sorted(dup)}")
        if self.target in roles:
            raise LeakageError(f"the target {self.target!r} cannot also be a covariate")
        if self.profile_days < 0:
            raise ValueError(f"profile_days must be >= 0, got {self.profile_days}")
        reserved = {SERIES, TS, "time_idx", "_gid", "hour", "weekday", *self.known_lag_columns}
        clash = reserved & set(roles)
        if clash:
            raise ValueError(f"reserved column names used as covariates: {sorted(clash)}")

    @property
    def lag_columns(self) -> list[str]:
        return [f"lag{lag}" for lag in self.target_lags]

    @property
    def profile_lags(self) -> list[int]:
        k0 = -(-self.horizon // 24)
        return [24 * (k0 + j) for j in range(self.profile_days)]

    @property
    def known_lag_columns(self) -> list[str]:
        """Columns derived from past targets that the model reads as known-future reals."""
        return [*self.lag_columns, *(["profile"] if self.profile_days else [])]

    @property
    def longest_lag(self) -> int:
        return max([*self.target_lags, *self.profile_lags], default=0)

    @property
    def history_needed(self) -> int:
        """Hours of history one forecast needs: the encoder plus the longest lag."""
        return self.encoder_length + self.longest_lag

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeriesSpec:
        d = dict(d)
        for k in ("static_categoricals", "known_reals", "observed_reals", "target_lags"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    """Training options of the TFT. ``TrainConfig.fast()`` trains in ~30-60 s on 2 CPU cores.

    ``val_hours``: the last hours of every series are the validation period (early stopping,
    metrics).
    ``limit_train_batches``: cap on batches per epoch (int) or fraction (float): consecutive windows
    overlap by all but one hour, so a sample of them per epoch loses little.
    ``trainer_kwargs``: passed through to ``lightning.pytorch.Trainer``.
    ``num_threads``: torch threads (default 1). Measured on a shared 2-core machine: a TFT batch
    took 0.4-0.7 s on one thread and 0.7-5.8 s on two (the second thread mostly waits on the busy
    core); set 2+ on a machine of your own. ``max_time_s`` stops training at a wall-clock budget
    (the run is then no longer reproducible epoch for epoch).
    """

    max_epochs: int = 20
    hidden_size: int = 16
    attention_head_size: int = 2
    hidden_continuous_size: int = 8
    lstm_layers: int = 1
    dropout: float = 0.1
    learning_rate: float = 0.01
    batch_size: int = 128
    limit_train_batches: int | float = 1.0
    limit_val_batches: int | float = 1.0
    patience: int = 4
    gradient_clip_val: float = 0.1
    val_hours: int = 24 * 14
    seed: int = 42
    accelerator: str = "auto"
    num_threads: int | None = None
    progress_bar: bool = True
    deterministic: bool = True
    max_time_s: float | None = None
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fast(cls, **overrides: Any) -> TrainConfig:
        """Small and quick (~30-60 s on 2 cores for a few series x a few weeks): demos and smoke
        runs."""
        base = cls(
            max_epochs=4,
            hidden_size=8,
            attention_head_size=1,
            hidden_continuous_size=4,
            batch_size=64,
            limit_train_batches=20,
            limit_val_batches=10,
            patience=2,
            learning_rate=0.03,
            val_hours=24 * 3,
            max_time_s=45.0,
        )
        return replace(base, **overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> TrainConfig:
        """For tests: hidden size 4, 1 epoch, a few batches, no progress bar."""
        base = cls(
            max_epochs=1,
            hidden_size=4,
            attention_head_size=1,
            hidden_continuous_size=2,
            batch_size=32,
            limit_train_batches=3,
            limit_val_batches=2,
            patience=1,
            val_hours=48,
            progress_bar=False,
        )
        return replace(base, **overrides)

    def threads(self) -> int:
        return self.num_threads or 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# Input checks


def check_frame(
    frame: pd.DataFrame,
    spec: SeriesSpec,
    *,
    what: str = "frame",
    require_covariates: bool = True,
    check_constant: bool = False,
    min_rows: int | None = None,
) -> pd.DataFrame:
    """Validate a long frame and return it sorted by (series, ts) with a fresh index.

    Raises :class:`ForecastInputError` on: missing columns, naive or non-hour timestamps, duplicate
    (series, ts), gaps in a series' hourly grid, NaN/inf in the target or a covariate, a series
    shorter than ``min_rows``, and (``check_constant``) a constant target, on which a
    scale-normalised model learns nothing and would divide by zero.
    """
    need = [SERIES, TS, spec.target]
    if require_covariates:
        need += [*spec.static_categoricals, *spec.known_reals, *spec.observed_reals]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ForecastInputError(f"{what}: missing columns {missing} (has {list(frame.columns)})")
    if frame.empty:
        raise ForecastInputError(f"{what}: no rows")
    ts = frame[TS]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise ForecastInputError(f"{what}: '{TS}' must be tz-aware UTC datetimes, got {ts.dtype}")
    out = frame.copy()
    out[TS] = ts.dt.tz_convert("UTC")
    if (out[TS] != out[TS].dt.floor("h")).any():
        bad = out.loc[out[TS] != out[TS].dt.floor("h"), TS].iloc[0]
        raise ForecastInputError(f"{what}: timestamps must be hour starts, e.g. {bad}")
    out[SERIES] = out[SERIES].astype(str)
    out = out.sort_values([SERIES, TS], kind="stable").reset_index(drop=True)
    dup = out.duplicated([SERIES, TS])
    if dup.any():
        r = out.loc[dup].iloc[0]
        raise ForecastInputError(f"{what}: duplicate row for series {r[SERIES]!r} at {r[TS]}")
    for name, g in out.groupby(SERIES, sort=False):
        step = g[TS].diff().dropna()
        gap = step != pd.Timedelta(hours=1)
        if gap.any():
            i = gap.to_numpy().nonzero()[0][0]
            after = g[TS].iloc[i]
            raise ForecastInputError(
                f"{what}: series {name!r} has a gap of {step.iloc[i]} ending {g[TS].iloc[i + 1]} "
                f"(after {after}); fill or cut it before forecasting (no silent interpolation)"
            )
        if min_rows is not None and len(g) < min_rows:
            raise ForecastInputError(
                f"{what}: series {name!r} has {len(g)} hours, needs at least {min_rows} "
                f"(encoder {spec.encoder_length} h + longest lag "
                f"{spec.longest_lag} h"
                f" + what training/validation needs)"
            )
    cov = [*spec.known_reals, *spec.observed_reals] if require_covariates else []
    num_cols = [spec.target, *cov]
    for c in num_cols:
        v = pd.to_numeric(out[c], errors="coerce")
        bad = ~np.isfinite(v.to_numpy(dtype=float))
        if bad.any():
            r = out.loc[bad].iloc[0]
            raise ForecastInputError(
                f"{what}: column {c!r} has {int(bad.sum())} NaN/inf/non-numeric values, first for "
                f"series {r[SERIES]!r} at {r[TS]}"
            )
        out[c] = v.astype(float)
    if require_covariates:
        for c in spec.static_categoricals:
            n = out.groupby(SERIES)[c].nunique(dropna=False)
            if (n > 1).any():
                raise ForecastInputError(
                    f"{what}: static column {c!r} varies within series {list(n[n > 1].index)}"
                )
            out[c] = out[c].astype(str)
    if check_constant:
        std = out.groupby(SERIES)[spec.target].std()
        const = std[~(std > 1e-9 * (1 + out[spec.target].abs().max()))]
        if len(const):
            raise ForecastInputError(
                f"{what}: target {spec.target!r} is constant in series {list(const.index)}; "
                "there is nothing to learn (forecast it as a constant, or drop it)"
            )
    return out


def as_utc(t: Any) -> pd.Timestamp:
    """An issue time as a tz-aware UTC hour start (naive input is refused: say which zone)."""
    t = pd.Timestamp(t)
    if t.tzinfo is None:
        raise ForecastInputError(f"issue time {t} is naive; pass a tz-aware UTC timestamp")
    t = t.tz_convert("UTC")
    if t != t.floor("h"):
        raise ForecastInputError(f"issue time {t} is not an hour start")
    return t
