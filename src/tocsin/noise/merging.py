"""Merging incidents and splitting an alert out of one, by hand, with the same permission
rules as every other incident action (managers and responders of each incident's team).

Merge moves the sources' alerts into the target, resolves the sources and writes a timeline
entry on each side. Split moves every receipt of one alert (its integration's fingerprint)
into a new incident, which escalates like any new one (a start timer the worker takes).
Both run in the caller's transaction; the incidents they touch are returned for the stream.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from tocsin.alerts.models import Alert
from tocsin.auth.accounts import Principal
from tocsin.auth.permissions import require_team_responder
from tocsin.errors import Conflict, InvalidInput, NotFound
from tocsin.incidents.dedup import Demand, open_incident
from tocsin.incidents.detail import load_incident_alerts
from tocsin.incidents.lifecycle import ACTIVE_STATUSES, Action, apply_transition
from tocsin.incidents.models import Incident
from tocsin.incidents.responding import find_visible_incident
from tocsin.incidents.timeline import (
    NO_POLICY_NOTE,
    Actor,
    EventKind,
    TimelineEntry,
    append_events,
)
from tocsin.noise.grouping import find_finished_groups, merged_key
from tocsin.timers.schedule import schedule_starts


class AlertNotInIncident(NotFound):
    def __init__(self, alert_id: uuid.UUID, incident_id: uuid.UUID) -> None:
        super().__init__(f"alert {alert_id} is not an alert of incident {incident_id}")


@dataclass(frozen=True)
class MergeCandidate:
    id: uuid.UUID
    number: int
    title: str


async def find_merge_candidates(
    session: AsyncSession, incident: Incident, *, limit: int = 20
) -> list[MergeCandidate]:
    """The newest other open or acknowledged incidents of the incident's team, to offer for
    merging into it."""
    rows = await session.execute(
        select(Incident.id, Incident.number, Incident.title)
        .where(
            Incident.team_id == incident.team_id,
            Incident.status.in_(ACTIVE_STATUSES),
            Incident.id != incident.id,
        )
        .order_by(Incident.created_at.desc(), Incident.id.desc())
        .limit(limit)
    )
    return [MergeCandidate(row.id, row.number, row.title) for row in rows]


def _refuse_inactive(incident: Incident, doing: str) -> None:
    if incident.status not in ACTIVE_STATUSES:
        raise Conflict(f"cannot {doing} incident #{incident.number}: it is {incident.status.value}")


async def merge_incidents(
    session: AsyncSession,
    principal: Principal,
    target: Incident,
    source_ids: list[uuid.UUID],
    *,
    now: datetime,
    note: str = "",
) -> list[uuid.UUID]:
    """Move the sources' alerts into `target` and resolve the sources. Each source must be one
    the user may see (else NotFound / Forbidden) and act on, as must the target; all must be
    open or acknowledged (else Conflict). The incidents changed, target first."""
    if target.id in source_ids:
        raise InvalidInput("an incident cannot be merged into itself", field="source_ids")
    await require_team_responder(session, principal, target.team_id)
    sources = [await find_visible_incident(session, principal, i) for i in source_ids]
    for team_id in {s.team_id for s in sources}:
        await require_team_responder(session, principal, team_id)
    _refuse_inactive(target, "merge into")
    for source in sources:
        _refuse_inactive(source, "merge")
    conn = await session.connection()
    actor = Actor.user(principal.user_id)
    await conn.execute(
        update(Alert).where(Alert.incident_id.in_(source_ids)).values(incident_id=target.id)
    )
    await conn.execute(
        update(Incident)
        .where(Incident.id == target.id)
        .values(
            alert_count=Incident.alert_count + sum(s.alert_count for s in sources),
            # Several fingerprints now: it resolves when all of them have, and their next
            # alerts find it (noise/grouping.py).
            group_key=func.coalesce(Incident.group_key, merged_key(target.id)),
            updated_at=now,
        )
    )
    numbers = ", ".join(f"#{s.number}" for s in sources)
    await append_events(
        conn,
        target.id,
        [
            TimelineEntry(
                EventKind.MERGED,
                actor,
                note=note or f"merged {numbers} into this incident",
                data={
                    "source_ids": [str(s.id) for s in sources],
                    "source_numbers": [s.number for s in sources],
                },
            )
        ],
        now=now,
    )
    for source in sources:
        await conn.execute(update(Incident).where(Incident.id == source.id).values(alert_count=0))
        await append_events(
            conn,
            source.id,
            [
                TimelineEntry(
                    EventKind.MERGED_INTO,
                    actor,
                    note=note or f"merged into incident #{target.number}",
                    data={"target_id": str(target.id), "target_number": target.number},
                )
            ],
            now=now,
        )
        await apply_transition(
            conn,
            source.id,
            Action.RESOLVE,
            actor=actor,
            now=now,
            note=f"merged into incident #{target.number}",
        )
    return [target.id, *source_ids]


async def split_alert(
    session: AsyncSession,
    principal: Principal,
    incident: Incident,
    alert_id: uuid.UUID,
    *,
    now: datetime,
    note: str = "",
) -> uuid.UUID:
    """Open a new incident for one alert of `incident` (every receipt of its fingerprint
    moves), paged like any new incident. AlertNotInIncident when the alert is not one of
    this incident's; Conflict when the incident is not active or has no other alert. The new
    incident's id; the old one resolves if every alert left in it has resolved."""
    await require_team_responder(session, principal, incident.team_id)
    _refuse_inactive(incident, "split")
    conn = await session.connection()
    row = (
        await conn.execute(
            select(Alert.integration_id, Alert.fingerprint, Alert.incident_id).where(
                Alert.id == alert_id
            )
        )
    ).first()
    if row is None or row.incident_id != incident.id:
        raise AlertNotInIncident(alert_id, incident.id)
    members = (await load_incident_alerts(conn, [incident.id]))[incident.id]
    if len(members) < 2:
        raise Conflict(f"incident #{incident.number} has no other alert to keep")
    (alert,) = [
        m
        for m in members
        if (m.integration_id, m.fingerprint) == (row.integration_id, row.fingerprint)
    ]
    if (incident.integration_id, incident.fingerprint) == (row.integration_id, row.fingerprint):
        # The new incident takes the fingerprint's later alerts from now on.
        await conn.execute(
            update(Incident).where(Incident.id == incident.id).values(dedup_open=False)
        )
    demand = Demand(
        integration_id=row.integration_id,
        fingerprint=row.fingerprint,
        window=timedelta(0),
        alerts=alert.received,
        opening={
            "title": alert.title,
            "description": "",
            "priority": alert.severity,
            "team_id": incident.team_id,
            "escalation_policy_id": incident.escalation_policy_id,
            "service_id": incident.service_id,
        },
    )
    new_id = await open_incident(conn, demand, now=now)
    await conn.execute(
        update(Incident).where(Incident.id == new_id).values(group_key=merged_key(new_id))
    )
    await conn.execute(
        update(Alert)
        .where(
            Alert.incident_id == incident.id,
            Alert.integration_id == row.integration_id,
            Alert.fingerprint == row.fingerprint,
        )
        .values(incident_id=new_id)
    )
    await conn.execute(
        update(Incident)
        .where(Incident.id == incident.id)
        .values(alert_count=Incident.alert_count - alert.received, updated_at=now)
    )
    number = (await conn.execute(select(Incident.number).where(Incident.id == new_id))).scalar()
    actor = Actor.user(principal.user_id)
    await append_events(
        conn,
        incident.id,
        [
            TimelineEntry(
                EventKind.SPLIT,
                actor,
                note=note or f"{alert.title!r} split out into incident #{number}",
                data={"alert_id": str(alert_id), "incident_id": str(new_id), "number": number},
            )
        ],
        now=now,
    )
    opened = [
        TimelineEntry(
            EventKind.CREATED,
            actor,
            new_status="open",
            note=note or f"split out of incident #{incident.number}",
            data={"alert_id": str(alert_id), "split_from": str(incident.id)},
        )
    ]
    if incident.escalation_policy_id is None:
        opened.append(TimelineEntry(EventKind.NO_ESCALATION_POLICY, actor, note=NO_POLICY_NOTE))
    await append_events(conn, new_id, opened, now=now)
    if incident.escalation_policy_id is not None:
        await schedule_starts(conn, [new_id], now=now)
    await _resolve_if_finished(conn, incident.id, actor=actor, now=now)
    return new_id


async def _resolve_if_finished(
    conn: AsyncConnection, incident_id: uuid.UUID, *, actor: Actor, now: datetime
) -> None:
    if await find_finished_groups(conn, [incident_id]):
        await apply_transition(
            conn,
            incident_id,
            Action.RESOLVE,
            actor=actor,
            now=now,
            note="every alert of the incident has resolved",
        )
