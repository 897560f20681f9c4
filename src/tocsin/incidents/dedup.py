"""Deduplication: an alert joins the incident already open for its fingerprint, or opens one.

There is one implementation, batch-shaped: `place` takes every (integration, fingerprint)
of a batch that needs an incident, with how many alerts it brings, and answers which incident
each joined or opened; a single alert is a batch of one.

The partial unique index uq_incidents_dedup_open allows one incident per (integration,
fingerprint) with dedup_open set. Opening is INSERT ... ON CONFLICT DO NOTHING on that index,
so when two identical alerts race, the database lets exactly one insert win and the other
finds nothing inserted, looks again and joins the winner.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.incidents.lifecycle import (
    ACTIVE_STATUSES,
    Action,
    IllegalTransition,
    apply_transition,
)
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.incidents.timeline import Actor
from tocsin.store.connection import Connection
from tocsin.store.inserts import Numbering, insert_ignoring

# Two rounds are enough: a lost race means the winner is committed (PostgreSQL waits for it
# before answering ON CONFLICT) and visible to the next look. A third is slack for a winner
# that was resolved in between.
_ATTEMPTS = 3

DedupKey = tuple[uuid.UUID, str]  # (integration, fingerprint)


@dataclass(frozen=True)
class DedupOutcome:
    incident_id: uuid.UUID
    created: bool


@dataclass(frozen=True)
class Demand:
    """The alerts of one (integration, fingerprint) in a batch that need an incident."""

    integration_id: uuid.UUID
    fingerprint: str
    window: timedelta
    alerts: int
    # The incident's columns should it have to open one (title, priority, team, policy...).
    opening: Mapping[str, Any]

    @property
    def key(self) -> DedupKey:
        return (self.integration_id, self.fingerprint)


class DedupRaceLost(RuntimeError):
    """Could not open or join an incident after several rounds; retrying the request is safe."""


def joins_existing(created_at: datetime, *, now: datetime, window: timedelta) -> bool:
    """Whether an alert at `now` joins the dedup-open incident opened at `created_at` (within
    the window), rather than opening a new one."""
    return created_at > now - window


# Built once (expanding parameters), so a batch does not rebuild and re-key it.
_FIND_DEDUP_OPEN_MANY = select(
    Incident.id, Incident.created_at, Incident.integration_id, Incident.fingerprint
).where(
    Incident.fingerprint.in_(bindparam("fingerprints", expanding=True)),
    Incident.integration_id.in_(bindparam("integrations", expanding=True)),
    Incident.dedup_open.is_(True),
)
_INCIDENT_NUMBERS = Numbering(Incident.number, "incident_number_seq")


async def find_dedup_incidents(
    conn: Connection, keys: set[DedupKey]
) -> dict[DedupKey, tuple[uuid.UUID, datetime]]:
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


async def find_dedup_incident(
    conn: AsyncConnection, integration_id: uuid.UUID, fingerprint: str
) -> tuple[uuid.UUID, datetime] | None:
    """The incident currently absorbing alerts of this fingerprint: (id, created_at)."""
    key = (integration_id, fingerprint)
    return (await find_dedup_incidents(conn, {key})).get(key)


def _incident_row(demand: Demand, incident_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    return {
        **demand.opening,
        "id": incident_id,
        "integration_id": demand.integration_id,
        "fingerprint": demand.fingerprint,
        "dedup_open": True,
        "status": IncidentStatus.OPEN,
        "current_level": 0,
        "current_repeat": 0,
        "alert_count": demand.alerts,
        "created_at": now,
        "updated_at": now,
    }


@dataclass(frozen=True)
class Placement:
    """What one round of dedup will write, decided from the dedup-open incidents it read."""

    # Incidents past their window: they stay as they are but take no more alerts.
    expired: list[uuid.UUID]
    # New incidents' rows, by id, with the demand each opens for.
    opening: dict[uuid.UUID, tuple[Demand, dict[str, Any]]]
    # (incident, demand) for alerts joining an incident, in incident id order, so two
    # batches joining the same incidents lock them in one order.
    joining: list[tuple[uuid.UUID, Demand]]


def plan_placement(
    demands: Iterable[Demand],
    absorbing: Mapping[DedupKey, tuple[uuid.UUID, datetime]],
    *,
    now: datetime,
) -> Placement:
    """Pure: each demand joins the incident absorbing its fingerprint if that is within the
    demand's window, or opens a new one (stopping the old one from absorbing)."""
    expired: list[uuid.UUID] = []
    opening: dict[uuid.UUID, tuple[Demand, dict[str, Any]]] = {}
    joining: list[tuple[uuid.UUID, Demand]] = []
    for demand in demands:
        found = absorbing.get(demand.key)
        if found is not None and joins_existing(found[1], now=now, window=demand.window):
            joining.append((found[0], demand))
            continue
        if found is not None:
            expired.append(found[0])
        incident_id = uuid.uuid4()
        opening[incident_id] = (demand, _incident_row(demand, incident_id, now))
    joining.sort(key=lambda item: item[0])
    return Placement(expired, opening, joining)


_ABSORBING = text("dedup_open")  # the partial unique index's condition
_STOP_ABSORBING = (
    update(Incident)
    .where(Incident.id.in_(bindparam("ids", expanding=True)))
    .values(dedup_open=False)
)
_JOIN = (
    update(Incident)
    .where(Incident.id == bindparam("joined"), Incident.dedup_open.is_(True))
    .values(
        alert_count=Incident.alert_count + bindparam("alerts", type_=Integer),
        updated_at=bindparam("at"),
    )
)


async def write_placement(
    conn: Connection, plan: Placement, *, now: datetime
) -> dict[DedupKey, DedupOutcome]:
    """Write one round's placement: stop the expired incidents absorbing, open the new ones
    (in one statement), count the joining alerts. Those placed; a demand missing lost a race
    (its fingerprint's incident was opened or resolved by another transaction meanwhile)."""
    if plan.expired:
        await conn.execute(_STOP_ABSORBING, {"ids": plan.expired})
    inserted: set[uuid.UUID] = set()
    if plan.opening:
        # One statement for every new incident; one missing lost the race to an incident
        # another transaction opened for the same fingerprint.
        result = await insert_ignoring(
            conn,
            Incident,
            [row for _, row in plan.opening.values()],
            unique=["integration_id", "fingerprint"],
            where=_ABSORBING,
            returning=[Incident.id],
            numbering=_INCIDENT_NUMBERS,
        )
        inserted = set(result.scalars())
    placed = {
        demand.key: DedupOutcome(incident_id, created=True)
        for incident_id, (demand, _) in plan.opening.items()
        if incident_id in inserted
    }
    for incident_id, demand in plan.joining:
        joined = await conn.execute(
            _JOIN, {"joined": incident_id, "alerts": demand.alerts, "at": now}
        )
        if joined.rowcount == 1:
            placed[demand.key] = DedupOutcome(incident_id, created=False)
        # else: resolved between our read and our update; look again
    return placed


async def open_incident(conn: Connection, demand: Demand, *, now: datetime) -> uuid.UUID:
    """Open an incident by hand (an alert split out of another): it absorbs later alerts of
    its fingerprint unless another incident already does."""
    incident_id = uuid.uuid4()
    row = _incident_row(demand, incident_id, now)
    opening = Placement(expired=[], opening={incident_id: (demand, row)}, joining=[])
    if not await write_placement(conn, opening, now=now):
        absorbs_nothing = {incident_id: (demand, {**row, "dedup_open": False})}
        await write_placement(conn, Placement([], absorbs_nothing, []), now=now)
    return incident_id


async def place(
    conn: Connection, demands: list[Demand], *, now: datetime
) -> dict[DedupKey, DedupOutcome]:
    """Join each demand's alerts to the incident open for its fingerprint within its window,
    or open one: each round reads the dedup-open incidents once, decides (`plan_placement`)
    and writes (`write_placement`). Raises DedupRaceLost when the fingerprints kept changing
    under us."""
    pending = {demand.key: demand for demand in demands}
    placed: dict[DedupKey, DedupOutcome] = {}
    for _ in range(_ATTEMPTS):
        absorbing = await find_dedup_incidents(conn, set(pending))
        plan = plan_placement(pending.values(), absorbing, now=now)
        done = await write_placement(conn, plan, now=now)
        placed.update(done)
        pending = {key: demand for key, demand in pending.items() if key not in done}
        if not pending:
            return placed
    raise DedupRaceLost(f"fingerprints {sorted(f for _, f in pending)!r} kept changing under us")


async def join_incidents(
    conn: Connection, joins: Mapping[DedupKey, tuple[uuid.UUID, int]], *, now: datetime
) -> dict[DedupKey, uuid.UUID]:
    """Count alerts on incidents chosen for them by grouping (fingerprint -> incident and how
    many alerts), where the incident is still active: one UPDATE per incident, in id order.
    Those joined; one missing found its incident resolved in the meantime."""
    per_incident: dict[uuid.UUID, int] = {}
    for incident_id, alerts in joins.values():
        per_incident[incident_id] = per_incident.get(incident_id, 0) + alerts
    active = set()
    for incident_id in sorted(per_incident):
        result = await conn.execute(
            update(Incident)
            .where(Incident.id == incident_id, Incident.status.in_(ACTIVE_STATUSES))
            .values(alert_count=Incident.alert_count + per_incident[incident_id], updated_at=now)
        )
        if result.rowcount == 1:
            active.add(incident_id)
    return {key: incident_id for key, (incident_id, _) in joins.items() if incident_id in active}


async def find_active_incidents(
    conn: Connection, integration_id: uuid.UUID, fingerprint: str
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


async def transition_active(
    conn: Connection,
    incident_ids: list[uuid.UUID],
    action: Action,
    *,
    actor: Actor,
    note: str,
    now: datetime,
) -> list[uuid.UUID]:
    """Acknowledge or resolve every one of these incidents (a fingerprint's active ones,
    including an older one left open when a later alert fell outside the dedup window);
    the ids of those it changed."""
    changed = []
    for incident_id in incident_ids:
        try:
            await apply_transition(conn, incident_id, action, actor=actor, now=now, note=note)
        except IllegalTransition:
            continue  # already there (or resolved by someone else a moment ago)
        changed.append(incident_id)
    return changed
