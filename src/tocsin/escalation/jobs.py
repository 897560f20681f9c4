"""Escalation timer rows: writing one, and cancelling all pending ones of an incident when it
is acknowledged, resolved, escalated by hand or reassigned."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.escalation.models import EscalationJob, JobKind
from tocsin.worker.wakeup import announce_work

FIRST_LEVEL = 1


async def schedule_level(
    conn: AsyncConnection,
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
    job_id = uuid.uuid4()
    await conn.execute(
        insert(EscalationJob).values(
            id=job_id,
            incident_id=incident_id,
            scheduled_level=level,
            scheduled_repeat=repeat,
            scheduled_for=at,
            completed=False,
            created_at=now,
            kind=kind,
            escalation_seq=seq,
            attempts=0,
        )
    )
    if at <= now:
        await announce_work(conn)
    return job_id


async def cancel_pending_jobs(
    conn: AsyncConnection, incident_id: uuid.UUID, *, now: datetime
) -> int:
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
