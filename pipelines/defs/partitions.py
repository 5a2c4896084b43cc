"""Partitions: one per UTC hour. Ingest, forecasts and plans share them so an hour is one unit of work.

The first partition is 2020-01-01 so recorded history (the shared 2021–2023 exports, replayed through
the real path by `gridflex replay`) has partitions too; a deployment's hours before its data simply stay
unmaterialized. ``end_offset=1`` makes the *current* hour a partition, so
the hourly schedule can plan the hour that is starting rather than the one that ended."""

import dagster as dg

HOURLY = dg.HourlyPartitionsDefinition(start_date="2020-01-01-00:00", timezone="UTC", end_offset=1)

#: Backfill policy of the assets whose every hour is a decision a person looks at (forecasts, plan,
#: dispatch): one run per hour, so each hourly partition carries its own metadata, plot and check
#: results. Dagster gives every partition of a ranged run the same materialization metadata
#: (dagster-io/dagster#18123), which showed the last hour's plan on every hour. The ingest assets keep
#: single-run backfills: a history backfill over weeks is one run.
PER_HOUR = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
