"""Partitions: one per UTC hour. Ingest, forecasts and plans share them so an hour is one unit of work.

The first partition is the demo grid's epoch; a real deployment may start anywhere later (partitions
before its data simply stay unmaterialized). ``end_offset=1`` makes the *current* hour a partition, so
the hourly schedule can plan the hour that is starting rather than the one that ended."""

import dagster as dg

HOURLY = dg.HourlyPartitionsDefinition(start_date="2026-01-05-00:00", timezone="UTC", end_offset=1)
