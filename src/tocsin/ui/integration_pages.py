"""Integrations: the list (with the service and team each sends to), an integration's page,
creating one and rotating its key. The webhook URL holds the key, so it is shown once, in
the answer to the form that made it, and never again (as the API answers it once). The last
payloads received are for administrators only, as GET /api/v1/integrations/{id}/payloads."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.permissions import require_admin
from tocsin.errors import InvalidInput, TocsinError
from tocsin.incidents.choices import service_names, team_names
from tocsin.integrations.email.addresses import email_address
from tocsin.integrations.models import Integration, IntegrationType
from tocsin.integrations.payload_log import read_recent_payloads
from tocsin.integrations.provisioning import (
    IntegrationNotFound,
    change_integration,
    create_integration_from_body,
    list_integrations,
    rotate_key,
    webhook_url,
)
from tocsin.integrations.schemas import IntegrationCreate
from tocsin.runtime import Runtime
from tocsin.store.rows import get_or_raise
from tocsin.ui.forms import Refusal, checked, optional, refusal, render_form
from tocsin.ui.pages import SignedIn, Viewer, list_links, page_router, render
from tocsin.web import DbSession, Now, State

router = page_router()

PAGE_SIZE = 50
# Heartbeat integrations are made with their monitor (/heartbeats), not here.
TYPES = [(t.value, t.value.capitalize()) for t in IntegrationType if t != IntegrationType.HEARTBEAT]
DONE = {
    "activated": "Integration active: its key works.",
    "deactivated": "Integration inactive: its key is refused; its alerts and incidents stay.",
}
# The key is in the page: no cache, no copy kept by a proxy or the back button.
NO_STORE = {"Cache-Control": "no-store"}


async def _list_page(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    *,
    service: uuid.UUID | None = None,
    team: uuid.UUID | None = None,
    cursor: str | None = None,
    done: str = "",
    refused: Refusal | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    integrations, next_cursor = await list_integrations(
        session, default_service_id=service, team_id=team, limit=PAGE_SIZE, cursor=cursor
    )
    services = await service_names(session)
    teams = await team_names(session)
    query = (f"service={service}&" if service else "") + (f"team={team}&" if team else "")
    return render_form(
        request,
        "integrations/list.html",
        {
            "title": "Integrations",
            "integrations": integrations,
            "services": services,
            "service_choices": sorted(services.items(), key=lambda kv: kv[1][0].lower()),
            "teams": teams,
            "team_choices": sorted(teams.items(), key=lambda kv: kv[1].lower()),
            "service_filter": service,
            "team_filter": team,
            "done": DONE.get(done, ""),
            "types": TYPES,
            **list_links(f"/integrations?{query}", cursor, next_cursor),
            "form": form or {"type": "generic", "dedup_window_minutes": "", "auto_resolve": True},
        },
        refused,
    )


@router.get("/integrations")
async def integration_list(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    service: Annotated[str, Query()] = "",
    team: Annotated[str, Query()] = "",
    cursor: Annotated[str | None, Query()] = None,
) -> Response:
    """Every integration, or those sending by default to one service (?service=<id>) or to
    the services of one team (?team=<id>)."""
    ids: dict[str, uuid.UUID | None] = {}
    for name, value in (("service", service), ("team", team)):
        try:
            ids[name] = uuid.UUID(value) if value else None
        except ValueError as exc:
            raise InvalidInput(f"{value!r} is not a {name} id", field=name) from exc
    return await _list_page(
        request, viewer, session, service=ids["service"], team=ids["team"], cursor=cursor
    )


def _key_page(
    request: Request, integration: Integration, key: str, state: Runtime, *, what: str
) -> Response:
    """The one page that shows the key and the URLs made from it."""
    settings = state.settings
    return render(
        request,
        "integrations/key.html",
        {
            "title": integration.name,
            "integration": integration,
            "what": what,
            "webhook_url": webhook_url(settings.base_url(), key),
            "email_address": (
                email_address(key, settings) if integration.type == IntegrationType.EMAIL else None
            ),
            "key": key,
        },
        headers=NO_STORE,
    )


@router.post("/integrations")
async def integration_create(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    state: State,
    name: Annotated[str, Form()] = "",
    type: Annotated[str, Form()] = IntegrationType.GENERIC.value,
    default_service_id: Annotated[str, Form()] = "",
    dedup_window_minutes: Annotated[str, Form()] = "",
    auto_resolve: Annotated[str, Form()] = "",
) -> Response:
    """Administrators only, as POST /api/v1/integrations."""
    form: dict[str, Any] = {
        "name": name,
        "type": type,
        "default_service_id": default_service_id,
        "dedup_window_minutes": dedup_window_minutes,
        "auto_resolve": checked(auto_resolve),
    }
    values: dict[str, Any] = {
        "name": name,
        "type": type,
        "default_service_id": optional(default_service_id),
        "auto_resolve": checked(auto_resolve),
    }
    if dedup_window_minutes.strip():
        # Left empty: the type's default window, as when the API's body leaves it out.
        values["dedup_window_minutes"] = dedup_window_minutes.strip()
    try:
        require_admin(viewer.principal)
        body = IntegrationCreate.model_validate(values)
        integration, key = await create_integration_from_body(session, body, now=now)
    except (ValidationError, TocsinError) as exc:
        await session.rollback()
        return await _list_page(request, viewer, session, refused=refusal(exc), form=form)
    await session.commit()
    return _key_page(request, integration, key, state, what="created")


async def _existing(session: AsyncSession, integration_id: uuid.UUID) -> Integration:
    return await get_or_raise(session, Integration, integration_id, IntegrationNotFound)


@router.get("/integrations/{integration_id}")
async def integration_page(
    request: Request,
    integration_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    state: State,
    done: Annotated[str, Query()] = "",
) -> Response:
    integration = await _existing(session, integration_id)
    payloads: list[Any] = []
    if viewer.is_admin:
        payloads = await read_recent_payloads(state.payload_log, state.read_engine, integration.id)
    services = await service_names(session)
    service = (
        services.get(integration.default_service_id) if integration.default_service_id else None
    )
    teams = await team_names(session)
    return render(
        request,
        "integrations/detail.html",
        {
            "title": integration.name,
            "integration": integration,
            "service": service,
            "team_name": teams.get(service[1]) if service else None,
            "payloads": payloads,
            "done": DONE.get(done, ""),
        },
    )


@router.post("/integrations/{integration_id}/rotate-key")
async def integration_rotate_key(
    request: Request,
    integration_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    state: State,
) -> Response:
    """Administrators only: a new key, shown this once; the old one stops working at once."""
    integration = await _existing(session, integration_id)
    require_admin(viewer.principal)
    key = await rotate_key(session, integration, now=now)
    await session.commit()
    return _key_page(request, integration, key, state, what="rotated")


@router.post("/integrations/{integration_id}/active")
async def integration_active(
    request: Request,
    integration_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    active: Annotated[str, Form()] = "",
) -> Response:
    """Administrators only, as PATCH /api/v1/integrations/{id} {"active": ...}: an inactive
    integration's key is refused, and its history stays."""
    integration = await _existing(session, integration_id)
    require_admin(viewer.principal)
    on = checked(active)
    await change_integration(session, integration, {"active": on}, now=now)
    await session.commit()
    word = "activated" if on else "deactivated"
    return RedirectResponse(f"/integrations/{integration.id}?done={word}", status_code=303)
