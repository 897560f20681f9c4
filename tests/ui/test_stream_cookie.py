"""The browser's stream: /api/v1/stream signs a browser in by its session cookie, but only
when the page opening the socket is one of ours (the Origin header), so another site cannot
read a signed-in person's incidents (cross-site WebSocket hijacking)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer
from tests.factories import World
from tests.ui.support import give_password, sign_in

ALERT = {"title": "Queue backlog", "routing_key": "payments-api"}


async def session_key(server: LiveServer, engine: AsyncEngine, world: World) -> str:
    await give_password(engine, world.cast.bob.id)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        await sign_in(http, "bob@example.com")
        key: str = http.cookies["tocsin_session"]
    return key


def open_stream(server: LiveServer, key: str, origin: str | None) -> websockets.connect:
    headers = {"Cookie": f"tocsin_session={key}"}
    if origin is not None:
        headers["Origin"] = origin
    return websockets.connect(
        f"{server.ws_url}/api/v1/stream", additional_headers=headers, open_timeout=5
    )


@pytest.mark.parametrize("own", ["the host asked for", "the public URL"])
async def test_a_page_of_ours_gets_the_stream_with_the_session_cookie(
    live_server: LiveServer, engine: AsyncEngine, world: World, own: str
) -> None:
    key = await session_key(live_server, engine, world)
    origin = live_server.base_url if own == "the host asked for" else "http://test"
    async with (
        open_stream(live_server, key, origin) as ws,
        httpx.AsyncClient(base_url=live_server.base_url) as http,
    ):
        await http.post(world.integration.url, json=ALERT)
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert message["type"] == "incident.created"
        assert message["incident"]["title"] == "Queue backlog"


@pytest.mark.parametrize("origin", ["https://evil.example", "null", None])
async def test_another_sites_page_is_refused_even_with_the_cookie(
    live_server: LiveServer, engine: AsyncEngine, world: World, origin: str | None
) -> None:
    key = await session_key(live_server, engine, world)
    with pytest.raises(websockets.exceptions.WebSocketException):
        async with open_stream(live_server, key, origin) as ws:
            await asyncio.wait_for(ws.recv(), 2)


async def test_a_session_that_ended_gets_no_stream(
    live_server: LiveServer, engine: AsyncEngine, world: World
) -> None:
    key = await session_key(live_server, engine, world)
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        out = await http.post("/api/v1/logout", headers={"Authorization": f"Bearer {key}"})
        assert out.status_code == 204
    with pytest.raises(websockets.exceptions.WebSocketException):
        async with open_stream(live_server, key, live_server.base_url) as ws:
            await asyncio.wait_for(ws.recv(), 2)
