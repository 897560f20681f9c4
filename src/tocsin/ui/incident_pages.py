"""The incident list and the incident page, with their actions. Every read and change goes
through the same domain functions as /api/v1/incidents (incidents/listing.py,
incidents/responding.py), so a page shows and changes exactly what the API would allow."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.permissions import require_team_responder
from tocsin.errors import Forbidden, InvalidInput, TocsinError
from tocsin.incidents.choices import (
    integration_names,
    reassign_targets,
    user_names,
    visible_services,
    visible_teams,
)
from tocsin.incidents.detail import load_incident_detail
from tocsin.incidents.lifecycle import Action, IncidentNotFound
from tocsin.incidents.listing import (
    IncidentFilters,
    ListedIncident,
    describe_incidents,
    list_incidents,
)
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.incidents.responding import (
    add_note,
    add_responder,
    change_priority,
    escalate_incident,
    find_visible_incident,
    reassign_incident,
    transition_incident,
)
from tocsin.incidents.schemas import MergeIn, NoteIn, PriorityIn, ReassignIn, ResponderIn
from tocsin.noise.merging import find_merge_candidates, merge_incidents, split_alert
from tocsin.notifications.history import incident_deliveries
from tocsin.realtime.events import StreamEvent
from tocsin.runtime import Runtime
from tocsin.ui.forms import refusal
from tocsin.ui.incident_text import Names, actor_name, describe, details_json, user_ids_in
from tocsin.ui.pages import SignedIn, Viewer, page_router, render
from tocsin.web import DbSession, Now, State

router = page_router()

PAGE_SIZE = 50
STATUSES = [s.value for s in IncidentStatus]


def parse_filters(
    *, status: str = "", team: str = "", service: str = "", mine: str = ""
) -> IncidentFilters:
    """The filter form's values as filters; a value that is none of the choices is a 422."""
    try:
        chosen_status = IncidentStatus(status) if status else None
    except ValueError as exc:
        raise InvalidInput(f"{status!r} is not a status", field="status") from exc
    ids: dict[str, uuid.UUID | None] = {}
    for name, value in (("team", team), ("service", service)):
        try:
            ids[name] = uuid.UUID(value) if value else None
        except ValueError as exc:
            raise InvalidInput(f"{value!r} is not a {name} id", field=name) from exc
    return IncidentFilters(
        status=chosen_status,
        team_id=ids["team"],
        service_id=ids["service"],
        mine=mine in ("1", "true", "on"),
    )


def filters_from_query(
    status: Annotated[str, Query()] = "",
    team: Annotated[str, Query()] = "",
    service: Annotated[str, Query()] = "",
    mine: Annotated[str, Query()] = "",
) -> IncidentFilters:
    """The list's filters from its query string (as the filter form sends them)."""
    return parse_filters(status=status, team=team, service=service, mine=mine)


ListFilters = Annotated[IncidentFilters, Depends(filters_from_query)]


def filter_query(filters: IncidentFilters) -> dict[str, str]:
    query: dict[str, str] = {}
    if filters.status:
        query["status"] = filters.status.value
    if filters.team_id:
        query["team"] = str(filters.team_id)
    if filters.service_id:
        query["service"] = str(filters.service_id)
    if filters.mine:
        query["mine"] = "1"
    return query


def matches(filters: IncidentFilters, listed: ListedIncident, viewer: Viewer) -> bool:
    """Whether an incident belongs in the list under these filters (for live rows)."""
    incident = listed.incident
    if filters.status is not None and incident.status != filters.status:
        return False
    if filters.team_id is not None and incident.team_id != filters.team_id:
        return False
    if filters.service_id is not None and incident.service_id != filters.service_id:
        return False
    if filters.mine:
        mine = incident.assigned_user_id == viewer.user_id or any(
            p.id == viewer.user_id for p in listed.paged
        )
        if not mine:
            return False
    return True


@router.get("/")
@router.get("/incidents")
async def incident_list(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    filters: ListFilters,
    cursor: Annotated[str | None, Query()] = None,
) -> Response:
    """Incidents newest first, filtered, paginated, updated live (static/tocsin.js)."""
    rows, next_cursor = await list_incidents(
        session, viewer.principal, filters, limit=PAGE_SIZE, cursor=cursor
    )
    query = filter_query(filters)
    return render(
        request,
        "incidents/list.html",
        {
            "title": "Incidents",
            "rows": rows,
            "filters": filters,
            "statuses": STATUSES,
            "teams": await visible_teams(session, viewer.principal),
            "services": await visible_services(session, viewer.principal),
            "query": urlencode(query),
            "next_url": "/incidents?" + urlencode({**query, "cursor": next_cursor})
            if next_cursor
            else None,
            "first_page": cursor is None,
        },
    )


@router.get("/incidents/rows")
async def incident_rows(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    filters: ListFilters,
) -> Response:
    """The first page's rows alone: what the list fetches to catch up after a lost stream."""
    rows, _ = await list_incidents(session, viewer.principal, filters, limit=PAGE_SIZE, cursor=None)
    return render(request, "incidents/_rows.html", {"rows": rows})


@router.get("/incidents/{incident_id}/row")
async def incident_row(
    request: Request,
    incident_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    filters: ListFilters,
) -> Response:
    """One incident's row if it belongs in the list under these filters, else 204."""
    incident = await _visible(session, viewer, incident_id)
    [listed] = await describe_incidents(session, [incident])
    if not matches(filters, listed, viewer):
        return Response(status_code=204)
    return render(request, "incidents/_row.html", {"row": listed})


async def _visible(session: AsyncSession, viewer: Viewer, incident_id: uuid.UUID) -> Incident:
    """The incident if the viewer may see it. Another team's incident is 'not found' on a
    page, so a URL tells an outsider nothing (the API answers 403)."""
    try:
        return await find_visible_incident(session, viewer.principal, incident_id)
    except Forbidden as exc:
        raise IncidentNotFound(incident_id) from exc


async def _may_act(session: AsyncSession, viewer: Viewer, incident: Incident) -> bool:
    try:
        await require_team_responder(session, viewer.principal, incident.team_id)
    except Forbidden:
        return False
    return True


async def _incident_context(
    session: AsyncSession, viewer: Viewer, incident: Incident
) -> dict[str, Any]:
    detail = await load_incident_detail(session, incident)
    deliveries = await incident_deliveries(session, incident.id, viewer.principal)
    ids = user_ids_in(detail.timeline) | {p.user_id for p in detail.pages}
    ids |= {d.user_id for d in deliveries}
    if detail.assigned_user_id:
        ids.add(detail.assigned_user_id)
    names = Names(
        users=await user_names(session, ids),
        integrations=await integration_names(
            session,
            [e.actor_id for e in detail.timeline if e.actor_id is not None]
            + ([detail.integration_id] if detail.integration_id else []),
        ),
    )
    may_act = await _may_act(session, viewer, incident)
    return {
        "incident": detail,
        "deliveries": deliveries,
        "names": names,
        "may_act": may_act,
        "targets": await reassign_targets(session, incident.team_id) if may_act else None,
        "merge_candidates": await find_merge_candidates(session, incident) if may_act else [],
        "describe": describe,
        "actor_name": actor_name,
        "details_json": details_json,
    }


@router.get("/incidents/{incident_id}")
async def incident_page(
    request: Request,
    incident_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    done: Annotated[str, Query()] = "",
) -> Response:
    incident = await _visible(session, viewer, incident_id)
    context = await _incident_context(session, viewer, incident)
    return render(
        request,
        "incidents/detail.html",
        {
            **context,
            "title": f"#{incident.number} {incident.title}",
            "done": done,
            "errors": {},
            "form": {},
        },
    )


@router.get("/incidents/{incident_id}/live")
async def incident_live(
    request: Request, incident_id: uuid.UUID, viewer: SignedIn, session: DbSession
) -> Response:
    """The part of the incident page that changes: what the page fetches on a stream event."""
    incident = await _visible(session, viewer, incident_id)
    context = await _incident_context(session, viewer, incident)
    return render(request, "incidents/_live.html", context)


# Actions: each answers 303 back to the incident page, or the page again with the reason.


async def _acted(incident: Incident, session: AsyncSession, state: Runtime, word: str) -> Response:
    await session.commit()
    state.hub.announce([(StreamEvent.INCIDENT_UPDATED, incident.id)])
    return RedirectResponse(f"/incidents/{incident.id}?done={word}", status_code=303)


async def _refused(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    incident: Incident,
    *,
    status_code: int,
    error: str = "",
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """The incident page again, nothing changed, with why: a message at the top, or each
    field's message beside it."""
    await session.rollback()
    await session.refresh(incident)
    context = await _incident_context(session, viewer, incident)
    return render(
        request,
        "incidents/detail.html",
        {
            **context,
            "title": f"#{incident.number} {incident.title}",
            "done": "",
            "error": error,
            "errors": errors or {},
            "form": form or {},
        },
        status_code=status_code,
    )


async def _refused_because(
    exc: ValidationError | TocsinError,
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    incident: Incident,
    *,
    fields: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """The page again after a refused form: what the schema or a check of the database
    refused beside its field (`fields` renames the API's field names to the form's), anything
    else as a message at the top."""
    if isinstance(exc, ValidationError) or (isinstance(exc, InvalidInput) and fields is not None):
        refused = refusal(exc, fields)
        return await _refused(
            request,
            session,
            viewer,
            incident,
            status_code=refused.status_code,
            errors=refused.errors,
            form=form,
        )
    return await _refused(
        request,
        session,
        viewer,
        incident,
        status_code=exc.status_code,
        error=exc.detail,
        form=form,
    )


def _transition_route(action: Action, word: str) -> None:
    async def act(
        request: Request,
        incident_id: uuid.UUID,
        viewer: SignedIn,
        session: DbSession,
        now: Now,
        state: State,
    ) -> Response:
        incident = await _visible(session, viewer, incident_id)
        try:
            await transition_incident(session, viewer.principal, incident, action, now=now)
        except TocsinError as exc:
            return await _refused_because(exc, request, session, viewer, incident)
        return await _acted(incident, session, state, word)

    act.__name__ = f"incident_{action.value}"
    router.add_api_route(f"/incidents/{{incident_id}}/{action.value}", act, methods=["POST"])


_transition_route(Action.ACKNOWLEDGE, "acknowledged")
_transition_route(Action.RESOLVE, "resolved")


@router.post("/incidents/{incident_id}/escalate")
async def incident_escalate(
    request: Request,
    incident_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    state: State,
) -> Response:
    incident = await _visible(session, viewer, incident_id)
    try:
        await escalate_incident(session, viewer.principal, incident, now=now)
    except TocsinError as exc:
        return await _refused_because(exc, request, session, viewer, incident)
    return await _acted(incident, session, state, "escalated")


REASSIGN_FIELDS = {"user_id": "target", "escalation_policy_id": "target", "form": "target"}


@router.post("/incidents/{incident_id}/reassign")
async def incident_reassign(
    request: Request,
    incident_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    state: State,
    target: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    incident = await _visible(session, viewer, incident_id)
    form = {"target": target, "reassign_note": note}
    try:
        body = ReassignIn.from_choice(target, note)
        await reassign_incident(session, viewer.principal, incident, to=body, now=now)
    except (ValidationError, TocsinError) as exc:
        fields = {**REASSIGN_FIELDS, "note": "reassign_note"}
        return await _refused_because(
            exc, request, session, viewer, incident, fields=fields, form=form
        )
    return await _acted(incident, session, state, "reassigned")


@router.post("/incidents/{incident_id}/notes")
async def incident_add_note(
    request: Request,
    incident_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    state: State,
    note: Annotated[str, Form()] = "",
) -> Response:
    incident = await _visible(session, viewer, incident_id)
    try:
        body = NoteIn(note=note)
        await add_note(session, viewer.principal, incident, note=body.note, now=now)
    except (ValidationError, TocsinError) as exc:
        return await _refused_because(exc, request, session, viewer, incident, form={"note": note})
    return await _acted(incident, session, state, "noted")


@router.post("/incidents/{incident_id}/merge")
async def incident_merge(
    request: Request,
    incident_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    state: State,
) -> Response:
    """The incidents ticked on the page merged into this one (POST .../merge of the API)."""
    incident = await _visible(session, viewer, incident_id)
    data = await request.form()
    try:
        body = MergeIn.model_validate({"source_ids": [str(v) for v in data.getlist("source_ids")]})
        changed = await merge_incidents(
            session, viewer.principal, incident, body.source_ids, now=now
        )
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
        if not data.getlist("source_ids"):
            problem = "choose the incidents to merge into this one"
        errors = {"source_ids": problem}
        return await _refused(request, session, viewer, incident, status_code=422, errors=errors)
    except TocsinError as exc:
        return await _refused_because(exc, request, session, viewer, incident)
    await session.commit()
    state.hub.announce([(StreamEvent.INCIDENT_UPDATED, i) for i in changed])
    return RedirectResponse(f"/incidents/{incident.id}?done=merged", status_code=303)


@router.post("/incidents/{incident_id}/alerts/{alert_id}/split")
async def incident_split_alert(
    request: Request,
    incident_id: uuid.UUID,
    alert_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    state: State,
) -> Response:
    """One alert split out into a new incident; the page moves to the new incident."""
    incident = await _visible(session, viewer, incident_id)
    try:
        new_id = await split_alert(session, viewer.principal, incident, alert_id, now=now)
    except TocsinError as exc:
        return await _refused_because(exc, request, session, viewer, incident)
    await session.commit()
    state.hub.announce(
        [(StreamEvent.INCIDENT_UPDATED, incident.id), (StreamEvent.INCIDENT_CREATED, new_id)]
    )
    return RedirectResponse(f"/incidents/{new_id}?done=split+out", status_code=303)


# Add a responder, change the priority (templates/incidents/_respond_more.html) ------------


@router.post("/incidents/{incident_id}/responders")
async def incident_add_responder(
    request: Request,
    incident_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    state: State,
    responder: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    """Page one more person or a policy's first level now (the worker sends)."""
    incident = await _visible(session, viewer, incident_id)
    form = {"responder": responder, "responder_note": note}
    renames = {"user_id": "responder", "escalation_policy_id": "responder", "form": "responder"}
    try:
        body = ResponderIn.from_choice(responder, note)
        await add_responder(session, viewer.principal, incident, who=body, now=now)
    except (ValidationError, TocsinError) as exc:
        fields = {**renames, "note": "responder_note"}
        return await _refused_because(
            exc, request, session, viewer, incident, fields=fields, form=form
        )
    return await _acted(incident, session, state, "responder added")


@router.post("/incidents/{incident_id}/priority")
async def incident_change_priority(
    request: Request,
    incident_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    state: State,
    priority: Annotated[str, Form()] = "",
) -> Response:
    incident = await _visible(session, viewer, incident_id)
    try:
        body = PriorityIn.model_validate({"priority": priority})
        await change_priority(session, viewer.principal, incident, priority=body.priority, now=now)
    except (ValidationError, TocsinError) as exc:
        return await _refused_because(
            exc, request, session, viewer, incident, form={"priority": priority}
        )
    return await _acted(incident, session, state, "priority changed")
