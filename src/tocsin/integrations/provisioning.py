"""Setting up integrations: creating one with its secret key, changing its settings, and
rotating the key."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts.models import Alert
from tocsin.auth.secrets import display_prefix, hash_token, new_token
from tocsin.catalog.models import Service
from tocsin.errors import Conflict, InvalidInput, NotFound
from tocsin.integrations.models import Integration, IntegrationType
from tocsin.integrations.schemas import IntegrationCreate, checked_options
from tocsin.store.pages import newest_first

KEY_PREFIX = "ik"


class IntegrationNotFound(NotFound):
    def __init__(self, integration_id: uuid.UUID) -> None:
        super().__init__(f"integration {integration_id} not found")


class IntegrationHasAlerts(Conflict):
    """Deleting would take the alerts it received with it (they cannot live without it)."""

    def __init__(self, integration_id: uuid.UUID) -> None:
        super().__init__(
            f"integration {integration_id} has received alerts, which would be lost; "
            'deactivate it instead with PATCH {"active": false}'
        )


def webhook_url(base_url: str, key: str) -> str:
    """Where a monitoring tool posts alerts for the integration with this key."""
    return f"{base_url}/webhooks/{key}"


async def list_integrations(
    session: AsyncSession,
    *,
    default_service_id: uuid.UUID | None = None,
    team_id: uuid.UUID | None = None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Integration], str | None]:
    """One page of integrations (those sending by default to one service, or to one team's
    services, if given), newest first, and the cursor of the next page."""
    stmt = select(Integration)
    if default_service_id is not None:
        stmt = stmt.where(Integration.default_service_id == default_service_id)
    if team_id is not None:
        stmt = stmt.join(Service, Service.id == Integration.default_service_id).where(
            Service.team_id == team_id
        )
    return await newest_first(session, stmt, limit=limit, cursor=cursor)


async def _refuse_unknown_service(session: AsyncSession, service_id: uuid.UUID) -> None:
    if await session.get(Service, service_id) is None:
        raise InvalidInput(f"service {service_id} does not exist", field="default_service_id")


def _new_key(type: IntegrationType) -> str:
    if type == IntegrationType.PAGERDUTY:
        # PagerDuty clients expect a 32-character integration key (128 random bits).
        return secrets.token_hex(16)
    return new_token(KEY_PREFIX)


def _options(type: IntegrationType, options: dict[str, Any]) -> dict[str, Any]:
    try:
        return checked_options(type, options)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="options") from exc


class KeyedRow(Protocol):
    """A row that a secret key leads to: an integration, a heartbeat monitor."""

    key_hash: str
    key_prefix: str


def keep_key(row: KeyedRow, key: str) -> str:
    """Store on the row only what it keeps of a new key (its hash, and its first characters
    to tell keys apart); returns the key, to be shown this once."""
    row.key_hash = hash_token(key)
    row.key_prefix = display_prefix(key)
    return key


def _set_new_key(integration: Integration) -> str:
    return keep_key(integration, _new_key(integration.type))


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
    options: dict[str, Any] | None = None,
    templates: dict[str, Any] | None = None,
    rate_limit_per_minute: int | None = None,
    group_by: list[str] | None = None,
    group_window_seconds: int | None = None,
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
        options=_options(type, options or {}),
        templates=templates or {},
        rate_limit_per_minute=rate_limit_per_minute,
        group_by=group_by,
        group_window_seconds=group_window_seconds,
        created_at=now,
        updated_at=now,
    )
    key = _set_new_key(integration)
    session.add(integration)
    await session.flush()
    return integration, key


async def create_integration_from_body(
    session: AsyncSession, body: IntegrationCreate, *, now: datetime
) -> tuple[Integration, str]:
    """create_integration with what a create body asks for (the API's, or the page's form)."""
    return await create_integration(
        session,
        name=body.name,
        type=body.type,
        default_service_id=body.default_service_id,
        dedup_window_minutes=body.dedup_window_minutes,
        auto_resolve=body.auto_resolve,
        active=body.active,
        options=body.options,
        templates=body.templates.model_dump(exclude_none=True),
        rate_limit_per_minute=body.rate_limit_per_minute,
        group_by=body.group_by,
        group_window_seconds=body.group_window_seconds,
        now=now,
    )


async def change_integration(
    session: AsyncSession, integration: Integration, changes: dict[str, Any], *, now: datetime
) -> None:
    """Apply the changed settings; a default service must exist (None clears it)."""
    service_id = changes.get("default_service_id")
    if service_id is not None:
        await _refuse_unknown_service(session, service_id)
    if "options" in changes:
        changes = {**changes, "options": _options(integration.type, changes["options"])}
    if "templates" in changes:
        kept = {k: v for k, v in changes["templates"].items() if v is not None}
        changes = {**changes, "templates": kept}
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


async def delete_integration(session: AsyncSession, integration: Integration) -> None:
    """Delete an integration that never received an alert; IntegrationHasAlerts otherwise
    (an alert belongs to its integration, so deleting one that has alerts would silently
    erase incident history; deactivating stops its key just as well)."""
    if await has_received_alerts(session, integration.id):
        raise IntegrationHasAlerts(integration.id)
    await session.delete(integration)
    await session.flush()


async def has_received_alerts(session: AsyncSession, integration_id: uuid.UUID) -> bool:
    """Whether any alert came in through the integration (and would go if it were deleted)."""
    used = await session.execute(
        select(Alert.id).where(Alert.integration_id == integration_id).limit(1)
    )
    return used.first() is not None
