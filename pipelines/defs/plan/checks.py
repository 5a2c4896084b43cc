"""Checks on the plan beyond those declared with its assets: freshness of the live loop."""

import dagster as dg
import pandas as pd

from pipelines.defs.plan.assets import mpc_plan
from pipelines.defs.resources import WarehouseResource


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
