"""The Dagster code location: ``make dev`` (``dagster dev -m pipelines.definitions``) loads ``defs``.

Asset groups: ingest (hourly signals -> staging.*), forecast (TFT models and hourly forecasts),
plan (receding-horizon plan, committed dispatch, marts views). Resources default to the built-in demo
fleet and ``.gridflex/gridflex.duckdb``; environment variables ``GRIDFLEX_DB`` / ``GRIDFLEX_FLEET``
(e.g. in ``.env``) override them.
"""

import dagster as dg

from pipelines.defs.automation import ALL_CHECKS_EXTRA, JOBS, SCHEDULES
from pipelines.defs.backtest import BACKTEST_ASSETS
from pipelines.defs.forecast import FORECAST_ASSETS
from pipelines.defs.ingest import INGEST_ASSETS
from pipelines.defs.plan import PLAN_ASSETS
from pipelines.defs.resources import default_resources


def build_defs(resources: dict | None = None) -> dg.Definitions:
    """The code location's definitions, with ``resources`` (default: from the environment). The CLI's
    in-process runs (`gridflex demo`, `tick`, `replay`) build it with their own warehouse and fleet and
    run the very jobs the schedule runs."""
    return dg.Definitions(
        assets=[*INGEST_ASSETS, *FORECAST_ASSETS, *PLAN_ASSETS, *BACKTEST_ASSETS],
        asset_checks=[*ALL_CHECKS_EXTRA],
        jobs=JOBS,
        schedules=SCHEDULES,
        resources=resources or default_resources(),
    )


defs = build_defs()
