"""Heartbeat monitors: the list with each one's state and last ping, creating one (its ping
URL shown once) and deleting one. The same domain functions and checks as
/api/v1/heartbeats: anyone signed in may read, managers of the service's team (or an admin)
create and delete. `/heartbeats/{key}` itself is the ping endpoint, so a monitor has no page
of its own at `/heartbeats/{id}`: the list is its page."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts.models import Severity
from tocsin.auth.permissions import require_team_manager
from tocsin.errors import TocsinError
from tocsin.heartbeats.models import HeartbeatMonitor
from tocsin.heartbeats.monitors import (
    HeartbeatNotFound,
    create_monitor,
    delete_monitor,
    find_monitor_service,
    list_monitors,
    ping_url,
)
from tocsin.heartbeats.schemas import HeartbeatCreate
from tocsin.incidents.choices import managed_teams, service_names, team_names
from tocsin.store.rows import get_or_raise
from tocsin.ui.forms import Refusal, refusal, render_form
from tocsin.ui.integration_pages import NO_STORE
from tocsin.ui.pages import SignedIn, Viewer, list_links, page_router, render
from tocsin.web import DbSession, Now, State

router = page_router()

PAGE_SIZE = 50
SEVERITIES = [(s.value, s.value.capitalize()) for s in Severity]
DONE = {"deleted": "Heartbeat monitor deleted."}


async def _list_page(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    *,
    cursor: str | None = None,
    done: str = "",
    refused: Refusal | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    monitors, next_cursor = await list_monitors(session, limit=PAGE_SIZE, cursor=cursor)
    services = await service_names(session)
    managed = {t.id for t in await managed_teams(session, viewer.principal)}
    return render_form(
        request,
        "heartbeats/list.html",
        {
            "title": "Heartbeats",
            "monitors": monitors,
            "services": services,
            "teams": await team_names(session),
            # The services a monitor may be made for: those of teams the viewer manages.
            "service_choices": sorted(
                ((sid, s) for sid, s in services.items() if s[1] in managed),
                key=lambda kv: kv[1][0].lower(),
            ),
            "managed": managed,
            "severities": SEVERITIES,
            **list_links("/heartbeats?", cursor, next_cursor),
            "done": DONE.get(done, ""),
            "form": form or {"interval_seconds": "300", "grace_seconds": "60"},
        },
        refused,
    )


@router.get("/heartbeats")
async def heartbeat_list(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    cursor: Annotated[str | None, Query()] = None,
    done: Annotated[str, Query()] = "",
) -> Response:
    return await _list_page(request, viewer, session, cursor=cursor, done=done)


@router.post("/heartbeats")
async def heartbeat_create(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    state: State,
    name: Annotated[str, Form()] = "",
    service_id: Annotated[str, Form()] = "",
    interval_seconds: Annotated[str, Form()] = "",
    grace_seconds: Annotated[str, Form()] = "",
    severity: Annotated[str, Form()] = Severity.CRITICAL.value,
) -> Response:
    """Managers of the service's team or an admin, as POST /api/v1/heartbeats; the answer
    shows the ping URL, this once."""
    form = {
        "name": name,
        "service_id": service_id,
        "interval_seconds": interval_seconds,
        "grace_seconds": grace_seconds,
        "severity": severity,
    }
    values: dict[str, Any] = {k: v.strip() for k, v in form.items() if k != "name"}
    values["name"] = name
    if not values["grace_seconds"]:
        del values["grace_seconds"]
    try:
        body = HeartbeatCreate.model_validate(values)
        service = await find_monitor_service(session, body.service_id)
        await require_team_manager(session, viewer.principal, service.team_id)
        monitor, key = await create_monitor(session, body, now=now)
    except (ValidationError, TocsinError) as exc:
        await session.rollback()
        return await _list_page(request, viewer, session, refused=refusal(exc), form=form)
    await session.commit()
    return render(
        request,
        "heartbeats/key.html",
        {
            "title": monitor.name,
            "monitor": monitor,
            "ping_url": ping_url(state.settings.base_url(), key),
        },
        headers=NO_STORE,
    )


@router.post("/heartbeats/{heartbeat_id}/delete")
async def heartbeat_delete(
    request: Request, heartbeat_id: uuid.UUID, viewer: SignedIn, session: DbSession, now: Now
) -> Response:
    """Its ping URL stops working; incidents it opened stay."""
    monitor = await get_or_raise(session, HeartbeatMonitor, heartbeat_id, HeartbeatNotFound)
    try:
        service = await find_monitor_service(session, monitor.service_id)
        await require_team_manager(session, viewer.principal, service.team_id)
        await delete_monitor(session, monitor, now=now)
    except TocsinError as exc:
        await session.rollback()
        return await _list_page(request, viewer, session, refused=refusal(exc))
    await session.commit()
    return RedirectResponse("/heartbeats?done=deleted", status_code=303)
