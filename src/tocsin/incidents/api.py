"""Incident routes: list, detail, and the lifecycle actions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from tocsin.escalation.models import Page
from tocsin.incidents.detail import load_incident_alerts, load_incident_detail
from tocsin.incidents.lifecycle import Action
from tocsin.incidents.listing import IncidentFilters, list_incidents, list_item
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
from tocsin.incidents.schemas import (
    ActionIn,
    IncidentAlertOut,
    IncidentDetail,
    IncidentPage,
    MergeIn,
    NoteIn,
    PageOut,
    PriorityIn,
    ReassignIn,
    ResponderIn,
)
from tocsin.noise.merging import merge_incidents, split_alert
from tocsin.realtime.events import StreamEvent
from tocsin.web import (
    CurrentUser,
    Cursor,
    DbSession,
    Limit,
    Now,
    State,
)

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


async def get_visible_incident(
    incident_id: uuid.UUID, session: DbSession, user: CurrentUser
) -> Incident:
    return await find_visible_incident(session, user, incident_id)


VisibleIncident = Annotated[Incident, Depends(get_visible_incident)]


@router.get("", response_model=IncidentPage)
async def list_incidents_route(
    session: DbSession,
    user: CurrentUser,
    status: IncidentStatus | None = None,
    team_id: uuid.UUID | None = None,
    service_id: uuid.UUID | None = None,
    mine: Annotated[
        bool, Query(description="Only incidents assigned to me or paging me at this level")
    ] = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> IncidentPage:
    """The incidents of the teams you may see, newest first."""
    filters = IncidentFilters(status=status, team_id=team_id, service_id=service_id, mine=mine)
    rows, next_cursor = await list_incidents(session, user, filters, limit=limit, cursor=cursor)
    return IncidentPage(items=[list_item(row) for row in rows], next_cursor=next_cursor)


@router.get("/{incident_id}", response_model=IncidentDetail)
async def get_incident(incident: VisibleIncident, session: DbSession) -> IncidentDetail:
    return await load_incident_detail(session, incident)


async def _act(
    incident: Incident,
    action: Action,
    body: ActionIn | None,
    *,
    session: DbSession,
    user: CurrentUser,
    now: Now,
    state: State,
) -> IncidentDetail:
    await transition_incident(
        session, user, incident, action, now=now, note=body.note if body else ""
    )
    return await _answer(incident, session, state)


@router.post("/{incident_id}/acknowledge", response_model=IncidentDetail)
async def acknowledge_incident(
    incident: VisibleIncident,
    session: DbSession,
    user: CurrentUser,
    now: Now,
    state: State,
    body: ActionIn | None = None,
) -> IncidentDetail:
    return await _act(
        incident, Action.ACKNOWLEDGE, body, session=session, user=user, now=now, state=state
    )


@router.post("/{incident_id}/resolve", response_model=IncidentDetail)
async def resolve_incident(
    incident: VisibleIncident,
    session: DbSession,
    user: CurrentUser,
    now: Now,
    state: State,
    body: ActionIn | None = None,
) -> IncidentDetail:
    return await _act(
        incident, Action.RESOLVE, body, session=session, user=user, now=now, state=state
    )


@router.post("/{incident_id}/close", response_model=IncidentDetail)
async def close_incident(
    incident: VisibleIncident,
    session: DbSession,
    user: CurrentUser,
    now: Now,
    state: State,
    body: ActionIn | None = None,
) -> IncidentDetail:
    return await _act(
        incident, Action.CLOSE, body, session=session, user=user, now=now, state=state
    )


@router.post("/{incident_id}/unacknowledge", response_model=IncidentDetail)
async def unacknowledge_incident(
    incident: VisibleIncident,
    session: DbSession,
    user: CurrentUser,
    now: Now,
    state: State,
    body: ActionIn | None = None,
) -> IncidentDetail:
    """Back to OPEN: the current level is paged again and escalation resumes from it."""
    return await _act(
        incident, Action.UNACKNOWLEDGE, body, session=session, user=user, now=now, state=state
    )


async def _answer(incident: Incident, session: DbSession, state: State) -> IncidentDetail:
    await session.refresh(incident)
    detail = await load_incident_detail(session, incident)
    await session.commit()
    state.hub.announce([(StreamEvent.INCIDENT_UPDATED, incident.id)])
    return detail


@router.post("/{incident_id}/escalate", response_model=IncidentDetail)
async def escalate_incident_route(
    incident: VisibleIncident,
    session: DbSession,
    user: CurrentUser,
    now: Now,
    state: State,
    body: ActionIn | None = None,
) -> IncidentDetail:
    """Escalate now: page the next level at once. 409 unless the incident is open and its
    policy still has levels to try."""
    await escalate_incident(session, user, incident, now=now, note=body.note if body else "")
    return await _answer(incident, session, state)


@router.post("/{incident_id}/reassign", response_model=IncidentDetail)
async def reassign_incident_route(
    incident: VisibleIncident,
    body: ReassignIn,
    session: DbSession,
    user: CurrentUser,
    now: Now,
    state: State,
) -> IncidentDetail:
    """To a user (`user_id`): that user is paged and the policy stops escalating. To a
    policy of the team (`escalation_policy_id`): escalation restarts at its level 1."""
    await reassign_incident(
        session,
        user,
        incident,
        user_id=body.user_id,
        escalation_policy_id=body.escalation_policy_id,
        now=now,
        note=body.note,
    )
    return await _answer(incident, session, state)


@router.post("/{incident_id}/notes", status_code=201, response_model=IncidentDetail)
async def add_note_route(
    incident: VisibleIncident,
    body: NoteIn,
    session: DbSession,
    user: CurrentUser,
    now: Now,
    state: State,
) -> IncidentDetail:
    """Add a note to the timeline (kind `note`); managers, responders and admins, as for
    the other actions. Answers the incident with its timeline."""
    await add_note(session, user, incident, note=body.note, now=now)
    return await _answer(incident, session, state)


@router.post("/{incident_id}/responders", status_code=202, response_model=IncidentDetail)
async def add_responder_route(
    incident: VisibleIncident,
    body: ResponderIn,
    session: DbSession,
    user: CurrentUser,
    now: Now,
    state: State,
) -> IncidentDetail:
    """Page one more person (`user_id`, a manager or responder of the team) or an escalation
    policy's first level (`escalation_policy_id`, of the team) now, through the worker; the
    incident's own escalation goes on. 409 unless it is open or acknowledged."""
    await add_responder(
        session,
        user,
        incident,
        user_id=body.user_id,
        escalation_policy_id=body.escalation_policy_id,
        now=now,
        note=body.note,
    )
    return await _answer(incident, session, state)


@router.post("/{incident_id}/priority", response_model=IncidentDetail)
async def change_priority_route(
    incident: VisibleIncident,
    body: PriorityIn,
    session: DbSession,
    user: CurrentUser,
    now: Now,
    state: State,
) -> IncidentDetail:
    """Set the priority (critical, high, medium, low, info); timeline `priority_changed`."""
    await change_priority(session, user, incident, priority=body.priority, now=now, note=body.note)
    return await _answer(incident, session, state)


@router.get("/{incident_id}/alerts", response_model=list[IncidentAlertOut])
async def list_incident_alerts(
    incident: VisibleIncident, session: DbSession
) -> list[IncidentAlertOut]:
    """Each distinct alert of the incident (one integration's fingerprint, however often it
    was received) with its status now, first received first. A grouped incident resolves
    when every one of them has resolved."""
    conn = await session.connection()
    return (await load_incident_alerts(conn, [incident.id]))[incident.id]


@router.post("/{incident_id}/merge", response_model=IncidentDetail)
async def merge_incidents_route(
    incident: VisibleIncident,
    body: MergeIn,
    session: DbSession,
    user: CurrentUser,
    now: Now,
    state: State,
) -> IncidentDetail:
    """Merge the incidents of `source_ids` into this one: their alerts move here, they
    resolve, and both timelines name the other side. Managers and responders of every
    team involved; all must be open or acknowledged (409 otherwise)."""
    changed = await merge_incidents(
        session, user, incident, body.source_ids, now=now, note=body.note
    )
    detail = await _answer(incident, session, state)
    state.hub.announce([(StreamEvent.INCIDENT_UPDATED, i) for i in changed[1:]])
    return detail


@router.post(
    "/{incident_id}/alerts/{alert_id}/split", status_code=201, response_model=IncidentDetail
)
async def split_alert_route(
    incident: VisibleIncident,
    alert_id: uuid.UUID,
    session: DbSession,
    user: CurrentUser,
    now: Now,
    state: State,
    body: ActionIn | None = None,
) -> IncidentDetail:
    """Open a new incident for one alert of this one (any of its receipts' ids, e.g. the
    `alert_id` of GET .../alerts): every receipt of it moves, and the new incident pages as
    any new incident does. Answers the new incident. 409 when it is the only alert."""
    new_id = await split_alert(
        session, user, incident, alert_id, now=now, note=body.note if body else ""
    )
    opened = await session.get(Incident, new_id)
    assert opened is not None
    detail = await load_incident_detail(session, opened)
    await session.commit()
    state.hub.announce(
        [(StreamEvent.INCIDENT_UPDATED, incident.id), (StreamEvent.INCIDENT_CREATED, new_id)]
    )
    return detail


@router.get("/{incident_id}/pages", response_model=list[PageOut])
async def list_pages(incident: VisibleIncident, session: DbSession) -> list[PageOut]:
    """Everyone paged for this incident, oldest first: user, level, cycle, time, and the
    schedule, layer or override that put them there."""
    rows = (
        await session.execute(
            select(Page)
            .where(Page.incident_id == incident.id)
            .order_by(Page.created_at, Page.escalation_seq, Page.user_id)
        )
    ).scalars()
    return [PageOut.model_validate(row) for row in rows]
