"""Snooze: an acknowledged incident is put aside until a time, when it returns to open and
escalation starts again (the worker does that, noise/expiry.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.errors import Conflict, InvalidInput
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.incidents.timeline import Actor, EventKind, TimelineEntry, append_events
from tocsin.timers.schedule import cancel_pending_timers


async def snooze(
    conn: AsyncConnection,
    incident_id: uuid.UUID,
    *,
    until: datetime,
    actor: Actor,
    now: datetime,
    note: str = "",
) -> None:
    """Snooze the acknowledged incident until `until`; its pending timers (an ack timeout)
    are cancelled, since the snooze decides when it pages again."""
    if until <= now:
        raise InvalidInput("until must be in the future", field="until")
    result = await conn.execute(
        update(Incident)
        .where(Incident.id == incident_id, Incident.status == IncidentStatus.ACKNOWLEDGED)
        .values(snoozed_until=until, updated_at=now)
    )
    if result.rowcount != 1:
        raise Conflict("only an acknowledged incident can be snoozed")
    await cancel_pending_timers(conn, incident_id, now=now)
    await append_events(
        conn,
        incident_id,
        [
            TimelineEntry(
                EventKind.SNOOZED,
                actor,
                old_status="acknowledged",
                new_status="acknowledged",
                note=note,
                data={"until": until.isoformat()},
            )
        ],
        now=now,
    )
