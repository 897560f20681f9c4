"""Services: the catalog, a service's page (routing key, escalation policy, urgency, status,
what sends to it), creating and editing one. The same domain functions and checks as
/api/v1/services: anyone signed in may read, managers of the service's team (or an admin)
register and change services."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.permissions import require_team_manager
from tocsin.catalog.models import Service, ServiceStatus, ServiceUrgency
from tocsin.catalog.registry import (
    ServiceNotFound,
    change_service,
    list_services,
    register_service_from_body,
)
from tocsin.catalog.schemas import ServiceCreate, ServiceUpdate
from tocsin.errors import TocsinError
from tocsin.heartbeats.monitors import list_monitors
from tocsin.incidents.choices import managed_teams, policy_choices, policy_names, team_names
from tocsin.integrations.provisioning import list_integrations
from tocsin.store.rows import get_or_raise
from tocsin.ui.forms import Refusal, allowed, optional, refusal, render_form
from tocsin.ui.pages import SignedIn, Viewer, list_links, page_router, render
from tocsin.web import DbSession, Now

router = page_router()

PAGE_SIZE = 50
STATUSES = [(s.value, s.value.capitalize()) for s in ServiceStatus]
URGENCIES = [
    (ServiceUrgency.SEVERITY_BASED.value, "By severity (critical and high page urgently)"),
    (ServiceUrgency.HIGH.value, "Always high"),
    (ServiceUrgency.LOW.value, "Always low"),
    (
        ServiceUrgency.SUPPORT_HOURS.value,
        "High inside support hours, low outside (support hours are set through the API)",
    ),
]
DONE = {"created": "Service created.", "saved": "Service saved."}
FIELDS = (
    "name",
    "description",
    "routing_key",
    "team_id",
    "escalation_policy_id",
    "status",
    "urgency",
    "group_by",
    "group_window_seconds",
)


@router.get("/services")
async def service_list(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    cursor: Annotated[str | None, Query()] = None,
) -> Response:
    services, next_cursor = await list_services(session, limit=PAGE_SIZE, cursor=cursor)
    return render(
        request,
        "services/list.html",
        {
            "title": "Services",
            "services": services,
            "teams": await team_names(session),
            "policies": await policy_names(
                session, [s.escalation_policy_id for s in services if s.escalation_policy_id]
            ),
            "may_create": bool(await managed_teams(session, viewer.principal)),
            **list_links("/services?", cursor, next_cursor),
        },
    )


async def _form_page(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    *,
    service: Service | None,
    form: dict[str, str],
    refused: Refusal | None = None,
) -> Response:
    """The create or edit form; the teams offered are those the viewer manages."""
    return render_form(
        request,
        "services/form.html",
        {
            "title": f"Edit {service.name}" if service else "New service",
            "service": service,
            "form": form,
            "teams": await managed_teams(session, viewer.principal),
            "policies": await policy_choices(session, viewer.principal),
            "statuses": STATUSES,
            "urgencies": URGENCIES,
        },
        refused,
    )


@router.get("/services/new")
async def service_new(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    team: Annotated[str, Query()] = "",
) -> Response:
    form = {
        "team_id": team,
        "status": "active",
        "urgency": "severity_based",
        "group_by": "",
        "group_window_seconds": "300",
    }
    return await _form_page(request, viewer, session, service=None, form=form)


def _body(form: dict[str, str]) -> dict[str, Any]:
    """The form as the API's JSON body: an empty policy is null (the team's default)."""
    values: dict[str, Any] = dict(form)
    values["escalation_policy_id"] = optional(form.get("escalation_policy_id", ""))
    # Tag names, comma separated; the schema refuses a bad one by the field's name.
    names = form.get("group_by", "").split(",")
    values["group_by"] = [name.strip() for name in names if name.strip()]
    values["group_window_seconds"] = form.get("group_window_seconds", "").strip() or "300"
    return values


@router.post("/services")
async def service_create(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    routing_key: Annotated[str, Form()] = "",
    team_id: Annotated[str, Form()] = "",
    escalation_policy_id: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = ServiceStatus.ACTIVE.value,
    urgency: Annotated[str, Form()] = ServiceUrgency.SEVERITY_BASED.value,
    group_by: Annotated[str, Form()] = "",
    group_window_seconds: Annotated[str, Form()] = "300",
) -> Response:
    """Managers of the chosen team or an admin, as POST /api/v1/services."""
    form = dict(
        zip(
            FIELDS,
            (
                name,
                description,
                routing_key,
                team_id,
                escalation_policy_id,
                status,
                urgency,
                group_by,
                group_window_seconds,
            ),
            strict=True,
        )
    )
    try:
        body = ServiceCreate.model_validate(_body(form))
        await require_team_manager(session, viewer.principal, body.team_id)
        service = await register_service_from_body(session, body, now=now)
    except (ValidationError, TocsinError) as exc:
        await session.rollback()
        return await _form_page(
            request, viewer, session, service=None, form=form, refused=refusal(exc)
        )
    await session.commit()
    return RedirectResponse(f"/services/{service.id}?done=created", status_code=303)


async def _existing(session: AsyncSession, service_id: uuid.UUID) -> Service:
    return await get_or_raise(session, Service, service_id, ServiceNotFound)


def _form_of(service: Service) -> dict[str, str]:
    return {
        "name": service.name,
        "description": service.description,
        "routing_key": service.routing_key,
        "team_id": str(service.team_id),
        "escalation_policy_id": str(service.escalation_policy_id or ""),
        "status": service.status.value,
        "urgency": service.urgency.value,
        "group_by": ", ".join(service.group_by),
        "group_window_seconds": str(service.group_window_seconds),
    }


@router.get("/services/{service_id}")
async def service_page(
    request: Request,
    service_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    done: Annotated[str, Query()] = "",
) -> Response:
    service = await _existing(session, service_id)
    integrations, _ = await list_integrations(
        session, default_service_id=service.id, limit=100, cursor=None
    )
    monitors, _ = await list_monitors(session, service_id=service.id, limit=100, cursor=None)
    policy = service.escalation_policy_id
    return render(
        request,
        "services/detail.html",
        {
            "title": service.name,
            "service": service,
            "team_name": (await team_names(session)).get(service.team_id, "?"),
            "policy_name": (await policy_names(session, [policy] if policy else [])).get(policy)
            if policy
            else None,
            "integrations": integrations,
            "monitors": monitors,
            "may_manage": await allowed(
                require_team_manager(session, viewer.principal, service.team_id)
            ),
            "urgencies": dict(URGENCIES),
            "done": DONE.get(done, ""),
        },
    )


@router.get("/services/{service_id}/edit")
async def service_edit_form(
    request: Request, service_id: uuid.UUID, viewer: SignedIn, session: DbSession
) -> Response:
    service = await _existing(session, service_id)
    await require_team_manager(session, viewer.principal, service.team_id)
    return await _form_page(request, viewer, session, service=service, form=_form_of(service))


@router.post("/services/{service_id}")
async def service_edit(
    request: Request,
    service_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    routing_key: Annotated[str, Form()] = "",
    team_id: Annotated[str, Form()] = "",
    escalation_policy_id: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    urgency: Annotated[str, Form()] = "",
    group_by: Annotated[str, Form()] = "",
    group_window_seconds: Annotated[str, Form()] = "",
) -> Response:
    """Managers of the service's team (and of the new team, when moving it) or an admin, as
    PATCH /api/v1/services/{id}; archive it by choosing the status Archived."""
    service = await _existing(session, service_id)
    form = dict(
        zip(
            FIELDS,
            (
                name,
                description,
                routing_key,
                team_id,
                escalation_policy_id,
                status,
                urgency,
                group_by,
                group_window_seconds,
            ),
            strict=True,
        )
    )
    try:
        await require_team_manager(session, viewer.principal, service.team_id)
        body = ServiceUpdate.model_validate(_body(form))
        if body.team_id is not None and body.team_id != service.team_id:
            await require_team_manager(session, viewer.principal, body.team_id)
        await change_service(session, service, body.model_dump(exclude_unset=True), now=now)
    except (ValidationError, TocsinError) as exc:
        await session.rollback()
        service = await _existing(session, service_id)
        return await _form_page(
            request, viewer, session, service=service, form=form, refused=refusal(exc)
        )
    await session.commit()
    return RedirectResponse(f"/services/{service.id}?done=saved", status_code=303)
