"""Loading an incident as the detail endpoint and the stream show it."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts.models import Alert
from tocsin.alerts.schemas import AlertOut
from tocsin.catalog.models import Service
from tocsin.escalation.models import Page
from tocsin.incidents.models import Incident, IncidentEvent
from tocsin.incidents.schemas import (
    IncidentDetail,
    IncidentOut,
    PageOut,
    ServiceRef,
    TeamRef,
    TimelineEventOut,
)
from tocsin.teams.models import Team

DETAIL_ALERTS = 100
DETAIL_EVENTS = 500
DETAIL_PAGES = 500


async def find_incident(session: AsyncSession, incident_id: uuid.UUID) -> Incident | None:
    return await session.get(Incident, incident_id)


async def load_incident_detail(session: AsyncSession, incident: Incident) -> IncidentDetail:
    """The incident with its team, service (and that service's team), recent alerts and
    timeline."""
    team = await session.get(Team, incident.team_id)
    assert team is not None  # foreign key
    service_ref = None
    if incident.service_id is not None:
        row = (
            await session.execute(
                select(Service.id, Service.name, Service.routing_key, Team.id, Team.name)
                .join(Team, Team.id == Service.team_id)
                .where(Service.id == incident.service_id)
            )
        ).first()
        if row is not None:
            service_ref = ServiceRef(
                id=row[0], name=row[1], routing_key=row[2], team=TeamRef(id=row[3], name=row[4])
            )
    alerts = (
        await session.execute(
            select(Alert)
            .where(Alert.incident_id == incident.id)
            .order_by(Alert.received_at.desc(), Alert.id.desc())
            .limit(DETAIL_ALERTS)
        )
    ).scalars()
    events = (
        await session.execute(
            select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident.id)
            .order_by(IncidentEvent.at, IncidentEvent.id)
            .limit(DETAIL_EVENTS)
        )
    ).scalars()
    pages = (
        await session.execute(
            select(Page)
            .where(Page.incident_id == incident.id)
            .order_by(Page.created_at, Page.escalation_seq, Page.user_id)
            .limit(DETAIL_PAGES)
        )
    ).scalars()
    return IncidentDetail(
        **IncidentOut.model_validate(incident).model_dump(),
        team=TeamRef(id=team.id, name=team.name),
        service=service_ref,
        alerts=[AlertOut.model_validate(a) for a in alerts],
        timeline=[TimelineEventOut.model_validate(e) for e in events],
        pages=[PageOut.model_validate(p) for p in pages],
    )
