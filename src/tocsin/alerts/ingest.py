"""The ingest pipeline: normalised alert -> route -> dedup -> incident, timeline, timer.

It runs in two parts so that SQLite's single writer is held as briefly as possible:
`prepare` does the reads (routing) on any connection, concurrently with other requests;
`commit_alert` does the writes inside the transaction the batcher shares between requests.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.alerts.models import Alert, AlertStatus
from tocsin.alerts.normalised import NormalisedAlert, fingerprint
from tocsin.escalation.engine import start_escalation
from tocsin.incidents.dedup import deduplicate_and_open, find_active_incidents
from tocsin.incidents.lifecycle import Action, IllegalTransition, apply_transition
from tocsin.incidents.models import Incident
from tocsin.incidents.timeline import Actor, EventKind, TimelineEntry, append_events
from tocsin.integrations.lookup import IntegrationInfo
from tocsin.realtime.events import StreamEvent
from tocsin.routing.route import Route, route_alert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedAlert:
    integration: IntegrationInfo
    alert: NormalisedAlert
    fingerprint: str
    route: Route | None


@dataclass(frozen=True)
class IngestOutcome:
    alert_id: uuid.UUID
    incident_id: uuid.UUID | None
    deduplicated: bool
    # What the stream should announce once the transaction is committed.
    events: tuple[tuple[StreamEvent, uuid.UUID], ...] = ()


async def prepare(
    conn: AsyncConnection, integration: IntegrationInfo, alert: NormalisedAlert
) -> PreparedAlert:
    """Compute the fingerprint and route (reads only)."""
    route = None
    if alert.status == AlertStatus.FIRING:
        route = await route_alert(conn, alert, integration)
    return PreparedAlert(integration, alert, fingerprint(alert), route)


async def _insert_alert(
    conn: AsyncConnection,
    prepared: PreparedAlert,
    *,
    incident_id: uuid.UUID | None,
    routed: bool,
    now: datetime,
) -> uuid.UUID:
    alert = prepared.alert
    alert_id = uuid.uuid4()
    await conn.execute(
        insert(Alert).values(
            id=alert_id,
            integration_id=prepared.integration.id,
            incident_id=incident_id,
            fingerprint=prepared.fingerprint,
            title=alert.title,
            description=alert.description,
            severity=alert.severity,
            status=alert.status,
            source=alert.source,
            dedup_key=alert.dedup_key,
            routing_key=alert.routing_key,
            tags=alert.tags,
            details=alert.details,
            routed=routed,
            received_at=now,
        )
    )
    return alert_id


async def _commit_firing(
    conn: AsyncConnection, prepared: PreparedAlert, route: Route, now: datetime
) -> IngestOutcome:
    integration = prepared.integration
    outcome = await deduplicate_and_open(
        conn,
        integration=integration,
        alert=prepared.alert,
        fingerprint=prepared.fingerprint,
        route=route,
        now=now,
    )
    alert_id = await _insert_alert(
        conn, prepared, incident_id=outcome.incident_id, routed=True, now=now
    )
    actor = Actor.integration(integration.id)
    if not outcome.created:
        await append_events(
            conn,
            outcome.incident_id,
            [TimelineEntry(EventKind.ALERT_ADDED, actor, data={"alert_id": str(alert_id)})],
            now=now,
        )
        return IngestOutcome(
            alert_id,
            outcome.incident_id,
            deduplicated=True,
            events=((StreamEvent.ALERT_ADDED, outcome.incident_id),),
        )
    entries = [
        TimelineEntry(
            EventKind.CREATED,
            actor,
            new_status="open",
            data={
                "alert_id": str(alert_id),
                "routed_by": route.reason.value,
                "service_id": str(route.service_id) if route.service_id else None,
            },
        )
    ]
    await append_events(conn, outcome.incident_id, entries, now=now)
    policy_id = route.escalation_policy_id
    # Level 1 is paged in this transaction, together with the timer for what comes next.
    started = policy_id is not None and await start_escalation(
        conn,
        outcome.incident_id,
        team_id=route.team_id,
        policy_id=policy_id,
        actor=actor,
        now=now,
    )
    if not started:
        log.warning(
            "incident %s has no usable escalation policy: nobody will be paged", outcome.incident_id
        )
        await append_events(
            conn,
            outcome.incident_id,
            [
                TimelineEntry(
                    EventKind.NO_ESCALATION_POLICY,
                    actor,
                    note="the team has no active default policy and the service names none",
                )
            ],
            now=now,
        )
    return IngestOutcome(
        alert_id,
        outcome.incident_id,
        deduplicated=False,
        events=((StreamEvent.INCIDENT_CREATED, outcome.incident_id),),
    )


async def _commit_resolved(
    conn: AsyncConnection, prepared: PreparedAlert, now: datetime
) -> IngestOutcome:
    integration = prepared.integration
    incident_ids = await find_active_incidents(conn, integration.id, prepared.fingerprint)
    target = incident_ids[0] if incident_ids else None
    alert_id = await _insert_alert(
        conn, prepared, incident_id=target, routed=target is not None, now=now
    )
    if target is None:
        return IngestOutcome(alert_id, None, deduplicated=False)
    await conn.execute(
        update(Incident)
        .where(Incident.id == target)
        .values(alert_count=Incident.alert_count + 1, updated_at=now)
    )
    actor = Actor.integration(integration.id)
    await append_events(
        conn,
        target,
        [TimelineEntry(EventKind.ALERT_ADDED, actor, data={"alert_id": str(alert_id)})],
        now=now,
    )
    events: list[tuple[StreamEvent, uuid.UUID]] = [(StreamEvent.ALERT_ADDED, target)]
    if integration.auto_resolve:
        # The problem is gone: every active incident of this fingerprint goes, including an
        # older one left open when a later alert fell outside the dedup window.
        for incident_id in incident_ids:
            try:
                await apply_transition(
                    conn,
                    incident_id,
                    Action.RESOLVE,
                    actor=actor,
                    now=now,
                    note="resolved by the monitoring tool",
                )
            except IllegalTransition:
                continue  # resolved by someone else a moment ago: nothing left to do
            events.append((StreamEvent.INCIDENT_UPDATED, incident_id))
    return IngestOutcome(alert_id, target, deduplicated=True, events=tuple(events))


async def commit_alert(
    conn: AsyncConnection, prepared: PreparedAlert, *, now: datetime
) -> IngestOutcome:
    """Store the alert and everything it causes; the caller commits."""
    if prepared.alert.status == AlertStatus.RESOLVED:
        return await _commit_resolved(conn, prepared, now)
    if prepared.route is None:
        alert_id = await _insert_alert(conn, prepared, incident_id=None, routed=False, now=now)
        log.info("alert %s matched no route; stored as unrouted", alert_id)
        return IngestOutcome(alert_id, None, deduplicated=False)
    return await _commit_firing(conn, prepared, prepared.route, now)
