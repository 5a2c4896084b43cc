"""The backtest domain's Dagster definitions (assets)."""
