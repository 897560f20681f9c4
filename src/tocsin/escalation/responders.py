"""Adding a responder: page one more person, or an escalation policy's first level, for an
incident now, without touching its own escalation.

The request writes a RESPONDER timer row due at once (with the timeline entry saying who asked
for whom) in the caller's transaction; the worker fires it like any timer and writes the pages,
so the HTTP request never sends anything itself. Each request gets its own negative step number
(`escalation_seq` -1, -2, ...), which its pages carry: the pages of one request are unique
(a timer fired twice pages nobody twice) and never collide with the escalation's own steps.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from tocsin.errors import Conflict, InvalidInput
from tocsin.escalation.engine import (
    LockedIncident,
    lock_existing_incident,
    page_rows,
    resolve_for_reach,
    write_pages,
)
from tocsin.escalation.models import EscalationJob, EscalationPolicy, JobKind, PageVia
from tocsin.escalation.plan import FIRST, reach
from tocsin.escalation.snapshot import load_policy_snapshot
from tocsin.escalation.targets import Recipient
from tocsin.incidents.lifecycle import ACTIVE_STATUSES
from tocsin.incidents.timeline import SYSTEM, Actor, EventKind, TimelineEntry, append_events
from tocsin.store.connection import Connection
from tocsin.teams.models import TeamMember, TeamRole
from tocsin.timers.schedule import schedule_responder

_ACTING_ROLES = (TeamRole.MANAGER, TeamRole.RESPONDER)


async def request_responder(
    conn: Connection,
    incident_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    policy_id: uuid.UUID | None = None,
    actor: Actor,
    now: datetime,
    note: str = "",
) -> None:
    """Ask for a person (a manager or responder of the incident's team) or a policy of the
    team to be paged now. 409 unless the incident is open or acknowledged."""
    incident = await lock_existing_incident(conn, incident_id)
    if incident.status not in ACTIVE_STATUSES:
        raise Conflict(f"cannot add a responder to an incident that is {incident.status.value}")
    data: dict[str, object] = {}
    if user_id is not None:
        role = (
            await conn.execute(
                select(TeamMember.role).where(
                    TeamMember.team_id == incident.team_id, TeamMember.user_id == user_id
                )
            )
        ).scalar_one_or_none()
        if role not in _ACTING_ROLES:
            raise InvalidInput(
                f"user {user_id} is not a manager or responder of the incident's team",
                field="user_id",
            )
        data["user_id"] = str(user_id)
    else:
        assert policy_id is not None
        team_of_policy = (
            await conn.execute(
                select(EscalationPolicy.team_id).where(EscalationPolicy.id == policy_id)
            )
        ).scalar_one_or_none()
        if team_of_policy != incident.team_id:
            raise InvalidInput(
                f"escalation policy {policy_id} is not one of the incident's team",
                field="escalation_policy_id",
            )
        data["escalation_policy_id"] = str(policy_id)
    earlier = (
        await conn.execute(
            select(func.count()).where(
                EscalationJob.incident_id == incident_id, EscalationJob.kind == JobKind.RESPONDER
            )
        )
    ).scalar_one()
    await schedule_responder(
        conn, incident_id, seq=-(int(earlier) + 1), user_id=user_id, policy_id=policy_id, now=now
    )
    await append_events(
        conn,
        incident_id,
        [TimelineEntry(EventKind.RESPONDER_ADDED, actor, note=note.strip(), data=data)],
        now=now,
    )


async def page_responder(
    conn: Connection,
    incident: LockedIncident,
    *,
    job_id: uuid.UUID,
    seq: int,
    user_id: uuid.UUID | None,
    policy_id: uuid.UUID | None,
    now: datetime,
) -> None:
    """The worker's half: page the person, or whoever the policy's first level (with
    someone) reaches now."""
    recipients: tuple[Recipient, ...] = ()
    if user_id is not None:
        recipients = (Recipient(user_id, PageVia.RESPONDER),)
    elif policy_id is not None:
        snapshot = await load_policy_snapshot(conn, policy_id)
        if snapshot is not None:
            resolved = await resolve_for_reach(
                conn, snapshot, FIRST, team_id=incident.team_id, at=now
            )
            # Marked as responder pages; the schedule or layer that led to each is kept.
            recipients = tuple(
                replace(r, via=PageVia.RESPONDER)
                for r in reach(snapshot, FIRST, resolved, now=now).recipients
            )
    if recipients:
        pages = page_rows(incident.id, recipients, position=None, seq=seq, job_id=job_id, now=now)
        await write_pages(conn, pages, now=now)
        note = ""
        data: dict[str, Any] = {
            "level": None,
            "responder": True,
            "user_ids": [str(r.user_id) for r in recipients],
            "escalation_policy_id": str(policy_id) if policy_id else None,
        }
    else:
        note = "the added responder's policy reached nobody"
        data = {"responder": True, "user_ids": []}
    await append_events(
        conn, incident.id, [TimelineEntry(EventKind.PAGED, SYSTEM, note=note, data=data)], now=now
    )
