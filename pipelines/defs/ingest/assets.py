"""Ingest assets: one per signal, hourly partitions, upserted into ``staging.*`` (nothing received is
ever deleted). A range of partitions (a backfill) runs as one run over the whole window. Each asset
checks what it just wrote, for the fleet's own series (``pipelines.lib.checks``)."""

import datetime as dt

import dagster as dg
import pandas as pd

from pipelines.defs.common import hour_window, preview
from pipelines.defs.partitions import HOURLY
from pipelines.defs.resources import FleetResource, WarehouseResource
from pipelines.lib import checks as ck
from pipelines.lib.ingest import SignalIngest, ingest_signal

HOUR = pd.Timedelta(hours=1)

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


def _spec(name: str, asset: str, description: str, blocking: bool = False) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=asset, description=description, blocking=blocking)


def _result(name: str, outcome: ck.CheckOutcome, *, warn: bool = False) -> dg.AssetCheckResult:
    md = {
        k: (dg.MetadataValue.md(v.to_markdown(index=False)) if isinstance(v, pd.DataFrame) else v)
        for k, v in outcome.metadata.items()
        if v is not None
    }
    if outcome.problem:
        md["problem"] = outcome.problem
    return dg.AssetCheckResult(
        check_name=name,
        passed=bool(outcome.passed),
        severity=dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR,
        metadata=md,
    )


def _run(context: dg.AssetExecutionContext, signal: str, warehouse, fleet) -> tuple:
    start, end = hour_window(context)
    got: SignalIngest = ingest_signal(
        warehouse.get(), fleet.load(), signal, start, end, context.partition_key_range.start
    )
    for note in got.notes:
        context.log.info(f"{signal}: {note}")
    repairs = dict(got.fetched.report.counts) if got.fetched is not None else {}
    md: dict = {
        "source": got.source,
        "window": f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC",
        "dagster/row_count": got.total("rows_in"),
        "inserted": got.total("inserted"),
        "updated": got.total("updated"),
        "unchanged": got.total("unchanged"),
        "deleted": got.total("deleted"),
        "repairs": dg.MetadataValue.json(repairs),
        "repaired_rows": int(sum(repairs.values())),
        "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in got.notes) or "-"),
        "preview": preview(got.preview),
    }
    return got, md, start, end


@dg.asset(
    **INGEST,
    description="Grid carbon intensity (gCO2eq/kWh) per zone -> staging.carbon_intensity",
    check_specs=[
        _spec(
            "carbon_in_range",
            "carbon_intensity",
            "Every value of the fleet's series written in the window is finite and within "
            "0..2000 gCO2eq/kWh",
            blocking=True,
        ),
        _spec(
            "carbon_no_gaps",
            "carbon_intensity",
            f"No missing hours in the {ck.CHECK_DAYS} days up to the hour planned, for the series "
            "the fleet plans on (warns: the planner degrades to persistence on lag)",
        ),
    ],
)
def carbon_intensity(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
):
    got, md, start, end = _run(context, "carbon", warehouse, fleet)
    frame = got.preview
    if len(frame) and "series" in frame:
        md["series"] = ", ".join(sorted(frame["series"].astype(str).unique()))
        md["estimated_hours"] = int(frame["is_estimated"].sum()) if "is_estimated" in frame else 0
    yield dg.MaterializeResult(metadata=md)
    wh, f = warehouse.get(), fleet.load()
    from pipelines.lib.fetch import REVISION_WINDOW

    yield _result("carbon_in_range", ck.carbon_in_range(wh, f, start - REVISION_WINDOW, end))
    yield _result("carbon_no_gaps", ck.carbon_gaps(wh, f, end - HOUR), warn=True)


@dg.asset(
    **INGEST,
    description="Observed weather and weather forecasts issued in the window -> "
    "staging.weather_observed / staging.weather_forecast",
    check_specs=[
        _spec(
            "weather_forecasts_not_from_future",
            "weather",
            "Forecasts issued in the window describe hours at or after their issue",
            blocking=True,
        ),
    ],
)
def weather(context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource):
    got, md, start, end = _run(context, "weather", warehouse, fleet)
    if got.fetched is not None:
        md["forecast_rows"] = len(got.fetched.frame("staging.weather_forecast"))
        md["observed_rows"] = len(got.fetched.frame("staging.weather_observed"))
    yield dg.MaterializeResult(metadata=md)
    outcome = ck.weather_not_from_future(warehouse.get(), fleet.load(), start, end)
    yield _result("weather_forecasts_not_from_future", outcome)


@dg.asset(
    **INGEST,
    description="Day-ahead electricity prices per zone, for the window and the planning "
    "horizon after it (published ahead) -> staging.prices",
    check_specs=[
        _spec(
            "prices_present",
            "prices",
            "A plausible price for every zone the fleet pays, over the window and the horizon "
            "after it (warns: the planner uses the price 24 h earlier)",
        ),
    ],
)
def prices(context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource):
    got, md, start, end = _run(context, "prices", warehouse, fleet)
    yield dg.MaterializeResult(metadata=md)
    f = fleet.load()
    outcome = ck.prices_present(warehouse.get(), f, start, end + f.planning.horizon_h * HOUR)
    yield _result("prices_present", outcome, warn=True)


@dg.asset(
    **INGEST,
    deps=["weather"],
    description="On-site PV / wind availability (capacity factors, mpc.physics) from the best "
    "weather observation stored, restated over the last days as better observations arrive -> "
    "staging.generation",
)
def generation(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
) -> dg.MaterializeResult:
    got, md, _, _ = _run(context, "generation", warehouse, fleet)
    frame = got.preview
    if len(frame):
        md["quality"] = dg.MetadataValue.json(
            {str(k): int(v) for k, v in frame["weather_quality"].value_counts().items()}
        )
    return dg.MaterializeResult(metadata=md)


@dg.asset(
    **INGEST,
    description="Inference demand per class (requests/h) -> staging.load",
    check_specs=[
        _spec(
            "inference_no_gaps",
            "inference_demand",
            f"No missing hours in the {ck.CHECK_DAYS} days up to the hour planned, for every "
            "class of the fleet (warns: the planner degrades to persistence)",
        ),
    ],
)
def inference_demand(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
):
    got, md, _, end = _run(context, "inference", warehouse, fleet)
    yield dg.MaterializeResult(metadata=md)
    yield _result(
        "inference_no_gaps", ck.load_gaps(warehouse.get(), fleet.load(), end - HOUR), warn=True
    )


@dg.asset(
    **INGEST,
    description="Training-job queue: jobs submitted with a release in the window or the "
    "planning horizon after it -> staging.jobs",
)
def job_queue(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
) -> dg.MaterializeResult:
    got, md, _, _ = _run(context, "jobs", warehouse, fleet)
    frame = got.preview
    if len(frame) and "power_mw" in frame:
        md["energy_mwh"] = round(float((frame["power_mw"] * frame["duration_h"]).sum()), 1)
        md["jobs"] = len(frame)
    return dg.MaterializeResult(metadata=md)


@dg.asset(
    **INGEST,
    description="Grid operator's demand-response, price and alert events (OpenADR 3, polled from "
    "the fleet's VTN) -> raw.openadr_events / staging.grid_events. A VTN that is down or refuses "
    "the credentials does not fail the hour: the error is shown and the events stored are kept.",
)
def grid_events(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, fleet: FleetResource
) -> dg.MaterializeResult:
    from pipelines.lib.grid_events import NO_SOURCE, ingest_grid_events

    _, end = hour_window(context)
    as_of = end - HOUR  # the (last) hour of the partition (range): what is known as of it
    got = ingest_grid_events(
        warehouse.get(), fleet.load(), as_of, partition_key=context.partition_key_range.end
    )
    for note in got.notes:
        context.log.info(f"grid_events: {note}")
    if got.source == "none":
        return dg.MaterializeResult(
            metadata={"source": "none", "notes": NO_SOURCE, "dagster/row_count": 0}
        )
    if got.error:
        context.log.warning(f"grid_events: {got.error}")
    st = got.stats.as_dict() if got.stats is not None else {}
    md: dict = {
        "source": got.source,
        "as_of": f"{as_of:%Y-%m-%d %H:%M} UTC",
        "events_seen": got.events_seen,
        "programs": got.programs,
        **{k: int(st.get(k, 0)) for k in ("new", "modified", "cancelled", "stale", "unchanged")},
        "problems": int(st.get("problems", 0)),
        "malformed": int(st.get("malformed", 0)),
        "active_intervals": len(got.active),
        "dagster/row_count": len(got.active),
        "active": preview(got.active, n=20),
        "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in got.notes) or "-"),
    }
    if got.error:
        md["error"] = got.error
    if got.subscription_id:
        md["subscription"] = got.subscription_id
    return dg.MaterializeResult(metadata=md)


INGEST_ASSETS = [carbon_intensity, weather, prices, generation, inference_demand, job_queue]
#: the ingest assets of an hourly tick: the signals, and the grid operator's events
TICK_INGEST_ASSETS = [*INGEST_ASSETS, grid_events]
