"""The Dagster code location: ``dagster dev`` (or ``dg dev``) from the repo root loads ``defs``."""


import dagster as dg

from pipelines.defs.checks import INGEST_CHECKS
from pipelines.defs.ingest import INGEST_ASSETS
from pipelines.defs.resources import FleetResource, ModelStoreResource, WarehouseResource

defs = dg.Definitions(
    assets=[*INGEST_ASSETS],
    asset_checks=[*INGEST_CHECKS],
    resources={
        "warehouse": WarehouseResource(),
        "fleet": FleetResource(),
        "models": ModelStoreResource(),
    },
)
