"""Escalation timer rows: scheduling the first level when an incident opens, cancelling all
pending ones when it is acknowledged or resolved. (The worker that fires them comes later.)"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.escalation.models import EscalationJob

FIRST_LEVEL = 1


async def schedule_level(
    conn: AsyncConnection,
    incident_id: uuid.UUID,
    *,
    level: int,
    repeat: int,
    at: datetime,
    now: datetime,
) -> None:
    await conn.execute(
        insert(EscalationJob).values(
            id=uuid.uuid4(),
            incident_id=incident_id,
            scheduled_level=level,
            scheduled_repeat=repeat,
            scheduled_for=at,
            completed=False,
            created_at=now,
        )
    )


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
