"""The storage layer: table schemas, atomic Parquet (Delta) writes, the DuckDB catalog."""

from warehouse.core import ReadOnlyError, SchemaError, Warehouse, WarehouseError
from warehouse.schema import SCHEMA_VERSION, TABLES, TableSpec
from warehouse.storage import DataRoot

__all__ = [
    "SCHEMA_VERSION",
    "TABLES",
    "DataRoot",
    "ReadOnlyError",
    "SchemaError",
    "TableSpec",
    "Warehouse",
    "WarehouseError",
]
