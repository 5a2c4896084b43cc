"""The grid-event sensor: every 15 s it asks the fleet's VTN for its events (one GET, nothing
stored) and, when an event is new or changed since the last evaluation, launches the
``grid_response`` job for the hour in progress — the events are ingested and the hour revised at
once, not at the next hourly tick. Pushed notifications (``gridflex ven serve``) are faster still:
they revise the hour without waiting for a sensor evaluation (see ``pipelines.lib.grid_response``).
Stopped by default, like the schedules."""

import dagster as dg

from pipelines.defs.grid.assets import dispatch_revision
from pipelines.defs.ingest.assets import grid_events
from pipelines.defs.partitions import HOURLY
from pipelines.defs.resources import FleetResource, WarehouseResource
from pipelines.lib import grid_response as gr

grid_response = dg.define_asset_job(
    "grid_response",
    selection=dg.AssetSelection.assets(grid_events, dispatch_revision),
    description="Ingest the grid events now and revise the hour in progress with them.",
    executor_def=dg.in_process_executor,
)


@dg.sensor(
    job=grid_response,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Launches grid_response when the VTN has a new or changed event for the fleet",
)
def grid_event_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource, fleet: FleetResource
):
    f = fleet.load()
    if f.grid_events.source == "none":
        return dg.SkipReason("no grid-event source configured (fleet grid_events.source = 'none')")
    seen = gr.vtn_versions(f)
    if seen.error:
        return dg.SkipReason(f"VTN not reachable, will retry: {seen.error}")
    if seen.key == context.cursor:
        return dg.SkipReason(f"no new or changed event ({seen.count} on the VTN)")
    try:
        hour = gr.hour_in_progress(warehouse.get())
    except gr.PlanError as exc:
        return dg.SkipReason(str(exc))
    context.update_cursor(seen.key)
    key = HOURLY.get_partition_key_for_timestamp(hour.timestamp())
    return dg.RunRequest(
        run_key=f"{key}:{seen.key[:16]}",
        partition_key=key,
        tags={"gridflex/trigger": "grid_event_sensor"},
    )
