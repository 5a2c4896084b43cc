"""The closed-loop backtest on the demo grid as an asset: a table and a plot in the UI, rows in
plans.backtests. (``gridflex backtest`` runs the same on real Electricity Maps exports.)"""

from pathlib import Path

import dagster as dg
import pandas as pd

from pipelines.defs.common import png, preview
from pipelines.defs.resources import FleetResource, ModelStoreResource, WarehouseResource
from pipelines.lib.backtest import load_demo_data, run_backtest
from pipelines.lib.demo_source import DEMO_EPOCH
from pipelines.lib.plots import backtest_figure


class BacktestConfig(dg.Config):
    start: str = str((DEMO_EPOCH + pd.Timedelta(days=21)).date())
    days: int = 2
    policies: list[str] = ["oracle", "persistence", "tft", "static"]


@dg.asset(
    group_name="backtest",
    kinds={"pyomo", "pytorch"},
    description="Closed-loop backtest on the demo grid: oracle, persistence and TFT forecasts vs "
    "carbon-agnostic, hour by hour -> plans.backtests",
)
def demo_backtest(
    context: dg.AssetExecutionContext,
    config: BacktestConfig,
    warehouse: WarehouseResource,
    fleet: FleetResource,
    models: ModelStoreResource,
) -> dg.MaterializeResult:
    f = fleet.load()
    start = pd.Timestamp(config.start, tz="UTC")
    data = load_demo_data(f, start, config.days)
    table, hourly, extras = run_backtest(
        f,
        data,
        policies=[*config.policies, "carbon_agnostic"],
        profile=models.profile,
        models_dir=Path(models.directory) / "backtest",
        echo=context.log.info,
    )
    bid = f"demo-{start:%Y%m%d}-{config.days}d"
    rows = table.assign(backtest_id=bid, hours=data.hours, created_at=pd.Timestamp.now(tz="UTC"))
    warehouse.get().replace_window("plans.backtests", rows, scope={"backtest_id": bid})
    md = {
        "results": preview(table, n=10),
        "hours": data.hours,
        "plot": png(
            backtest_figure(hourly, f"demo backtest from {start:%Y-%m-%d}, {config.days} days")
        ),
        "timings_s": dg.MetadataValue.json(
            {k: v for k, v in extras.items() if not isinstance(v, dict)}
        ),
    }
    for r in table.itertuples():
        md[f"{r.policy}_savings_vs_agnostic_pct"] = round(float(r.savings_vs_agnostic_pct), 2)
    return dg.MaterializeResult(metadata=md)


BACKTEST_ASSETS = [demo_backtest]
