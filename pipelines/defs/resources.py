"""Dagster resources: typed, configured in ``definitions.py``; secrets are read by the source clients
from environment variables at call time (never stored in run config, metadata or logs)."""

import dagster as dg
from pydantic import Field

from mpc.fleet import Fleet, load_fleet
from warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file. All access goes through :class:`warehouse.Warehouse`, whose file lock
    serialises writers across Dagster's step processes."""

    path: str = Field(
        ".gridflex/gridflex.duckdb", description="DuckDB file (created on first write)"
    )

    def get(self) -> Warehouse:
        return Warehouse(self.path)


class FleetResource(dg.ConfigurableResource):
    """The fleet file (TOML). ``None``: the built-in demo fleet."""

    path: str | None = Field(None, description="fleet TOML file; empty = built-in demo fleet")

    def load(self) -> Fleet:
        return load_fleet(self.path or None)


class ModelStoreResource(dg.ConfigurableResource):
    """Where forecast checkpoints live and how big/long training is."""

    directory: str = Field(".gridflex/models", description="checkpoint folder")
    profile: str = Field("fast", description="training profile: 'fast' (demo, ~1 min) or 'full'")
    max_model_age_hours: int = Field(
        24 * 8, description="a model older than this (by its last training hour) counts as stale"
    )


def default_resources() -> dict:
    """Resources for ``defs``: paths from ``GRIDFLEX_DB`` / ``GRIDFLEX_FLEET`` / ``GRIDFLEX_MODELS`` when
    set (Dagster resolves ``EnvVar`` at launch, not at import), else the demo defaults."""
    import os

    def env(name: str, default):
        return dg.EnvVar(name) if os.environ.get(name) else default

    return {
        "warehouse": WarehouseResource(path=env("GRIDFLEX_DB", ".gridflex/gridflex.duckdb")),
        "fleet": FleetResource(path=env("GRIDFLEX_FLEET", None)),
        "models": ModelStoreResource(directory=env("GRIDFLEX_MODELS", ".gridflex/models")),
    }
