"""gridflex's DuckDB warehouse: schema (``warehouse/sql/*.sql``), connections, idempotent window upserts.

Imports nothing else of gridflex. See :mod:`warehouse.db`.
"""

from warehouse.db import DEFAULT_DB, UpsertStats, Warehouse, WarehouseError, Write

__all__ = ["DEFAULT_DB", "UpsertStats", "Warehouse", "WarehouseError", "Write"]
