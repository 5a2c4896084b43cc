"""gridflex's Dagster code location (the only package importing Dagster): ``defs/`` holds the assets,
checks, jobs, schedules and resources; ``lib/`` the plain glue they call; ``runner.py`` runs the jobs in
process for the CLI.

Warnings we know about are silenced here by their message (never by whole category), so a user's
terminal shows gridflex's progress rather than a framework's notices; ``--verbose`` runs show them.
"""

import warnings

for _message in (
    r"Parameter `backfill_policy` of function `asset` is currently in beta",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # hourly_tick mixes single-run ingest with one-run-per-hour plans (pipelines.defs.partitions.PER_HOUR)
    # on purpose: a backfill of the job then runs one hour per run, which is what we want
    r"Asset job hourly_tick materializes assets with varying BackfillPolicies",
):
    warnings.filterwarnings("ignore", message=_message)
