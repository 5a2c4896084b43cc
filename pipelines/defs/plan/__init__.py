"""The plan domain's Dagster definitions: assets (plan, dispatch, marts) and checks."""
