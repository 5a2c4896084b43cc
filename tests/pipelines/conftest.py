"""Fixtures for Dagster tests: resources pointing at a temporary warehouse."""

import pytest

from pipelines.defs.resources import FleetResource, ModelStoreResource, WarehouseResource


@pytest.fixture
def resources(tmp_path):
    return {
        "warehouse": WarehouseResource(path=str(tmp_path / "gf.duckdb")),
        "fleet": FleetResource(),
        "models": ModelStoreResource(directory=str(tmp_path / "models")),
    }
