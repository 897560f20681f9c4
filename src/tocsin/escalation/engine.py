"""Applying escalation decisions: paging a level, skipping empty ones, scheduling the next
timer, all in the caller's transaction, with timeline entries for each.

Every function here expects the incident row to be locked by the caller's transaction (or the
change to be the first write of an incident nobody else sees yet), so two workers, or a worker
and a person acknowledging, never apply two decisions for the same escalation step.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from tocsin.escalation.models import (
    EscalationState,
    IncidentEscalation,
    Page,
    PageVia,
)
from tocsin.escalation.plan import FIRST, Advance, Position, reach
from tocsin.escalation.snapshot import PolicySnapshot, load_policy_snapshot
from tocsin.escalation.targets import BatchResolver, Recipient, Resolution, resolve_level
from tocsin.incidents.lifecycle import IncidentNotFound
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.incidents.timeline import (
    NO_POLICY_NOTE,
    Actor,
    EventKind,
    TimelineEntry,
    append_events,
)
from tocsin.notifications.dispatch import plan_deliveries
from tocsin.store.connection import Connection
from tocsin.timers.schedule import insert_timers, timer_row

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EscalationRow:
    """An incident's escalation state as stored."""

    incident_id: uuid.UUID
    snapshot: PolicySnapshot
    state: EscalationState
    position: Position
    seq: int


async def resolve_for_reach(
    conn: Connection,
    snapshot: PolicySnapshot,
    start: Position,
    *,
    team_id: uuid.UUID,
    at: datetime,
    resolver: BatchResolver | None = None,
) -> dict[int, Resolution]:
    """The recipients of the levels `reach` will look at from `start`, in its order, stopping
    at the first level with someone: levels beyond it cost no queries. A shared `resolver`
    resolves each target once across many incidents."""
    resolver = resolver or BatchResolver(conn, at=at)
    resolved: dict[int, Resolution] = {}
    position = start
    while True:
        if position.level > len(snapshot.levels):
            position = Position(1, position.repeat + 1)
        if position.repeat >= snapshot.repeat_count or position.level in resolved:
            return resolved
        answer = await resolver.resolve(snapshot.level(position.level), team_id=team_id)
        resolved[position.level] = answer
        if answer.recipients:
            return resolved
        position = Position(position.level + 1, position.repeat)


# The worker runs these for every timer it fires: built once, so SQLAlchemy finds them in
# its compiled cache without rebuilding and hashing the statement each time.
_FIND_ESCALATION = select(IncidentEscalation.__table__).where(
    IncidentEscalation.incident_id == bindparam("incident_id")
)
_LOCK_INCIDENT = (
    select(Incident.id, Incident.status, Incident.team_id, Incident.escalation_policy_id)
    .where(Incident.id == bindparam("incident_id"))
    .with_for_update()
)


async def find_escalation(conn: Connection, incident_id: uuid.UUID) -> EscalationRow | None:
    esc = (await conn.execute(_FIND_ESCALATION, {"incident_id": incident_id})).first()
    if esc is None:
        return None
    return EscalationRow(
        incident_id=esc.incident_id,
        snapshot=PolicySnapshot.from_json(esc.policy_id, esc.policy_snapshot),
        state=esc.state,
        position=Position(esc.level, esc.repeat),
        seq=esc.seq,
    )


@dataclass(frozen=True)
class LockedIncident:
    id: uuid.UUID
    status: IncidentStatus
    team_id: uuid.UUID
    escalation_policy_id: uuid.UUID | None


async def lock_incident(conn: Connection, incident_id: uuid.UUID) -> LockedIncident | None:
    """The incident's status and team, its row locked until the transaction ends
    (PostgreSQL; SQLite's single writer holds the whole database already)."""
    row = (await conn.execute(_LOCK_INCIDENT, {"incident_id": incident_id})).first()
    if row is None:
        return None
    return LockedIncident(row.id, row.status, row.team_id, row.escalation_policy_id)


async def lock_existing_incident(conn: Connection, incident_id: uuid.UUID) -> LockedIncident:
    """As `lock_incident`, for a person's request: IncidentNotFound when there is none."""
    incident = await lock_incident(conn, incident_id)
    if incident is None:
        raise IncidentNotFound(incident_id)
    return incident


async def write_pages(conn: Connection, rows: list[dict[str, Any]], *, now: datetime) -> None:
    """The pages (`page_rows`), handed to notifications in this same transaction."""
    await conn.execute(_INSERT_PAGES, rows)
    # plan_deliveries announces the deliveries it writes due now; nothing else here is due.
    await plan_deliveries(conn, [row["id"] for row in rows], now=now)


def page_rows(
    incident_id: uuid.UUID,
    recipients: tuple[Recipient, ...],
    *,
    position: Position | None,
    seq: int,
    job_id: uuid.UUID | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """The column values of one page per recipient."""
    return [
        {
            "id": uuid.uuid4(),
            "incident_id": incident_id,
            "user_id": r.user_id,
            "job_id": job_id,
            "level_number": position.level if position else None,
            "repeat": position.repeat if position else 0,
            "escalation_seq": seq,
            "via": r.via,
            "schedule_id": r.schedule_id,
            "layer_id": r.layer_id,
            "override_id": r.override_id,
            "created_at": now,
        }
        for r in recipients
    ]


def timeline_of(
    advance: Advance, actor: Actor, *, policy_id: uuid.UUID | None
) -> list[TimelineEntry]:
    entries = [
        TimelineEntry(
            EventKind.LEVEL_SKIPPED,
            actor,
            note=skip.reason,
            data={"level": skip.at.level, "repeat": skip.at.repeat},
        )
        for skip in advance.skipped
    ]
    if advance.paged is not None:
        entries.append(
            TimelineEntry(
                EventKind.PAGED,
                actor,
                data={
                    "level": advance.paged.level,
                    "repeat": advance.paged.repeat,
                    "user_ids": [str(r.user_id) for r in advance.recipients],
                },
            )
        )
    if advance.timer_at is not None and advance.timer_target is not None:
        entries.append(
            TimelineEntry(
                EventKind.ESCALATION_SCHEDULED,
                actor,
                data={
                    "level": advance.timer_target.level,
                    "repeat": advance.timer_target.repeat,
                    "at": advance.timer_at.isoformat(),
                    "policy_id": str(policy_id) if policy_id else None,
                },
            )
        )
    if advance.exhausted:
        entries.append(
            TimelineEntry(
                EventKind.ESCALATION_EXHAUSTED,
                actor,
                note="escalation exhausted: every level of every cycle was tried; "
                "the incident stays open",
            )
        )
    return entries


_INSERT_ESCALATIONS = insert(IncidentEscalation)
_INSERT_PAGES = insert(Page)

MOVE_ESCALATION = (
    update(IncidentEscalation)
    .where(IncidentEscalation.incident_id == bindparam("of_incident"))
    .values(
        state=bindparam("state"),
        level=bindparam("level"),
        repeat=bindparam("repeat"),
        seq=bindparam("seq"),
        updated_at=bindparam("now"),
    )
)
MOVE_INCIDENT = (
    update(Incident)
    .where(Incident.id == bindparam("of_incident"))
    .values(
        current_level=bindparam("level"),
        current_repeat=bindparam("repeat"),
        updated_at=bindparam("now"),
    )
)
MOVE_INCIDENT_PAGED = MOVE_INCIDENT.values(last_escalated_at=bindparam("now"))


@dataclass
class StepRows:
    """The rows of decided steps (what `reach` decided for an incident: its pages, its next
    timer, its new position and seq), for one incident or a batch of them, written with one
    statement per kind of row. The escalation row exists, or `add` is given the snapshot to
    insert it from (a start)."""

    inserted: list[dict[str, Any]] = field(default_factory=list)
    moved_escalations: list[dict[str, Any]] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)
    timers: list[dict[str, Any]] = field(default_factory=list)
    moved: list[dict[str, Any]] = field(default_factory=list)
    moved_paged: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        incident_id: uuid.UUID,
        advance: Advance,
        *,
        previous: Position | None,
        seq: int,
        job_id: uuid.UUID | None,
        now: datetime,
        fresh: PolicySnapshot | None = None,
    ) -> int:
        """Take one incident's step; returns its new seq (one more than `seq`)."""
        new_seq = seq + 1
        position = advance.paged or previous or FIRST
        state = EscalationState.EXHAUSTED if advance.exhausted else EscalationState.ESCALATING
        at = {"level": position.level, "repeat": position.repeat}
        if fresh is not None:
            self.inserted.append(
                escalation_row(
                    incident_id, fresh, state=state, position=position, seq=new_seq, now=now
                )
            )
        else:
            self.moved_escalations.append(
                {"of_incident": incident_id, "state": state, **at, "seq": new_seq, "now": now}
            )
        if advance.paged is not None:
            self.pages.extend(
                page_rows(
                    incident_id,
                    advance.recipients,
                    position=advance.paged,
                    seq=new_seq,
                    job_id=job_id,
                    now=now,
                )
            )
        target = advance.timer_target
        if advance.timer_at is not None and target is not None:
            self.timers.append(
                timer_row(
                    incident_id,
                    level=target.level,
                    repeat=target.repeat,
                    at=advance.timer_at,
                    now=now,
                    seq=new_seq,
                )
            )
        (self.moved_paged if advance.paged else self.moved).append(
            {"of_incident": incident_id, **at, "now": now}
        )
        return new_seq

    async def write(self, conn: Connection, *, now: datetime) -> None:
        if self.inserted:
            await conn.execute(_INSERT_ESCALATIONS, self.inserted)
        if self.moved_escalations:
            await conn.execute(MOVE_ESCALATION, self.moved_escalations)
        if self.pages:
            await write_pages(conn, self.pages, now=now)
        if self.timers:
            await insert_timers(conn, self.timers)
        if self.moved_paged:
            await conn.execute(MOVE_INCIDENT_PAGED, self.moved_paged)
        if self.moved:
            await conn.execute(MOVE_INCIDENT, self.moved)


async def apply_advance(
    conn: Connection,
    *,
    incident_id: uuid.UUID,
    snapshot: PolicySnapshot,
    previous: Position | None,
    seq: int,
    advance: Advance,
    actor: Actor,
    job_id: uuid.UUID | None,
    now: datetime,
    extra_entries: tuple[TimelineEntry, ...] = (),
) -> int:
    """Store what `reach` decided: pages, the next timer, the new position and seq, timeline.
    Returns the new seq. The escalation row must exist."""
    rows = StepRows()
    new_seq = rows.add(incident_id, advance, previous=previous, seq=seq, job_id=job_id, now=now)
    await rows.write(conn, now=now)
    entries = [*extra_entries, *timeline_of(advance, actor, policy_id=snapshot.policy_id)]
    await append_events(conn, incident_id, entries, now=now)
    return new_seq


def escalation_row(
    incident_id: uuid.UUID,
    snapshot: PolicySnapshot,
    *,
    state: EscalationState,
    position: Position,
    seq: int,
    now: datetime,
) -> dict[str, Any]:
    """The column values of an incident's escalation row, `snapshot` frozen onto it."""
    return {
        "incident_id": incident_id,
        "policy_id": snapshot.policy_id,
        "policy_snapshot": snapshot.to_json(),
        "state": state,
        "level": position.level,
        "repeat": position.repeat,
        "seq": seq,
        "updated_at": now,
    }


async def insert_escalation(
    conn: Connection,
    incident_id: uuid.UUID,
    snapshot: PolicySnapshot,
    *,
    state: EscalationState = EscalationState.ESCALATING,
    position: Position = FIRST,
    seq: int,
    now: datetime,
) -> EscalationRow:
    """Write the incident's escalation row (by default escalating, at level 1 with nothing
    paged yet); the incident must have none."""
    row = escalation_row(incident_id, snapshot, state=state, position=position, seq=seq, now=now)
    await conn.execute(_INSERT_ESCALATIONS, row)
    return EscalationRow(incident_id, snapshot, state, position, seq)


async def adopt_policy(
    conn: Connection, incident_id: uuid.UUID, *, now: datetime
) -> EscalationRow | None:
    """Freeze the incident's policy onto it, at level 1 with nothing paged yet: for an
    incident whose escalation has not started (its start timer is still due, or was
    cancelled by an acknowledgement that came first). None when the incident has no policy,
    or it has vanished or has no levels (nothing is written then)."""
    policy_id = (
        await conn.execute(select(Incident.escalation_policy_id).where(Incident.id == incident_id))
    ).scalar_one_or_none()
    return await _adopt(conn, incident_id, policy_id, now=now)


async def _adopt(
    conn: Connection, incident_id: uuid.UUID, policy_id: uuid.UUID | None, *, now: datetime
) -> EscalationRow | None:
    snapshot = None if policy_id is None else await load_policy_snapshot(conn, policy_id)
    if snapshot is None:
        return None
    return await insert_escalation(conn, incident_id, snapshot, seq=0, now=now)


async def start_escalation(
    conn: Connection,
    incident: LockedIncident,
    *,
    actor: Actor,
    job_id: uuid.UUID | None,
    now: datetime,
) -> bool:
    """Snapshot the incident's policy and page its first level, with the timer for what
    comes next; False (with a timeline entry saying why) when there is no usable policy.
    The incident must be OPEN, locked, and have no escalation row yet."""
    escalation = await _adopt(conn, incident.id, incident.escalation_policy_id, now=now)
    if escalation is None:
        await record_no_policy(conn, incident.id, actor=actor, now=now)
        return False
    await move_on(
        conn, escalation, team_id=incident.team_id, start=FIRST, actor=actor, job_id=job_id, now=now
    )
    return True


async def record_no_policy(
    conn: Connection, incident_id: uuid.UUID, *, actor: Actor, now: datetime
) -> None:
    log.warning("incident %s has no usable escalation policy: nobody will be paged", incident_id)
    await append_events(
        conn,
        incident_id,
        [TimelineEntry(EventKind.NO_ESCALATION_POLICY, actor, note=NO_POLICY_NOTE)],
        now=now,
    )


async def restart_with_policy(
    conn: Connection,
    incident_id: uuid.UUID,
    *,
    snapshot: PolicySnapshot,
    now: datetime,
) -> int:
    """Point the incident's escalation at `snapshot`, level 1, as a new step; returns the
    step's seq. Pages nobody: the caller writes the timer with which the worker pages
    (pending timers must already be cancelled)."""
    current = await find_escalation(conn, incident_id)
    seq = (current.seq if current else 0) + 1
    if current is None:
        await insert_escalation(conn, incident_id, snapshot, seq=seq, now=now)
    else:
        await conn.execute(
            update(IncidentEscalation)
            .where(IncidentEscalation.incident_id == incident_id)
            .values(policy_id=snapshot.policy_id, policy_snapshot=snapshot.to_json())
        )
    await move_by_hand(
        conn, incident_id, state=EscalationState.ESCALATING, position=FIRST, seq=seq, now=now
    )
    return seq


async def move_by_hand(
    conn: Connection,
    incident_id: uuid.UUID,
    *,
    state: EscalationState,
    position: Position,
    seq: int,
    now: datetime,
) -> None:
    """Set the escalation's state, position and step, and the incident's position with it,
    as a person decided (escalate now, a reassignment); the pages follow from the worker,
    through the timer the caller writes with `seq`. The escalation row must exist."""
    moved = {"of_incident": incident_id, "level": position.level, "repeat": position.repeat}
    await conn.execute(MOVE_ESCALATION, {**moved, "state": state, "seq": seq, "now": now})
    await conn.execute(MOVE_INCIDENT, {**moved, "now": now})


async def move_on(
    conn: Connection,
    escalation: EscalationRow,
    *,
    team_id: uuid.UUID,
    start: Position,
    actor: Actor,
    job_id: uuid.UUID | None,
    now: datetime,
    extra_entries: tuple[TimelineEntry, ...] = (),
) -> Advance:
    """Reach for the first level from `start` that has someone, resolved at `now`."""
    resolved = await resolve_for_reach(conn, escalation.snapshot, start, team_id=team_id, at=now)
    advance = reach(escalation.snapshot, start, resolved, now=now)
    await apply_advance(
        conn,
        incident_id=escalation.incident_id,
        snapshot=escalation.snapshot,
        previous=escalation.position,
        seq=escalation.seq,
        advance=advance,
        actor=actor,
        job_id=job_id,
        now=now,
        extra_entries=extra_entries,
    )
    return advance


async def page_directly(
    conn: Connection,
    escalation: EscalationRow,
    *,
    user_id: uuid.UUID,
    actor: Actor,
    job_id: uuid.UUID | None = None,
    now: datetime,
) -> None:
    """Page one user and stop the policy (reassignment to a person)."""
    entry = TimelineEntry(EventKind.PAGED, actor, data={"level": None, "user_ids": [str(user_id)]})
    recipients = (Recipient(user_id, PageVia.REASSIGN),)
    await _page_in_place(
        conn,
        escalation,
        recipients,
        position=None,
        state=EscalationState.DIRECT,
        entry=entry,
        job_id=job_id,
        now=now,
    )


async def _page_in_place(
    conn: Connection,
    escalation: EscalationRow,
    recipients: tuple[Recipient, ...],
    *,
    position: Position | None,
    state: EscalationState,
    entry: TimelineEntry,
    job_id: uuid.UUID | None,
    now: datetime,
) -> None:
    """Page `recipients` as the escalation's next step without moving along the policy (a
    direct assignee; an exhausted policy's last level): the pages, the escalation's state and
    new seq, and the `entry` saying so."""
    new_seq = escalation.seq + 1
    if recipients:
        pages = page_rows(
            escalation.incident_id,
            recipients,
            position=position,
            seq=new_seq,
            job_id=job_id,
            now=now,
        )
        await write_pages(conn, pages, now=now)
    await conn.execute(
        update(IncidentEscalation)
        .where(IncidentEscalation.incident_id == escalation.incident_id)
        .values(state=state, seq=new_seq, updated_at=now)
    )
    await append_events(conn, escalation.incident_id, [entry], now=now)


async def resume_escalation(
    conn: Connection,
    incident_id: uuid.UUID,
    *,
    team_id: uuid.UUID,
    actor: Actor,
    job_id: uuid.UUID | None = None,
    now: datetime,
) -> None:
    """The incident is OPEN again (un-acknowledged, its acknowledgement timed out, its snooze
    ended): page its current level again and restart that level's timeout; a directly
    assigned incident pages its assignee again; an exhausted one pages its last level but
    goes no further. One acknowledged before its escalation started starts it now, at level
    1. The worker runs it for a RESUME timer (escalation/step.py), the incident locked."""
    escalation = await find_escalation(conn, incident_id) or await adopt_policy(
        conn, incident_id, now=now
    )
    if escalation is None:
        return
    if escalation.state == EscalationState.DIRECT:
        assignee = (
            await conn.execute(select(Incident.assigned_user_id).where(Incident.id == incident_id))
        ).scalar_one_or_none()
        if assignee is not None:
            await page_directly(
                conn, escalation, user_id=assignee, actor=actor, job_id=job_id, now=now
            )
        return
    if escalation.state == EscalationState.EXHAUSTED:
        last = escalation.snapshot.level(escalation.position.level)
        recipients = (await resolve_level(conn, last, team_id=team_id, at=now)).recipients
        entry = TimelineEntry(
            EventKind.PAGED,
            actor,
            note="escalation is exhausted: the last level is paged again, no further",
            data={
                "level": escalation.position.level,
                "repeat": escalation.position.repeat,
                "user_ids": [str(r.user_id) for r in recipients],
            },
        )
        await _page_in_place(
            conn,
            escalation,
            recipients,
            position=escalation.position,
            state=EscalationState.EXHAUSTED,
            entry=entry,
            job_id=job_id,
            now=now,
        )
        return
    await move_on(
        conn,
        escalation,
        team_id=team_id,
        start=escalation.position,
        actor=actor,
        job_id=job_id,
        now=now,
    )
