"""Finding the integration an incoming request's key belongs to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.auth.secrets import hash_token
from tocsin.integrations.models import Integration, IntegrationType
from tocsin.store.connection import Connection
from tocsin.store.quickreads import driver_ready, kept_first


@dataclass(frozen=True)
class IntegrationInfo:
    """What ingest needs to know about an integration."""

    id: uuid.UUID
    type: IntegrationType
    default_service_id: uuid.UUID | None
    dedup_window_minutes: int
    auto_resolve: bool
    options: dict[str, Any] = field(default_factory=dict)
    templates: dict[str, Any] = field(default_factory=dict)
    rate_limit_per_minute: int | None = None
    # Overrides the service's grouping when set (noise/grouping.py).
    group_by: tuple[str, ...] | None = None
    group_window_seconds: int | None = None


_INFO = select(
    Integration.id,
    Integration.type,
    Integration.default_service_id,
    Integration.dedup_window_minutes,
    Integration.auto_resolve,
    Integration.options,
    Integration.templates,
    Integration.rate_limit_per_minute,
    Integration.group_by,
    Integration.group_window_seconds,
)


# Built once: every webhook runs it, and a statement object reused keeps its cache key.
# Kept per process while the lookups stamp holds (tocsin/store/stamp.py): a key revoked or
# an integration changed anywhere is seen at the next request.
_ACTIVE_BY_KEY_HASH = driver_ready(
    _INFO.where(Integration.active.is_(True), Integration.key_hash == bindparam("key_hash")),
    kept=True,
)


async def find_active_integration(conn: Connection, key: str) -> IntegrationInfo | None:
    """The active integration with this secret key, or None (unknown and inactive alike).
    The answer may be shared with other requests: it is frozen, and so are its dicts in
    practice (nothing on the ingest path changes an integration's options or templates)."""
    return await kept_first(conn, _ACTIVE_BY_KEY_HASH, {"key_hash": hash_token(key)}, _found)


def _found(row: Row[Any]) -> IntegrationInfo:
    info = _info(row)
    assert info is not None
    return info


async def find_integration(
    conn: AsyncConnection, integration_id: uuid.UUID
) -> IntegrationInfo | None:
    """The integration with this id, active or not, or None."""
    return await _find_one(conn, _INFO.where(Integration.id == integration_id))


async def _find_one(conn: AsyncConnection, stmt: Select[Any]) -> IntegrationInfo | None:
    return _info((await conn.execute(stmt)).first())


def _info(row: Row[Any] | None) -> IntegrationInfo | None:
    if row is None:
        return None
    return IntegrationInfo(
        id=row.id,
        type=row.type,
        default_service_id=row.default_service_id,
        dedup_window_minutes=row.dedup_window_minutes,
        auto_resolve=row.auto_resolve,
        options=row.options or {},
        templates=row.templates or {},
        rate_limit_per_minute=row.rate_limit_per_minute,
        group_by=None if row.group_by is None else tuple(row.group_by),
        group_window_seconds=row.group_window_seconds,
    )
