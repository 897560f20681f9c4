"""What people do to an incident's escalation by hand: escalate now, reassign to a user or
to another policy. Each runs in the caller's transaction with the incident row locked, so it
cannot interleave with a timer firing for the same incident, and pages nobody itself: it
decides the new level or assignee, cancels the pending timers, moves the escalation to a new
step (its seq) and writes a timer due at once, ESCALATE or REASSIGN, valid for that step
only. The worker fires it under the same lock and pages, as it pages a new incident; an
acknowledgement or another change before that cancels it, so nobody is paged."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.errors import Conflict, InvalidInput
from tocsin.escalation.engine import (
    adopt_policy,
    find_escalation,
    insert_escalation,
    lock_existing_incident,
    move_by_hand,
    restart_with_policy,
)
from tocsin.escalation.models import EscalationPolicy, EscalationState, IncidentEscalation
from tocsin.escalation.plan import FIRST, Position, following
from tocsin.escalation.snapshot import PolicySnapshot, load_policy_snapshot
from tocsin.incidents.lifecycle import ACTIVE_STATUSES, reassign
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.incidents.timeline import Actor, EventKind, TimelineEntry, append_events
from tocsin.store.schema import unset
from tocsin.timers.models import EscalationJob, JobKind
from tocsin.timers.schedule import cancel_pending_timers, schedule_page_now, schedule_reassign

# The state row of an incident reassigned to a person before it ever had a policy.
_NO_POLICY = PolicySnapshot(
    policy_id=None, name="", repeat_count=1, ack_timeout_minutes=None, levels=()
)


async def escalate_now(
    conn: AsyncConnection, incident_id: uuid.UUID, *, actor: Actor, now: datetime, note: str = ""
) -> None:
    """Move an OPEN incident to its next level at once: the incident's level is the next
    one when this returns, and an ESCALATE timer due now has the worker page it (skipping
    levels with nobody, as a timeout does) and start its timeout. Pending timers are
    cancelled. Asked again before the worker has fired that timer, it changes nothing but
    the timeline. Conflict when it is not open or has nothing left to try."""
    incident = await lock_existing_incident(conn, incident_id)
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
    if await _escalation_pending(conn, incident_id):
        # Asked again before the worker paged the last request's level (a double click, two
        # people at once): the same step, so the level it moved to is paged, not skipped.
        await append_events(
            conn,
            incident_id,
            [
                TimelineEntry(
                    EventKind.ESCALATED_NOW,
                    actor,
                    note=note,
                    data={"from_level": escalation.position.level, "already_pending": True},
                )
            ],
            now=now,
        )
        return
    await cancel_pending_timers(conn, incident_id, now=now)
    target = start or following(escalation.snapshot, escalation.position)
    # Past the last cycle the worker finds the escalation exhausted, and the incident keeps
    # the level it had, as when a timeout runs out there.
    within = target.repeat < escalation.snapshot.repeat_count
    seq = escalation.seq + 1
    await move_by_hand(
        conn,
        incident_id,
        state=EscalationState.ESCALATING,
        position=target if within else escalation.position,
        seq=seq,
        now=now,
    )
    entry = TimelineEntry(
        EventKind.ESCALATED_NOW, actor, note=note, data={"from_level": escalation.position.level}
    )
    await _page_now(conn, incident_id, target, seq=seq, entry=entry, now=now)


async def _page_now(
    conn: AsyncConnection,
    incident_id: uuid.UUID,
    position: Position,
    *,
    seq: int,
    entry: TimelineEntry,
    now: datetime,
) -> None:
    """After an escalation was moved by hand: an ESCALATE timer due at once has the worker
    page `position` for step `seq`, and the timeline says why."""
    await schedule_page_now(
        conn, incident_id, level=position.level, repeat=position.repeat, seq=seq, now=now
    )
    await append_events(conn, incident_id, [entry], now=now)


async def _escalation_pending(conn: AsyncConnection, incident_id: uuid.UUID) -> bool:
    """Whether an ESCALATE timer of the incident is still waiting for the worker."""
    pending = await conn.execute(
        select(EscalationJob.id)
        .where(
            EscalationJob.incident_id == incident_id,
            EscalationJob.kind == JobKind.ESCALATE,
            unset(EscalationJob.completed),
            EscalationJob.cancelled_at.is_(None),
        )
        .limit(1)
    )
    return pending.first() is not None


async def reassign_to_user(
    conn: AsyncConnection,
    incident_id: uuid.UUID,
    *,
    user_id: uuid.UUID,
    actor: Actor,
    now: datetime,
    note: str = "",
) -> None:
    """Assign the incident to one user and stop the policy's escalation; a REASSIGN timer
    due now has the worker page them."""
    await lock_existing_incident(conn, incident_id)
    await reassign(conn, incident_id, user_id=user_id, actor=actor, now=now, note=note)
    await cancel_pending_timers(conn, incident_id, now=now)
    escalation = await find_escalation(conn, incident_id)
    if escalation is None:
        # Never had a policy: start a state row so the page gets its own step number.
        await insert_escalation(
            conn,
            incident_id,
            _NO_POLICY,
            state=EscalationState.DIRECT,
            position=Position(0, 0),
            seq=0,
            now=now,
        )
        seq = 1
    else:
        seq = escalation.seq + 1
    await conn.execute(
        update(IncidentEscalation)
        .where(IncidentEscalation.incident_id == incident_id)
        .values(state=EscalationState.DIRECT, seq=seq, updated_at=now)
    )
    await schedule_reassign(conn, incident_id, seq=seq, user_id=user_id, now=now)


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
    policy as it is now: an ESCALATE timer due now has the worker page its level 1. An
    acknowledged incident becomes OPEN again."""
    incident = await lock_existing_incident(conn, incident_id)
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
    seq = await restart_with_policy(conn, incident_id, snapshot=snapshot, now=now)
    entry = TimelineEntry(
        EventKind.POLICY_REASSIGNED,
        actor,
        old_status=incident.status.value,
        new_status=IncidentStatus.OPEN.value,
        note=note,
        data={"policy_id": str(policy_id)},
    )
    await _page_now(conn, incident_id, FIRST, seq=seq, entry=entry, now=now)
