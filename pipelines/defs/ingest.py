"""Ingest assets: one per signal, hourly partitions, written to ``staging.*`` by idempotent window
upserts. A range of partitions (a backfill) runs as one run over the whole window."""

import datetime as dt

import dagster as dg
import pandas as pd

from pipelines.defs.common import hour_window, preview
from pipelines.defs.partitions import HOURLY
from pipelines.defs.resources import FleetResource, WarehouseResource
from pipelines.lib import fetch
from pipelines.lib.ingest import IngestResult, store

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


def _span(frame: pd.DataFrame, col: str, start, end):
    lo = min(start, frame[col].min()) if not frame.empty else start
    return lo, end


@dg.asset(
    **INGEST, description="Grid carbon intensity (gCO2eq/kWh) per zone -> staging.carbon_intensity"
)
def carbon_intensity(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
) -> dg.MaterializeResult:
    start, end = hour_window(context)
    frame, report = fetch.fetch_carbon(fleet.load(), start, end)
    res = store(
        warehouse.get(),
        "staging.carbon_intensity",
        frame,
        report,
        window=_span(frame, "ts", start, end),
        partition_key=context.partition_key_range.start,
    )
    md = _metadata([res], frame, start, end)
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
    start, end = hour_window(context)
    obs, fc, report = fetch.fetch_weather(fleet.load(), start, end)
    wh = warehouse.get()
    results = [
        store(wh, "staging.weather_observed", obs, report, window=_span(obs, "ts", start, end))
    ]
    if not fc.empty:
        results.append(
            store(
                wh, "staging.weather_forecast", fc, None, window=_span(fc, "issued_at", start, end)
            )
        )
    md = _metadata(results, obs, start, end)
    md["forecast_rows"] = len(fc)
    md["forecast_issues"] = int(fc["issued_at"].nunique()) if not fc.empty else 0
    return dg.MaterializeResult(metadata=md)


@dg.asset(
    **INGEST,
    description="Day-ahead electricity prices per zone, for the window and the planning "
    "horizon after it (published ahead) -> staging.prices",
)
def prices(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
) -> dg.MaterializeResult:
    start, end = hour_window(context)
    f = fleet.load()
    end = end + pd.Timedelta(hours=f.planning.horizon_h)
    frame, report = fetch.fetch_prices(f, start, end)
    res = store(
        warehouse.get(), "staging.prices", frame, report, window=_span(frame, "ts", start, end)
    )
    return dg.MaterializeResult(metadata=_metadata([res], frame, start, end))


@dg.asset(
    **INGEST, description="On-site PV / wind availability (capacity factors) -> staging.generation"
)
def generation(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
) -> dg.MaterializeResult:
    start, end = hour_window(context)
    frame, report = fetch.fetch_generation(fleet.load(), start, end)
    res = store(
        warehouse.get(), "staging.generation", frame, report, window=_span(frame, "ts", start, end)
    )
    return dg.MaterializeResult(metadata=_metadata([res], frame, start, end))


@dg.asset(**INGEST, description="Inference demand per class (requests/h) -> staging.load")
def inference_demand(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
) -> dg.MaterializeResult:
    start, end = hour_window(context)
    frame, report = fetch.fetch_inference(fleet.load(), start, end)
    res = store(
        warehouse.get(), "staging.load", frame, report, window=_span(frame, "ts", start, end)
    )
    return dg.MaterializeResult(metadata=_metadata([res], frame, start, end))


@dg.asset(
    **INGEST,
    description="Training-job queue: jobs submitted with a release in the window or the "
    "planning horizon after it -> staging.jobs",
)
def job_queue(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
) -> dg.MaterializeResult:
    start, end = hour_window(context)
    end = end + pd.Timedelta(hours=fleet.load().planning.horizon_h)
    frame, report = fetch.fetch_jobs(fleet.load(), start, end)
    if frame.empty:
        return dg.MaterializeResult(
            metadata={"dagster/row_count": 0, "note": "no job released in window"}
        )
    frame = frame.assign(source=fleet.load().jobs.source, received_at=frame["release"])
    res = store(
        warehouse.get(), "staging.jobs", frame, report, window=_span(frame, "release", start, end)
    )
    md = _metadata([res], frame, start, end)
    md["energy_mwh"] = float((frame["power_mw"] * frame["duration_h"]).sum())
    return dg.MaterializeResult(metadata=md)


INGEST_ASSETS = [carbon_intensity, weather, prices, generation, inference_demand, job_queue]
