"""Incident routes: list, detail, and the lifecycle actions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import select

from tocsin.auth.models import User
from tocsin.auth.permissions import (
    require_team_reader,
    require_team_responder,
    visible_team_ids,
)
from tocsin.errors import InvalidInput
from tocsin.escalation.actions import escalate_now, reassign_to_policy, reassign_to_user
from tocsin.escalation.models import Page
from tocsin.incidents.detail import find_incident, load_incident_detail
from tocsin.incidents.lifecycle import Action, IncidentNotFound, apply_transition
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.incidents.schemas import (
    ActionIn,
    IncidentDetail,
    IncidentOut,
    IncidentPage,
    PageOut,
    ReassignIn,
)
from tocsin.incidents.timeline import Actor
from tocsin.realtime.events import StreamEvent
from tocsin.web import (
    CurrentUser,
    Cursor,
    DbSession,
    Limit,
    Now,
    State,
    cut_page,
    newest_first_page,
)

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


async def get_visible_incident(
    incident_id: uuid.UUID, session: DbSession, user: CurrentUser
) -> Incident:
    incident = await find_incident(session, incident_id)
    if incident is None:
        raise IncidentNotFound(incident_id)
    await require_team_reader(session, user, incident.team_id)
    return incident


VisibleIncident = Annotated[Incident, Depends(get_visible_incident)]


@router.get("", response_model=IncidentPage)
async def list_incidents(
    session: DbSession,
    user: CurrentUser,
    status: IncidentStatus | None = None,
    team_id: uuid.UUID | None = None,
    service_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> IncidentPage:
    stmt = select(Incident)
    visible = await visible_team_ids(session, user)
    if visible is not None:
        stmt = stmt.where(Incident.team_id.in_(visible))
    if status is not None:
        stmt = stmt.where(Incident.status == status)
    if team_id is not None:
        stmt = stmt.where(Incident.team_id == team_id)
    if service_id is not None:
        stmt = stmt.where(Incident.service_id == service_id)
    stmt = newest_first_page(
        stmt, created=Incident.created_at, row_id=Incident.id, limit=limit, cursor=cursor
    )
    rows = list((await session.execute(stmt)).scalars())
    rows, next_cursor = cut_page(rows, limit, lambda r: (r.created_at, r.id))
    return IncidentPage(
        items=[IncidentOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )


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
    await require_team_responder(session, user, incident.team_id)
    conn = await session.connection()
    await apply_transition(
        conn,
        incident.id,
        action,
        actor=Actor.user(user.user_id),
        now=now,
        note=body.note if body else "",
    )
    await session.refresh(incident)
    detail = await load_incident_detail(session, incident)
    await session.commit()
    state.hub.announce([(StreamEvent.INCIDENT_UPDATED, incident.id)])
    return detail


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
async def escalate_incident(
    incident: VisibleIncident,
    session: DbSession,
    user: CurrentUser,
    now: Now,
    state: State,
    body: ActionIn | None = None,
) -> IncidentDetail:
    """Escalate now: page the next level at once. 409 unless the incident is open and its
    policy still has levels to try."""
    await require_team_responder(session, user, incident.team_id)
    conn = await session.connection()
    await escalate_now(
        conn, incident.id, actor=Actor.user(user.user_id), now=now, note=body.note if body else ""
    )
    return await _answer(incident, session, state)


@router.post("/{incident_id}/reassign", response_model=IncidentDetail)
async def reassign_incident(
    incident: VisibleIncident,
    body: ReassignIn,
    session: DbSession,
    user: CurrentUser,
    now: Now,
    state: State,
) -> IncidentDetail:
    """To a user (`user_id`): that user is paged and the policy stops escalating. To a
    policy of the team (`escalation_policy_id`): escalation restarts at its level 1."""
    await require_team_responder(session, user, incident.team_id)
    conn = await session.connection()
    actor = Actor.user(user.user_id)
    if body.user_id is not None:
        assignee = await session.get(User, body.user_id)
        if assignee is None or not assignee.is_active:
            raise InvalidInput(f"user {body.user_id} does not exist", field="user_id")
        await reassign_to_user(
            conn, incident.id, user_id=body.user_id, actor=actor, now=now, note=body.note
        )
    else:
        assert body.escalation_policy_id is not None
        try:
            await reassign_to_policy(
                conn,
                incident.id,
                policy_id=body.escalation_policy_id,
                actor=actor,
                now=now,
                note=body.note,
            )
        except InvalidInput as exc:
            raise InvalidInput(exc.detail, field="escalation_policy_id") from exc
    return await _answer(incident, session, state)


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
