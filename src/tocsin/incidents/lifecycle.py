"""The incident state machine: OPEN -> ACKNOWLEDGED -> RESOLVED -> CLOSED.

Each change is a conditional UPDATE on the status we read, so two people (or a person and an
integration) acting at once cannot both win: the loser sees zero rows and gets a Conflict
naming the state it lost to. A change then writes its timeline entry and the timer rows it
implies (tocsin.timers), and returns; it never pages. Acknowledge and resolve cancel pending
timers and pages not yet sent in the same transaction, so no stale timer can page after the
change commits; an acknowledgement writes its timeout's timer; an incident OPEN again gets a
RESUME timer due at once, and the worker pages it again, as it pages a new incident.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.errors import Conflict, NotFound
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.incidents.timeline import Actor, EventKind, TimelineEntry, append_events
from tocsin.store.connection import Connection
from tocsin.timers.models import JobKind
from tocsin.timers.schedule import StatusChange, after_status_change


class Action(enum.StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    CLOSE = "close"
    UNACKNOWLEDGE = "unacknowledge"


class IncidentNotFound(NotFound):
    def __init__(self, incident_id: uuid.UUID) -> None:
        super().__init__(f"incident {incident_id} not found")


class IllegalTransition(Conflict):
    def __init__(self, action: Action, status: IncidentStatus) -> None:
        super().__init__(f"cannot {action.value} an incident that is {status.value}")
        self.action = action
        self.status = status


@dataclass(frozen=True)
class Transition:
    """What an action does to an incident in a given state."""

    action: Action
    old: IncidentStatus
    new: IncidentStatus
    timestamp_column: str
    event: EventKind


_RULES: dict[Action, tuple[frozenset[IncidentStatus], IncidentStatus, str, EventKind]] = {
    Action.ACKNOWLEDGE: (
        frozenset({IncidentStatus.OPEN}),
        IncidentStatus.ACKNOWLEDGED,
        "acknowledged_at",
        EventKind.ACKNOWLEDGED,
    ),
    Action.RESOLVE: (
        frozenset({IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED}),
        IncidentStatus.RESOLVED,
        "resolved_at",
        EventKind.RESOLVED,
    ),
    Action.CLOSE: (
        frozenset({IncidentStatus.RESOLVED}),
        IncidentStatus.CLOSED,
        "closed_at",
        EventKind.CLOSED,
    ),
    # Back to OPEN by hand, or when the policy's acknowledgement timeout runs out.
    Action.UNACKNOWLEDGE: (
        frozenset({IncidentStatus.ACKNOWLEDGED}),
        IncidentStatus.OPEN,
        "updated_at",
        EventKind.UNACKNOWLEDGED,
    ),
}

# What each new status means for the incident's timers (tocsin.timers).
_CHANGES = {
    IncidentStatus.OPEN: StatusChange.OPEN_AGAIN,
    IncidentStatus.ACKNOWLEDGED: StatusChange.ACKNOWLEDGED,
    IncidentStatus.RESOLVED: StatusChange.STOPPED,
    IncidentStatus.CLOSED: StatusChange.STOPPED,
}

ACTIVE_STATUSES = frozenset({IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED})

# Each lost race means another change committed, and there are only three more states.
_ATTEMPTS = 4


def plan_transition(action: Action, status: IncidentStatus) -> Transition:
    """The transition `action` makes from `status`; IllegalTransition when there is none."""
    allowed_from, new, column, event = _RULES[action]
    if status not in allowed_from:
        raise IllegalTransition(action, status)
    return Transition(action, status, new, column, event)


async def find_incident_status(
    conn: Connection, incident_id: uuid.UUID
) -> tuple[IncidentStatus, uuid.UUID] | None:
    """The incident's status and team, or None."""
    row = (
        await conn.execute(
            select(Incident.status, Incident.team_id).where(Incident.id == incident_id)
        )
    ).first()
    return None if row is None else (row.status, row.team_id)


async def apply_transition(
    conn: Connection,
    incident_id: uuid.UUID,
    action: Action,
    *,
    actor: Actor,
    now: datetime,
    note: str = "",
) -> Transition:
    """Move the incident by `action` and record it on the timeline, with the timers it
    implies: stopping escalation cancels its timers and unsent pages, an acknowledgement
    schedules its timeout, OPEN again schedules the worker's resume. Raises IncidentNotFound
    or IllegalTransition."""
    for _ in range(_ATTEMPTS):
        found = await find_incident_status(conn, incident_id)
        if found is None:
            raise IncidentNotFound(incident_id)
        transition = plan_transition(action, found[0])
        values: dict[str, Any] = {
            "status": transition.new,
            transition.timestamp_column: now,
            "updated_at": now,
        }
        if transition.new == IncidentStatus.OPEN:
            values["acknowledged_at"] = None
        if transition.new not in ACTIVE_STATUSES:
            # A resolved incident never takes new alerts: the next one opens a new incident.
            values["dedup_open"] = False
        result = await conn.execute(
            update(Incident)
            .where(Incident.id == incident_id, Incident.status == transition.old)
            .values(**values)
        )
        if result.rowcount == 1:
            break
        # Someone changed it between our read and our write (an acknowledge while we
        # resolve): plan again from the state that won, which may still allow the action.
    else:
        raise Conflict(f"incident {incident_id} kept changing; try again")
    entries = [
        TimelineEntry(
            kind=transition.event,
            actor=actor,
            old_status=transition.old.value,
            new_status=transition.new.value,
            note=note,
        )
    ]
    # The timers it implies; paging again is the worker's, in its own transaction under the
    # incident's lock.
    timeout = await after_status_change(conn, incident_id, _CHANGES[transition.new], now=now)
    if timeout is not None:
        entries.append(
            TimelineEntry(
                EventKind.ESCALATION_SCHEDULED,
                actor,
                note="the acknowledgement times out unless the incident is resolved",
                data={"kind": JobKind.ACK_TIMEOUT.value, "at": timeout.at.isoformat()},
            )
        )
    await append_events(conn, incident_id, entries, now=now)
    return transition


async def reassign(
    conn: AsyncConnection,
    incident_id: uuid.UUID,
    *,
    user_id: uuid.UUID,
    actor: Actor,
    now: datetime,
    note: str = "",
) -> None:
    """Assign an active incident to a user, recording who had it before."""
    row = (
        await conn.execute(
            select(Incident.status, Incident.assigned_user_id).where(Incident.id == incident_id)
        )
    ).first()
    if row is None:
        raise IncidentNotFound(incident_id)
    if row.status not in ACTIVE_STATUSES:
        raise Conflict(f"cannot reassign an incident that is {row.status.value}")
    result = await conn.execute(
        update(Incident)
        .where(Incident.id == incident_id, Incident.status.in_(ACTIVE_STATUSES))
        .values(assigned_user_id=user_id, updated_at=now)
    )
    if result.rowcount != 1:
        raise Conflict("the incident was resolved while it was being reassigned")
    previous = str(row.assigned_user_id) if row.assigned_user_id else None
    await append_events(
        conn,
        incident_id,
        [
            TimelineEntry(
                kind=EventKind.REASSIGNED,
                actor=actor,
                old_status=row.status.value,
                new_status=row.status.value,
                note=note,
                data={"from_user_id": previous, "to_user_id": str(user_id)},
            )
        ],
        now=now,
    )
