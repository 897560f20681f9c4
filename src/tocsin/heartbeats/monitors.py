"""Setting up heartbeat monitors: creating one with its ping key and its own integration,
changing its settings, deleting it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.secrets import new_token
from tocsin.catalog.models import Service
from tocsin.errors import InvalidInput, NotFound
from tocsin.heartbeats.models import HeartbeatMonitor, HeartbeatState
from tocsin.heartbeats.schemas import HeartbeatCreate
from tocsin.heartbeats.watch import deadline
from tocsin.integrations.models import Integration, IntegrationType
from tocsin.integrations.provisioning import create_integration, has_received_alerts, keep_key
from tocsin.store.pages import newest_first
from tocsin.store.wakeup import announce_work

KEY_PREFIX = "hb"


class HeartbeatNotFound(NotFound):
    def __init__(self, monitor_id: uuid.UUID) -> None:
        super().__init__(f"heartbeat monitor {monitor_id} not found")


def ping_url(base_url: str, key: str) -> str:
    """Where the monitored job sends its pings (GET or POST)."""
    return f"{base_url}/heartbeats/{key}"


async def list_monitors(
    session: AsyncSession,
    *,
    service_id: uuid.UUID | None = None,
    state: HeartbeatState | None = None,
    limit: int,
    cursor: str | None,
) -> tuple[list[HeartbeatMonitor], str | None]:
    """One page of monitors, newest first, and the cursor of the next page."""
    stmt = select(HeartbeatMonitor)
    if service_id is not None:
        stmt = stmt.where(HeartbeatMonitor.service_id == service_id)
    if state is not None:
        stmt = stmt.where(HeartbeatMonitor.state == state)
    return await newest_first(session, stmt, limit=limit, cursor=cursor)


async def find_monitor_service(session: AsyncSession, service_id: uuid.UUID) -> Service:
    """The service a monitor names; a 422 on service_id when there is none."""
    service = await session.get(Service, service_id)
    if service is None:
        raise InvalidInput(f"service {service_id} does not exist", field="service_id")
    return service


async def create_monitor(
    session: AsyncSession, body: HeartbeatCreate, *, now: datetime
) -> tuple[HeartbeatMonitor, str]:
    """A new monitor as a create body asks for (the API's, or the page's form), WAITING for
    its first ping, with its own integration; returns the ping key, which is not stored
    (only its hash is)."""
    await find_monitor_service(session, body.service_id)
    # The integration's own key is never handed out: pings use the monitor's key, and no
    # one should be able to post arbitrary alerts in the monitor's name.
    integration, _ = await create_integration(
        session,
        name=f"Heartbeat: {body.name}"[:200],
        type=IntegrationType.HEARTBEAT,
        default_service_id=body.service_id,
        dedup_window_minutes=60,
        auto_resolve=True,
        active=True,
        now=now,
    )
    integration.key_prefix = "(heartbeat)"
    monitor = HeartbeatMonitor(
        name=body.name,
        service_id=body.service_id,
        integration_id=integration.id,
        interval_seconds=body.interval_seconds,
        grace_seconds=body.grace_seconds,
        severity=body.severity,
        state=HeartbeatState.WAITING,
        created_at=now,
        updated_at=now,
    )
    key = keep_key(monitor, new_token(KEY_PREFIX))
    session.add(monitor)
    await session.flush()
    return monitor, key


async def change_monitor(
    session: AsyncSession, monitor: HeartbeatMonitor, changes: dict[str, Any], *, now: datetime
) -> None:
    """Apply the changed settings; a monitor that is UP gets its deadline recomputed."""
    if "service_id" in changes:
        await find_monitor_service(session, changes["service_id"])
        await session.execute(
            update(Integration)
            .where(Integration.id == monitor.integration_id)
            .values(default_service_id=changes["service_id"], updated_at=now)
        )
    for name, value in changes.items():
        setattr(monitor, name, value)
    if monitor.state == HeartbeatState.UP and monitor.last_ping_at is not None:
        monitor.due_at = deadline(
            monitor.last_ping_at,
            interval_seconds=monitor.interval_seconds,
            grace_seconds=monitor.grace_seconds,
        )
        if monitor.due_at < now:
            # Already past the new deadline: wake the workers rather than wait for a poll.
            await announce_work(await session.connection())
    monitor.updated_at = now
    await session.flush()


async def delete_monitor(
    session: AsyncSession, monitor: HeartbeatMonitor, *, now: datetime
) -> None:
    """Delete the monitor. Its integration goes too unless it has raised alerts: those keep
    their history, so it is only deactivated."""
    await session.execute(delete(HeartbeatMonitor).where(HeartbeatMonitor.id == monitor.id))
    if not await has_received_alerts(session, monitor.integration_id):
        await session.execute(delete(Integration).where(Integration.id == monitor.integration_id))
    else:
        await session.execute(
            update(Integration)
            .where(Integration.id == monitor.integration_id)
            .values(active=False, updated_at=now)
        )
