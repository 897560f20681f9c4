"""Loading an incident as the detail endpoint and the stream show it."""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts.models import Alert, AlertStatus
from tocsin.alerts.schemas import AlertOut
from tocsin.catalog.models import Service
from tocsin.escalation.models import Page
from tocsin.incidents.models import Incident, IncidentEvent
from tocsin.incidents.schemas import (
    IncidentAlertOut,
    IncidentDetail,
    IncidentOut,
    PageOut,
    ServiceRef,
    TeamRef,
    TimelineEventOut,
)
from tocsin.store.connection import Connection
from tocsin.teams.models import Team

DETAIL_ALERTS = 100
DETAIL_EVENTS = 500
DETAIL_PAGES = 500


_MEMBER = (Alert.incident_id, Alert.integration_id, Alert.fingerprint)

# Each (integration, fingerprint) of an incident with its latest receipt: newest first and,
# at the same instant (one batch), a resolved receipt before a firing one, because a batch
# applies a firing-then-resolved pair in that order.
_RANKED = (
    select(
        Alert.id,
        Alert.incident_id,
        Alert.integration_id,
        Alert.fingerprint,
        Alert.status,
        Alert.title,
        Alert.severity,
        Alert.source,
        Alert.tags,
        func.row_number()
        .over(
            partition_by=_MEMBER,
            order_by=(
                Alert.received_at.desc(),
                case((Alert.status == AlertStatus.RESOLVED, 0), else_=1),
                Alert.id.desc(),
            ),
        )
        .label("rank"),
        func.count().over(partition_by=_MEMBER).label("received"),
        func.min(Alert.received_at).over(partition_by=_MEMBER).label("first_received_at"),
        func.max(Alert.received_at).over(partition_by=_MEMBER).label("last_received_at"),
        func.max(Alert.suppression_reason).over(partition_by=_MEMBER).label("grouped_reason"),
    )
    .where(Alert.incident_id.in_(bindparam("incident_ids", expanding=True)))
    .subquery()
)
_INCIDENT_ALERTS = (
    select(_RANKED).where(_RANKED.c.rank == 1).order_by(_RANKED.c.first_received_at, _RANKED.c.id)
)


async def load_incident_alerts(
    conn: Connection, incident_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[IncidentAlertOut]]:
    """Each incident's distinct alerts with their status now, first received first: one
    query for all of them."""
    found: dict[uuid.UUID, list[IncidentAlertOut]] = {i: [] for i in incident_ids}
    if not incident_ids:
        return found
    for row in await conn.execute(_INCIDENT_ALERTS, {"incident_ids": incident_ids}):
        found[row.incident_id].append(
            IncidentAlertOut(
                alert_id=row.id,
                integration_id=row.integration_id,
                fingerprint=row.fingerprint,
                status=row.status,
                title=row.title,
                severity=row.severity,
                source=row.source,
                tags=row.tags,
                received=row.received,
                first_received_at=row.first_received_at,
                last_received_at=row.last_received_at,
                grouped_reason=row.grouped_reason,
            )
        )
    return found


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
    conn = await session.connection()
    listed = await load_incident_alerts(conn, [incident.id])
    return IncidentDetail(
        **IncidentOut.model_validate(incident).model_dump(),
        grouped_alerts=listed[incident.id],
        team=TeamRef(id=team.id, name=team.name),
        service=service_ref,
        alerts=[AlertOut.model_validate(a) for a in alerts],
        timeline=[TimelineEventOut.model_validate(e) for e in events],
        pages=[PageOut.model_validate(p) for p in pages],
    )
