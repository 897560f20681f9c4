"""Integration routes. Any signed-in user may read integrations; only admins create, change,
delete them or rotate their keys, since an integration's key lets anyone who has it page
whichever team its alerts route to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from tocsin.auth.permissions import require_admin
from tocsin.config import Settings
from tocsin.integrations.email.addresses import email_address
from tocsin.integrations.models import Integration, IntegrationType
from tocsin.integrations.payload_log import read_recent_payloads
from tocsin.integrations.provisioning import (
    IntegrationNotFound,
    change_integration,
    create_integration_from_body,
    delete_integration,
    rotate_key,
    webhook_url,
)
from tocsin.integrations.provisioning import (
    list_integrations as list_integrations_page,
)
from tocsin.integrations.schemas import (
    IntegrationCreate,
    IntegrationOut,
    IntegrationUpdate,
    IntegrationWithKey,
    PayloadOut,
)
from tocsin.web import CurrentUser, Cursor, DbSession, Limit, Now, Page, State, row_in_path

router = APIRouter(prefix="/api/v1/integrations", tags=["integrations"])


ExistingIntegration = Annotated[
    Integration, row_in_path(Integration, IntegrationNotFound, "integration_id")
]


def with_key(integration: Integration, key: str, settings: Settings) -> IntegrationWithKey:
    return IntegrationWithKey(
        **IntegrationOut.model_validate(integration).model_dump(),
        key=key,
        webhook_url=webhook_url(settings.base_url(), key),
        email_address=(
            email_address(key, settings) if integration.type == IntegrationType.EMAIL else None
        ),
    )


@router.get("", response_model=Page[IntegrationOut])
async def list_integrations(
    session: DbSession, _principal: CurrentUser, limit: Limit = 50, cursor: Cursor = None
) -> Page[IntegrationOut]:
    page, next_cursor = await list_integrations_page(session, limit=limit, cursor=cursor)
    return Page[IntegrationOut].of(page, next_cursor)


@router.post("", status_code=201, response_model=IntegrationWithKey)
async def create_integration_route(
    body: IntegrationCreate, session: DbSession, principal: CurrentUser, now: Now, state: State
) -> IntegrationWithKey:
    """Admin only. The answer holds the key and webhook URL, shown this once."""
    require_admin(principal)
    integration, key = await create_integration_from_body(session, body, now=now)
    await session.commit()
    return with_key(integration, key, state.settings)


@router.get("/{integration_id}", response_model=IntegrationOut)
async def get_integration_route(integration: ExistingIntegration) -> IntegrationOut:
    return IntegrationOut.model_validate(integration)


@router.patch("/{integration_id}", response_model=IntegrationOut)
async def update_integration(
    integration: ExistingIntegration,
    body: IntegrationUpdate,
    session: DbSession,
    principal: CurrentUser,
    now: Now,
) -> IntegrationOut:
    """Admin only. default_service_id: null clears it."""
    require_admin(principal)
    await change_integration(session, integration, body.model_dump(exclude_unset=True), now=now)
    await session.commit()
    return IntegrationOut.model_validate(integration)


@router.delete("/{integration_id}", status_code=204)
async def delete_integration_route(
    integration: ExistingIntegration, session: DbSession, principal: CurrentUser
) -> None:
    """Admin only, and only while it has received no alert (409 then: deactivate it with
    PATCH {"active": false} instead, which stops its key and keeps the history)."""
    require_admin(principal)
    await delete_integration(session, integration)
    await session.commit()


@router.post("/{integration_id}/rotate-key", response_model=IntegrationWithKey)
async def rotate_integration_key(
    integration: ExistingIntegration,
    session: DbSession,
    principal: CurrentUser,
    now: Now,
    state: State,
) -> IntegrationWithKey:
    """Admin only. A new key, shown this once; the old one stops working at once."""
    require_admin(principal)
    key = await rotate_key(session, integration, now=now)
    await session.commit()
    return with_key(integration, key, state.settings)


@router.get(
    "/{integration_id}/payloads",
    response_model=list[PayloadOut],
    responses={403: {"description": "Admins only"}, 404: {"description": "No such integration"}},
)
async def list_payloads(
    integration: ExistingIntegration, principal: CurrentUser, state: State
) -> list[PayloadOut]:
    """Admin only (payloads may hold anything a tool sent). The last payloads received,
    newest first, each with what it was mapped to or why it was refused."""
    require_admin(principal)
    rows = await read_recent_payloads(state.payload_log, state.read_engine, integration.id)
    return [PayloadOut.model_validate(r) for r in rows]
