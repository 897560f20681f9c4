"""The names most domain modules import for their tables (Base, ids, enum storage) and
engines; they live in the store (tocsin.store), which owns every backend difference."""

from __future__ import annotations

from tocsin.store.engine import (
    asyncpg_dsn,
    create_engine,
    create_session_factory,
    create_sqlite_sync_engine,
    read_only,
)
from tocsin.store.schema import (
    Base,
    JSONType,
    UTCDateTime,
    enum_values,
    new_id,
    new_ordered_id,
)

__all__ = [
    "Base",
    "JSONType",
    "UTCDateTime",
    "asyncpg_dsn",
    "create_engine",
    "create_session_factory",
    "create_sqlite_sync_engine",
    "enum_values",
    "new_id",
    "new_ordered_id",
    "read_only",
]
