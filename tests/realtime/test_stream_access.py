"""Who may hold /api/v1/stream open: the key comes in a header or a subprotocol, never in
the URL; a socket whose credential stops being valid is closed with 4401, and one whose user
left a team stops hearing of that team, on every such change (announced in any process)
and at least every `stream_recheck_seconds`."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import websockets
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import ClientConnection

from tests.conftest import LiveServer, serving
from tests.factories import World
from tests.ui.support import PASSWORD, give_password
from tocsin.auth.models import ApiKey
from tocsin.clock import FrozenClock
from tocsin.config import Settings

ALERT = {"title": "Queue backlog", "routing_key": "payments-api", "dedup_key": "q"}


def open_stream(server: LiveServer, key: str) -> Any:
    return websockets.connect(
        f"{server.ws_url}/api/v1/stream",
        additional_headers={"Authorization": f"Bearer {key}"},
        open_timeout=5,
    )


async def close_code(ws: ClientConnection, within: float = 5.0) -> int | None:
    """Read until the server closes the socket; its close code."""
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    return closed.value.rcvd.code if closed.value.rcvd else None


async def sign_in_key(http: httpx.AsyncClient, engine: AsyncEngine, world: World) -> str:
    await give_password(engine, world.cast.bob.id)
    login = await http.post(
        "/api/v1/login", json={"email": "bob@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    key: str = login.json()["api_key"]
    return key


async def test_the_key_may_come_as_a_subprotocol_and_the_server_answers_tocsin(
    live_server: LiveServer, world: World
) -> None:
    async with (
        websockets.connect(
            f"{live_server.ws_url}/api/v1/stream",
            subprotocols=["tocsin", f"bearer.{world.cast.bob.key}"],  # type: ignore[list-item]
            open_timeout=5,
        ) as ws,
        httpx.AsyncClient(base_url=live_server.base_url) as http,
    ):
        assert ws.subprotocol == "tocsin"
        await http.post(world.integration.url, json=ALERT)
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert message["type"] == "incident.created"


async def test_a_wrong_key_in_a_subprotocol_is_refused(
    live_server: LiveServer, world: World
) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(
            f"{live_server.ws_url}/api/v1/stream",
            subprotocols=["tocsin", "bearer.tk_wrong"],  # type: ignore[list-item]
            open_timeout=5,
        ):
            pass
    assert refused.value.response.status_code == 403


async def test_a_key_in_the_url_is_refused_with_400_saying_where_it_goes(
    live_server: LiveServer, world: World
) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(
            f"{live_server.ws_url}/api/v1/stream?token={world.cast.bob.key}", open_timeout=5
        ):
            pass
    assert refused.value.response.status_code == 400
    assert b"Authorization header" in refused.value.response.body


async def bobs_key_id(engine: AsyncEngine, world: World) -> uuid.UUID:
    async with engine.connect() as conn:
        key_id: uuid.UUID = (
            await conn.execute(sa.select(ApiKey.id).where(ApiKey.user_id == world.cast.bob.id))
        ).scalar_one()
    return key_id


async def test_revoking_the_key_closes_its_open_stream_with_4401(
    live_server: LiveServer, world: World, engine: AsyncEngine
) -> None:
    key_id = await bobs_key_id(engine, world)
    async with (
        open_stream(live_server, world.cast.bob.key) as ws,
        open_stream(live_server, world.cast.alice.key) as other,
        httpx.AsyncClient(base_url=live_server.base_url) as http,
    ):
        revoked = await http.delete(
            f"/api/v1/users/{world.cast.bob.id}/api-keys/{key_id}",
            headers=world.cast.admin.headers,
        )
        assert revoked.status_code == 204
        assert await close_code(ws) == 4401
        # Alice's key is still good: her stream goes on.
        await http.post(world.integration.url, json=ALERT)
        assert json.loads(await asyncio.wait_for(other.recv(), 5))["type"] == "incident.created"


async def test_deactivating_the_user_closes_their_stream_with_4401(
    live_server: LiveServer, world: World
) -> None:
    async with (
        open_stream(live_server, world.cast.bob.key) as ws,
        httpx.AsyncClient(base_url=live_server.base_url) as http,
    ):
        changed = await http.patch(
            f"/api/v1/users/{world.cast.bob.id}",
            json={"is_active": False},
            headers=world.cast.admin.headers,
        )
        assert changed.status_code == 200, changed.text
        assert await close_code(ws) == 4401


async def test_signing_out_closes_the_sessions_stream_with_4401(
    live_server: LiveServer, world: World, engine: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        key = await sign_in_key(http, engine, world)
        async with open_stream(live_server, key) as ws:
            out = await http.post("/api/v1/logout", headers={"Authorization": f"Bearer {key}"})
            assert out.status_code == 204
            assert await close_code(ws) == 4401


async def test_changing_the_password_closes_the_other_sessions_streams(
    live_server: LiveServer, world: World, engine: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        first = await sign_in_key(http, engine, world)
        second = await sign_in_key(http, engine, world)
        async with open_stream(live_server, first) as ws:
            changed = await http.post(
                "/api/v1/users/me/password",
                json={"old_password": PASSWORD, "new_password": "a-new-long-passphrase-9"},
                headers={"Authorization": f"Bearer {second}"},
            )
            assert changed.status_code == 204, changed.text
            assert await close_code(ws) == 4401


async def test_a_member_removed_from_the_team_hears_no_more_of_it(
    live_server: LiveServer, world: World
) -> None:
    async with (
        open_stream(live_server, world.cast.bob.key) as ws,
        httpx.AsyncClient(base_url=live_server.base_url) as http,
    ):
        removed = await http.delete(
            f"/api/v1/teams/{world.cast.payments}/members/{world.cast.bob.id}",
            headers=world.cast.admin.headers,
        )
        assert removed.status_code == 204, removed.text
        await asyncio.sleep(0.3)  # the re-check runs on the socket's own task
        await http.post(world.integration.url, json=ALERT)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 1)


async def test_a_change_nobody_announced_is_found_by_the_periodic_recheck(
    live_server: LiveServer, world: World, engine: AsyncEngine, settings: Settings
) -> None:
    settings.stream_recheck_seconds = 0.2
    async with open_stream(live_server, world.cast.bob.key) as ws:
        # Revoked straight in the database (another tool, a restore...): no announcement.
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(ApiKey)
                .where(ApiKey.user_id == world.cast.bob.id)
                .values(revoked_at=sa.func.now())
            )
        assert await close_code(ws, within=3) == 4401


async def test_a_session_that_expires_while_streaming_is_closed_at_the_next_recheck(
    live_server: LiveServer,
    world: World,
    engine: AsyncEngine,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    settings.stream_recheck_seconds = 0.2
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        key = await sign_in_key(http, engine, world)
    async with open_stream(live_server, key) as ws:
        clock.advance(timedelta(hours=settings.session_ttl_hours + 1))
        assert await close_code(ws, within=3) == 4401


async def test_a_key_revoked_through_another_api_process_closes_the_stream(
    live_server: LiveServer,
    world: World,
    engine: AsyncEngine,
    settings: Settings,
    clock: FrozenClock,
    backend: str,
) -> None:
    if backend == "sqlite":
        pytest.skip("several API processes share one database on PostgreSQL only")
    key_id = await bobs_key_id(engine, world)
    async with (
        serving(settings, clock) as other,
        open_stream(live_server, world.cast.bob.key) as ws,
        httpx.AsyncClient(base_url=other.base_url) as http,
    ):
        revoked = await http.delete(
            f"/api/v1/users/{world.cast.bob.id}/api-keys/{key_id}",
            headers=world.cast.admin.headers,
        )
        assert revoked.status_code == 204
        assert await close_code(ws) == 4401
