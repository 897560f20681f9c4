"""What people do to an incident's escalation by hand: escalate now, reassign to a user or
to another policy, un-acknowledge. Each runs in the caller's transaction with the incident
row locked, so it cannot interleave with a timer firing for the same incident."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.errors import Conflict, InvalidInput
from tocsin.escalation.engine import (
    adopt_policy,
    find_escalation,
    lock_incident,
    move_on,
    page_directly,
    restart_with_policy,
)
from tocsin.escalation.models import EscalationPolicy, EscalationState, IncidentEscalation
from tocsin.escalation.plan import FIRST, following
from tocsin.escalation.snapshot import load_policy_snapshot
from tocsin.incidents.lifecycle import ACTIVE_STATUSES, IncidentNotFound, reassign
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.incidents.timeline import Actor, EventKind, TimelineEntry
from tocsin.timers.schedule import cancel_pending_timers


async def escalate_now(
    conn: AsyncConnection, incident_id: uuid.UUID, *, actor: Actor, now: datetime, note: str = ""
) -> None:
    """Move an OPEN incident to its next level at once (pending timers are cancelled and the
    next one counts from now). Conflict when it is not open or has nothing left to try."""
    incident = await lock_incident(conn, incident_id)
    if incident is None:
        raise IncidentNotFound(incident_id)
    if incident.status != IncidentStatus.OPEN:
        raise Conflict(f"cannot escalate an incident that is {incident.status.value}")
    escalation = await find_escalation(conn, incident_id)
    start = None
    if escalation is None:
        # Its escalation has not started yet (the start timer is still due): start it now.
        escalation = await adopt_policy(conn, incident_id, now=now)
        start = FIRST
    if escalation is None:
        raise Conflict("the incident has no escalation policy; reassign it to one first")
    if escalation.state != EscalationState.ESCALATING:
        raise Conflict(
            f"escalation is {escalation.state.value}; reassign the incident to a policy to "
            "start again"
        )
    await cancel_pending_timers(conn, incident_id, now=now)
    await move_on(
        conn,
        escalation,
        team_id=incident.team_id,
        start=start or following(escalation.snapshot, escalation.position),
        actor=actor,
        job_id=None,
        now=now,
        extra_entries=(
            TimelineEntry(
                EventKind.ESCALATED_NOW,
                actor,
                note=note,
                data={"from_level": escalation.position.level},
            ),
        ),
    )


async def reassign_to_user(
    conn: AsyncConnection,
    incident_id: uuid.UUID,
    *,
    user_id: uuid.UUID,
    actor: Actor,
    now: datetime,
    note: str = "",
) -> None:
    """Assign the incident to one user, page them, and stop the policy's escalation."""
    incident = await lock_incident(conn, incident_id)
    if incident is None:
        raise IncidentNotFound(incident_id)
    await reassign(conn, incident_id, user_id=user_id, actor=actor, now=now, note=note)
    await cancel_pending_timers(conn, incident_id, now=now)
    escalation = await find_escalation(conn, incident_id)
    if escalation is None:
        # Never had a policy: start a state row so the page gets its own step number.
        snapshot = {"name": "", "repeat_count": 1, "ack_timeout_minutes": None, "levels": []}
        await conn.execute(
            insert(IncidentEscalation).values(
                incident_id=incident_id,
                policy_id=None,
                policy_snapshot=snapshot,
                state=EscalationState.DIRECT,
                level=0,
                repeat=0,
                seq=0,
                updated_at=now,
            )
        )
        escalation = await find_escalation(conn, incident_id)
        assert escalation is not None
    await page_directly(conn, escalation, user_id=user_id, actor=actor, now=now)


async def reassign_to_policy(
    conn: AsyncConnection,
    incident_id: uuid.UUID,
    *,
    policy_id: uuid.UUID,
    actor: Actor,
    now: datetime,
    note: str = "",
) -> None:
    """Escalate the incident through another policy (of its team), from level 1, with the
    policy as it is now. An acknowledged incident becomes OPEN again."""
    incident = await lock_incident(conn, incident_id)
    if incident is None:
        raise IncidentNotFound(incident_id)
    if incident.status not in ACTIVE_STATUSES:
        raise Conflict(f"cannot reassign an incident that is {incident.status.value}")
    team_of_policy = (
        await conn.execute(select(EscalationPolicy.team_id).where(EscalationPolicy.id == policy_id))
    ).scalar_one_or_none()
    if team_of_policy is None:
        raise InvalidInput(f"escalation policy {policy_id} does not exist", field="policy_id")
    if team_of_policy != incident.team_id:
        raise InvalidInput(
            f"escalation policy {policy_id} belongs to another team", field="policy_id"
        )
    snapshot = await load_policy_snapshot(conn, policy_id)
    if snapshot is None:
        raise InvalidInput(f"escalation policy {policy_id} has no levels", field="policy_id")
    await cancel_pending_timers(conn, incident_id, now=now)
    values: dict[str, object] = {"escalation_policy_id": policy_id, "updated_at": now}
    if incident.status == IncidentStatus.ACKNOWLEDGED:
        values.update(status=IncidentStatus.OPEN, acknowledged_at=None)
    await conn.execute(update(Incident).where(Incident.id == incident_id).values(**values))
    await restart_with_policy(
        conn,
        incident_id,
        team_id=incident.team_id,
        snapshot=snapshot,
        actor=actor,
        now=now,
        extra_entries=(
            TimelineEntry(
                EventKind.POLICY_REASSIGNED,
                actor,
                old_status=incident.status.value,
                new_status=IncidentStatus.OPEN.value,
                note=note,
                data={"policy_id": str(policy_id)},
            ),
        ),
    )
