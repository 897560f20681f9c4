"""Heartbeat monitors at work: recording pings, and the worker step that opens an alert for
each monitor whose ping is late (monitors.py creates and changes them).

A monitor is WAITING until its first ping, then UP with a deadline (`due_at`) of last ping +
interval + grace. The worker claims monitors past their deadline (a few per transaction) by
flipping them to LATE with a conditional UPDATE, and raises their alerts in that same
transaction, so two workers can never both fire one and a crash between the two leaves
neither behind. The next ping flips it back
to UP (again conditionally, so only one ping resolves) and resolves the alert.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.alerts.ingest import IngestOutcome, commit_alert, prepare
from tocsin.alerts.models import AlertStatus, Severity
from tocsin.alerts.normalised import NormalisedAlert
from tocsin.auth.secrets import hash_token
from tocsin.catalog.models import Service
from tocsin.heartbeats.models import HeartbeatMonitor, HeartbeatState
from tocsin.integrations.lookup import IntegrationInfo
from tocsin.integrations.models import IntegrationType
from tocsin.realtime.events import StreamEvent
from tocsin.store.connection import Connection
from tocsin.worker.context import WorkerContext

log = logging.getLogger(__name__)

# When raising a late alert fails, try that monitor again this much later rather than at
# once, so one broken monitor cannot keep the worker busy.
RETRY_AFTER_FAILURE = timedelta(seconds=30)
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


async def record_ping(conn: AsyncConnection, key: str, *, now: datetime) -> PingOutcome | None:
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
    conn: Connection, now: datetime, *, limit: int, only: uuid.UUID | None = None
) -> list[_MonitorRow]:
    """Flip up to `limit` UP monitors past their deadline to LATE and return them; none if
    there are none (or other workers took them first)."""
    candidates = (
        select(HeartbeatMonitor.id)
        .where(HeartbeatMonitor.due_at < now, HeartbeatMonitor.state == HeartbeatState.UP)
        .order_by(HeartbeatMonitor.due_at)
        .limit(limit)
    )
    if only is not None:
        candidates = candidates.where(HeartbeatMonitor.id == only)
    if conn.dialect.name == "postgresql":
        # Workers on other machines skip the rows we hold instead of queueing behind them.
        candidates = candidates.with_for_update(skip_locked=True)
    # The state and due_at conditions are repeated on the UPDATE: on PostgreSQL a worker that
    # waited for our lock re-checks them after we commit and finds nothing left to do.
    claimed = list(
        (
            await conn.execute(
                update(HeartbeatMonitor)
                .where(
                    HeartbeatMonitor.id.in_(candidates),
                    HeartbeatMonitor.state == HeartbeatState.UP,
                    HeartbeatMonitor.due_at < now,
                )
                .values(state=HeartbeatState.LATE, due_at=None, late_since=now, updated_at=now)
                .returning(HeartbeatMonitor.id)
            )
        ).scalars()
    )
    if not claimed:
        return []
    rows = await conn.execute(
        _MONITOR_BY_KEY_HASH.where(HeartbeatMonitor.id.in_(claimed)).order_by(
            HeartbeatMonitor.due_at, HeartbeatMonitor.id
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


async def _postpone(ctx: WorkerContext, monitor_id: uuid.UUID, now: datetime) -> None:
    async with ctx.engine.begin() as conn:
        await conn.execute(
            update(HeartbeatMonitor)
            .where(HeartbeatMonitor.id == monitor_id, HeartbeatMonitor.state == HeartbeatState.UP)
            .values(due_at=now + RETRY_AFTER_FAILURE)
        )


async def fire_late_heartbeats(ctx: WorkerContext) -> bool:
    """Worker step: raise the alerts of a small batch of late monitors, in one transaction
    (one commit for the lot); False when none is late."""
    now = ctx.clock.now()
    claimed: list[uuid.UUID] = []
    events: list[tuple[StreamEvent, uuid.UUID]] = []
    try:
        async with ctx.engine.begin() as conn:
            monitors = await _claim_late_monitors(conn, now, limit=BATCH)
            claimed = [m.id for m in monitors]
            for monitor in monitors:
                events.extend(await _open_late_alert(conn, monitor, now))
        ctx.announce(events)
        return bool(monitors)
    except Exception:
        if not claimed:
            raise
        log.exception("raising %d late heartbeat alerts failed; trying one by one", len(claimed))
    # The batch was rolled back, claims included. Each monitor gets its own transaction, and
    # one that fails alone is pushed back, so the loop cannot spin on it.
    failure: Exception | None = None
    for monitor_id in claimed:
        try:
            async with ctx.engine.begin() as conn:
                for monitor in await _claim_late_monitors(conn, now, limit=1, only=monitor_id):
                    ctx.announce(await _open_late_alert(conn, monitor, now))
        except Exception as exc:
            await _postpone(ctx, monitor_id, now)
            failure = exc
    if failure is not None:
        raise failure
    return True
