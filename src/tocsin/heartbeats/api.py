"""Heartbeat monitor routes: CRUD under /api/v1/heartbeats, and the ping endpoint
/heartbeats/{key}. Anyone signed in may read monitors; managers of the service's team, or an
admin, create, change and delete them. Pings need only the key."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter

from tocsin.auth.permissions import require_team_manager
from tocsin.errors import NotFound
from tocsin.heartbeats.models import HeartbeatMonitor, HeartbeatState
from tocsin.heartbeats.monitors import (
    HeartbeatNotFound,
    change_monitor,
    create_monitor,
    delete_monitor,
    find_monitor_service,
    list_monitors,
    ping_url,
)
from tocsin.heartbeats.schemas import (
    HeartbeatCreate,
    HeartbeatOut,
    HeartbeatUpdate,
    HeartbeatWithKey,
    PingAccepted,
)
from tocsin.heartbeats.watch import record_ping
from tocsin.web import CurrentUser, Cursor, DbSession, Limit, Now, Page, State, row_in_path

router = APIRouter(tags=["heartbeats"])


class HeartbeatKeyNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("no heartbeat monitor has this key")


ExistingMonitor = Annotated[
    HeartbeatMonitor, row_in_path(HeartbeatMonitor, HeartbeatNotFound, "heartbeat_id")
]


@router.get("/api/v1/heartbeats", response_model=Page[HeartbeatOut])
async def list_heartbeats(
    session: DbSession,
    _principal: CurrentUser,
    service_id: uuid.UUID | None = None,
    state: HeartbeatState | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[HeartbeatOut]:
    page, next_cursor = await list_monitors(
        session, service_id=service_id, state=state, limit=limit, cursor=cursor
    )
    return Page[HeartbeatOut].of(page, next_cursor)


@router.post("/api/v1/heartbeats", status_code=201, response_model=HeartbeatWithKey)
async def create_heartbeat(
    body: HeartbeatCreate, session: DbSession, principal: CurrentUser, now: Now, state: State
) -> HeartbeatWithKey:
    """The answer holds the ping key and URL, shown this once."""
    service = await find_monitor_service(session, body.service_id)
    await require_team_manager(session, principal, service.team_id)
    monitor, key = await create_monitor(session, body, now=now)
    await session.commit()
    return HeartbeatWithKey(
        **HeartbeatOut.model_validate(monitor).model_dump(),
        key=key,
        ping_url=ping_url(state.settings.base_url(), key),
    )


@router.get("/api/v1/heartbeats/{heartbeat_id}", response_model=HeartbeatOut)
async def get_heartbeat(monitor: ExistingMonitor) -> HeartbeatOut:
    return HeartbeatOut.model_validate(monitor)


@router.patch("/api/v1/heartbeats/{heartbeat_id}", response_model=HeartbeatOut)
async def update_heartbeat(
    monitor: ExistingMonitor,
    body: HeartbeatUpdate,
    session: DbSession,
    principal: CurrentUser,
    now: Now,
) -> HeartbeatOut:
    """Moving a monitor to another service needs manager rights on both teams."""
    current = await find_monitor_service(session, monitor.service_id)
    await require_team_manager(session, principal, current.team_id)
    changes = body.model_dump(exclude_unset=True)
    if "service_id" in changes:
        target = await find_monitor_service(session, changes["service_id"])
        await require_team_manager(session, principal, target.team_id)
    await change_monitor(session, monitor, changes, now=now)
    await session.commit()
    return HeartbeatOut.model_validate(monitor)


@router.delete("/api/v1/heartbeats/{heartbeat_id}", status_code=204)
async def delete_heartbeat(
    monitor: ExistingMonitor, session: DbSession, principal: CurrentUser, now: Now
) -> None:
    """Its key stops working; incidents it opened stay."""
    service = await find_monitor_service(session, monitor.service_id)
    await require_team_manager(session, principal, service.team_id)
    await delete_monitor(session, monitor, now=now)
    await session.commit()


async def _ping(key: str, state: State) -> PingAccepted:
    async with state.engine.begin() as conn:
        outcome = await record_ping(conn, key, now=state.clock.now())
    if outcome is None:
        raise HeartbeatKeyNotFound()
    state.hub.announce(outcome.events)
    return PingAccepted(state=HeartbeatState.UP, resolved_incident_id=outcome.resolved_incident_id)


_PING_RESPONSES: dict[int | str, dict[str, str]] = {
    404: {"description": "No heartbeat monitor has this key"}
}


@router.get("/heartbeats/{key}", response_model=PingAccepted, responses=_PING_RESPONSES)
async def ping_heartbeat_get(key: str, state: State) -> PingAccepted:
    """Record a ping: the monitor is up until its interval and grace have passed again."""
    return await _ping(key, state)


@router.post("/heartbeats/{key}", response_model=PingAccepted, responses=_PING_RESPONSES)
async def ping_heartbeat_post(key: str, state: State) -> PingAccepted:
    """Record a ping (any body is ignored)."""
    return await _ping(key, state)
