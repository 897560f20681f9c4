"""The ingest pipeline: normalised alert -> route -> dedup -> incident, timeline, start timer.

It runs in two parts so that SQLite's single writer is held as briefly as possible:
`prepare` does the reads (routing) on any connection, concurrently with other requests;
`commit_batch` does the writes of every request in a batch inside the one transaction the
batcher shares between them, with a handful of statements per batch rather than per alert.
Paging is not done here: a new incident gets a start timer due at once, and the worker pages
level 1 in its own transaction (DESIGN.md's pipeline), so ingest stays short.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.alerts.models import Alert, AlertStatus
from tocsin.alerts.normalised import NormalisedAlert, fingerprint
from tocsin.escalation.engine import NO_POLICY_NOTE
from tocsin.escalation.jobs import schedule_starts
from tocsin.incidents.dedup import (
    deduplicate_and_open,
    find_active_incidents,
    find_dedup_incidents,
    join_incident,
    joins_existing,
    open_incidents,
    stop_absorbing,
)
from tocsin.incidents.lifecycle import Action, IllegalTransition, apply_transition
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.incidents.timeline import (
    Actor,
    EventKind,
    TimelineEntry,
    append_events,
    append_to_timelines,
)
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


def _alert_row(
    prepared: PreparedAlert,
    alert_id: uuid.UUID,
    *,
    incident_id: uuid.UUID | None,
    routed: bool,
    now: datetime,
) -> dict[str, Any]:
    alert = prepared.alert
    return {
        "id": alert_id,
        "integration_id": prepared.integration.id,
        "incident_id": incident_id,
        "fingerprint": prepared.fingerprint,
        "title": alert.title,
        "description": alert.description,
        "severity": alert.severity,
        "status": alert.status,
        "source": alert.source,
        "dedup_key": alert.dedup_key,
        "routing_key": alert.routing_key,
        "tags": alert.tags,
        "details": alert.details,
        "routed": routed,
        "received_at": now,
    }


async def _insert_alert(
    conn: AsyncConnection,
    prepared: PreparedAlert,
    *,
    incident_id: uuid.UUID | None,
    routed: bool,
    now: datetime,
) -> uuid.UUID:
    alert_id = uuid.uuid4()
    row = _alert_row(prepared, alert_id, incident_id=incident_id, routed=routed, now=now)
    await conn.execute(insert(Alert), [row])
    return alert_id


def _incident_row(
    prepared: PreparedAlert, route: Route, incident_id: uuid.UUID, alerts: int, now: datetime
) -> dict[str, Any]:
    alert = prepared.alert
    return {
        "id": incident_id,
        "integration_id": prepared.integration.id,
        "fingerprint": prepared.fingerprint,
        "dedup_open": True,
        "title": alert.title,
        "description": alert.description,
        "status": IncidentStatus.OPEN,
        "priority": alert.severity,
        "team_id": route.team_id,
        "escalation_policy_id": route.escalation_policy_id,
        "service_id": route.service_id,
        "current_level": 0,
        "current_repeat": 0,
        "alert_count": alerts,
        "created_at": now,
        "updated_at": now,
    }


@dataclass(frozen=True)
class _Placed:
    """Where dedup put one alert of a batch."""

    prepared: PreparedAlert
    incident_id: uuid.UUID | None  # None: unrouted
    created: bool = False  # this alert opened the incident


async def _store_placed(
    conn: AsyncConnection, placed: list[_Placed], *, now: datetime
) -> list[IngestOutcome]:
    """Write the alerts of a batch whose incidents are decided (opened or joined), their
    timeline entries and the start timers of new incidents: three or four statements
    whatever the batch size."""
    alert_rows: list[dict[str, Any]] = []
    entries: list[tuple[uuid.UUID, TimelineEntry]] = []
    starts: list[uuid.UUID] = []
    outcomes: list[IngestOutcome] = []
    for item in placed:
        prepared, incident_id = item.prepared, item.incident_id
        alert_id = uuid.uuid4()
        route = prepared.route
        alert_rows.append(
            _alert_row(
                prepared, alert_id, incident_id=incident_id, routed=route is not None, now=now
            )
        )
        if incident_id is None or route is None:
            log.info("alert %s matched no route; stored as unrouted", alert_id)
            outcomes.append(IngestOutcome(alert_id, None, deduplicated=False))
            continue
        actor = Actor.integration(prepared.integration.id)
        if not item.created:
            entries.append(
                (
                    incident_id,
                    TimelineEntry(EventKind.ALERT_ADDED, actor, data={"alert_id": str(alert_id)}),
                )
            )
            outcomes.append(
                IngestOutcome(
                    alert_id,
                    incident_id,
                    deduplicated=True,
                    events=((StreamEvent.ALERT_ADDED, incident_id),),
                )
            )
            continue
        entries.append(
            (
                incident_id,
                TimelineEntry(
                    EventKind.CREATED,
                    actor,
                    new_status="open",
                    data={
                        "alert_id": str(alert_id),
                        "routed_by": route.reason.value,
                        "service_id": str(route.service_id) if route.service_id else None,
                    },
                ),
            )
        )
        if route.escalation_policy_id is None:
            log.warning(
                "incident %s has no usable escalation policy: nobody will be paged", incident_id
            )
            entries.append(
                (
                    incident_id,
                    TimelineEntry(EventKind.NO_ESCALATION_POLICY, actor, note=NO_POLICY_NOTE),
                )
            )
        else:
            # Level 1 is paged by the worker at once (woken by this commit), in the
            # transaction that also schedules the timer for what comes next.
            starts.append(incident_id)
        outcomes.append(
            IngestOutcome(
                alert_id,
                incident_id,
                deduplicated=False,
                events=((StreamEvent.INCIDENT_CREATED, incident_id),),
            )
        )
    await conn.execute(insert(Alert), alert_rows)
    await append_to_timelines(conn, entries, now=now)
    await schedule_starts(conn, starts, now=now)
    return outcomes


class BatchRaceLost(RuntimeError):
    """An identical alert committed elsewhere changed an incident this batch counted on;
    the batch is rolled back and its alerts are stored one by one instead."""


async def _commit_firing_run(
    conn: AsyncConnection, run: list[PreparedAlert], *, now: datetime
) -> list[IngestOutcome]:
    """Deduplicate and store firing alerts together: one query finds the incidents already
    absorbing their fingerprints, one statement opens the new ones."""
    if not run:
        return []
    keys = {(p.integration.id, p.fingerprint) for p in run if p.route is not None}
    absorbing = await find_dedup_incidents(conn, keys)
    target: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
    counts: Counter[uuid.UUID] = Counter()
    opening: dict[uuid.UUID, PreparedAlert] = {}
    expired: list[uuid.UUID] = []
    placed: list[_Placed] = []
    for prepared in run:
        route = prepared.route
        if route is None:
            placed.append(_Placed(prepared, None))
            continue
        key = (prepared.integration.id, prepared.fingerprint)
        incident_id = target.get(key)
        created = False
        if incident_id is None:
            found = absorbing.get(key)
            window = timedelta(minutes=prepared.integration.dedup_window_minutes)
            if found is not None and joins_existing(found[1], now=now, window=window):
                incident_id = found[0]
            else:
                if found is not None:
                    expired.append(found[0])
                incident_id = uuid.uuid4()
                opening[incident_id] = prepared
                created = True
            target[key] = incident_id
        counts[incident_id] += 1
        placed.append(_Placed(prepared, incident_id, created))
    await stop_absorbing(conn, expired)
    rows = []
    for incident_id, prepared in opening.items():
        assert prepared.route is not None
        rows.append(_incident_row(prepared, prepared.route, incident_id, counts[incident_id], now))
    if await open_incidents(conn, rows) != set(opening):
        raise BatchRaceLost("an identical alert opened an incident at the same moment")
    for incident_id, count in counts.items():
        if incident_id not in opening and not await join_incident(conn, incident_id, count, now):
            raise BatchRaceLost("an incident stopped taking alerts at the same moment")
    return await _store_placed(conn, placed, now=now)


async def _commit_firing(
    conn: AsyncConnection, prepared: PreparedAlert, route: Route, now: datetime
) -> IngestOutcome:
    """One firing alert, retrying its dedup until it has joined or opened an incident."""
    outcome = await deduplicate_and_open(
        conn,
        integration=prepared.integration,
        alert=prepared.alert,
        fingerprint=prepared.fingerprint,
        route=route,
        now=now,
    )
    placed = _Placed(prepared, outcome.incident_id, outcome.created)
    return (await _store_placed(conn, [placed], now=now))[0]


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
    """Store one alert and everything it causes; the caller commits."""
    if prepared.alert.status == AlertStatus.RESOLVED:
        return await _commit_resolved(conn, prepared, now)
    if prepared.route is None:
        return (await _store_placed(conn, [_Placed(prepared, None)], now=now))[0]
    return await _commit_firing(conn, prepared, prepared.route, now)


async def commit_batch(
    conn: AsyncConnection, batch: list[PreparedAlert], *, now: datetime
) -> list[IngestOutcome]:
    """Store alerts in order, in the caller's transaction, with a handful of statements per
    run of firing alerts (a resolved alert is stored on its own where it falls, so a
    firing-then-resolved pair in one batch ends resolved). Raises BatchRaceLost when a
    concurrent transaction got in the way: store the alerts one by one then."""
    outcomes: list[IngestOutcome] = []
    run: list[PreparedAlert] = []
    for prepared in batch:
        if prepared.alert.status != AlertStatus.RESOLVED:
            run.append(prepared)
            continue
        outcomes += await _commit_firing_run(conn, run, now=now)
        run = []
        outcomes.append(await _commit_resolved(conn, prepared, now))
    outcomes += await _commit_firing_run(conn, run, now=now)
    return outcomes
