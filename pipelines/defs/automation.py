"""Jobs, schedules and the freshness check that keep the hourly loop running."""

import dagster as dg
import pandas as pd

from pipelines.defs.forecast import (
    FORECAST_CHECKS,
    carbon_forecast,
    carbon_model,
    load_forecast,
    load_model,
)
from pipelines.defs.ingest import INGEST_ASSETS
from pipelines.defs.partitions import HOURLY
from pipelines.defs.plan import dispatch, marts, mpc_plan
from pipelines.defs.resources import WarehouseResource

#: ingest -> forecast -> plan -> dispatch for one hour (checks included: a failed blocking check on the
#: ingest or the forecasts stops the plan).
hourly_tick = dg.define_asset_job(
    "hourly_tick",
    selection=dg.AssetSelection.assets(
        *INGEST_ASSETS, carbon_forecast, load_forecast, mpc_plan, dispatch
    ),
    description="One receding-horizon tick: ingest the hour, issue forecasts, plan H hours, commit one.",
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


@dg.asset_check(
    asset=mpc_plan,
    blocking=True,
    description="The latest plan solved (optimal, or feasible within the gap limit) and its "
    "committed hour keeps every battery within its bounds",
)
def plan_is_sound(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    wh = warehouse.get()
    r = wh.query("select * from plans.runs order by plan_hour desc limit 1")
    if r.empty:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "no plan"})
    row = r.iloc[0]
    neg = wh.query(
        "select count(*) n from plans.dispatch where hour = ? and (soc_mwh < -1e-6 or import_mw < -1e-6)",
        [pd.Timestamp(row.plan_hour).to_pydatetime()],
    ).n[0]
    ok = row.status in ("optimal", "feasible") and int(neg) == 0
    return dg.AssetCheckResult(
        passed=bool(ok),
        metadata={
            "plan_hour": str(row.plan_hour),
            "status": row.status,
            "mip_gap": float(row.mip_gap),
            "degraded": bool(row.degraded),
            "negative_values": int(neg),
        },
    )


PLAN_CHECKS = [plan_is_fresh, plan_is_sound]
JOBS = [hourly_tick, retrain]
SCHEDULES = [hourly_tick_schedule, retrain_schedule]
ALL_CHECKS_EXTRA = [*FORECAST_CHECKS, *PLAN_CHECKS]
