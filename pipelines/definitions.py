"""The Dagster code location: ``make dev`` (``dg dev``, configured by ``[tool.dg]`` in pyproject.toml)
loads ``defs``.

``defs/`` is one folder per domain — ``ingest/``, ``forecast/``, ``plan/``, ``backtest/`` (each with its
``assets.py``; ``plan/checks.py``) — and the shared ``jobs.py``, ``schedules.py``, ``partitions.py``,
``resources.py``; :func:`dagster.load_from_defs_folder` collects every definition in it, so a new asset,
check, job or schedule is picked up by being written there. Resources default to the built-in demo fleet
and ``.gridflex/gridflex.duckdb``; ``GRIDFLEX_DB`` / ``GRIDFLEX_FLEET`` / ``GRIDFLEX_MODELS`` override
them (resolved by Dagster at launch).
"""

from pathlib import Path

import dagster as dg

from pipelines.defs.resources import default_resources

DEFS_FOLDER = Path(__file__).resolve().parent / "defs"


def build_defs(resources: dict | None = None) -> dg.Definitions:
    """The code location's definitions (everything in ``defs/``) with ``resources`` (default: from the
    environment). The CLI's in-process runs (`gridflex demo`, `tick`, `replay`) build it with their
    own warehouse and fleet and run the very jobs the schedule runs."""
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=DEFS_FOLDER),
        dg.Definitions(resources=resources or default_resources()),
    )


defs = build_defs()
