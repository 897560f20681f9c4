"""What a person does to an incident, with the permission checks, shared by the API and the
web UI so both enforce the same rules: any member of the team (or an admin) may see it;
managers and responders (not observers) may act. Runs in the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from tocsin.auth.accounts import Principal
from tocsin.auth.models import User
from tocsin.auth.permissions import get_team_readable, require_team_responder
from tocsin.errors import InvalidInput
from tocsin.escalation.actions import escalate_now, reassign_to_policy, reassign_to_user
from tocsin.escalation.responders import request_responder
from tocsin.incidents.lifecycle import Action, IncidentNotFound, apply_transition
from tocsin.incidents.models import Incident
from tocsin.incidents.schemas import PersonOrPolicyIn
from tocsin.incidents.timeline import Actor, EventKind, TimelineEntry, append_events

if TYPE_CHECKING:
    from tocsin.alerts.models import Severity


async def find_visible_incident(
    session: AsyncSession, principal: Principal, incident_id: uuid.UUID
) -> Incident:
    """The incident if this user may see it; IncidentNotFound or Forbidden otherwise."""
    return await get_team_readable(session, principal, Incident, incident_id, IncidentNotFound)


async def _acting(
    session: AsyncSession, principal: Principal, incident: Incident
) -> tuple[AsyncConnection, Actor]:
    """The transaction's connection and the user as the actor, once the user is one who may
    act on the incident (Forbidden otherwise)."""
    await require_team_responder(session, principal, incident.team_id)
    return await session.connection(), Actor.user(principal.user_id)


async def transition_incident(
    session: AsyncSession,
    principal: Principal,
    incident: Incident,
    action: Action,
    *,
    now: datetime,
    note: str = "",
) -> None:
    """Acknowledge, resolve, close or un-acknowledge, as this user."""
    conn, actor = await _acting(session, principal, incident)
    await apply_transition(conn, incident.id, action, actor=actor, now=now, note=note)


async def escalate_incident(
    session: AsyncSession,
    principal: Principal,
    incident: Incident,
    *,
    now: datetime,
    note: str = "",
) -> None:
    """Page the next level at once."""
    conn, actor = await _acting(session, principal, incident)
    await escalate_now(conn, incident.id, actor=actor, now=now, note=note)


async def reassign_incident(
    session: AsyncSession,
    principal: Principal,
    incident: Incident,
    *,
    to: PersonOrPolicyIn,
    now: datetime,
) -> None:
    """To a user (paged at once, the policy stops) or to a policy of the team (from its
    level 1). Exactly one target; the schema checks that before this is called."""
    conn, actor = await _acting(session, principal, incident)
    user_id, escalation_policy_id, note = to.user_id, to.escalation_policy_id, to.note
    if user_id is not None:
        assignee = await session.get(User, user_id)
        if assignee is None or not assignee.is_active:
            raise InvalidInput(f"user {user_id} does not exist", field="user_id")
        await reassign_to_user(conn, incident.id, user_id=user_id, actor=actor, now=now, note=note)
        return
    assert escalation_policy_id is not None
    try:
        await reassign_to_policy(
            conn, incident.id, policy_id=escalation_policy_id, actor=actor, now=now, note=note
        )
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, field="escalation_policy_id") from exc


async def add_note(
    session: AsyncSession, principal: Principal, incident: Incident, *, note: str, now: datetime
) -> None:
    """A note on the timeline (its own entry kind); changes nothing else."""
    conn, actor = await _acting(session, principal, incident)
    await append_events(
        conn,
        incident.id,
        [TimelineEntry(EventKind.NOTE, actor, note=note.strip())],
        now=now,
    )


async def add_responder(
    session: AsyncSession,
    principal: Principal,
    incident: Incident,
    *,
    who: PersonOrPolicyIn,
    now: datetime,
) -> None:
    """Ask for one more person, or a policy's first level, to be paged now (by the worker)."""
    conn, actor = await _acting(session, principal, incident)
    await request_responder(
        conn,
        incident.id,
        user_id=who.user_id,
        policy_id=who.escalation_policy_id,
        actor=actor,
        now=now,
        note=who.note,
    )


async def change_priority(
    session: AsyncSession,
    principal: Principal,
    incident: Incident,
    *,
    priority: Severity,
    now: datetime,
    note: str = "",
) -> None:
    """Set the incident's priority, with a timeline entry from old to new (nothing when it
    is already that). Its urgency, decided when it opened, stays."""
    conn, actor = await _acting(session, principal, incident)
    old = incident.priority
    if old == priority:
        return
    await conn.execute(
        update(Incident).where(Incident.id == incident.id).values(priority=priority, updated_at=now)
    )
    await append_events(
        conn,
        incident.id,
        [
            TimelineEntry(
                EventKind.PRIORITY_CHANGED,
                actor,
                note=note.strip(),
                data={"from": old.value, "to": priority.value},
            )
        ],
        now=now,
    )
