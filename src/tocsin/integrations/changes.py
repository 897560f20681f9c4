"""Change events (deploys, config changes): stored on the integration's service and noted on
the timeline of that service's active incidents. They never open an incident or page."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import insert, select

from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.incidents.timeline import Actor, EventKind, TimelineEntry, append_events
from tocsin.integrations.adapters.base import ChangeNotice
from tocsin.integrations.models import ChangeEvent
from tocsin.store.connection import Connection


async def record_change(
    conn: Connection,
    *,
    integration_id: uuid.UUID,
    service_id: uuid.UUID | None,
    notice: ChangeNotice,
    now: datetime,
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """Store the change; returns its id and the incidents whose timeline now shows it."""
    change_id = uuid.uuid4()
    await conn.execute(
        insert(ChangeEvent).values(
            id=change_id,
            integration_id=integration_id,
            service_id=service_id,
            summary=notice.summary,
            source=notice.source,
            happened_at=notice.happened_at or now,
            received_at=now,
            custom_details=notice.custom_details,
            links=notice.links,
        )
    )
    if service_id is None:
        return change_id, []
    incident_ids = list(
        (
            await conn.execute(
                select(Incident.id).where(
                    Incident.service_id == service_id,
                    Incident.status.in_([IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED]),
                )
            )
        ).scalars()
    )
    entry = TimelineEntry(
        EventKind.CHANGE_EVENT,
        Actor.integration(integration_id),
        note=notice.summary,
        data={"change_event_id": str(change_id), "source": notice.source},
    )
    for incident_id in incident_ids:
        await append_events(conn, incident_id, [entry], now=now)
    return change_id, incident_ids
