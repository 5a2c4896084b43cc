"""The forecast domain's Dagster definitions (assets)."""
