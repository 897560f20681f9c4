"""Service routes. Any signed-in user may read the catalog; managers of a service's team, or
an admin, register and change services.

DELETE really deletes, and only a service nothing refers to: while incidents or integrations
refer to it the answer is 409, and PATCH {"status": "archived"} retires it instead.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter

from tocsin.auth.permissions import require_team_manager
from tocsin.catalog.models import Service, ServiceStatus
from tocsin.catalog.registry import (
    ServiceNotFound,
    change_service,
    delete_service,
    register_service_from_body,
)
from tocsin.catalog.registry import (
    list_services as list_services_page,
)
from tocsin.catalog.schemas import ServiceCreate, ServiceOut, ServiceUpdate
from tocsin.web import CurrentUser, Cursor, DbSession, Limit, Now, Page, row_in_path

router = APIRouter(prefix="/api/v1/services", tags=["services"])


ExistingService = Annotated[Service, row_in_path(Service, ServiceNotFound, "service_id")]


@router.get("", response_model=Page[ServiceOut])
async def list_services(
    session: DbSession,
    _principal: CurrentUser,
    status: ServiceStatus | None = None,
    team_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ServiceOut]:
    """Services newest first, archived ones included unless filtered by status."""
    page, next_cursor = await list_services_page(
        session, status=status, team_id=team_id, limit=limit, cursor=cursor
    )
    return Page[ServiceOut].of(page, next_cursor)


@router.post("", status_code=201, response_model=ServiceOut)
async def create_service(
    body: ServiceCreate, session: DbSession, principal: CurrentUser, now: Now
) -> ServiceOut:
    """Managers of team_id or an admin."""
    await require_team_manager(session, principal, body.team_id)
    service = await register_service_from_body(session, body, now=now)
    await session.commit()
    return ServiceOut.model_validate(service)


@router.get("/{service_id}", response_model=ServiceOut)
async def get_service_route(service: ExistingService) -> ServiceOut:
    return ServiceOut.model_validate(service)


@router.patch("/{service_id}", response_model=ServiceOut)
async def update_service(
    service: ExistingService,
    body: ServiceUpdate,
    session: DbSession,
    principal: CurrentUser,
    now: Now,
) -> ServiceOut:
    """Managers of the service's team (and, when moving it, of the new team) or an admin.
    Archive with {"status": "archived"}."""
    for team_id in {service.team_id, body.team_id or service.team_id}:
        await require_team_manager(session, principal, team_id)
    await change_service(session, service, body.model_dump(exclude_unset=True), now=now)
    await session.commit()
    return ServiceOut.model_validate(service)


@router.delete("/{service_id}", status_code=204)
async def delete_service_route(
    service: ExistingService, session: DbSession, principal: CurrentUser
) -> None:
    """Managers of the service's team or an admin. 409 while incidents or integrations refer
    to the service: archive it instead."""
    await require_team_manager(session, principal, service.team_id)
    await delete_service(session, service)
    await session.commit()
