"""/silences (list, editor, expire, recently suppressed alerts), /services/{id}/maintenance
(a service's maintenance windows), and the incident page's "silence like this" and snooze.

Every change goes through the noise package with the API's schemas and permission checks.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts.models import Alert
from tocsin.auth.permissions import (
    require_admin,
    require_team_manager,
    require_team_responder,
    visible_team_ids,
)
from tocsin.catalog.models import Service
from tocsin.catalog.registry import ServiceNotFound
from tocsin.errors import Forbidden, InvalidInput, TocsinError
from tocsin.incidents.choices import visible_teams
from tocsin.incidents.responding import find_visible_incident
from tocsin.incidents.timeline import Actor
from tocsin.noise.api import window_out
from tocsin.noise.matchers import MatchOp
from tocsin.noise.models import MaintenanceWindow
from tocsin.noise.schemas import MATCHER_FIELDS, MaintenanceWindowCreate, SilenceCreate, SnoozeIn
from tocsin.noise.silences import (
    count_silenced,
    create_silence,
    expire_silence,
    find_silence,
    list_silences,
    silence_like,
    silence_out,
)
from tocsin.noise.snooze import snooze
from tocsin.ui.clockface import zone_named
from tocsin.ui.pages import SignedIn, Viewer, page_router, readable_on_page, render
from tocsin.ui.schedule_pages import local_instant, text_of
from tocsin.web import DbSession, Now

router = page_router()

MATCHER_ROWS = 6
SNOOZE_HOURS = (1, 2, 4, 8, 24)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _by_top_field(exc: ValidationError) -> dict[str, str]:
    """Messages by the form field they belong to: a matcher's problem under "matchers", one
    of the whole form (ends before it starts) under "form"."""
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        field = loc[0] if loc else "form"
        out.setdefault(field, str(err.get("msg", "is not valid")).removeprefix("Value error, "))
    return out


def _blank_form(now: datetime, zone_name: str) -> dict[str, Any]:
    zone = zone_named(zone_name)
    return {
        "team_id": "",
        "matchers": [],
        "starts_at": "",
        "ends_at": (now + timedelta(hours=2)).astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
        "comment": "",
    }


async def _silences_page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    now: datetime,
    *,
    form: dict[str, Any],
    errors: dict[str, str] | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> Response:
    teams = await visible_team_ids(session, viewer.principal)
    silences = await list_silences(session, teams=teams, state=None, now=now)
    counts = await count_silenced(session, [s.id for s in silences])
    suppressed = select(Alert).where(Alert.suppressed_kind.is_not(None))
    if teams is not None:
        # An alert suppressed for a team is found through its silence or window; keep it
        # simple and safe: only admins see every suppressed alert, others those of their
        # silences.
        suppressed = suppressed.where(Alert.suppressed_by.in_([s.id for s in silences]))
    recent = list(
        (await session.execute(suppressed.order_by(Alert.received_at.desc()).limit(50))).scalars()
    )
    rows = [(silence_out(s, now), counts.get(s.id, 0)) for s in silences]
    may_create = await _creatable_teams(session, viewer)
    matchers = list(form["matchers"])
    while len(matchers) < MATCHER_ROWS:
        matchers.append({"field": "tag", "name": "", "op": "=", "value": ""})
    return render(
        request,
        "noise/silences.html",
        {
            "rows": rows,
            "recent": recent,
            "teams": may_create,
            "form": {**form, "matchers": matchers},
            "errors": errors or {},
            "done": done,
            "fields": MATCHER_FIELDS,
            "ops": [op.value for op in MatchOp],
        },
        status_code=status_code,
    )


async def _creatable_teams(session: AsyncSession, viewer: Viewer) -> list[Any]:
    """The teams the viewer may silence (responders and managers)."""
    out = []
    for team in await visible_teams(session, viewer.principal):
        try:
            await require_team_responder(session, viewer.principal, team.id)
        except Forbidden:
            continue
        out.append(team)
    return out


@router.get("/silences")
async def silences_page(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    incident_id: uuid.UUID | None = None,
    created: bool = False,
) -> Response:
    form = _blank_form(now, viewer.time_zone)
    if incident_id is not None:
        incident = await find_visible_incident(session, viewer.principal, incident_id)
        draft = await silence_like(session, incident, now=now)
        zone = zone_named(viewer.time_zone)
        form = {
            "team_id": str(draft.team_id or ""),
            "matchers": [m.model_dump() for m in draft.matchers],
            "starts_at": "",
            "ends_at": draft.ends_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
            "comment": draft.comment,
        }
    done = "silence created" if created else None
    return await _silences_page(request, session, viewer, now, form=form, done=done)


@router.post("/silences")
async def silences_create(
    request: Request, viewer: SignedIn, session: DbSession, now: Now
) -> Response:
    data = await request.form()
    zone = zone_named(viewer.time_zone)
    matchers = []
    for n in range(MATCHER_ROWS):
        value = data.get(f"m{n}_value")
        name = text_of(data, f"m{n}_name")
        field = text_of(data, f"m{n}_field") or "tag"
        if not isinstance(value, str) or (not value and not name):
            continue
        matchers.append(
            {"field": field, "name": name, "op": text_of(data, f"m{n}_op"), "value": value}
        )
    form: dict[str, Any] = {
        "team_id": text_of(data, "team_id"),
        "matchers": matchers,
        "starts_at": text_of(data, "starts_at"),
        "ends_at": text_of(data, "ends_at"),
        "comment": text_of(data, "comment"),
    }
    try:
        body = SilenceCreate.model_validate(
            {
                "team_id": form["team_id"] or None,
                "matchers": matchers,
                "starts_at": local_instant(form["starts_at"], zone),
                "ends_at": local_instant(form["ends_at"], zone),
                "comment": form["comment"],
            }
        )
        if body.team_id is None:
            require_admin(viewer.principal)
        else:
            await require_team_responder(session, viewer.principal, body.team_id)
    except ValidationError as exc:
        errors = _by_top_field(exc)
        return await _silences_page(
            request, session, viewer, now, form=form, errors=errors, status_code=422
        )
    except TocsinError as exc:
        return await _silences_page(
            request,
            session,
            viewer,
            now,
            form=form,
            errors={"form": exc.detail},
            status_code=exc.status_code,
        )
    await create_silence(session, body, by=viewer.user_id, now=now)
    return RedirectResponse("/silences?created=1", status_code=303)


@router.post("/silences/{silence_id}/expire")
async def silences_expire(
    silence_id: uuid.UUID, viewer: SignedIn, session: DbSession, now: Now
) -> Response:
    silence = await find_silence(session, silence_id)
    if silence.team_id is None:
        require_admin(viewer.principal)
    else:
        await require_team_responder(session, viewer.principal, silence.team_id)
    await expire_silence(session, silence, now=now)
    return RedirectResponse("/silences", status_code=303)


# Maintenance windows ---------------------------------------------------------------------


async def _service_page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    service: Service,
    now: datetime,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    rows = await session.execute(
        select(MaintenanceWindow)
        .where(MaintenanceWindow.service_id == service.id)
        .order_by(MaintenanceWindow.created_at)
    )
    try:
        await require_team_manager(session, viewer.principal, service.team_id)
        may_manage = True
    except Forbidden:
        may_manage = False
    return render(
        request,
        "noise/maintenance.html",
        {
            "service": service,
            "windows": [window_out(w, now) for w in rows.scalars()],
            "may_manage": may_manage,
            "form": form or {"kind": "once", "timezone": viewer.time_zone},
            "errors": errors or {},
            "weekdays": WEEKDAYS,
        },
        status_code=status_code,
    )


async def _readable_service(
    session: AsyncSession, viewer: Viewer, service_id: uuid.UUID
) -> Service:
    return await readable_on_page(session, viewer, Service, service_id, ServiceNotFound)


@router.get("/services/{service_id}/maintenance")
async def maintenance_page(
    request: Request, service_id: uuid.UUID, viewer: SignedIn, session: DbSession, now: Now
) -> Response:
    service = await _readable_service(session, viewer, service_id)
    return await _service_page(request, session, viewer, service, now)


@router.post("/services/{service_id}/maintenance")
async def maintenance_create(
    request: Request, service_id: uuid.UUID, viewer: SignedIn, session: DbSession, now: Now
) -> Response:
    service = await _readable_service(session, viewer, service_id)
    await require_team_manager(session, viewer.principal, service.team_id)
    data = await request.form()
    form: dict[str, Any] = {
        "kind": text_of(data, "kind") or "once",
        "description": text_of(data, "description"),
        "starts_at": text_of(data, "starts_at"),
        "ends_at": text_of(data, "ends_at"),
        "weekdays": [d for d in data.getlist("weekdays") if isinstance(d, str)],
        "start_time": text_of(data, "start_time"),
        "duration_minutes": text_of(data, "duration_minutes"),
        "timezone": text_of(data, "timezone") or viewer.time_zone,
    }
    zone = zone_named(viewer.time_zone)
    values: dict[str, Any] = {"description": form["description"]}
    if form["kind"] == "weekly":
        values |= {
            "weekdays": form["weekdays"],
            "start_time": form["start_time"] or None,
            "duration_minutes": form["duration_minutes"] or None,
            "timezone": form["timezone"],
        }
    else:
        values |= {
            "starts_at": local_instant(form["starts_at"], zone),
            "ends_at": local_instant(form["ends_at"], zone),
        }
    try:
        body = MaintenanceWindowCreate.model_validate(values)
    except ValidationError as exc:
        return await _service_page(
            request,
            session,
            viewer,
            service,
            now,
            form=form,
            errors=_by_top_field(exc),
            status_code=422,
        )
    session.add(
        MaintenanceWindow(
            service_id=service.id,
            description=body.description,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            weekdays=sorted(set(body.weekdays)) if body.weekdays else None,
            start_time=body.start_time,
            duration_minutes=body.duration_minutes,
            timezone=body.timezone,
            created_by=viewer.user_id,
            created_at=now,
        )
    )
    await session.flush()
    return RedirectResponse(f"/services/{service.id}/maintenance", status_code=303)


@router.post("/services/{service_id}/maintenance/{window_id}/delete")
async def maintenance_delete(
    service_id: uuid.UUID, window_id: uuid.UUID, viewer: SignedIn, session: DbSession
) -> Response:
    service = await _readable_service(session, viewer, service_id)
    await require_team_manager(session, viewer.principal, service.team_id)
    window = await session.get(MaintenanceWindow, window_id)
    if window is not None and window.service_id == service.id:
        await session.delete(window)
    return RedirectResponse(f"/services/{service.id}/maintenance", status_code=303)


# Snooze ----------------------------------------------------------------------------------


@router.post("/incidents/{incident_id}/snooze")
async def incident_snooze(
    request: Request, incident_id: uuid.UUID, viewer: SignedIn, session: DbSession, now: Now
) -> Response:
    incident = await find_visible_incident(session, viewer.principal, incident_id)
    await require_team_responder(session, viewer.principal, incident.team_id)
    data = await request.form()
    hours = text_of(data, "hours")
    if not hours.isdigit() or int(hours) not in SNOOZE_HOURS:
        raise InvalidInput("choose how long to snooze for", field="hours")
    body = SnoozeIn(until=now + timedelta(hours=int(hours)))
    conn = await session.connection()
    await snooze(conn, incident.id, until=body.until, actor=Actor.user(viewer.user_id), now=now)
    return RedirectResponse(f"/incidents/{incident.id}", status_code=303)
