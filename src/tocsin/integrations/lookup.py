"""Finding the integration an incoming request's key belongs to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.auth.secrets import hash_token
from tocsin.integrations.models import Integration, IntegrationType


@dataclass(frozen=True)
class IntegrationInfo:
    """What ingest needs to know about an integration."""

    id: uuid.UUID
    type: IntegrationType
    default_service_id: uuid.UUID | None
    dedup_window_minutes: int
    auto_resolve: bool


_BY_KEY_HASH = select(
    Integration.id,
    Integration.type,
    Integration.default_service_id,
    Integration.dedup_window_minutes,
    Integration.auto_resolve,
).where(Integration.active.is_(True))


async def find_active_integration(conn: AsyncConnection, key: str) -> IntegrationInfo | None:
    """The active integration with this secret key, or None (unknown and inactive alike)."""
    row = (await conn.execute(_BY_KEY_HASH.where(Integration.key_hash == hash_token(key)))).first()
    if row is None:
        return None
    return IntegrationInfo(
        id=row.id,
        type=row.type,
        default_service_id=row.default_service_id,
        dedup_window_minutes=row.dedup_window_minutes,
        auto_resolve=row.auto_resolve,
    )
