"""One interface for every forecaster: the TFT, the regressions, the naive baselines and the served
ensemble. The benchmark, the closed-loop backtest and the hourly pipeline fit and predict through
it, so what is measured is what is served.

Protocol (:class:`Forecaster`)::

    f.fit(history, covariates=None, *, val_hours=None) -> f
    f.predict(history, issued_ats, future_covariates=None) -> frame
        # issued_at, target_time, series, p02, p10, p25, p50, p75, p90, p98 (ordered quantiles);
        # for each issue time only rows of ``history`` with ts < issued_at are read
    f.save(directory) -> Path;  load_forecaster(directory) -> f   # forecaster.json manifest
    f.history_needed       # hours of gap-free history before an issue time one forecast needs
    f.horizon, f.name, f.holds_out_validation

``history`` is the long frame of :mod:`forecasting.spec` (``series, ts, <target>, <covariates>``);
``covariates`` (optional) are more columns of it keyed (series, ts), merged on. ``val_hours``: a
forecaster that *holds out validation* (the TFT: early stopping) fits on everything but never trains
on the last ``val_hours``; the others ignore it and fit on what they are given.

Adapters: :class:`TFTForecaster` (one or several seeds, their quantiles averaged),
:class:`RegressionForecaster` (``kind="ridge" | "gbm"``), :class:`SeasonalNaive` (``period=24``:
persistence, ``period=168``: seasonal naive). :class:`ServedForecaster` is the served ensemble: it
is itself a Forecaster, fits its members, chooses their combination and recent-error correction on a
validation period (:func:`forecasting.ensemble.select`), calibrates the intervals by split-conformal
residual quantiles per series and lead-hour bucket (:class:`forecasting.conformal.ConformalCalibrator`), and
saves into one directory with a manifest (members in sub-directories), as neuralforecast's
``NeuralForecast`` does.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from forecasting.conformal import ConformalCalibrator
from forecasting.features import ISSUED_AT, TARGET_TIME
from forecasting.spec import (
    QUANTILES,
    SERIES,
    TS,
    ForecastInputError,
    SeriesSpec,
    TrainConfig,
    as_utc,
    qcol,
)

MANIFEST = "forecaster.json"
HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)
KEYS = [ISSUED_AT, TARGET_TIME, SERIES]
QCOLS = [qcol(q) for q in QUANTILES]
log = logging.getLogger(__name__)

#: known-future covariates for issue times: a frame, or a function of the issue times giving one
FutureCovariates = pd.DataFrame | Callable[[pd.DatetimeIndex], pd.DataFrame | None] | None


@runtime_checkable
class Forecaster(Protocol):
    """What the benchmark, the backtest and the pipeline call (see the module docstring)."""

    kind: ClassVar[str]
    name: str
    holds_out_validation: ClassVar[bool]

    @property
    def horizon(self) -> int: ...

    @property
    def history_needed(self) -> int: ...

    def fit(
        self,
        history: pd.DataFrame,
        covariates: pd.DataFrame | None = None,
        *,
        val_hours: int | None = None,
    ) -> Forecaster: ...

    def predict(
        self, history: pd.DataFrame, issued_ats, future_covariates=None
    ) -> pd.DataFrame: ...

    def save(self, directory: str | Path) -> Path: ...


def issue_index(issued_ats) -> pd.DatetimeIndex:
    items = [issued_ats] if isinstance(issued_ats, str | pd.Timestamp) else list(issued_ats)
    if not items:
        raise ForecastInputError("no issue times given")
    return pd.DatetimeIndex([as_utc(t) for t in items])


def with_covariates(history: pd.DataFrame, covariates: pd.DataFrame | None) -> pd.DataFrame:
    """``history`` with the columns of ``covariates`` (keyed series, ts) merged on."""
    if covariates is None:
        return history
    cov = covariates.assign(**{SERIES: covariates[SERIES].astype(str)})
    extra = [c for c in cov.columns if c not in (SERIES, TS) and c not in history.columns]
    h = history.assign(**{SERIES: history[SERIES].astype(str)})
    return h.merge(cov[[SERIES, TS, *extra]], on=[SERIES, TS], how="left")


def _write_manifest(directory: Path, kind: str, payload: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).write_text(
        json.dumps({"kind": kind, **payload}, indent=2, default=_json_default)
    )
    return directory


def _json_default(o):
    if isinstance(o, np.integer | np.floating):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, pd.Timestamp | Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_manifest(directory: str | Path) -> dict:
    p = Path(directory) / MANIFEST
    if not p.exists():
        raise FileNotFoundError(f"{directory}: no {MANIFEST} (not a saved forecaster)")
    return json.loads(p.read_text())


def load_forecaster(directory: str | Path) -> Forecaster:
    """Load any forecaster saved by ``save``: its manifest names the class. A directory holding only
    a TFT checkpoint (written by :func:`forecasting.tft.train`) loads as a one-seed TFT."""
    d = Path(directory)
    if not (d / MANIFEST).exists():
        from forecasting import tft

        if (d / tft.CKPT).exists():
            return TFTForecaster.from_models([tft.load(d)])
        raise FileNotFoundError(f"{d}: no {MANIFEST} and no TFT checkpoint")
    kind = read_manifest(d)["kind"]
    if kind not in KINDS:
        raise ValueError(f"{d}: unknown forecaster kind {kind!r} (known: {sorted(KINDS)})")
    return KINDS[kind].load(d)


# --------------------------------------------------------------------------------------------------
# naive baselines


@dataclass
class SeasonalNaive:
    """The value one ``period`` before the target hour (the latest such value before the issue time
    for leads beyond a period): ``period=24`` is persistence, ``168`` the seasonal naive forecast.
    Quantiles: the rule's own recent errors (:func:`forecasting.baselines._seasonal`). Nothing to
    fit."""

    period: int = 24
    horizon: int = 24
    target: str = "value"
    resid_days: int = 28
    name: str = ""

    kind: ClassVar[str] = "seasonal_naive"
    holds_out_validation: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not self.name:
            self.name = {24: "persistence", 168: "seasonal_naive"}.get(
                self.period, f"naive{self.period}"
            )

    @property
    def history_needed(self) -> int:
        """The p50 needs ``period * ceil(horizon / period)`` hours; the quantiles read up to
        ``resid_days`` more days when they are there."""
        return self.period * math.ceil(self.horizon / self.period)

    def fit(self, history=None, covariates=None, *, val_hours=None) -> SeasonalNaive:
        return self

    def predict(self, history: pd.DataFrame, issued_ats, future_covariates=None) -> pd.DataFrame:
        from forecasting.baselines import _seasonal

        return _seasonal(
            history,
            issue_index(issued_ats),
            self.horizon,
            self.period,
            target=self.target,
            resid_days=self.resid_days,
            quantiles=QUANTILES,
        )

    def save(self, directory) -> Path:
        return _write_manifest(Path(directory), self.kind, {"params": asdict(self)})

    @classmethod
    def load(cls, directory) -> SeasonalNaive:
        return cls(**read_manifest(directory)["params"])


def persistence(horizon: int = 24, target: str = "value") -> SeasonalNaive:
    return SeasonalNaive(24, horizon, target)


def seasonal_naive(horizon: int = 24, target: str = "value") -> SeasonalNaive:
    return SeasonalNaive(168, horizon, target)


# --------------------------------------------------------------------------------------------------
# regressions


@dataclass
class RegressionForecaster:
    """Direct multi-horizon regression (:class:`forecasting.baselines.RegressionBaseline`) on the
    TFT's inputs: ``kind="ridge"`` (one ridge per lead hour) or ``"gbm"`` (gradient-boosted trees,
    lead hour a feature). ``issue_hours``: fit on issues at these UTC hours only (e.g. ``(0,)`` for
    day-ahead forecasts issued at midnight)."""

    spec: SeriesSpec
    model_kind: str = "ridge"
    alpha: float = 10.0
    seed: int = 0
    issue_hours: tuple[int, ...] | None = None
    name: str = ""
    model: Any = None

    kind: ClassVar[str] = "regression"
    holds_out_validation: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self.name = self.name or self.model_kind
        if self.model_kind not in ("ridge", "gbm"):
            raise ValueError(f"regression kind must be 'ridge' or 'gbm', got {self.model_kind!r}")

    @property
    def horizon(self) -> int:
        return self.spec.horizon

    @property
    def history_needed(self) -> int:
        from forecasting.baselines import REGRESSION_HISTORY_H

        return REGRESSION_HISTORY_H

    def fit(self, history, covariates=None, *, val_hours=None) -> RegressionForecaster:
        from forecasting.baselines import RegressionBaseline

        self.model = RegressionBaseline(
            self.spec,
            alpha=self.alpha,
            kind=self.model_kind,
            seed=self.seed,
            issue_hours=self.issue_hours,
        ).fit(with_covariates(history, covariates))
        return self

    def predict(self, history, issued_ats, future_covariates=None) -> pd.DataFrame:
        if self.model is None:
            raise RuntimeError(f"{self.name}: predict before fit")
        return self.model.predict(
            history, issue_index(issued_ats), _frame(future_covariates, issued_ats)
        )

    def save(self, directory) -> Path:
        import joblib

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if self.model is not None:
            joblib.dump(self.model, d / "model.joblib")
        params = {
            "spec": self.spec.to_dict(),
            "model_kind": self.model_kind,
            "alpha": self.alpha,
            "seed": self.seed,
            "issue_hours": self.issue_hours,
            "name": self.name,
        }
        return _write_manifest(d, self.kind, {"params": params})

    @classmethod
    def load(cls, directory) -> RegressionForecaster:
        import joblib

        d = Path(directory)
        p = dict(read_manifest(d)["params"])
        p["spec"] = SeriesSpec.from_dict(p["spec"])
        if p.get("issue_hours") is not None:
            p["issue_hours"] = tuple(p["issue_hours"])
        f = cls(**p)
        if (d / "model.joblib").exists():
            f.model = joblib.load(d / "model.joblib")
        return f


def _frame(future: FutureCovariates, issued_ats) -> pd.DataFrame | None:
    return future(issue_index(issued_ats)) if callable(future) else future


# --------------------------------------------------------------------------------------------------
# TFT


@dataclass
class TFTForecaster:
    """The Temporal Fusion Transformer (:mod:`forecasting.tft`): one global model over every series
    of the history; ``seeds`` > 1 trains that many (seeds ``config.seed``, +1, ...) and averages
    their quantiles (a deep ensemble). ``workdir``: where training writes checkpoints (default: a
    temporary folder; :meth:`save` copies them into the forecaster's directory)."""

    spec: SeriesSpec
    config: TrainConfig = field(default_factory=TrainConfig)
    seeds: int = 1
    workdir: Path | None = None
    name: str = "tft"
    models: list = field(default_factory=list)

    kind: ClassVar[str] = "tft"
    holds_out_validation: ClassVar[bool] = True

    @classmethod
    def from_models(cls, models: Sequence) -> TFTForecaster:
        m0 = models[0]
        return cls(
            spec=m0.spec,
            config=m0.config or TrainConfig(),
            seeds=len(models),
            workdir=Path(m0.checkpoint_path).parent,
            models=list(models),
        )

    @property
    def horizon(self) -> int:
        return self.spec.horizon

    @property
    def history_needed(self) -> int:
        return self.spec.history_needed

    @property
    def metrics(self) -> dict:
        """Training metrics: seconds (summed over seeds), epochs (per seed), validation MAPE."""
        ms = [m.metrics for m in self.models]
        return {
            "train_seconds": round(sum(m.get("train_seconds", 0.0) for m in ms), 2),
            "epochs": [m.get("epochs") for m in ms],
            "val_mape": [m.get("val_mape") for m in ms],
        }

    def fit(self, history, covariates=None, *, val_hours=None) -> TFTForecaster:
        from forecasting import tft

        cfg = replace(self.config, val_hours=val_hours) if val_hours else self.config
        root = (
            Path(self.workdir) if self.workdir else Path(tempfile.mkdtemp(prefix="gridflex-tft-"))
        )
        self.workdir = root
        h = with_covariates(history, covariates)
        self.models = [
            tft.train(h, self.spec, root / f"seed{k}", replace(cfg, seed=cfg.seed + k))
            for k in range(self.seeds)
        ]
        self.config = cfg
        return self

    def predict(self, history, issued_ats, future_covariates=None) -> pd.DataFrame:
        from forecasting import tft
        from forecasting.ensemble import combine

        if not self.models:
            raise RuntimeError("TFT: predict before fit")
        fut = _frame(future_covariates, issued_ats)
        issues = issue_index(issued_ats)
        fcs = {str(k): tft.predict_many(m, history, issues, fut) for k, m in enumerate(self.models)}
        return fcs["0"] if len(fcs) == 1 else combine(fcs)

    def save(self, directory) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        from forecasting import tft

        for k, m in enumerate(self.models):
            src, dst = Path(m.checkpoint_path).parent, d / f"seed{k}"
            if src.resolve() != dst.resolve():
                dst.mkdir(parents=True, exist_ok=True)
                for fname in (tft.CKPT, tft.PARAMS, tft.META):
                    if (src / fname).exists():
                        shutil.copy2(src / fname, dst / fname)
        return _write_manifest(
            d,
            self.kind,
            {
                "params": {
                    "spec": self.spec.to_dict(),
                    "config": self.config.to_dict(),
                    "seeds": len(self.models) or self.seeds,
                    "name": self.name,
                },
                "metrics": self.metrics if self.models else {},
            },
        )

    @classmethod
    def load(cls, directory) -> TFTForecaster:
        from forecasting import tft

        d = Path(directory)
        p = read_manifest(d)["params"]
        models = [tft.load(d / f"seed{k}") for k in range(int(p["seeds"]))]
        f = cls.from_models(models)
        f.name = p.get("name", "tft")
        f.workdir = d
        return f


# --------------------------------------------------------------------------------------------------
# the served ensemble


@dataclass
class ServedForecaster:
    """The forecast the scheduler is served: a validated combination of members, corrected by its
    own recent errors, with conformal intervals.

    :meth:`fit` (``val_hours`` required): fits every member (a member that holds out validation once
    on everything, the others on the hours before the validation period), forecasts the validation
    issues (every ``val_every`` h from the first validation hour, or at ``val_issue_hours`` UTC),
    lets :func:`forecasting.ensemble.select` choose the members (every subset containing
    ``must_include``, equal weights) and the correction strength by mean MAPE, fits the conformal
    calibrator on the chosen forecast's validation residuals, scores each member, the served
    forecast and persistence on the same rows, then refits the members that were fitted without the
    validation period on everything (all of them: :attr:`fitted_members`; only the chosen are
    served and saved). ``fitted``: members already
    fitted on this history with the same validation hold-out (e.g. one global TFT shared by several
    regions' ensembles): they are used as they are.

    :meth:`predict`: for each issue time t, the members' forecasts at t and (with a correction) at
    t - 1 day, ..., t - ``days`` days (:meth:`issues_needed`; future covariates must cover them),
    combined, corrected by the errors of target hours before t, then calibrated. Each issue is
    computed as if alone, so a batch equals the single-issue calls the pipeline makes.
    """

    members: dict[str, Any]
    must_include: tuple[str, ...] = ()
    days: int = 14
    strengths: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    val_every_h: int = 24
    val_issue_hours: tuple[int, ...] | None = None
    target: str = "value"
    weights: dict[str, float] = field(default_factory=dict)
    strength: float = 0.0
    calibrator: ConformalCalibrator | None = None
    validation: dict = field(default_factory=dict)
    name: str = "served"
    #: when the chosen combination's validation MAPE is above persistence's on the same issues,
    #: serve persistence (with its own conformal intervals) instead and say so
    #: (``validation["fallback"]``, :attr:`description`); False: serve the combination anyway
    fallback_to_persistence: bool = False
    #: after :meth:`fit`: every member that could be fitted, chosen or not (not saved)
    fitted_members: dict[str, Any] = field(default_factory=dict, repr=False)

    kind: ClassVar[str] = "served"
    holds_out_validation: ClassVar[bool] = False

    @property
    def horizon(self) -> int:
        hs = {m.horizon for m in self.members.values()}
        if len(hs) != 1:
            raise ValueError(f"members have different horizons {sorted(hs)}")
        return hs.pop()

    @property
    def chosen(self) -> list[str]:
        return list(self.weights) or list(self.members)

    @property
    def history_needed(self) -> int:
        return max(self.members[n].history_needed for n in self.chosen)

    @property
    def description(self) -> str:
        """What is served, in words: ``tft+ridge (equal weights), correction 0.5, conformal``."""
        s = "+".join(self.chosen)
        if self.validation.get("fallback"):
            s += f" (fallback: {self.validation['fallback']})"
        if self.strength:
            s += f", recent-error correction {self.strength:g} over {self.days} d"
        if self.calibrator is not None:
            s += ", conformal p10-p90"
        return s

    def issues_needed(self, issued_ats, history_start=None) -> pd.DatetimeIndex:
        """The issue times :meth:`predict` forecasts with the members for ``issued_ats``: each one
        and, with a correction, the same hour on the ``days`` days before it (those that
        ``history_start``, if given, leaves enough history for)."""
        issues = issue_index(issued_ats)
        back = self.days if self.strength else 0
        allv = pd.DatetimeIndex(sorted({t - k * DAY for t in issues for k in range(back + 1)}))
        if history_start is not None:
            first = pd.Timestamp(history_start) + self.history_needed * HOUR
            allv = allv[(allv >= first) | allv.isin(issues)]
        return allv

    # -- fitting

    def _val_issues(self, h: pd.DataFrame, val_start: pd.Timestamp, first: pd.Timestamp):
        last = h[TS].max() + HOUR - self.horizon * HOUR  # last issue whose horizon has actuals
        if self.val_issue_hours is not None:
            cand = pd.date_range(val_start.normalize(), last, freq="h")
            val = cand[cand.hour.isin(self.val_issue_hours) & (cand >= val_start)]
        else:
            val = pd.date_range(val_start, last, freq=f"{self.val_every_h}h")
        back = pd.DatetimeIndex(
            sorted({t - k * DAY for t in val for k in range(1, self.days + 1)} - set(val))
        )
        allv = back.append(val).sort_values()
        return val, allv[allv >= first]

    def fit(
        self,
        history,
        covariates=None,
        *,
        val_hours: int | None = None,
        future_covariates: FutureCovariates = None,
        fitted: Collection[str] = (),
    ) -> ServedForecaster:
        from forecasting import ensemble
        from forecasting.metrics import attach_actuals

        if not val_hours:
            raise ValueError("ServedForecaster.fit needs val_hours (the validation period)")
        h = with_covariates(history, covariates)
        h = h.assign(**{SERIES: h[SERIES].astype(str)})
        start = h[TS].min()
        val_start = h[TS].max() + HOUR - val_hours * HOUR
        actuals = h[[SERIES, TS, self.target]]
        members = dict(self.members)
        # members that cannot forecast the validation period from this history are left out
        for n in sorted(members, key=lambda n: -members[n].history_needed):
            if start + members[n].history_needed * HOUR > val_start and n not in self.must_include:
                log.info(
                    "member %s left out: needs %d h of history before the validation period",
                    n,
                    members[n].history_needed,
                )
                members.pop(n)
        if not members:
            raise ForecastInputError("no member can forecast the validation period")
        first = start + max(m.history_needed for m in members.values()) * HOUR
        val_issues, all_issues = self._val_issues(h, val_start, first)
        hours = int(h.groupby(SERIES)[TS].size().min())
        # a member that holds out the validation period itself (the TFT) also needs two horizons
        # of training windows before it
        need = val_hours + max(
            m.history_needed + (2 * m.horizon if m.holds_out_validation else 0)
            for m in members.values()
        )
        if not len(val_issues) or val_issues[0] < first or hours < need:
            raise ForecastInputError(
                f"too little history: a series has {hours} hours, needs at least {need} "
                f"({need - val_hours} h before a validation period of {val_hours} h)"
            )
        fut = _frame(future_covariates, all_issues)
        before = h[h[TS] < val_start]
        val_fc: dict[str, pd.DataFrame] = {}
        for n, m in list(members.items()):
            try:
                if n not in fitted:
                    if m.holds_out_validation:
                        m.fit(h, val_hours=val_hours)
                    else:
                        m.fit(before)
                val_fc[n] = m.predict(h, all_issues, fut)
            except ForecastInputError as exc:
                if n in self.must_include:
                    raise
                log.info("member %s left out: %s", n, exc)
                members.pop(n)
        choice = ensemble.select(
            val_fc,
            actuals,
            score_from=val_start,
            must_include=self.must_include,
            days=self.days,
            strengths=self.strengths,
            target=self.target,
        )
        self.weights, self.strength = choice.weights, choice.strength
        self.members = {n: members[n] for n in self.weights}
        self.calibrator = None
        served_val = attach_actuals(
            self._combine(val_fc, actuals, val_issues), actuals, self.target
        ).dropna(subset=["actual"])
        self.calibrator = ConformalCalibrator().fit(served_val)
        served_val = self.calibrator.apply(served_val)
        persistence = SeasonalNaive(24, self.horizon, self.target)
        pers_val = attach_actuals(persistence.predict(h, val_issues), actuals, self.target).dropna(
            subset=["actual"]
        )
        scores = {"served": _scores(served_val)}
        for n, f in val_fc.items():
            scores[n] = _scores(
                attach_actuals(f[f[ISSUED_AT].isin(val_issues)], actuals, self.target).dropna(
                    subset=["actual"]
                )
            )
        scores["persistence"] = _scores(pers_val)
        fallback = None
        if (
            self.fallback_to_persistence
            and scores["served"]["mape"] > scores["persistence"]["mape"]
        ):
            fallback = (
                f"{'+'.join(self.weights)} lost to persistence on validation, MAPE "
                f"{scores['served']['mape']:.2f} vs {scores['persistence']['mape']:.2f} %"
            )
            log.warning("served forecaster: %s; persistence served", fallback)
            self.members = {"persistence": persistence}
            self.weights, self.strength = {"persistence": 1.0}, 0.0
            self.calibrator = ConformalCalibrator().fit(pers_val)
            scores["served"] = _scores(self.calibrator.apply(pers_val))
        self.validation = {
            "fallback": fallback,
            "period": [str(val_start), str(h[TS].max())],
            "issues": len(val_issues),
            "scores": scores,
            "candidates_mape": {
                k: v
                for k, v in choice.validation.items()
                if k not in ("chosen_mape", "chosen_coverage_p10_p90")
            },
            "calibration": self.calibrator.summary(),
        }
        for n, m in members.items():
            if n not in fitted and not m.holds_out_validation:
                m.fit(h)
        self.fitted_members = members
        return self

    def _combine(
        self, fcs: Mapping[str, pd.DataFrame], actuals: pd.DataFrame, issues: pd.DatetimeIndex
    ) -> pd.DataFrame:
        """Per issue in ``issues``: combine the members' rows of its own issue family, correct by
        recent errors, keep its rows (uncalibrated)."""
        from forecasting.ensemble import combine, recent_error_correction

        comb = combine({n: fcs[n] for n in self.weights}, self.weights)
        if not self.strength:
            return comb[comb[ISSUED_AT].isin(issues)].reset_index(drop=True)
        by_issue = dict(tuple(comb.groupby(ISSUED_AT, sort=True)))
        out = []
        for t in issues:
            fam = [
                by_issue[u]
                for u in (t - k * DAY for k in range(self.days, -1, -1))
                if u in by_issue
            ]
            past = actuals[actuals[TS] < t]  # nothing at or after the issue time, not even a sign
            c = recent_error_correction(
                pd.concat(fam, ignore_index=True),
                past,
                days=self.days,
                strength=self.strength,
                target=self.target,
            )
            out.append(c[c[ISSUED_AT] == t])
        return pd.concat(out, ignore_index=True)

    # -- serving

    def predict(self, history, issued_ats, future_covariates=None) -> pd.DataFrame:
        if not self.weights:
            raise RuntimeError("ServedForecaster: predict before fit")
        issues = issue_index(issued_ats)
        h = history.assign(**{SERIES: history[SERIES].astype(str)})
        need = self.issues_needed(issues, h[TS].min())
        fut = _frame(future_covariates, need)
        fcs = {n: self.members[n].predict(h, need, fut) for n in self.weights}
        out = self._combine(fcs, h[[SERIES, TS, self.target]], issues)
        if self.calibrator is not None:
            out = self.calibrator.apply(out)
        return out.sort_values([ISSUED_AT, SERIES, TARGET_TIME]).reset_index(drop=True)

    def recalibrated(
        self, scored: pd.DataFrame, *, max_per_bucket: int = 2000, keep_days: float | None = None
    ) -> ServedForecaster:
        """A copy whose intervals are refitted on the validation residuals plus ``scored`` (this
        forecaster's stored forecasts with the actuals that have arrived: ``issued_at, target_time,
        series, p50, actual``), the most recent ``max_per_bucket`` per lead bucket: the conformal
        quantiles follow the errors as actuals arrive. Unchanged when ``scored`` is empty."""
        if self.calibrator is None or scored is None or scored.empty:
            return self
        return replace(
            self, calibrator=self.calibrator.refreshed(scored, max_per_bucket, keep_days)
        )

    def predict_recalibrating(
        self, history, issued_ats, future_covariates=None, *, keep_days: float = 30
    ) -> pd.DataFrame:
        """Forecast ``issued_ats`` in order, each with intervals refreshed on the residuals of the
        earlier ones whose actuals (from ``history``) are before its issue time, over a sliding
        ``keep_days`` window (the validation residuals until that many days of new ones): what the
        pipeline does from its stored forecasts (:meth:`recalibrated`), as a benchmark can replay
        it. p50 is :meth:`predict`'s."""
        from forecasting.metrics import attach_actuals

        issues = issue_index(issued_ats).sort_values()
        raw = self.predict(history, issues, future_covariates)
        act = history[[SERIES, TS, self.target]].assign(**{SERIES: history[SERIES].astype(str)})
        scored = attach_actuals(raw[KEYS + ["p50"]], act, self.target)
        out = []
        for t in issues:
            known = scored[(scored[TARGET_TIME] < t) & (scored[ISSUED_AT] < t)]
            cal = self.calibrator.refreshed(known, keep_days=keep_days)
            out.append(cal.apply(raw[raw[ISSUED_AT] == t]))
        return pd.concat(out, ignore_index=True)

    # -- persistence

    def save(self, directory) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for n, m in self.members.items():
            m.save(d / n)
        return _write_manifest(
            d,
            self.kind,
            {
                "members": {n: {"kind": m.kind, "dir": n} for n, m in self.members.items()},
                "served": self.description,
                "weights": self.weights,
                "strength": self.strength,
                "days": self.days,
                "must_include": list(self.must_include),
                "fallback_to_persistence": self.fallback_to_persistence,
                "target": self.target,
                "val_every_h": self.val_every_h,
                "val_issue_hours": self.val_issue_hours,
                "calibrator": None if self.calibrator is None else self.calibrator.to_dict(),
                "validation": self.validation,
            },
        )

    @classmethod
    def load(cls, directory) -> ServedForecaster:
        d = Path(directory)
        m = read_manifest(d)
        members = {n: KINDS[v["kind"]].load(d / v["dir"]) for n, v in m["members"].items()}
        cal = m.get("calibrator")
        return cls(
            members=members,
            must_include=tuple(m.get("must_include", ())),
            fallback_to_persistence=bool(m.get("fallback_to_persistence", False)),
            days=m["days"],
            val_every_h=m.get("val_every_h", 24),
            val_issue_hours=None
            if m.get("val_issue_hours") is None
            else tuple(m["val_issue_hours"]),
            target=m.get("target", "value"),
            weights=m["weights"],
            strength=m["strength"],
            calibrator=None if cal is None else ConformalCalibrator.from_dict(cal),
            validation=m.get("validation", {}),
        )


def _scores(f: pd.DataFrame) -> dict[str, float]:
    from forecasting.metrics import coverage, mae, mape_values

    if f.empty:
        return {"n": 0}
    ape = mape_values(f["actual"], f["p50"])
    return {
        "n": int(len(f)),
        "mae": mae(f["actual"], f["p50"]),
        "mape": float(np.mean(ape)) if ape.size else float("nan"),
        "coverage_p10_p90": coverage(f["actual"], f["p10"], f["p90"]),
    }


KINDS: dict[str, Any] = {
    SeasonalNaive.kind: SeasonalNaive,
    RegressionForecaster.kind: RegressionForecaster,
    TFTForecaster.kind: TFTForecaster,
    ServedForecaster.kind: ServedForecaster,
}

__all__ = [
    "Forecaster",
    "SeasonalNaive",
    "RegressionForecaster",
    "TFTForecaster",
    "ServedForecaster",
    "load_forecaster",
    "persistence",
    "seasonal_naive",
    "with_covariates",
    "issue_index",
    "MANIFEST",
    "QCOLS",
]
