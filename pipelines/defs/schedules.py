"""Schedules: the hourly tick at minute 5 and retraining at 00:30 UTC (both stopped by default)."""

import dagster as dg
import pandas as pd

from pipelines.defs.jobs import hourly_tick, retrain
from pipelines.defs.partitions import HOURLY


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

SCHEDULES = [hourly_tick_schedule, retrain_schedule]
