"""Jobs, schedules and the freshness check that keep the hourly loop running."""

import dagster as dg
import pandas as pd

from pipelines.defs.forecast import (
    carbon_forecast,
    carbon_model,
    load_forecast,
    load_model,
)
from pipelines.defs.ingest import INGEST_ASSETS
from pipelines.defs.partitions import HOURLY
from pipelines.defs.plan import dispatch, marts, mpc_plan
from pipelines.defs.resources import WarehouseResource

#: ingest -> forecast -> plan -> dispatch for one hour (the assets' own checks included: a failed blocking
#: check on the ingest or the forecasts stops the plan). The schedule, `gridflex tick`, `gridflex replay`
#: and the demo all run this job.
hourly_tick = dg.define_asset_job(
    "hourly_tick",
    selection=dg.AssetSelection.assets(
        *INGEST_ASSETS, carbon_forecast, load_forecast, mpc_plan, dispatch
    ),
    description="One receding-horizon tick: ingest the hour, issue forecasts, plan H hours, commit one.",
    # in process: the steps run one after another anyway (each needs the previous), and a subprocess
    # per step made a scheduled tick cost ~50 s of start-up for ~2 s of work
    executor_def=dg.in_process_executor,
)

#: Retrain both forecasters on everything stored, then refresh the marts.
retrain = dg.define_asset_job(
    "retrain_models",
    selection=dg.AssetSelection.assets(carbon_model, load_model, marts),
    description="Retrain the carbon and load TFTs (the previous model stays in use if training fails).",
)


@dg.schedule(
    job=hourly_tick,
    # "5 * * * *": at minute 5 of every hour (UTC) — sources have published the hour that just ended by
    # then — plan the hour that is starting.
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def hourly_tick_schedule(context: dg.ScheduleEvaluationContext):
    hour = pd.Timestamp(context.scheduled_execution_time).tz_convert("UTC").floor("h")
    key = HOURLY.get_partition_key_for_timestamp(hour.timestamp())
    return dg.RunRequest(run_key=key, partition_key=key)


# "30 0 * * *": daily at 00:30 UTC, after the midnight tick has landed.
retrain_schedule = dg.ScheduleDefinition(
    job=retrain,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)


@dg.asset_check(asset=mpc_plan, description="The latest plan is at most 2 h old (live operation)")
def plan_is_fresh(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    last = warehouse.get().query("select max(plan_hour) t from plans.runs").t[0]
    if last is None or pd.isna(last):
        return dg.AssetCheckResult(passed=False, metadata={"latest_plan": "none"})
    age_h = (pd.Timestamp.now(tz="UTC") - pd.Timestamp(last)) / pd.Timedelta(hours=1)
    return dg.AssetCheckResult(
        passed=bool(age_h <= 2),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"latest_plan": str(last), "age_hours": round(age_h, 1)},
    )


PLAN_CHECKS = [plan_is_fresh]
JOBS = [hourly_tick, retrain]
SCHEDULES = [hourly_tick_schedule, retrain_schedule]
ALL_CHECKS_EXTRA = [*PLAN_CHECKS]
