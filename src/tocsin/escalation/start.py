"""Starting the escalations of many new incidents at once: the worker's answer to a storm.

A new incident's start timer is due the moment the incident is stored. Fired one by one, each
costs about twenty statements (lock, re-check, snapshot the policy, resolve the level, write
the pages, plan their deliveries, the next timer, the position, the timeline) and, on SQLite,
a commit of its own. Here a whole claimed batch is started in one transaction with a fixed
number of statements: the incidents and timers are locked and re-checked together, each policy
and each target is read once for the batch, and every kind of row is written in one
multi-row statement. The decisions stay the pure `reach` of escalation/plan.py, per incident.

The guarantees are those of firing one timer (escalation/step.py): the incidents are locked
first (in id order, so two workers never deadlock), then the timers, and a timer cancelled by
an acknowledgement that committed first, or re-claimed by another worker, is left alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.escalation.engine import (
    MOVE_INCIDENT,
    MOVE_INCIDENT_PAGED,
    NO_POLICY_NOTE,
    page_rows,
    resolve_for_reach,
    timeline_of,
)
from tocsin.escalation.jobs import timer_row
from tocsin.escalation.models import (
    EscalationJob,
    EscalationState,
    IncidentEscalation,
    JobKind,
    JobOutcome,
    Page,
)
from tocsin.escalation.plan import FIRST, Advance, Verdict, judge_timer, reach
from tocsin.escalation.snapshot import PolicySnapshot, load_policy_snapshots
from tocsin.escalation.targets import BatchResolver
from tocsin.incidents.models import Incident
from tocsin.incidents.timeline import SYSTEM, EventKind, TimelineEntry, append_to_timelines
from tocsin.notifications.dispatch import plan_deliveries
from tocsin.worker.wakeup import announce_work


@dataclass(frozen=True)
class StartTimer:
    job_id: uuid.UUID
    incident_id: uuid.UUID


_LOCK_INCIDENTS = (
    select(Incident.id, Incident.status, Incident.team_id, Incident.escalation_policy_id)
    .where(Incident.id.in_(bindparam("incident_ids", expanding=True)))
    .order_by(Incident.id)
    .with_for_update()
)
_TIMERS_STILL_OURS = (
    select(EscalationJob.id, EscalationJob.kind, EscalationJob.escalation_seq)
    .where(
        EscalationJob.id.in_(bindparam("job_ids", expanding=True)),
        EscalationJob.completed.is_(False),
        EscalationJob.cancelled_at.is_(None),
        EscalationJob.claimed_by == bindparam("worker_id"),
    )
    .order_by(EscalationJob.id)
    .with_for_update()
)
_STARTED = select(IncidentEscalation.incident_id).where(
    IncidentEscalation.incident_id.in_(bindparam("incident_ids", expanding=True))
)
_COMPLETE_MANY = (
    update(EscalationJob)
    .where(EscalationJob.id == bindparam("job_id"))
    .values(completed=True, executed_at=bindparam("now"), outcome=bindparam("outcome"))
)


async def start_escalations(
    conn: AsyncConnection, timers: list[StartTimer], *, worker_id: str, now: datetime
) -> dict[uuid.UUID, JobOutcome]:
    """Fire these claimed start timers in the caller's transaction; the outcome of each that
    was still ours to fire, by timer id (those missing were cancelled or taken meanwhile)."""
    if not timers:
        return {}
    incident_ids = sorted({t.incident_id for t in timers})
    incidents = {
        row.id: row for row in await conn.execute(_LOCK_INCIDENTS, {"incident_ids": incident_ids})
    }
    ours = {
        row.id: row
        for row in await conn.execute(
            _TIMERS_STILL_OURS,
            {"job_ids": sorted(t.job_id for t in timers), "worker_id": worker_id},
        )
    }
    started = set((await conn.execute(_STARTED, {"incident_ids": incident_ids})).scalars())

    outcomes: dict[uuid.UUID, JobOutcome] = {}
    to_start: list[tuple[StartTimer, Any]] = []
    starting: set[uuid.UUID] = set()
    for timer in timers:
        row, incident = ours.get(timer.job_id), incidents.get(timer.incident_id)
        if row is None or incident is None:
            continue
        verdict = judge_timer(
            kind=JobKind(row.kind),
            job_seq=row.escalation_seq,
            status=incident.status,
            state=EscalationState.ESCALATING if timer.incident_id in started else None,
            seq=None,
        )
        if verdict == Verdict.START and timer.incident_id not in starting:
            starting.add(timer.incident_id)
            to_start.append((timer, incident))
            outcomes[timer.job_id] = JobOutcome.FIRED
        else:
            outcomes[timer.job_id] = JobOutcome.STALE

    snapshots = await load_policy_snapshots(
        conn, {i.escalation_policy_id for _, i in to_start if i.escalation_policy_id}
    )
    resolver = BatchResolver(conn, at=now)
    await resolver.prefetch_users([s.level(FIRST.level) for s in snapshots.values()])
    advances: list[tuple[StartTimer, Any, PolicySnapshot, Advance]] = []
    timeline: list[tuple[uuid.UUID, TimelineEntry]] = []
    for timer, incident in to_start:
        snapshot = snapshots.get(incident.escalation_policy_id)
        if snapshot is None:
            timeline.append(
                (
                    timer.incident_id,
                    TimelineEntry(EventKind.NO_ESCALATION_POLICY, SYSTEM, note=NO_POLICY_NOTE),
                )
            )
            continue
        resolved = await resolve_for_reach(
            conn, snapshot, FIRST, team_id=incident.team_id, at=now, resolver=resolver
        )
        advance = reach(snapshot, FIRST, resolved, now=now)
        advances.append((timer, incident, snapshot, advance))
        timeline.extend(
            (timer.incident_id, entry)
            for entry in timeline_of(advance, SYSTEM, policy_id=snapshot.policy_id)
        )
    await _write_starts(conn, advances, now=now)
    await append_to_timelines(conn, timeline, now=now)
    if outcomes:
        await conn.execute(
            _COMPLETE_MANY,
            [
                {"job_id": job_id, "now": now, "outcome": outcome}
                for job_id, outcome in sorted(outcomes.items())
            ],
        )
    return outcomes


async def _write_starts(
    conn: AsyncConnection,
    advances: list[tuple[StartTimer, Any, PolicySnapshot, Advance]],
    *,
    now: datetime,
) -> None:
    """The rows `reach` decided for each started incident, one statement per kind of row.
    The first step's seq is 1, as `apply_advance` makes it from a fresh escalation."""
    if not advances:
        return
    seq = 1
    escalations: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    timers: list[dict[str, Any]] = []
    moved: list[dict[str, Any]] = []
    moved_paged: list[dict[str, Any]] = []
    for timer, _incident, snapshot, advance in advances:
        position = advance.paged or FIRST
        escalations.append(
            {
                "incident_id": timer.incident_id,
                "policy_id": snapshot.policy_id,
                "policy_snapshot": snapshot.to_json(),
                "state": EscalationState.EXHAUSTED
                if advance.exhausted
                else EscalationState.ESCALATING,
                "level": position.level,
                "repeat": position.repeat,
                "seq": seq,
                "updated_at": now,
            }
        )
        if advance.paged is not None:
            pages.extend(
                page_rows(
                    timer.incident_id,
                    advance.recipients,
                    position=advance.paged,
                    seq=seq,
                    job_id=timer.job_id,
                    now=now,
                )
            )
        if advance.timer_at is not None and advance.timer_target is not None:
            timers.append(
                timer_row(
                    timer.incident_id,
                    level=advance.timer_target.level,
                    repeat=advance.timer_target.repeat,
                    at=advance.timer_at,
                    now=now,
                    seq=seq,
                )
            )
        (moved_paged if advance.paged else moved).append(
            {
                "of_incident": timer.incident_id,
                "level": position.level,
                "repeat": position.repeat,
                "now": now,
            }
        )
    await conn.execute(insert(IncidentEscalation), escalations)
    if pages:
        await conn.execute(insert(Page), pages)
        await plan_deliveries(conn, [p["id"] for p in pages], now=now)
    if timers:
        await conn.execute(insert(EscalationJob), timers)
        if any(t["scheduled_for"] <= now for t in timers):
            await announce_work(conn)
    if moved_paged:
        await conn.execute(MOVE_INCIDENT_PAGED, moved_paged)
    if moved:
        await conn.execute(MOVE_INCIDENT, moved)
