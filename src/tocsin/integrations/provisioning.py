"""Setting up integrations: creating one with its secret key, changing its settings, and
rotating the key."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.secrets import display_prefix, hash_token, new_token
from tocsin.catalog.models import Service
from tocsin.errors import InvalidInput, NotFound
from tocsin.integrations.models import Integration, IntegrationType

KEY_PREFIX = "ik"


class IntegrationNotFound(NotFound):
    def __init__(self, integration_id: uuid.UUID) -> None:
        super().__init__(f"integration {integration_id} not found")


def webhook_url(base_url: str, key: str) -> str:
    """Where a monitoring tool posts alerts for the integration with this key."""
    return f"{base_url}/webhooks/{key}"


async def find_integration(session: AsyncSession, integration_id: uuid.UUID) -> Integration | None:
    return await session.get(Integration, integration_id)


async def _refuse_unknown_service(session: AsyncSession, service_id: uuid.UUID) -> None:
    if await session.get(Service, service_id) is None:
        raise InvalidInput(f"service {service_id} does not exist", field="default_service_id")


def _set_new_key(integration: Integration) -> str:
    key = new_token(KEY_PREFIX)
    integration.key_hash = hash_token(key)
    integration.key_prefix = display_prefix(key)
    return key


async def create_integration(
    session: AsyncSession,
    *,
    name: str,
    type: IntegrationType,
    default_service_id: uuid.UUID | None,
    dedup_window_minutes: int,
    auto_resolve: bool,
    active: bool,
    now: datetime,
) -> tuple[Integration, str]:
    """A new integration and its key, which is not stored (only its hash is)."""
    if default_service_id is not None:
        await _refuse_unknown_service(session, default_service_id)
    integration = Integration(
        name=name,
        type=type,
        default_service_id=default_service_id,
        dedup_window_minutes=dedup_window_minutes,
        auto_resolve=auto_resolve,
        active=active,
        created_at=now,
        updated_at=now,
    )
    key = _set_new_key(integration)
    session.add(integration)
    await session.flush()
    return integration, key


async def change_integration(
    session: AsyncSession, integration: Integration, changes: dict[str, Any], *, now: datetime
) -> None:
    """Apply the changed settings; a default service must exist (None clears it)."""
    service_id = changes.get("default_service_id")
    if service_id is not None:
        await _refuse_unknown_service(session, service_id)
    for name, value in changes.items():
        setattr(integration, name, value)
    integration.updated_at = now
    await session.flush()


async def rotate_key(session: AsyncSession, integration: Integration, *, now: datetime) -> str:
    """Give the integration a new key; the old one stops working when this commits."""
    key = _set_new_key(integration)
    integration.updated_at = now
    await session.flush()
    return key
