"""Firing many escalation timers at once (new incidents' starts and level timeouts): the
worker's answer to a storm.

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

from sqlalchemy import bindparam, select, update

from tocsin.escalation.engine import (
    StepRows,
    resolve_for_reach,
    timeline_of,
)
from tocsin.escalation.models import (
    EscalationJob,
    IncidentEscalation,
    JobKind,
    JobOutcome,
)
from tocsin.escalation.plan import FIRST, Advance, Position, Verdict, judge_timer, reach
from tocsin.escalation.snapshot import PolicySnapshot, load_policy_snapshots
from tocsin.escalation.targets import BatchResolver
from tocsin.incidents.models import Incident
from tocsin.incidents.timeline import (
    NO_POLICY_NOTE,
    SYSTEM,
    EventKind,
    TimelineEntry,
    append_to_timelines,
)
from tocsin.store.connection import Connection
from tocsin.store.schema import unset


@dataclass(frozen=True)
class BatchTimer:
    job_id: uuid.UUID
    incident_id: uuid.UUID


# The kinds fired here; an acknowledgement timeout reopens the incident through the
# lifecycle, one by one (escalation/step.py).
BATCH_KINDS = frozenset({JobKind.START, JobKind.LEVEL})


@dataclass(frozen=True)
class _Step:
    """One incident's decided step, with what is needed to write it."""

    timer: BatchTimer
    snapshot: PolicySnapshot
    advance: Advance
    previous: Position
    seq: int  # the seq before this step
    fresh: bool  # no escalation row yet (a start)


# Built once: a statement object reused keeps its compiled form's cache key.
_LOCK_INCIDENTS = (
    select(Incident.id, Incident.status, Incident.team_id, Incident.escalation_policy_id)
    .where(Incident.id.in_(bindparam("incident_ids", expanding=True)))
    .order_by(Incident.id)
    .with_for_update()
)
_TIMERS_STILL_OURS = (
    select(
        EscalationJob.id,
        EscalationJob.kind,
        EscalationJob.escalation_seq,
        EscalationJob.scheduled_level,
        EscalationJob.scheduled_repeat,
    )
    .where(
        EscalationJob.id.in_(bindparam("job_ids", expanding=True)),
        unset(EscalationJob.completed),
        EscalationJob.cancelled_at.is_(None),
        EscalationJob.lease_owner == bindparam("worker_id"),
    )
    .order_by(EscalationJob.id)
    .with_for_update()
)
_ESCALATIONS = select(IncidentEscalation.__table__).where(
    IncidentEscalation.incident_id.in_(bindparam("incident_ids", expanding=True))
)
_COMPLETE_MANY = (
    update(EscalationJob)
    .where(EscalationJob.id == bindparam("job_id"))
    .values(completed=True, executed_at=bindparam("now"), outcome=bindparam("outcome"))
)


async def fire_timers_together(
    conn: Connection, timers: list[BatchTimer], *, worker_id: str, now: datetime
) -> dict[uuid.UUID, JobOutcome]:
    """Fire these claimed start and level timers in the caller's transaction; the outcome
    of each that was still ours to fire, by timer id (those missing were cancelled or taken
    meanwhile)."""
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
    escalations = {
        row.incident_id: row
        for row in await conn.execute(_ESCALATIONS, {"incident_ids": incident_ids})
    }

    outcomes: dict[uuid.UUID, JobOutcome] = {}
    decided: list[tuple[BatchTimer, Any, Any, Verdict]] = []
    moving: set[uuid.UUID] = set()
    for timer in timers:
        row, incident = ours.get(timer.job_id), incidents.get(timer.incident_id)
        if row is None or incident is None:
            continue
        escalation = escalations.get(timer.incident_id)
        verdict = judge_timer(
            kind=JobKind(row.kind),
            job_seq=row.escalation_seq,
            status=incident.status,
            state=escalation.state if escalation is not None else None,
            seq=escalation.seq if escalation is not None else None,
        )
        # One step per incident per batch: a second timer of the same step is stale anyway.
        if verdict in (Verdict.START, Verdict.ESCALATE) and timer.incident_id not in moving:
            moving.add(timer.incident_id)
            decided.append((timer, row, incident, verdict))
            outcomes[timer.job_id] = JobOutcome.FIRED
        else:
            outcomes[timer.job_id] = JobOutcome.STALE

    snapshots = await load_policy_snapshots(
        conn,
        {
            i.escalation_policy_id
            for _, _, i, v in decided
            if v == Verdict.START and i.escalation_policy_id
        },
    )
    resolver = BatchResolver(conn, at=now)
    steps: list[_Step] = []
    timeline: list[tuple[uuid.UUID, TimelineEntry]] = []
    plans: list[tuple[BatchTimer, Any, PolicySnapshot, Position, Position, int, bool]] = []
    for timer, row, incident, verdict in decided:
        if verdict == Verdict.START:
            snapshot = snapshots.get(incident.escalation_policy_id)
            if snapshot is None:
                entry = TimelineEntry(EventKind.NO_ESCALATION_POLICY, SYSTEM, note=NO_POLICY_NOTE)
                timeline.append((timer.incident_id, entry))
                continue
            plans.append((timer, incident, snapshot, FIRST, FIRST, 0, True))
        else:
            esc = escalations[timer.incident_id]
            snapshot = PolicySnapshot.from_json(esc.policy_id, esc.policy_snapshot)
            start = Position(row.scheduled_level, row.scheduled_repeat)
            previous = Position(esc.level, esc.repeat)
            plans.append((timer, incident, snapshot, start, previous, esc.seq, False))
    await resolver.prefetch_users(
        [s.level(start.level) for _, _, s, start, _, _, _ in plans if start.level <= len(s.levels)]
    )
    for timer, incident, snapshot, start, previous, seq, fresh in plans:
        resolved = await resolve_for_reach(
            conn, snapshot, start, team_id=incident.team_id, at=now, resolver=resolver
        )
        advance = reach(snapshot, start, resolved, now=now)
        steps.append(_Step(timer, snapshot, advance, previous, seq, fresh))
        timeline.extend(
            (timer.incident_id, entry)
            for entry in timeline_of(advance, SYSTEM, policy_id=snapshot.policy_id)
        )
    await _write_steps(conn, steps, now=now)
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


async def _write_steps(conn: Connection, steps: list[_Step], *, now: datetime) -> None:
    """The rows `reach` decided for each incident, one statement per kind of row, as
    `apply_advance` writes them for one: a start inserts its escalation row, a level
    timeout moves it on; either way the step's seq is one more than before."""
    rows = StepRows()
    for step in steps:
        rows.add(
            step.timer.incident_id,
            step.advance,
            previous=step.previous,
            seq=step.seq,
            job_id=step.timer.job_id,
            now=now,
            fresh=step.snapshot if step.fresh else None,
        )
    await rows.write(conn, now=now)
