"""Jobs: the hourly tick (what the schedule, `gridflex tick`, `replay` and the demo run) and retraining."""

import dagster as dg

from pipelines.defs.forecast.assets import (
    carbon_forecast,
    carbon_model,
    load_forecast,
    load_model,
)
from pipelines.defs.ingest.assets import TICK_INGEST_ASSETS
from pipelines.defs.plan.assets import dispatch, marts, mpc_plan

#: ingest -> forecast -> plan -> dispatch for one hour (the assets' own checks included: a failed blocking
#: check on the ingest or the forecasts stops the plan). The schedule, `gridflex tick`, `gridflex replay`
#: and the demo all run this job.
hourly_tick = dg.define_asset_job(
    "hourly_tick",
    selection=dg.AssetSelection.assets(
        *TICK_INGEST_ASSETS, carbon_forecast, load_forecast, mpc_plan, dispatch
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

JOBS = [hourly_tick, retrain]
