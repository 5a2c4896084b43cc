"""Forecast glue: warehouse history -> :mod:`forecasting` -> ``forecasts.*``; no Dagster here.

Two targets, one served forecaster each (:class:`forecasting.forecaster.ServedForecaster`: a global
TFT over all series of the target, with the ridge and GBM regressions the validation period chose,
recent-error correction and conformal intervals; :func:`served_forecaster`). The same object is
what ``gridflex backtest`` scores and ``gridflex bench forecast-dacf`` measures.

- ``carbon``: one series per *site* (its grid zone's intensity, gCO2eq/kWh, the fleet's planned signal).
  Known-future inputs: the weather **forecast** for the site (wind at 100 m, shortwave radiation, cloud
  cover) as issued — for every hour the latest forecast issued at or before it; for the hours being
  forecast, the latest issued at or before the issue time. Observed weather is never used.
- ``load``: one series per inference class (requests/h). Calendar and lags only.

A model is *usable* when its row in ``forecasts.models`` has status ``ok``; the newest usable one is in
use, so a failed retraining leaves the previous model serving. When no usable model is fresh (its
training data ends more than ``max_age`` before the issue time) or inference fails, the forecast falls
back to **persistence** (same hour yesterday) and is stored with ``degraded = true`` and
``model = 'persistence'``: the plan says so too.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forecasting.spec import SeriesSpec, TrainConfig
from mpc.fleet import Fleet
from warehouse import Warehouse

HOUR = pd.Timedelta(hours=1)
CARBON_WEATHER = ("wind_speed_100m", "shortwave_radiation", "cloud_cover")
TABLE = {"carbon": "forecasts.carbon", "load": "forecasts.load"}
#: a model whose training data ended longer ago than this before the issue time is stale (degraded mode)
DEFAULT_MAX_AGE = pd.Timedelta(days=8)
#: days of past errors the served forecast's recent-error correction reads (forecasting.ensemble)
ENSEMBLE_DAYS = 14
#: hours between validation issues: the pipeline issues every hour, and a 3-day validation period
#: with one issue a day left ~50 residuals per lead bucket for the conformal intervals
VAL_EVERY_H = 6
log = logging.getLogger(__name__)


#: weather sources that publish forecasts (the carbon model's known-future inputs); a fleet whose
#: weather is imported observations only gets a carbon model without weather inputs
FORECASTING_WEATHER = ("demo", "openmeteo")


def spec_for(
    target: str, horizon: int, fleet: Fleet | None = None, *, weather: bool | None = None
) -> SeriesSpec:
    """The model spec of each target. Encoder 3 days + a weekly lag: fits the demo's three weeks.
    The carbon model reads weather forecasts when the fleet's weather source has them (``weather``
    overrides: the backtest's weather files are observations, so it passes False)."""
    lag = max(168, horizon)
    if target == "carbon":
        if weather is None:
            weather = fleet is None or fleet.sources.weather in FORECASTING_WEATHER
        return SeriesSpec(
            known_reals=CARBON_WEATHER if weather else (),
            encoder_length=72,
            horizon=horizon,
            target_lags=(lag,),
        )
    if target == "load":
        return SeriesSpec(encoder_length=72, horizon=horizon, target_lags=(lag,))
    raise ValueError(f"unknown forecast target {target!r} (carbon | load)")


def served_forecaster(spec: SeriesSpec, config: TrainConfig, workdir: str | Path):
    """The forecaster the pipeline serves (unfitted): the TFT (in every combination tried), the
    ridge and the GBM. :meth:`~forecasting.forecaster.ServedForecaster.fit` chooses the
    combination and the correction on the validation period (an issue every :data:`VAL_EVERY_H` h
    from its first hour), serves persistence instead when that combination loses to it there
    (said in ``served``), and fits the conformal intervals on the served forecast's residuals.
    Used by :func:`train_model` and by the backtest's TFT policy."""
    from forecasting.forecaster import RegressionForecaster, ServedForecaster, TFTForecaster

    members = {
        "tft": TFTForecaster(spec, config, workdir=Path(workdir)),
        "ridge": RegressionForecaster(spec, "ridge"),
        "gbm": RegressionForecaster(spec, "gbm"),
    }
    return ServedForecaster(
        members,
        must_include=("tft",),
        days=ENSEMBLE_DAYS,
        val_every_h=VAL_EVERY_H,
        fallback_to_persistence=True,
    )


def train_config(profile: str) -> TrainConfig:
    if profile == "fast":
        return TrainConfig.fast(progress_bar=False)
    if profile == "tiny":
        return TrainConfig.tiny()
    if profile == "full":
        return TrainConfig(progress_bar=False)
    raise ValueError(f"unknown training profile {profile!r} (tiny | fast | full)")


# ----------------------------------------------------------------------------------------------
# history frames read from the warehouse


def carbon_history(wh: Warehouse, fleet: Fleet, start, end) -> pd.DataFrame:
    """``series`` (site), ``ts``, ``value`` for hours ``[start, end)`` + the weather-forecast covariates."""
    series_site = {fleet.carbon_series(s): s for s in fleet.sites}
    df = wh.query(
        "select series as zone_series, ts, value from staging.carbon_best "
        "where series in ? and ts >= ? and ts < ? order by ts",
        [list(series_site), _py(start), _py(end)],
    )
    frames = []
    for zs, site in series_site.items():
        part = df[df.zone_series == zs][["ts", "value"]].assign(series=site)
        frames.append(part)
    hist = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["series", "ts", "value"])
    )
    cov = weather_as_known(wh, list(fleet.sites), start, end)
    return hist.merge(cov, on=["series", "ts"], how="left")[
        ["series", "ts", "value", *CARBON_WEATHER]
    ]


def weather_as_known(wh: Warehouse, sites: list[str], start, end, issued_by=None) -> pd.DataFrame:
    """Weather forecasts as they were known: for each (site, hour) in ``[start, end)`` the value from the
    latest issue at or before ``issued_by`` (default: at or before the hour itself)."""
    cols = ", ".join(f"arg_max({c}, issued_at) as {c}" for c in CARBON_WEATHER)
    cond = "issued_at <= ts" if issued_by is None else "issued_at <= ?"
    params = [sites, _py(start), _py(end)] + ([] if issued_by is None else [_py(issued_by)])
    return wh.query(
        f"select location as series, ts, {cols} from staging.weather_forecast "
        f"where location in ? and ts >= ? and ts < ? and {cond} group by location, ts",
        params,
    )


def future_covariates(
    wh: Warehouse, fleet: Fleet, target: str, issues, horizon: int, *, stand_in_before=None
):
    """Known-future inputs for forecasts issued at ``issues``: weather forecasts as known at each issue
    time, keyed (series, issued_at, ts). ``None`` for targets without known-future inputs.

    ``stand_in_before``: for target hours before this time that no forecast issued by the issue time
    covers (history bootstrapped from the historical-forecast endpoint keeps no forecasts *as issued*,
    only the short-lead value of each hour), use the latest forecast issued at or before the hour
    itself instead — what is known *now* about hours that have passed, never about the future. The
    count is logged: validation on such stand-ins flatters accuracy a little."""
    spec = spec_for(target, horizon, fleet)
    if target != "carbon" or not spec.known_reals:
        return None
    parts = []
    stand_in = 0
    for t in pd.DatetimeIndex(issues):
        w = weather_as_known(wh, list(fleet.sites), t, t + horizon * HOUR, issued_by=t)
        if stand_in_before is not None:
            full = pd.MultiIndex.from_product(
                [list(fleet.sites), pd.date_range(t, periods=horizon, freq="h", tz="UTC")],
                names=["series", "ts"],
            )
            have = pd.MultiIndex.from_frame(w[["series", "ts"]]) if len(w) else full[:0]
            need = full.difference(have)
            need = need[need.get_level_values("ts") < pd.Timestamp(stand_in_before)]
            if len(need):
                latest = weather_as_known(wh, list(fleet.sites), t, t + horizon * HOUR)
                extra = latest.set_index(["series", "ts"]).reindex(need).dropna().reset_index()
                stand_in += len(extra)
                w = pd.concat([w, extra], ignore_index=True)
        parts.append(w.assign(issued_at=t))
    if stand_in:
        log.info(
            "%d weather covariate value(s) of past hours stood in for forecasts not recorded "
            "as issued (latest forecast at or before the hour)",
            stand_in,
        )
    return pd.concat(parts, ignore_index=True)


def load_history(wh: Warehouse, fleet: Fleet, start, end) -> pd.DataFrame:
    return wh.query(
        "select series, ts, sum(value) as value from staging.load "
        "where series in ? and ts >= ? and ts < ? group by series, ts order by series, ts",
        [list(fleet.classes), _py(start), _py(end)],
    )


def history(wh: Warehouse, fleet: Fleet, target: str, start, end) -> pd.DataFrame:
    return (carbon_history if target == "carbon" else load_history)(wh, fleet, start, end)


def _py(t):
    return pd.Timestamp(t).to_pydatetime()


# ----------------------------------------------------------------------------------------------
# training


def contiguous_tail(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, int]:
    """Per series, the rows after its last gap (a missing hour, or a NaN in ``columns``): the TFT
    needs gap-free series, and a real source has holes. Returns the frame and how many rows it
    left out."""
    parts, dropped = [], 0
    for _, g in frame.sort_values(["series", "ts"]).groupby("series", sort=True):
        ok = g[[c for c in columns if c in g]].notna().all(axis=1).to_numpy()
        step = g["ts"].diff().ne(HOUR).to_numpy()
        step[0] = False
        breaks = (~ok) | step
        cut = 0
        idx = breaks.nonzero()[0]
        if len(idx):
            last = idx[-1]
            cut = last + 1 if not ok[last] else last
        parts.append(g.iloc[cut:])
        dropped += cut
    out = pd.concat(parts, ignore_index=True) if parts else frame
    return out, dropped


@dataclass
class TrainOutcome:
    model_id: str
    status: str
    checkpoint: str | None
    metrics: dict
    message: str | None = None


def train_model(
    wh: Warehouse,
    fleet: Fleet,
    target: str,
    out_root: str | Path,
    *,
    train_end,
    history_days: int = 90,
    profile: str = "fast",
) -> TrainOutcome:
    """Fit the ``target``'s served forecaster (:func:`served_forecaster`) on hours before
    ``train_end``, save it (one directory, manifest ``forecaster.json``) and register it in
    ``forecasts.models``.

    Its validation period is the last ``val_hours`` of training data; the served forecast's MAE and
    persistence's on the same validation forecasts are stored beside it (``val_mae``,
    ``val_mae_persistence``), each member's alone in the manifest. On failure a ``failed`` row is
    written (with the message) and the exception is re-raised: the previous ``ok`` model stays in
    use.
    """
    train_end = pd.Timestamp(train_end)
    model_id = f"{target}-tft-{train_end:%Y%m%dT%H}-{uuid.uuid4().hex[:6]}"
    spec = spec_for(target, fleet.planning.horizon_h, fleet)
    cfg = train_config(profile)
    start = train_end - pd.Timedelta(days=history_days)
    t0 = time.perf_counter()
    try:
        frame, trimmed = contiguous_tail(
            history(wh, fleet, target, start, train_end), ["value", *spec.known_reals]
        )
        if frame.empty:
            raise ValueError(f"no {target} history in the warehouse before {train_end}")
        if trimmed:
            log.info(
                "%s: trained on the hours after the last gap (%d hour(s) before it left out)",
                model_id,
                trimmed,
            )
        out = Path(out_root) / target / model_id
        log.info(
            "training the %s model on %d series x %d hours (%s profile)",
            target,
            frame["series"].nunique() if "series" in frame else 1,
            frame["ts"].nunique(),
            profile,
        )
        served = served_forecaster(spec, cfg, out / "_train")
        served.fit(
            frame,
            val_hours=cfg.val_hours,
            future_covariates=lambda issues: future_covariates(
                wh, fleet, target, issues, spec.horizon, stand_in_before=train_end
            ),
        )
        served.save(out)
        shutil.rmtree(out / "_train", ignore_errors=True)  # save copied the checkpoints
        metrics = {
            **served_metrics(served),
            "train_seconds": round(time.perf_counter() - t0, 1),
            "rows": len(frame),
            "rows_left_out_before_gaps": trimmed,
        }
        _register(wh, model_id, target, str(out), train_end, metrics, "ok", None)
        return TrainOutcome(model_id, "ok", str(out), metrics)
    except Exception as exc:
        _register(
            wh,
            model_id,
            target,
            None,
            train_end,
            {"train_seconds": round(time.perf_counter() - t0, 1)},
            "failed",
            f"{type(exc).__name__}: {exc}",
        )
        raise


def served_metrics(served) -> dict:
    """What a person reads about a fitted served forecaster: what is served, its validation MAE
    and MAPE next to persistence's on the same forecasts, each member's alone, the TFT's epochs."""
    v = served.validation["scores"]
    tft = served.fitted_members.get("tft") or served.members.get("tft")
    out = {
        "served": served.description,
        "val_mae": float(v["served"]["mae"]),
        "val_mae_persistence": float(v["persistence"]["mae"]),
        "val_mape": float(v["served"]["mape"]),
        "val_mape_persistence": float(v["persistence"]["mape"]),
        "val_coverage_p10_p90": float(v["served"]["coverage_p10_p90"]),
        "val_issues": int(served.validation["issues"]),
        "epochs": int(tft.metrics["epochs"][0]) if tft is not None else 0,
    }
    for n, s in v.items():
        if n not in ("served", "persistence"):
            out[f"val_mae_{n}"] = float(s["mae"])
            out[f"val_mape_{n}"] = float(s["mape"])
    return out


def _register(wh, model_id, target, path, train_end, metrics, status, message) -> None:
    row = pd.DataFrame(
        [
            {
                "model_id": model_id,
                "target": target,
                "checkpoint_path": path,
                "trained_at": pd.Timestamp.now(tz="UTC"),
                "train_end": train_end,
                "epochs": metrics.get("epochs"),
                "train_seconds": metrics.get("train_seconds"),
                "val_mae": metrics.get("val_mae"),
                "val_mae_persistence": metrics.get("val_mae_persistence"),
                "status": status,
                "message": (message or "")[:2000] or None,
            }
        ]
    )
    wh.replace_window("forecasts.models", row)


def usable_model(wh: Warehouse, target: str, issued_at, max_age: pd.Timedelta) -> dict | None:
    """The newest ``ok`` model trained on data ending at or before ``issued_at`` and not older than
    ``max_age``; ``None`` means degraded mode."""
    df = wh.query(
        "select * from forecasts.models where target = ? and status = 'ok' and train_end <= ? "
        "order by train_end desc, trained_at desc limit 1",
        [target, _py(issued_at)],
    )
    if df.empty:
        return None
    row = df.iloc[0].to_dict()
    if pd.Timestamp(issued_at) - pd.Timestamp(row["train_end"]) > max_age:
        return None
    return row


_MODEL_CACHE: dict[str, object] = {}


def load_served(path: str):
    """The forecaster saved in a model directory (:func:`forecasting.forecaster.load_forecaster`),
    cached per process."""
    from forecasting.forecaster import load_forecaster

    if path not in _MODEL_CACHE:
        _MODEL_CACHE[path] = load_forecaster(path)
    return _MODEL_CACHE[path]


#: the columns of forecasts.carbon / forecasts.load, in order
FORECAST_COLUMNS = (
    "issued_at",
    "target_time",
    "series",
    "model",
    "p10",
    "p50",
    "p90",
    "degraded",
    "degraded_reason",
)
#: days of stored forecasts vs actuals that refresh the served forecaster's conformal intervals
RECALIBRATION_DAYS = 14


def history_hours(served) -> int:
    """Hours of history :func:`serve` reads before an issue time: the forecaster's own need, plus
    the days its recent-error correction recomputes, plus two days of slack."""
    back = served.days if getattr(served, "strength", 0) else 0
    return served.history_needed + 24 * back + 48


def stored_scored(wh: Warehouse, target: str, issued_at) -> pd.DataFrame:
    """The served forecasts of ``target`` stored over the last :data:`RECALIBRATION_DAYS` days
    whose actuals have arrived before ``issued_at`` (target hours before it), whichever daily model
    served them (not the persistence stand-ins of degraded hours): what refreshes the intervals.
    A model's own forecasts alone would leave a model retrained daily calibrated on its validation
    residuals only, which under-covered in operation (replay 2022-04: carbon p10-p90 0.62)."""
    issued_at = pd.Timestamp(issued_at)
    return wh.query(
        "select issued_at, target_time, series, p50, actual from marts.forecast_accuracy "
        "where target = ? and not degraded and model <> 'persistence' and target_time < ? "
        "and issued_at >= ?",
        [target, _py(issued_at), _py(issued_at - pd.Timedelta(days=RECALIBRATION_DAYS))],
    )


def serve(served, hist: pd.DataFrame, wh, fleet, target, issued_at, scored=None) -> pd.DataFrame:
    """The served forecast for one issue time: ``served.predict`` on ``hist`` with the weather
    forecasts as known at each issue it recomputes (:meth:`issues_needed`), its intervals refreshed
    on ``scored`` (stored forecasts vs actuals, :func:`stored_scored`) when given."""
    issued_at = pd.Timestamp(issued_at)
    # a model directory from before the served forecaster (a TFT checkpoint alone) loads as the
    # TFT: it forecasts the issue itself only
    issues_needed = getattr(served, "issues_needed", None)
    need = issues_needed([issued_at], hist.ts.min()) if issues_needed else [issued_at]
    future = future_covariates(wh, fleet, target, need, served.horizon, stand_in_before=issued_at)
    if scored is not None and hasattr(served, "recalibrated"):
        served = served.recalibrated(scored)
    return served.predict(hist, [issued_at], future)


# ----------------------------------------------------------------------------------------------
# issuing forecasts


@dataclass
class IssuedForecast:
    frame: pd.DataFrame  # issued_at, target_time, series, model, p10, p50, p90, degraded
    model: str
    degraded: bool
    reason: str | None
    seconds: float


class NoHistoryError(RuntimeError):
    """A forecast with nothing to start from: the message says what to run."""


def history_status(hist: pd.DataFrame, series: list[str], issued_at, window_h: int) -> dict:
    """Per series: last hour stored before ``issued_at``, hours behind (0 = the hour just before the
    issue is there) and hours missing in the ``window_h`` hours before the issue."""
    issued_at = pd.Timestamp(issued_at)
    out = {}
    for s in series:
        ts = hist.loc[(hist.series == s) & hist.value.notna(), "ts"]
        last = ts.max() if len(ts) else None
        lo = max(issued_at - pd.Timedelta(hours=window_h), ts.min()) if len(ts) else issued_at
        recent = ts[ts >= lo]
        span = int((issued_at - lo) / HOUR)  # hours from the first usable one (not before the data)
        out[s] = {
            "last": last,
            "behind_h": None if last is None else int((issued_at - HOUR - last) / HOUR),
            "missing_h": max(
                0,
                span
                - int(recent.nunique())
                - (0 if last is None else int((issued_at - HOUR - last) / HOUR)),
            ),
        }
    return out


def _no_history_message(fleet: Fleet, target: str, missing: list[str], issued_at) -> str:
    what = "carbon intensity" if target == "carbon" else "inference demand"
    if target == "carbon":
        src = fleet.sources.carbon
        how = {
            "electricitymaps_csv": "import an Electricity Maps export: `gridflex import em-csv FILE...`",
            "demo": "run the ingest for earlier hours (`gridflex bootstrap --days 30`)",
        }.get(src, f"fetch history from {src}: `gridflex bootstrap --fleet FLEET --days 30`")
    else:
        how = (
            "import telemetry: `gridflex import load FILE --site SITE --series CLASS`"
            if fleet.sources.load == "csv"
            else "run the ingest for earlier hours (`gridflex bootstrap --days 30`)"
        )
    return (
        f"no {what} stored before {pd.Timestamp(issued_at):%Y-%m-%d %H:%M} UTC for "
        f"{', '.join(missing)}: nothing to forecast from, not even persistence. To start, {how}; "
        "then run this hour again."
    )


def issue_forecast(
    wh: Warehouse,
    fleet: Fleet,
    target: str,
    issued_at,
    *,
    max_age: pd.Timedelta = DEFAULT_MAX_AGE,
    use_model: bool = True,
) -> IssuedForecast:
    """Forecast ``target`` for ``[issued_at, issued_at + H)`` from what the warehouse knew before
    ``issued_at``: the model when a fresh one exists (and ``use_model``) and its inputs are complete —
    its served forecaster (:func:`serve`: the members chosen at training, intervals refreshed on the
    stored forecasts whose actuals have arrived); otherwise **persistence of the
    last known values** (:func:`forecasting.baselines.last_known`, which copes with lag and gaps),
    flagged ``degraded`` with the reason (which series, how many hours behind). Raises
    :class:`NoHistoryError` (saying what to run) when a series has no value at all to start from."""
    from forecasting.baselines import last_known

    t0 = time.perf_counter()
    issued_at = pd.Timestamp(issued_at)
    H = fleet.planning.horizon_h
    spec = spec_for(target, H, fleet)
    row = usable_model(wh, target, issued_at, max_age) if use_model else None
    served, load_error = None, None
    if row is not None:
        try:
            served = load_served(row["checkpoint_path"])
        except Exception as exc:  # noqa: BLE001 - degrade, but say why
            load_error = f"model {row['model_id']} failed to load: {type(exc).__name__}: {exc}"
    back = history_hours(served) if served is not None else spec.history_needed + 48
    hist = history(wh, fleet, target, issued_at - pd.Timedelta(hours=back), issued_at)
    series = list(fleet.sites) if target == "carbon" else list(fleet.classes)
    status = history_status(hist, series, issued_at, spec.history_needed)
    empty = [s for s in series if status[s]["last"] is None]
    if empty:
        msg = _no_history_message(fleet, target, empty, issued_at)
        if target == "carbon":
            from pipelines.lib.checks import factor_mismatch

            mismatch = factor_mismatch(wh, fleet, [fleet.carbon_series(s) for s in empty])
            msg += "".join(f" Note: {m}." for m in mismatch)
        raise NoHistoryError(msg)
    behind = {s: v for s, v in status.items() if v["behind_h"] > 0}
    holes = {s: v["missing_h"] for s, v in status.items() if v["missing_h"] > 0 and s not in behind}
    reasons = []
    if behind:
        reasons.append(
            f"{target} data behind: "
            + ", ".join(
                f"{s} {v['behind_h']} h (last {v['last']:%Y-%m-%d %H:%M})"
                for s, v in behind.items()
            )
        )
    if holes:
        reasons.append(
            f"{target} data has gaps: " + ", ".join(f"{s} {n} h missing" for s, n in holes.items())
        )
    if not use_model:
        reasons.append("persistence requested")
    elif row is None:
        reasons.append(f"no usable {target} model trained within {max_age} before {issued_at}")
    elif load_error:
        reasons.append(load_error)
    out, name = None, "persistence"
    if served is not None and not behind and not holes:
        try:
            if target == "carbon" and spec.known_reals:
                hist = hist.dropna(subset=list(spec.known_reals))
            scored = stored_scored(wh, target, issued_at)
            out = serve(served, hist, wh, fleet, target, issued_at, scored)
            name = row["model_id"]
        except Exception as exc:  # noqa: BLE001 - degrade, but say why
            reasons.append(f"model {row['model_id']} failed: {type(exc).__name__}: {exc}")
            out = None
    if out is None:
        out = last_known(hist[["series", "ts", "value"]], issued_at, H)
        name = "persistence"
    reason = "; ".join(reasons) or None
    reason_text = "; ".join(reasons) or None
    frame = out.assign(
        model=name,
        degraded=name == "persistence",
        degraded_reason=reason_text if name == "persistence" else None,
    )[list(FORECAST_COLUMNS)]
    frame["p50"] = frame["p50"].clip(lower=0)
    frame["p10"] = frame[["p10", "p50"]].min(axis=1).clip(lower=0)
    frame["p90"] = frame[["p90", "p50"]].max(axis=1)
    degraded = name == "persistence"
    return IssuedForecast(
        frame, name, degraded, reason if degraded else None, time.perf_counter() - t0
    )


def store_forecast(wh: Warehouse, target: str, fc: IssuedForecast):
    """Replace this issue's rows (all models) — a re-run of the same hour is idempotent, and a later
    issue never touches an earlier one."""
    t = fc.frame["issued_at"].iloc[0]
    return wh.replace_window(TABLE[target], fc.frame, window=(t, t + HOUR), ts_column="issued_at")
