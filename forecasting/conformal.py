"""Split-conformal intervals: the quantiles of a forecast set from the residuals its median made on
held-out data, per series and lead-hour bucket.

For a lead bucket b with residuals r_1..r_n (``actual / p50 - 1`` when the target and the forecasts
are positive, so one set of residuals serves series of different levels; ``actual - p50``
otherwise), quantile q < 0.5 of a new forecast is ``p50 * (1 + r_(k))`` with k = floor((n + 1) q)
(the k-th smallest residual; the smallest if k < 1) and q > 0.5 uses k = ceil((n + 1) q) (the
largest if k > n): with exchangeable errors, P(actual < p_q) <= q and P(actual > p_q) <= 1 - q,
so p10-p90 covers at least 80 % (split conformal, Vovk et al.; Lei et al. 2018). p50 is untouched.

Buckets (lead hours): 0-5, 6-11, 12-23, 24-47, 48-71, 72-95, 96-167. With ``by_series`` (the
default) the residuals are grouped per series too (Mondrian conformal: one served forecaster covers
series whose relative errors differ several-fold, e.g. a steady chat class and a bursty vision
class, and one pooled set over-covers the first and under-covers the second): a (series, bucket)
with fewer than ``min_n`` residuals uses that series' residuals of all leads; a series with fewer
than ``min_n`` residuals in all (or one not seen) uses the offsets of all series. :meth:`ConformalCalibrator.refreshed` refits on the
fitted residuals plus newly scored forecasts (the most recent first), so the intervals follow the
errors as actuals arrive. Light module (numpy, pandas).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.spec import QUANTILES, qcol

EDGES: tuple[int, ...] = (0, 6, 12, 24, 48, 72, 96, 168)


def _lead(frame: pd.DataFrame) -> np.ndarray:
    return ((frame["target_time"] - frame["issued_at"]) / pd.Timedelta(hours=1)).to_numpy(int)


def _bucket(lead: np.ndarray, edges: tuple[int, ...]) -> np.ndarray:
    return np.clip(np.searchsorted(np.asarray(edges), lead, side="right") - 1, 0, len(edges) - 2)


def _series(frame: pd.DataFrame) -> list:
    if "series" not in frame:
        return [None] * len(frame)
    return frame["series"].astype(str).tolist()


def conformal_quantile(r: np.ndarray, q: float) -> float:
    """The split-conformal quantile of residuals ``r`` at level ``q`` (see the module docstring)."""
    r = np.sort(np.asarray(r, float))
    n = len(r)
    if n == 0:
        return 0.0
    k = math.floor((n + 1) * q) if q < 0.5 else math.ceil((n + 1) * q)
    return float(r[min(max(k, 1), n) - 1])


@dataclass
class ConformalCalibrator:
    """Per-lead-bucket conformal offsets around p50 (see the module docstring)."""

    edges: tuple[int, ...] = EDGES
    min_n: int = 30
    relative: bool = True
    quantiles: tuple[float, ...] = QUANTILES
    by_series: bool = True
    #: residual sample kept for refreshes: lead hour, residual, issue time (oldest first), series
    leads: list[int] = field(default_factory=list)
    residuals: list[float] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    series: list[str] = field(default_factory=list)
    #: bucket label -> quantile column -> offset (all series: the fallback)
    offsets: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    #: series -> bucket label -> quantile column -> offset (``by_series``)
    series_offsets: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    series_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def fit(self, scored: pd.DataFrame, relative: bool | None = None) -> ConformalCalibrator:
        """Fit on ``scored`` (``issued_at, target_time, p50, actual``; rows without an actual are
        skipped). ``relative`` defaults to: every actual and p50 > 0."""
        s = scored.dropna(subset=["actual"])
        if relative is None:
            relative = bool((s["actual"] > 0).all() and (s["p50"] > 0).all())
        self.relative = relative
        r = self._resid(s)
        self.leads = _lead(s).tolist()
        self.residuals = r.tolist()
        self.issued = s["issued_at"].astype(str).tolist()
        self.series = _series(s)
        self._compute()
        return self

    def _resid(self, s: pd.DataFrame) -> np.ndarray:
        a, p = s["actual"].to_numpy(float), s["p50"].to_numpy(float)
        if self.relative:
            with np.errstate(divide="ignore", invalid="ignore"):
                r = a / p - 1.0
            return np.where(np.isfinite(r), r, 0.0)
        return a - p

    def _labels(self) -> list[str]:
        return [f"{self.edges[i]}-{self.edges[i + 1]}" for i in range(len(self.edges) - 1)]

    def _table(self, r: np.ndarray, b: np.ndarray):
        """Offsets and counts per bucket of residuals ``r`` in buckets ``b`` (a bucket with fewer
        than ``min_n``: all of ``r``), and the offsets of all of ``r``."""
        qs = [q for q in self.quantiles if q != 0.5]
        pooled = {qcol(q): conformal_quantile(r, q) for q in qs}
        offsets, counts = {}, {}
        for i, label in enumerate(self._labels()):
            m = b == i
            counts[label] = int(m.sum())
            if m.sum() >= self.min_n:
                offsets[label] = {qcol(q): conformal_quantile(r[m], q) for q in qs}
            else:
                offsets[label] = dict(pooled)
        return offsets, counts, pooled

    def _compute(self) -> None:
        lead = np.asarray(self.leads, int)
        r = np.asarray(self.residuals, float)
        b = _bucket(lead, self.edges) if len(lead) else np.array([], int)
        self.offsets, self.counts, _ = self._table(r, b)
        self.series_offsets, self.series_counts = {}, {}
        if not self.by_series or len(self.series) != len(r):
            return
        ser = np.asarray(self.series, object)
        for name in sorted({v for v in self.series if v is not None}):
            m = ser == name
            if m.sum() < self.min_n:
                continue  # too few of its own: the all-series offsets
            # a thin bucket of the series: the series' residuals of all leads
            own, counts, _ = self._table(r[m], b[m])
            self.series_offsets[name] = own
            self.series_counts[name] = counts

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Quantiles of ``frame`` replaced by p50 + the conformal offsets of each row's lead
        bucket (an offset on the wrong side of p50 is taken as 0); p50 unchanged, quantiles
        ordered."""
        if not self.offsets:
            return frame
        out = frame.copy()
        b = _bucket(_lead(out), self.edges)
        labels = list(self.offsets)
        p50 = out["p50"].to_numpy(float)
        ser = (
            out["series"].astype(str).to_numpy()
            if self.series_offsets and "series" in out
            else np.full(len(out), None, object)
        )
        for q in self.quantiles:
            c = qcol(q)
            if q == 0.5:
                continue
            table = {None: np.array([self.offsets[lb][c] for lb in labels])}
            for name, offs in self.series_offsets.items():
                table[name] = np.array([offs[lb][c] for lb in labels])
            off = np.empty(len(out))
            for name in set(ser.tolist()):
                m = ser == name
                off[m] = table.get(name, table[None])[b[m]]
            # the interval always holds p50 (a biased residual sample could put p25 above it)
            off = np.minimum(off, 0.0) if q < 0.5 else np.maximum(off, 0.0)
            out[c] = p50 * (1.0 + off) if self.relative else p50 + off
        cols = [qcol(q) for q in sorted(self.quantiles)]
        out[cols] = np.sort(out[cols].to_numpy(float), axis=1)
        return out

    def refreshed(
        self, scored: pd.DataFrame, max_per_bucket: int = 2000, keep_days: float | None = None
    ) -> ConformalCalibrator:
        """A copy fitted on the kept residuals plus those of ``scored`` (rows with an actual; issued
        after the kept ones, e.g. stored forecasts after training), the most recent
        ``max_per_bucket`` per bucket and, with ``keep_days``, only those issued within that many
        days of the newest (a sliding window that forgets the validation period); ``self`` when
        ``scored`` has no actual."""
        s = scored.dropna(subset=["actual"])
        if s.empty:
            return self
        n_old = len(self.residuals)
        old = pd.DataFrame(
            {
                "lead": self.leads,
                "r": self.residuals,
                "issued": self.issued,
                "series": self.series if len(self.series) == n_old else [None] * n_old,
            }
        )
        new = pd.DataFrame(
            {
                "lead": _lead(s),
                "r": self._resid(s),
                "issued": s["issued_at"].astype(str).to_numpy(),
                "series": _series(s),
            }
        )
        both = pd.concat([old, new], ignore_index=True)
        both["_t"] = pd.to_datetime(both["issued"], utc=True)
        both = both.sort_values("_t", kind="stable")
        if keep_days is not None:
            both = both[both["_t"] >= both["_t"].max() - pd.Timedelta(days=keep_days)]
        both["_b"] = _bucket(both["lead"].to_numpy(int), self.edges)
        both["_s"] = both["series"].astype(str)
        both = both.groupby(["_s", "_b"], group_keys=False).tail(max_per_bucket).sort_values("_t")
        c = ConformalCalibrator(
            edges=self.edges,
            min_n=self.min_n,
            relative=self.relative,
            quantiles=self.quantiles,
            by_series=self.by_series,
            leads=both["lead"].astype(int).tolist(),
            residuals=both["r"].astype(float).tolist(),
            issued=both["issued"].tolist(),
            series=[None if v is None else str(v) for v in both["series"]],
        )
        c._compute()
        return c

    def summary(self) -> dict:
        """Per bucket (all series, and per series with ``by_series``): residuals used and the
        p10/p90 offsets (relative or absolute)."""

        def table(offsets, counts):
            return {
                k: {"n": counts.get(k, 0), "p10": v.get("p10"), "p90": v.get("p90")}
                for k, v in offsets.items()
                if counts.get(k, 0)
            }

        out = {"relative": self.relative, "buckets": table(self.offsets, self.counts)}
        if self.series_offsets:
            out["series"] = {
                n: table(o, self.series_counts.get(n, {})) for n, o in self.series_offsets.items()
            }
        return out

    def to_dict(self) -> dict:
        return {
            "edges": list(self.edges),
            "min_n": self.min_n,
            "relative": self.relative,
            "quantiles": list(self.quantiles),
            "by_series": self.by_series,
            "leads": self.leads,
            "residuals": self.residuals,
            "issued": self.issued,
            "series": self.series,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ConformalCalibrator:
        c = cls(
            edges=tuple(d["edges"]),
            min_n=d["min_n"],
            relative=d["relative"],
            quantiles=tuple(d["quantiles"]),
            by_series=bool(d.get("by_series", False)),  # saved before per-series groups: pooled
            leads=list(d["leads"]),
            residuals=list(d["residuals"]),
            issued=list(d["issued"]),
            series=list(d.get("series", [])),
        )
        c._compute()
        return c


__all__ = ["ConformalCalibrator", "conformal_quantile", "EDGES"]
