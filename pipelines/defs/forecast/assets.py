"""Forecast assets: trained TFT models (retrained on a schedule) and hourly forecasts stored with their
issue time. When no fresh model exists the hourly forecast degrades to persistence and says so."""

import dagster as dg
import pandas as pd

from pipelines.defs.common import hour_window, preview
from pipelines.defs.ingest.assets import carbon_intensity, inference_demand, weather
from pipelines.defs.partitions import HOURLY, PER_HOUR
from pipelines.defs.resources import FleetResource, ModelStoreResource, WarehouseResource
from pipelines.lib import forecast as fc

HOUR = pd.Timedelta(hours=1)


class TrainConfig(dg.Config):
    """Which data the model may see. ``train_end`` (ISO hour, UTC): train on hours before it; empty =
    everything stored. Backtests and the demo set it so forecasts are scored on unseen hours."""

    train_end: str | None = None
    history_days: int = 90


def _train(
    context, target: str, config: TrainConfig, warehouse, fleet, models
) -> dg.MaterializeResult:
    wh, f = warehouse.get(), fleet.load()
    if config.train_end:
        end = pd.Timestamp(config.train_end)
        end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    else:
        if target == "carbon":
            keys = sorted({f.carbon_series(s) for s in f.sites})
            last = wh.query(
                "select max(ts) t from staging.carbon_intensity where series in ?", [keys]
            ).t[0]
        else:
            last = wh.query(
                "select max(ts) t from staging.load where series in ?", [sorted(f.classes)]
            ).t[0]
        if last is None or pd.isna(last):
            raise dg.Failure(f"no {target} data in the warehouse yet: materialize the ingest first")
        end = pd.Timestamp(last) + HOUR
    context.log.info(f"training {target} TFT on data before {end} ({models.profile} profile)")
    out = fc.train_model(
        wh,
        f,
        target,
        models.directory,
        train_end=end,
        history_days=config.history_days,
        profile=models.profile,
    )
    m = out.metrics
    unit = "g/kWh" if target == "carbon" else "req/h"
    members = [
        k.removeprefix("val_mape_")
        for k in m
        if k.startswith("val_mape_") and k != "val_mape_persistence"
    ]
    ratio = m["val_mae"] / m["val_mae_persistence"] if m["val_mae_persistence"] else float("nan")
    return dg.MaterializeResult(
        metadata={
            "model_id": out.model_id,
            "train_end": str(end),
            # what is served (forecasting.forecaster.ServedForecaster) and how it validated, next
            # to persistence on the same validation forecasts and each member alone
            "served": m["served"],
            f"val_mae ({unit})": round(m["val_mae"], 1),
            f"val_mae_persistence ({unit})": round(m["val_mae_persistence"], 1),
            "val_mape (%)": round(m["val_mape"], 2),
            "val_mape_persistence (%)": round(m["val_mape_persistence"], 2),
            "mae_vs_persistence": dg.MetadataValue.float(round(ratio, 3)),
            "val_coverage_p10_p90": round(m["val_coverage_p10_p90"], 2),
            "members_val_mape (%)": dg.MetadataValue.json(
                {k: round(m[f"val_mape_{k}"], 2) for k in members}
            ),
            f"members_val_mae ({unit})": dg.MetadataValue.json(
                {k: round(m[f"val_mae_{k}"], 1) for k in members if f"val_mae_{k}" in m}
            ),
            "epochs": m["epochs"],
            "train_seconds": round(m["train_seconds"], 1),
            "rows": m["rows"],
            "checkpoint": dg.MetadataValue.path(out.checkpoint),
        }
    )


@dg.asset(
    group_name="forecast",
    kinds={"pytorch"},
    deps=[carbon_intensity, weather],
    description="Served carbon-intensity forecaster per site: a Temporal Fusion Transformer (weather "
    "forecasts as known-future inputs) with the regressions the validation period chose and "
    "conformal intervals. A failed training leaves the previous model in use.",
)
def carbon_model(
    context: dg.AssetExecutionContext,
    config: TrainConfig,
    warehouse: WarehouseResource,
    fleet: FleetResource,
    models: ModelStoreResource,
) -> dg.MaterializeResult:
    return _train(context, "carbon", config, warehouse, fleet, models)


@dg.asset(
    group_name="forecast",
    kinds={"pytorch"},
    deps=[inference_demand],
    description="Served inference-demand forecaster per class (TFT + validated regressions, "
    "conformal intervals).",
)
def load_model(
    context: dg.AssetExecutionContext,
    config: TrainConfig,
    warehouse: WarehouseResource,
    fleet: FleetResource,
    models: ModelStoreResource,
) -> dg.MaterializeResult:
    return _train(context, "load", config, warehouse, fleet, models)


def _issue(context, target: str, warehouse, fleet, models):
    wh, f = warehouse.get(), fleet.load()
    start, end = hour_window(context)
    max_age = pd.Timedelta(hours=models.max_model_age_hours)
    hours = pd.date_range(start, end - HOUR, freq="h", tz="UTC")
    last, degraded, issued_frames = None, 0, []
    for i, t in enumerate(hours):
        try:
            issued = fc.issue_forecast(wh, f, target, t, max_age=max_age)
        except fc.NoHistoryError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        fc.store_forecast(wh, target, issued)
        degraded += issued.degraded
        issued_frames.append(issued.frame)
        if issued.degraded:
            context.log.warning(
                f"{target} forecast at {t:%Y-%m-%d %H:%M}: DEGRADED to persistence ({issued.reason})"
            )
        if len(hours) > 1 and (i + 1) % 24 == 0:
            context.log.info(f"{target} forecasts: {i + 1}/{len(hours)} issue hours")
        last = issued
    acc = wh.query(
        "select avg(abs_error) mae, count(*) n, avg(in_p10_p90::int) cov, "
        "avg(day_rank_corr) rank_corr, avg(window_regret) regret from marts.forecast_accuracy "
        "where target = ? and issued_at >= ? and issued_at < ?",
        [target, start.to_pydatetime(), end.to_pydatetime()],
    )
    md = {
        "issued_hours": len(hours),
        "model": last.model,
        "degraded": bool(last.degraded),
        "degraded_hours": int(degraded),
        "degraded_reason": last.reason or "-",
        "dagster/row_count": int(sum(len(x) for x in issued_frames)),
        "seconds_last_issue": round(last.seconds, 2),
        "preview": preview(last.frame[["target_time", "series", "p10", "p50", "p90"]]),
    }
    if acc.n[0]:
        md["mae_so_far"] = round(float(acc.mae[0]), 2)
        md["p10_p90_coverage_so_far"] = round(float(acc["cov"][0]), 3)
        md["scored_points"] = int(acc.n[0])
        if not pd.isna(acc.rank_corr[0]):
            md["day_rank_corr_so_far"] = round(float(acc.rank_corr[0]), 3)
            md["window_regret_so_far"] = round(float(acc.regret[0]), 2)
    yield dg.MaterializeResult(metadata=md)
    yield _complete(target, f, pd.concat(issued_frames, ignore_index=True))


def _complete(target: str, fleet, frame: pd.DataFrame) -> dg.AssetCheckResult:
    """The issues just made cover every series for the whole horizon, quantiles ordered and finite."""
    n_series = len(fleet.sites) if target == "carbon" else len(fleet.classes)
    want = n_series * fleet.planning.horizon_h
    per = frame.groupby("issued_at").agg(n=("p50", "size"), s=("series", "nunique"))
    bad = (
        ~((frame.p10 <= frame.p50) & (frame.p50 <= frame.p90)) | frame.p50.isna() | (frame.p50 < 0)
    )
    short = per[(per.n != want) | (per.s != n_series)]
    ok = short.empty and not bad.any()
    return dg.AssetCheckResult(
        check_name=f"{target}_forecast_complete",
        passed=bool(ok),
        metadata={
            "issues": len(per),
            "rows_per_issue": want,
            "incomplete_issues": ", ".join(f"{t:%Y-%m-%d %H:%M}" for t in short.index[:10])
            or "none",
            "invalid_rows": int(bad.sum()),
            "degraded_rows": int(frame.degraded.sum()),
        },
    )


ISSUE = dict(
    partitions_def=HOURLY,
    backfill_policy=PER_HOUR,
    group_name="forecast",
    kinds={"pytorch", "duckdb"},
)


def _complete_spec(target: str, asset: str) -> dg.AssetCheckSpec:
    what = "site" if target == "carbon" else "class"
    return dg.AssetCheckSpec(
        f"{target}_forecast_complete",
        asset=asset,
        blocking=True,
        description=f"Every issue of the partition covers every {what} for the whole horizon with "
        "ordered, finite, non-negative quantiles; a failed check blocks planning",
    )


@dg.asset(
    **ISSUE,
    deps=[carbon_model, carbon_intensity, weather],
    description="Carbon-intensity forecasts (p10/p50/p90) for the next H hours, issued at the "
    "partition hour from data known before it (persistence of the last known values, flagged "
    "degraded, when the model or its inputs are missing) -> forecasts.carbon",
    check_specs=[_complete_spec("carbon", "carbon_forecast")],
)
def carbon_forecast(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    fleet: FleetResource,
    models: ModelStoreResource,
):
    yield from _issue(context, "carbon", warehouse, fleet, models)


@dg.asset(
    **ISSUE,
    deps=[load_model, inference_demand],
    description="Inference-demand forecasts per class, issued at the partition hour -> forecasts.load",
    check_specs=[_complete_spec("load", "load_forecast")],
)
def load_forecast(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    fleet: FleetResource,
    models: ModelStoreResource,
):
    yield from _issue(context, "load", warehouse, fleet, models)


FORECAST_ASSETS = [carbon_model, load_model, carbon_forecast, load_forecast]
