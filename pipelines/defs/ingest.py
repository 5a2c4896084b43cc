"""Ingest assets: one per signal, hourly partitions, written to ``staging.*`` by idempotent window
upserts. A range of partitions (a backfill) runs as one run over the whole window."""

import datetime as dt

import dagster as dg
import pandas as pd

from pipelines.defs.common import hour_window, preview
from pipelines.defs.partitions import HOURLY
from pipelines.defs.resources import FleetResource, WarehouseResource
from pipelines.lib.ingest import IngestResult, ingest_signal

#: In live operation the ingest lands every hour; warn after 2 h, fail after 3 h (one late run allowed).
FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=dt.timedelta(hours=3), warn_window=dt.timedelta(hours=2)
)

INGEST = dict(
    freshness_policy=FRESHNESS,
    partitions_def=HOURLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="ingest",
    kinds={"duckdb", "python"},
    pool="duckdb_writer",
)


def _metadata(results: list[IngestResult], frame: pd.DataFrame, start, end) -> dict:
    md: dict = {
        "dagster/row_count": int(sum(r.stats.rows_in for r in results)),
        "window": f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC",
        "inserted": sum(r.stats.inserted for r in results),
        "updated": sum(r.stats.updated for r in results),
        "deleted": sum(r.stats.deleted for r in results),
        "unchanged": sum(r.stats.unchanged for r in results),
        "preview": preview(frame),
    }
    repairs: dict[str, int] = {}
    for r in results:
        for k, v in r.repairs.items():
            repairs[k] = repairs.get(k, 0) + v
    md["repairs"] = dg.MetadataValue.json(repairs)
    md["repaired_rows"] = int(sum(repairs.values()))
    return md


def _ingest(context: dg.AssetExecutionContext, signal: str, warehouse, fleet):
    start, end = hour_window(context)
    results, frame = ingest_signal(
        warehouse.get(), fleet.load(), signal, start, end, context.partition_key_range.start
    )
    if not results:
        return (
            None,
            frame,
            dg.MaterializeResult(
                metadata={
                    "dagster/row_count": 0,
                    "note": f"nothing to store for {signal} in the window",
                }
            ),
        )
    return results, frame, _metadata(results, frame, start, end)


@dg.asset(
    **INGEST, description="Grid carbon intensity (gCO2eq/kWh) per zone -> staging.carbon_intensity"
)
def carbon_intensity(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
) -> dg.MaterializeResult:
    _, frame, md = _ingest(context, "carbon", warehouse, fleet)
    md["series"] = ", ".join(sorted(frame["series"].unique()))
    md["estimated_hours"] = int(frame["is_estimated"].sum())
    return dg.MaterializeResult(metadata=md)


@dg.asset(
    **INGEST,
    description="Observed weather and weather forecasts issued in the window -> "
    "staging.weather_observed / staging.weather_forecast",
)
def weather(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
) -> dg.MaterializeResult:
    results, frame, md = _ingest(context, "weather", warehouse, fleet)
    md["forecast_rows"] = int(frame["forecast_rows"].iloc[0]) if len(frame) else 0
    md["preview"] = preview(frame.drop(columns="forecast_rows"))
    return dg.MaterializeResult(metadata=md)


@dg.asset(
    **INGEST,
    description="Day-ahead electricity prices per zone, for the window and the planning "
    "horizon after it (published ahead) -> staging.prices",
)
def prices(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=_ingest(context, "prices", warehouse, fleet)[2])


@dg.asset(
    **INGEST, description="On-site PV / wind availability (capacity factors) -> staging.generation"
)
def generation(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=_ingest(context, "generation", warehouse, fleet)[2])


@dg.asset(**INGEST, description="Inference demand per class (requests/h) -> staging.load")
def inference_demand(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=_ingest(context, "inference", warehouse, fleet)[2])


@dg.asset(
    **INGEST,
    description="Training-job queue: jobs submitted with a release in the window or the "
    "planning horizon after it -> staging.jobs",
)
def job_queue(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
) -> dg.MaterializeResult:
    results, frame, md = _ingest(context, "jobs", warehouse, fleet)
    if isinstance(md, dg.MaterializeResult):
        return md
    md["energy_mwh"] = float((frame["power_mw"] * frame["duration_h"]).sum())
    return dg.MaterializeResult(metadata=md)


INGEST_ASSETS = [carbon_intensity, weather, prices, generation, inference_demand, job_queue]
