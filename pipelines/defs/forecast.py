"""Forecast assets: trained TFT models (retrained on a schedule) and hourly forecasts stored with their
issue time. When no fresh model exists the hourly forecast degrades to persistence and says so."""

import dagster as dg
import pandas as pd

from pipelines.defs.common import hour_window, preview
from pipelines.defs.ingest import carbon_intensity, inference_demand, weather
from pipelines.defs.partitions import HOURLY
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
        table = "staging.carbon_intensity" if target == "carbon" else "staging.load"
        last = wh.query(f"select max(ts) t from {table}").t[0]
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
    return dg.MaterializeResult(
        metadata={
            "model_id": out.model_id,
            "train_end": str(end),
            "val_mae": m["val_mae"],
            "val_mae_persistence": m["val_mae_persistence"],
            "mae_vs_persistence": dg.MetadataValue.float(m["val_mae"] / m["val_mae_persistence"])
            if m["val_mae_persistence"]
            else dg.MetadataValue.float(float("nan")),
            "epochs": m["epochs"],
            "train_seconds": m["train_seconds"],
            "rows": m["rows"],
            # what is served: the TFT alone or the validated ensemble (forecasting.ensemble)
            "served": m.get("ensemble", "tft"),
            **{k: m[k] for k in ("val_mape_tft", "val_mape_ensemble") if m.get(k) is not None},
            "checkpoint": dg.MetadataValue.path(out.checkpoint),
        }
    )


@dg.asset(
    group_name="forecast",
    kinds={"pytorch"},
    deps=[carbon_intensity, weather],
    description="Temporal Fusion Transformer for carbon intensity per site (weather forecasts as "
    "known-future inputs). A failed training leaves the previous model in use.",
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
    description="Temporal Fusion Transformer for inference demand per class.",
)
def load_model(
    context: dg.AssetExecutionContext,
    config: TrainConfig,
    warehouse: WarehouseResource,
    fleet: FleetResource,
    models: ModelStoreResource,
) -> dg.MaterializeResult:
    return _train(context, "load", config, warehouse, fleet, models)


def _issue(context, target: str, warehouse, fleet, models) -> dg.MaterializeResult:
    wh, f = warehouse.get(), fleet.load()
    start, end = hour_window(context)
    max_age = pd.Timedelta(hours=models.max_model_age_hours)
    hours = pd.date_range(start, end - HOUR, freq="h", tz="UTC")
    last, degraded = None, 0
    for i, t in enumerate(hours):
        issued = fc.issue_forecast(wh, f, target, t, max_age=max_age)
        fc.store_forecast(wh, target, issued)
        degraded += issued.degraded
        if issued.degraded:
            context.log.warning(
                f"{target} forecast at {t}: degraded to persistence ({issued.reason})"
            )
        if len(hours) > 1 and (i + 1) % 24 == 0:
            context.log.info(f"{target} forecasts: {i + 1}/{len(hours)} issue hours")
        last = issued
    acc = wh.query(
        "select avg(abs_error) mae, count(*) n, avg(in_p10_p90::int) cov from marts.forecast_accuracy "
        "where target = ? and issued_at >= ? and issued_at < ?",
        [target, start.to_pydatetime(), end.to_pydatetime()],
    )
    md = {
        "issued_hours": len(hours),
        "model": last.model,
        "degraded": bool(last.degraded),
        "degraded_hours": int(degraded),
        "degraded_reason": last.reason or "-",
        "dagster/row_count": len(last.frame) * len(hours),
        "seconds_last_issue": round(last.seconds, 2),
        "preview": preview(last.frame[["target_time", "series", "p10", "p50", "p90"]]),
    }
    if acc.n[0]:
        md["mae_so_far"] = float(acc.mae[0])
        md["p10_p90_coverage_so_far"] = float(acc["cov"][0])
        md["scored_points"] = int(acc.n[0])
    return dg.MaterializeResult(metadata=md)


ISSUE = dict(
    partitions_def=HOURLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="forecast",
    kinds={"pytorch", "duckdb"},
)


@dg.asset(
    **ISSUE,
    deps=[carbon_model, carbon_intensity, weather],
    description="Carbon-intensity forecasts (p10/p50/p90) for the next H hours, issued at the "
    "partition hour from data known before it -> forecasts.carbon",
)
def carbon_forecast(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    fleet: FleetResource,
    models: ModelStoreResource,
) -> dg.MaterializeResult:
    return _issue(context, "carbon", warehouse, fleet, models)


@dg.asset(
    **ISSUE,
    deps=[load_model, inference_demand],
    description="Inference-demand forecasts per class, issued at the partition hour -> forecasts.load",
)
def load_forecast(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    fleet: FleetResource,
    models: ModelStoreResource,
) -> dg.MaterializeResult:
    return _issue(context, "load", warehouse, fleet, models)


def _forecast_complete(target: str, warehouse, fleet) -> dg.AssetCheckResult:
    f = fleet.load()
    n_series = len(f.sites) if target == "carbon" else len(f.classes)
    df = warehouse.get().query(
        f"""select issued_at, count(*) n, count(distinct series) s,
                   count(*) filter (where not (p10 <= p50 and p50 <= p90) or isnan(p50) or p50 < 0) bad,
                   bool_or(degraded) degraded
            from {fc.TABLE[target]} where issued_at = (select max(issued_at) from {fc.TABLE[target]})
            group by issued_at"""
    )
    if df.empty:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "no forecast stored"})
    r = df.iloc[0]
    want = n_series * f.planning.horizon_h
    ok = int(r.n) == want and int(r.s) == n_series and int(r.bad) == 0
    return dg.AssetCheckResult(
        passed=bool(ok),
        metadata={
            "issued_at": str(r.issued_at),
            "rows": int(r.n),
            "expected_rows": want,
            "invalid_rows": int(r.bad),
            "degraded": bool(r.degraded),
        },
    )


@dg.asset_check(
    asset=carbon_forecast,
    blocking=True,
    description="The latest issue covers every site for the whole horizon with ordered, "
    "finite, non-negative quantiles; a failed check blocks planning",
)
def carbon_forecast_complete(
    warehouse: WarehouseResource, fleet: FleetResource
) -> dg.AssetCheckResult:
    return _forecast_complete("carbon", warehouse, fleet)


@dg.asset_check(
    asset=load_forecast,
    blocking=True,
    description="The latest issue covers every class for the whole horizon; blocks planning",
)
def load_forecast_complete(
    warehouse: WarehouseResource, fleet: FleetResource
) -> dg.AssetCheckResult:
    return _forecast_complete("load", warehouse, fleet)


FORECAST_ASSETS = [carbon_model, load_model, carbon_forecast, load_forecast]
FORECAST_CHECKS = [carbon_forecast_complete, load_forecast_complete]
