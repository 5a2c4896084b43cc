"""Plain glue between sources, the warehouse and the libraries — no Dagster here.

The Dagster assets in :mod:`pipelines.defs` and the ``gridflex`` CLI both call these functions, so the
assets stay thin and the CLI does not pay Dagster's import cost.
"""
