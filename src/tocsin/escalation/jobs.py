"""Escalation timer rows: writing one, and cancelling all pending ones of an incident when it
is acknowledged, resolved, escalated by hand or reassigned."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update

from tocsin.escalation.models import EscalationJob, JobKind
from tocsin.store.connection import Connection
from tocsin.worker.wakeup import announce_work

FIRST_LEVEL = 1


async def schedule_level(
    conn: Connection,
    incident_id: uuid.UUID,
    *,
    level: int,
    repeat: int,
    at: datetime,
    now: datetime,
    seq: int = 0,
    kind: JobKind = JobKind.LEVEL,
) -> uuid.UUID:
    """A timer due at `at`, valid while the incident's escalation seq is still `seq`."""
    row = timer_row(incident_id, level=level, repeat=repeat, at=at, now=now, seq=seq, kind=kind)
    await conn.execute(insert(EscalationJob).values(**row))
    if at <= now:
        await announce_work(conn)
    job_id: uuid.UUID = row["id"]
    return job_id


def timer_row(
    incident_id: uuid.UUID,
    *,
    level: int,
    repeat: int,
    at: datetime,
    now: datetime,
    seq: int = 0,
    kind: JobKind = JobKind.LEVEL,
) -> dict[str, Any]:
    """The column values of a new pending timer."""
    return {
        "id": uuid.uuid4(),
        "incident_id": incident_id,
        "scheduled_level": level,
        "scheduled_repeat": repeat,
        "scheduled_for": at,
        "completed": False,
        "created_at": now,
        "kind": kind,
        "escalation_seq": seq,
        "attempts": 0,
    }


async def schedule_responder(
    conn: Connection,
    incident_id: uuid.UUID,
    *,
    seq: int,
    user_id: uuid.UUID | None,
    policy_id: uuid.UUID | None,
    now: datetime,
) -> None:
    """A RESPONDER timer due at once (escalation/responders.py), waking the workers."""
    row = timer_row(
        incident_id, level=0, repeat=0, at=now, now=now, seq=seq, kind=JobKind.RESPONDER
    )
    row.update(responder_user_id=user_id, responder_policy_id=policy_id)
    await conn.execute(insert(EscalationJob).values(**row))
    await announce_work(conn)


async def schedule_starts(
    conn: Connection, incident_ids: list[uuid.UUID], *, now: datetime
) -> None:
    """The start timers of new incidents, due at once, in one statement: the worker pages
    level 1 of each (escalation/step.py), woken now rather than at its next poll."""
    if not incident_ids:
        return
    await conn.execute(
        insert(EscalationJob),
        [
            {
                "id": uuid.uuid4(),
                "incident_id": incident_id,
                "scheduled_level": FIRST_LEVEL,
                "scheduled_repeat": 0,
                "scheduled_for": now,
                "completed": False,
                "created_at": now,
                "kind": JobKind.START,
                "escalation_seq": 0,
                "attempts": 0,
            }
            for incident_id in incident_ids
        ],
    )
    await announce_work(conn)


async def cancel_pending_jobs(conn: Connection, incident_id: uuid.UUID, *, now: datetime) -> int:
    """Cancel every timer of the incident that has not fired; returns how many."""
    result = await conn.execute(
        update(EscalationJob)
        .where(
            EscalationJob.incident_id == incident_id,
            EscalationJob.completed.is_(False),
            EscalationJob.cancelled_at.is_(None),
        )
        .values(cancelled_at=now)
    )
    return result.rowcount or 0
