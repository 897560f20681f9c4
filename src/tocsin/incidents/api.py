"""Incident routes: list, detail, and the lifecycle actions."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.accounts import Principal
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
from tocsin.runtime import Runtime
from tocsin.web import CurrentUser, Cursor, DbSession, Limit, Now, State

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


@dataclass(frozen=True)
class Acting:
    """Who acts on an incident, when, in which session, and the runtime that announces it."""

    session: AsyncSession
    user: Principal
    now: datetime
    state: Runtime

    async def answer(self, incident: Incident) -> IncidentDetail:
        """Commits the action and answers the incident as it is now; watchers are told."""
        await self.session.refresh(incident)
        detail = await load_incident_detail(self.session, incident)
        await self.session.commit()
        self.state.hub.announce([(StreamEvent.INCIDENT_UPDATED, incident.id)])
        return detail


async def get_acting(session: DbSession, user: CurrentUser, now: Now, state: State) -> Acting:
    return Acting(session=session, user=user, now=now, state=state)


ActingUser = Annotated[Acting, Depends(get_acting)]


def _transition_route(action: Action, doc: str | None) -> Callable[..., Awaitable[IncidentDetail]]:
    """The route of one lifecycle action: the same handler for each, named after it."""

    async def route(
        incident: VisibleIncident, acting: ActingUser, body: ActionIn | None = None
    ) -> IncidentDetail:
        note = body.note if body else ""
        await transition_incident(
            acting.session, acting.user, incident, action, now=acting.now, note=note
        )
        return await acting.answer(incident)

    route.__name__ = route.__qualname__ = f"{action.value}_incident"
    route.__doc__ = doc
    return route


_TRANSITIONS: list[tuple[Action, str | None]] = [
    (Action.ACKNOWLEDGE, None),
    (Action.RESOLVE, None),
    (Action.CLOSE, None),
    (
        Action.UNACKNOWLEDGE,
        "Back to OPEN: the current level is paged again and escalation resumes from it.",
    ),
]
for _action, _doc in _TRANSITIONS:
    router.add_api_route(
        f"/{{incident_id}}/{_action.value}",
        _transition_route(_action, _doc),
        methods=["POST"],
        response_model=IncidentDetail,
    )


@router.post("/{incident_id}/escalate", response_model=IncidentDetail)
async def escalate_incident_route(
    incident: VisibleIncident, acting: ActingUser, body: ActionIn | None = None
) -> IncidentDetail:
    """Escalate now: page the next level at once. 409 unless the incident is open and its
    policy still has levels to try."""
    await escalate_incident(
        acting.session, acting.user, incident, now=acting.now, note=body.note if body else ""
    )
    return await acting.answer(incident)


@router.post("/{incident_id}/reassign", response_model=IncidentDetail)
async def reassign_incident_route(
    incident: VisibleIncident, body: ReassignIn, acting: ActingUser
) -> IncidentDetail:
    """To a user (`user_id`): that user is paged and the policy stops escalating. To a
    policy of the team (`escalation_policy_id`): escalation restarts at its level 1."""
    await reassign_incident(acting.session, acting.user, incident, to=body, now=acting.now)
    return await acting.answer(incident)


@router.post("/{incident_id}/notes", status_code=201, response_model=IncidentDetail)
async def add_note_route(
    incident: VisibleIncident, body: NoteIn, acting: ActingUser
) -> IncidentDetail:
    """Add a note to the timeline (kind `note`); managers, responders and admins, as for
    the other actions. Answers the incident with its timeline."""
    await add_note(acting.session, acting.user, incident, note=body.note, now=acting.now)
    return await acting.answer(incident)


@router.post("/{incident_id}/responders", status_code=202, response_model=IncidentDetail)
async def add_responder_route(
    incident: VisibleIncident, body: ResponderIn, acting: ActingUser
) -> IncidentDetail:
    """Page one more person (`user_id`, a manager or responder of the team) or an escalation
    policy's first level (`escalation_policy_id`, of the team) now, through the worker; the
    incident's own escalation goes on. 409 unless it is open or acknowledged."""
    await add_responder(acting.session, acting.user, incident, who=body, now=acting.now)
    return await acting.answer(incident)


@router.post("/{incident_id}/priority", response_model=IncidentDetail)
async def change_priority_route(
    incident: VisibleIncident, body: PriorityIn, acting: ActingUser
) -> IncidentDetail:
    """Set the priority (critical, high, medium, low, info); timeline `priority_changed`."""
    await change_priority(
        acting.session,
        acting.user,
        incident,
        priority=body.priority,
        now=acting.now,
        note=body.note,
    )
    return await acting.answer(incident)


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
    incident: VisibleIncident, body: MergeIn, acting: ActingUser
) -> IncidentDetail:
    """Merge the incidents of `source_ids` into this one: their alerts move here, they
    resolve, and both timelines name the other side. Managers and responders of every
    team involved; all must be open or acknowledged (409 otherwise)."""
    changed = await merge_incidents(
        acting.session, acting.user, incident, body.source_ids, now=acting.now, note=body.note
    )
    detail = await acting.answer(incident)
    acting.state.hub.announce([(StreamEvent.INCIDENT_UPDATED, i) for i in changed[1:]])
    return detail


@router.post(
    "/{incident_id}/alerts/{alert_id}/split", status_code=201, response_model=IncidentDetail
)
async def split_alert_route(
    incident: VisibleIncident, alert_id: uuid.UUID, acting: ActingUser, body: ActionIn | None = None
) -> IncidentDetail:
    """Open a new incident for one alert of this one (any of its receipts' ids, e.g. the
    `alert_id` of GET .../alerts): every receipt of it moves, and the new incident pages as
    any new incident does. Answers the new incident. 409 when it is the only alert."""
    new_id = await split_alert(
        acting.session,
        acting.user,
        incident,
        alert_id,
        now=acting.now,
        note=body.note if body else "",
    )
    opened = await acting.session.get(Incident, new_id)
    assert opened is not None
    detail = await load_incident_detail(acting.session, opened)
    await acting.session.commit()
    acting.state.hub.announce(
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
