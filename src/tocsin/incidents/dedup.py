"""Deduplication: an alert joins the incident already open for its fingerprint, or opens one.

The partial unique index uq_incidents_dedup_open allows one incident per (integration,
fingerprint) with dedup_open set. Opening is INSERT ... ON CONFLICT DO NOTHING on that index,
so when two identical alerts race, the database lets exactly one insert win and the other
finds nothing inserted, looks again and joins the winner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.alerts.normalised import NormalisedAlert
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.integrations.lookup import IntegrationInfo
from tocsin.routing.route import Route

# Two rounds are enough: a lost race means the winner is committed (PostgreSQL waits for it
# before answering ON CONFLICT) and visible to the next look. A third is slack for a winner
# that was resolved in between.
_ATTEMPTS = 3


@dataclass(frozen=True)
class DedupOutcome:
    incident_id: uuid.UUID
    created: bool


class DedupRaceLost(RuntimeError):
    """Could not open or join an incident after several rounds; retrying the request is safe."""


_FIND_DEDUP_OPEN = select(Incident.id, Incident.created_at)


async def find_dedup_incident(
    conn: AsyncConnection, integration_id: uuid.UUID, fingerprint: str
) -> tuple[uuid.UUID, datetime] | None:
    """The incident currently absorbing alerts of this fingerprint: (id, created_at)."""
    row = (
        await conn.execute(
            _FIND_DEDUP_OPEN.where(
                Incident.integration_id == integration_id,
                Incident.fingerprint == fingerprint,
                Incident.dedup_open.is_(True),
            )
        )
    ).first()
    return None if row is None else (row.id, row.created_at)


async def _join(conn: AsyncConnection, incident_id: uuid.UUID, now: datetime) -> bool:
    """Count one more alert on the incident if it still takes alerts."""
    result = await conn.execute(
        update(Incident)
        .where(Incident.id == incident_id, Incident.dedup_open.is_(True))
        .values(alert_count=Incident.alert_count + 1, updated_at=now)
    )
    return result.rowcount == 1


async def _stop_absorbing(conn: AsyncConnection, incident_id: uuid.UUID) -> None:
    await conn.execute(update(Incident).where(Incident.id == incident_id).values(dedup_open=False))


def joins_existing(created_at: datetime, *, now: datetime, window: timedelta) -> bool:
    """Whether an alert at `now` joins the dedup-open incident opened at `created_at` (within
    the window), rather than opening a new one."""
    return created_at > now - window


def _insert_incident(dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(Incident).values(number=func.nextval("incident_number_seq"))
    # SQLite has a single writer, so max + 1 inside the insert cannot collide.
    next_number = select(func.coalesce(func.max(Incident.number), 0) + 1).scalar_subquery()
    return sqlite.insert(Incident).values(number=next_number)


async def _open_incident(
    conn: AsyncConnection,
    *,
    integration: IntegrationInfo,
    alert: NormalisedAlert,
    fingerprint: str,
    route: Route,
    now: datetime,
) -> uuid.UUID | None:
    """Insert a new incident; None when another one for this fingerprint won the race."""
    incident_id = uuid.uuid4()
    stmt = (
        _insert_incident(conn.dialect.name)
        .values(
            id=incident_id,
            integration_id=integration.id,
            fingerprint=fingerprint,
            dedup_open=True,
            title=alert.title,
            description=alert.description,
            status=IncidentStatus.OPEN,
            priority=alert.severity,
            team_id=route.team_id,
            escalation_policy_id=route.escalation_policy_id,
            service_id=route.service_id,
            current_level=0,
            current_repeat=0,
            alert_count=1,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(
            index_elements=["integration_id", "fingerprint"], index_where=text("dedup_open")
        )
        .returning(Incident.id)
    )
    return (await conn.execute(stmt)).scalar_one_or_none()


async def find_dedup_incidents(
    conn: AsyncConnection, keys: set[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], tuple[uuid.UUID, datetime]]:
    """For each (integration, fingerprint), the incident absorbing its alerts: one query."""
    if not keys:
        return {}
    rows = await conn.execute(
        _FIND_DEDUP_OPEN_MANY,
        {
            "fingerprints": list({fingerprint for _, fingerprint in keys}),
            "integrations": list({integration for integration, _ in keys}),
        },
    )
    found = {}
    for row in rows:
        key = (row.integration_id, row.fingerprint)
        if key in keys:
            found[key] = (row.id, row.created_at)
    return found


# Built once (expanding parameters), so a batch does not rebuild and re-key it.
_FIND_DEDUP_OPEN_MANY = select(
    Incident.id, Incident.created_at, Incident.integration_id, Incident.fingerprint
).where(
    Incident.fingerprint.in_(bindparam("fingerprints", expanding=True)),
    Incident.integration_id.in_(bindparam("integrations", expanding=True)),
    Incident.dedup_open.is_(True),
)
_LAST_NUMBER = select(func.coalesce(func.max(Incident.number), 0))


async def join_incident(
    conn: AsyncConnection, incident_id: uuid.UUID, alerts: int, now: datetime
) -> bool:
    """Count `alerts` more alerts on the incident, if it still takes alerts."""
    result = await conn.execute(
        update(Incident)
        .where(Incident.id == incident_id, Incident.dedup_open.is_(True))
        .values(alert_count=Incident.alert_count + alerts, updated_at=now)
    )
    return result.rowcount == 1


async def stop_absorbing(conn: AsyncConnection, incident_ids: list[uuid.UUID]) -> None:
    """These incidents are past their dedup window: they stay as they are but take no more
    alerts."""
    if incident_ids:
        await conn.execute(
            update(Incident).where(Incident.id.in_(incident_ids)).values(dedup_open=False)
        )


async def open_incidents(conn: AsyncConnection, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert new incidents (distinct fingerprints) in one statement; the ids of those
    inserted. One missing lost the race to an incident another transaction opened for the
    same fingerprint."""
    if not rows:
        return set()
    if conn.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(Incident).values(number=func.nextval("incident_number_seq"))
    else:
        # SQLite has a single writer (and ingest takes the write lock up front), so numbers
        # counted on from the largest cannot collide.
        last = (await conn.execute(_LAST_NUMBER)).scalar()
        rows = [{**row, "number": int(last or 0) + n} for n, row in enumerate(rows, start=1)]
        stmt = sqlite.insert(Incident)
    stmt = stmt.on_conflict_do_nothing(
        index_elements=["integration_id", "fingerprint"], index_where=text("dedup_open")
    ).returning(Incident.id)
    return set((await conn.execute(stmt, rows)).scalars())


async def deduplicate_and_open(
    conn: AsyncConnection,
    *,
    integration: IntegrationInfo,
    alert: NormalisedAlert,
    fingerprint: str,
    route: Route,
    now: datetime,
) -> DedupOutcome:
    """Join the incident open for this fingerprint within the dedup window, or open one."""
    window = timedelta(minutes=integration.dedup_window_minutes)
    for _ in range(_ATTEMPTS):
        existing = await find_dedup_incident(conn, integration.id, fingerprint)
        if existing is not None:
            incident_id, created_at = existing
            if joins_existing(created_at, now=now, window=window):
                if await _join(conn, incident_id, now):
                    return DedupOutcome(incident_id, created=False)
                continue  # resolved between our read and our update: look again
            # Past the window the old incident stays as it is but takes no more alerts.
            await _stop_absorbing(conn, incident_id)
        opened = await _open_incident(
            conn,
            integration=integration,
            alert=alert,
            fingerprint=fingerprint,
            route=route,
            now=now,
        )
        if opened is not None:
            return DedupOutcome(opened, created=True)
    raise DedupRaceLost(f"fingerprint {fingerprint!r} kept changing under us")


async def find_active_incidents(
    conn: AsyncConnection, integration_id: uuid.UUID, fingerprint: str
) -> list[uuid.UUID]:
    """Every open or acknowledged incident of this fingerprint, newest first."""
    result = await conn.execute(
        select(Incident.id)
        .where(
            Incident.fingerprint == fingerprint,
            Incident.integration_id == integration_id,
            Incident.status.in_([IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED]),
        )
        .order_by(Incident.created_at.desc())
    )
    return list(result.scalars())
