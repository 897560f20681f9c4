"""Heartbeat monitors at work: recording pings, and the worker step that opens an alert for
each monitor whose ping is late (monitors.py creates and changes them).

A monitor is WAITING until its first ping, then UP with a deadline (`due_at`) of last ping +
interval + grace. Monitors past their deadline are due rows of the worker's queue
(tocsin/store/queue.py): a worker leases a few, then in one transaction flips those still
its own and still late to LATE and raises their alerts, so two workers never both fire one,
and a worker that dies leaves its monitors leased until another takes them. A monitor whose
alert keeps failing is parked after `timer_max_attempts` claims (its next ping starts it
again). The next ping flips a LATE monitor back to UP (conditionally, so only one ping
resolves) and resolves the alert.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from tocsin.alerts.ingest import IngestOutcome, commit_alert, prepare
from tocsin.alerts.models import AlertStatus, Severity
from tocsin.alerts.normalised import NormalisedAlert
from tocsin.auth.secrets import hash_token
from tocsin.catalog.models import Service
from tocsin.db import read_only
from tocsin.heartbeats.models import MONITORS, HeartbeatMonitor, HeartbeatState
from tocsin.integrations.lookup import IntegrationInfo
from tocsin.integrations.models import IntegrationType
from tocsin.realtime.events import StreamEvent
from tocsin.store import queue
from tocsin.store.connection import Connection, Database
from tocsin.worker.context import WorkerContext

log = logging.getLogger(__name__)

# Late monitors handled per worker step: one transaction, one commit (one fsync on SQLite).
BATCH = 20


def deadline(last_ping_at: datetime, *, interval_seconds: int, grace_seconds: int) -> datetime:
    """When a monitor pinged at `last_ping_at` becomes late."""
    return last_ping_at + timedelta(seconds=interval_seconds + grace_seconds)


def dedup_key(monitor_id: uuid.UUID) -> str:
    return f"heartbeat:{monitor_id}"


@dataclass(frozen=True)
class _MonitorRow:
    id: uuid.UUID
    name: str
    integration_id: uuid.UUID
    service_id: uuid.UUID
    routing_key: str | None
    interval_seconds: int
    grace_seconds: int
    severity: Severity
    last_ping_at: datetime | None


_MONITOR_COLUMNS = (
    HeartbeatMonitor.id,
    HeartbeatMonitor.name,
    HeartbeatMonitor.integration_id,
    HeartbeatMonitor.service_id,
    Service.routing_key,
    HeartbeatMonitor.interval_seconds,
    HeartbeatMonitor.grace_seconds,
    HeartbeatMonitor.severity,
    HeartbeatMonitor.last_ping_at,
)

# A monitor with what its alerts need, found by the hash of its ping key.
_MONITOR_BY_KEY_HASH = select(*_MONITOR_COLUMNS).join(
    Service, Service.id == HeartbeatMonitor.service_id
)


def _as_row(row: Any) -> _MonitorRow:
    return _MonitorRow(**row._mapping)


def _integration(monitor: _MonitorRow) -> IntegrationInfo:
    # auto_resolve is always on: "the next ping resolves it" is the monitor's whole promise,
    # whatever has been set on its integration.
    return IntegrationInfo(
        id=monitor.integration_id,
        type=IntegrationType.HEARTBEAT,
        default_service_id=monitor.service_id,
        dedup_window_minutes=60,
        auto_resolve=True,
    )


def late_alert(monitor: _MonitorRow, *, now: datetime) -> NormalisedAlert:
    """The alert a late monitor raises."""
    if monitor.last_ping_at is None:  # cannot happen: only UP monitors go late
        since = "its first ping"
    else:
        since = f"{monitor.last_ping_at:%Y-%m-%d %H:%M:%S} UTC"
    return NormalisedAlert(
        title=f"Heartbeat '{monitor.name}' is late",
        severity=monitor.severity,
        description=(
            f"No ping since {since}. Pings are expected every {monitor.interval_seconds} s, "
            f"with {monitor.grace_seconds} s of grace."
        ),
        source="heartbeat",
        dedup_key=dedup_key(monitor.id),
        routing_key=monitor.routing_key,
        details={
            "heartbeat_id": str(monitor.id),
            "last_ping_at": monitor.last_ping_at.isoformat() if monitor.last_ping_at else None,
            "late_at": now.isoformat(),
            "interval_seconds": monitor.interval_seconds,
            "grace_seconds": monitor.grace_seconds,
        },
    )


def back_alert(monitor: _MonitorRow, *, now: datetime) -> NormalisedAlert:
    """The resolving alert a late monitor's next ping sends."""
    return NormalisedAlert(
        title=f"Heartbeat '{monitor.name}' is back",
        severity=monitor.severity,
        status=AlertStatus.RESOLVED,
        description=f"Pinged again at {now:%Y-%m-%d %H:%M:%S} UTC.",
        source="heartbeat",
        dedup_key=dedup_key(monitor.id),
        routing_key=monitor.routing_key,
        details={"heartbeat_id": str(monitor.id), "pinged_at": now.isoformat()},
    )


async def _ingest(
    conn: Connection, monitor: _MonitorRow, alert: NormalisedAlert, *, now: datetime
) -> IngestOutcome:
    prepared = await prepare(conn, _integration(monitor), alert)
    return await commit_alert(conn, prepared, now=now)


@dataclass(frozen=True)
class PingOutcome:
    monitor_id: uuid.UUID
    # The incident the monitor's lateness had opened, resolved by this ping.
    resolved_incident_id: uuid.UUID | None
    # What the stream should announce once the transaction is committed.
    events: tuple[tuple[StreamEvent, uuid.UUID], ...] = ()


async def record_ping(conn: Connection, key: str, *, now: datetime) -> PingOutcome | None:
    """Mark the monitor with this key UP with a new deadline, resolving its alert if it was
    LATE; None when no monitor has this key. The caller commits."""
    found = (
        await conn.execute(_MONITOR_BY_KEY_HASH.where(HeartbeatMonitor.key_hash == hash_token(key)))
    ).first()
    if found is None:
        return None
    monitor = _as_row(found)
    up = {
        "state": HeartbeatState.UP,
        "last_ping_at": now,
        "due_at": deadline(
            now, interval_seconds=monitor.interval_seconds, grace_seconds=monitor.grace_seconds
        ),
        "late_since": None,
        "updated_at": now,
        # A ping settles the monitor: a claim of it is moot, and a parked one starts again.
        **queue.released(MONITORS),
        "attempts": 0,
        "parked_at": None,
    }
    # Only one of several simultaneous pings to a late monitor sees it LATE here; it alone
    # sends the resolving alert.
    was_late = (
        await conn.execute(
            update(HeartbeatMonitor)
            .where(HeartbeatMonitor.id == monitor.id, HeartbeatMonitor.state == HeartbeatState.LATE)
            .values(**up, incident_id=None)
            .returning(HeartbeatMonitor.id)
        )
    ).first()
    if was_late is None:
        await conn.execute(
            update(HeartbeatMonitor).where(HeartbeatMonitor.id == monitor.id).values(**up)
        )
        return PingOutcome(monitor.id, resolved_incident_id=None)
    outcome = await _ingest(conn, monitor, back_alert(monitor, now=now), now=now)
    return PingOutcome(monitor.id, resolved_incident_id=outcome.incident_id, events=outcome.events)


async def _claim_late_monitors(
    ctx: WorkerContext, now: datetime, *, limit: int
) -> list[tuple[uuid.UUID, int]]:
    """Lease up to `limit` UP monitors past their deadline to this worker (committed at
    once): their ids and claims so far."""
    async with ctx.engine.begin() as conn:
        rows = await queue.claim(
            conn,
            MONITORS,
            owner=ctx.worker_id,
            now=now,
            lease=ctx.lease,
            limit=limit,
            # Past the deadline, not at it: a ping exactly at the deadline is in time.
            where=(HeartbeatMonitor.due_at < now,),
            returning=(HeartbeatMonitor.id, HeartbeatMonitor.attempts),
        )
    return [(row.id, row.attempts) for row in rows]


async def _take_late(
    conn: Connection, ctx: WorkerContext, ids: list[uuid.UUID], now: datetime
) -> list[_MonitorRow]:
    """Flip the claimed monitors that are still ours and still late to LATE (the lease
    given back with it) and return them; a ping that came meanwhile took its monitor back."""
    flipped = list(
        (
            await conn.execute(
                update(HeartbeatMonitor)
                .where(
                    HeartbeatMonitor.id.in_(ids),
                    *queue.held_by(MONITORS, ctx.worker_id),
                    HeartbeatMonitor.due_at < now,
                )
                .values(
                    **queue.released(MONITORS),
                    attempts=0,
                    state=HeartbeatState.LATE,
                    due_at=None,
                    late_since=now,
                    updated_at=now,
                )
                .returning(HeartbeatMonitor.id)
            )
        ).scalars()
    )
    if not flipped:
        return []
    rows = await conn.execute(
        _MONITOR_BY_KEY_HASH.where(HeartbeatMonitor.id.in_(flipped)).order_by(
            HeartbeatMonitor.late_since, HeartbeatMonitor.id
        )
    )
    return [_as_row(row) for row in rows]


async def _open_late_alert(
    conn: Connection, monitor: _MonitorRow, now: datetime
) -> tuple[tuple[StreamEvent, uuid.UUID], ...]:
    """Raise the monitor's alert; returns what the stream should announce once committed."""
    outcome = await _ingest(conn, monitor, late_alert(monitor, now=now), now=now)
    await conn.execute(
        update(HeartbeatMonitor)
        .where(HeartbeatMonitor.id == monitor.id)
        .values(incident_id=outcome.incident_id)
    )
    log.info("heartbeat %s is late: incident %s", monitor.id, outcome.incident_id)
    return outcome.events


async def _raise_late(ctx: WorkerContext, ids: list[uuid.UUID], now: datetime) -> None:
    """Raise the alerts of these claimed monitors in one transaction, announced once it is
    committed."""
    events: list[tuple[StreamEvent, uuid.UUID]] = []
    async with ctx.engine.begin() as conn:
        for monitor in await _take_late(conn, ctx, ids, now):
            events.extend(await _open_late_alert(conn, monitor, now))
    ctx.announce(events)


async def _park(ctx: WorkerContext, monitor_id: uuid.UUID, attempts: int, now: datetime) -> None:
    async with ctx.engine.begin() as conn:
        parked = await queue.park(conn, MONITORS, monitor_id, owner=ctx.worker_id, now=now)
    if parked:
        log.error(
            "heartbeat %s parked: raising its late alert failed on %d claims; "
            "its next ping starts it again",
            monitor_id,
            attempts - 1,
        )


async def fire_late_heartbeats(ctx: WorkerContext) -> bool:
    """Worker step: raise the alerts of a small batch of late monitors, in one transaction
    (one commit for the lot); False when none is late."""
    now = ctx.clock.now()
    claimed = await _claim_late_monitors(ctx, now, limit=BATCH)
    if not claimed:
        return False
    cap = ctx.settings.timer_max_attempts
    for monitor_id, attempts in claimed:
        if queue.kept_failing(attempts, cap=cap):
            await _park(ctx, monitor_id, attempts, now)
    ids = [m for m, attempts in claimed if not queue.kept_failing(attempts, cap=cap)]
    if not ids:
        return True
    try:
        await _raise_late(ctx, ids, now)
        return True
    except Exception:
        log.exception("raising %d late heartbeat alerts failed; trying one by one", len(ids))
    # The batch was rolled back; the leases stay. Each monitor gets its own transaction, and
    # one that fails alone keeps its lease, so nobody tries it again before the lease ends
    # and the loop cannot spin on it; after the cap it is parked.
    failure: Exception | None = None
    for monitor_id in ids:
        try:
            await _raise_late(ctx, [monitor_id], now)
        except Exception as exc:
            failure = exc
    if failure is not None:
        raise failure
    return True


async def release_claims(engine: Database, *, worker_id: str) -> int:
    """Give back the monitors this worker claimed and did not flip (at shutdown)."""
    async with engine.begin() as conn:
        return await queue.release(conn, MONITORS, owner=worker_id)


async def next_due_at(engine: Database, *, now: datetime) -> datetime | None:
    """When the next UP monitor's deadline passes (or a claim of one runs out)."""
    async with read_only(engine).connect() as conn:
        return await queue.next_due_at(conn, MONITORS, now=now)
