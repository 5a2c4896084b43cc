"""The revision of the hour in progress after a grid event (``pipelines.lib.grid_response``): one
hourly partition per revised hour, materialised by the ``grid_response`` job that the
``grid_event_sensor`` launches (or by hand, e.g. ``dagster job launch -j grid_response``)."""

import dagster as dg
import pandas as pd

from pipelines.defs.common import preview
from pipelines.defs.ingest.assets import grid_events
from pipelines.defs.partitions import HOURLY
from pipelines.defs.plan.assets import mpc_plan
from pipelines.defs.resources import FleetResource, WarehouseResource
from pipelines.lib import grid_response as gr


class RevisionConfig(dg.Config):
    """``kind``: ``full`` (the window re-planned as a MILP, only the jobs already running held;
    checkpointable batch jobs may pause) or ``lp`` (every job decision held; energy and routing
    re-dispatched — the fast path)."""

    kind: str = "full"


@dg.asset(
    partitions_def=HOURLY,
    backfill_policy=dg.BackfillPolicy.single_run(),  # as grid_events, its upstream in the job
    group_name="grid",
    kinds={"pyomo", "highs", "duckdb"},
    pool="duckdb_writer",
    deps=[grid_events, mpc_plan],
    description="A revision of the hour in progress after a grid event: re-planned with the events "
    "stored now, jobs already running held -> plans.revisions, plans.dispatch_revisions (the hourly "
    "plan stays the record; marts read the newest revision)",
)
def dispatch_revision(
    context: dg.AssetExecutionContext,
    config: RevisionConfig,
    warehouse: WarehouseResource,
    fleet: FleetResource,
) -> dg.MaterializeResult:
    wh, f = warehouse.get(), fleet.load()
    hour = pd.Timestamp(context.partition_time_window.start).tz_convert("UTC")
    new = gr.unrevised_events(wh, f, hour)
    if not new.event_ids:
        return dg.MaterializeResult(
            metadata={
                "revision": "none",
                "why": "no grid event received since the hour's plan or its last revision",
            }
        )
    try:
        rev = gr.revise_hour(
            wh,
            f,
            hour=hour,
            kind=config.kind,
            trigger_events=new.event_ids,
            event_received_at=new.received_at,
        )
    except gr.PlanError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    context.log.info(rev.line())
    md = gr.revision_metadata(rev)
    md["import_per_site"] = preview(md.pop("import_per_site"), 20)
    return dg.MaterializeResult(metadata=md)
