"""GET /api/v1/stream: incident events, live, only for the teams a user may see."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.conftest import LiveServer
from tests.factories import Person, World

ALERT = {"title": "Queue backlog", "routing_key": "payments-api", "dedup_key": "q"}


async def next_message(ws: ClientConnection, wait: float = 5.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), wait))
    return message


def connect(server: LiveServer, who: Person) -> Any:
    return websockets.connect(
        f"{server.ws_url}/api/v1/stream", additional_headers=who.headers, open_timeout=5
    )


async def test_a_member_sees_an_incident_open_change_and_take_alerts(
    live_server: LiveServer, world: World
) -> None:
    async with (
        connect(live_server, world.cast.bob) as ws,
        httpx.AsyncClient(base_url=live_server.base_url) as http,
    ):
        created = (await http.post(world.integration.url, json=ALERT)).json()
        message = await next_message(ws)
        assert message["type"] == "incident.created"
        incident = message["incident"]
        assert incident["id"] == created["incident_id"]
        assert incident["status"] == "open"
        assert incident["service"]["routing_key"] == "payments-api"
        assert incident["service"]["team"]["name"] == "Payments"
        assert [a["id"] for a in incident["alerts"]] == [created["alert_id"]]

        await http.post(world.integration.url, json=ALERT)
        message = await next_message(ws)
        assert message["type"] == "alert.added"
        assert message["incident"]["alert_count"] == 2

        await http.post(
            f"/api/v1/incidents/{created['incident_id']}/acknowledge",
            headers=world.cast.alice.headers,
        )
        message = await next_message(ws)
        assert message["type"] == "incident.updated"
        assert message["incident"]["status"] == "acknowledged"
        # The stream carries the incident exactly as the detail endpoint shows it.
        detail = await http.get(
            f"/api/v1/incidents/{created['incident_id']}", headers=world.cast.bob.headers
        )
        assert message["incident"] == detail.json()


async def test_someone_outside_the_team_sees_nothing(live_server: LiveServer, world: World) -> None:
    async with (
        connect(live_server, world.cast.mallory) as outsider,
        connect(live_server, world.cast.bob) as member,
        httpx.AsyncClient(base_url=live_server.base_url) as http,
    ):
        await http.post(world.integration.url, json=ALERT)
        assert (await next_message(member))["type"] == "incident.created"
        with pytest.raises(TimeoutError):
            await next_message(outsider, wait=0.5)


async def test_an_admin_sees_every_team(live_server: LiveServer, world: World) -> None:
    async with (
        connect(live_server, world.cast.admin) as ws,
        httpx.AsyncClient(base_url=live_server.base_url) as http,
    ):
        await http.post(world.integration.url, json=ALERT)
        assert (await next_message(ws))["type"] == "incident.created"


async def test_a_browser_may_pass_the_key_as_a_query_parameter(
    live_server: LiveServer, world: World
) -> None:
    url = f"{live_server.ws_url}/api/v1/stream?token={world.cast.bob.key}"
    async with (
        websockets.connect(url, open_timeout=5) as ws,
        httpx.AsyncClient(base_url=live_server.base_url) as http,
    ):
        await http.post(world.integration.url, json=ALERT)
        assert (await next_message(ws))["type"] == "incident.created"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer tk_wrong"}])
async def test_a_connection_without_a_valid_key_is_refused(
    live_server: LiveServer, world: World, headers: dict[str, str]
) -> None:
    with pytest.raises(websockets.exceptions.WebSocketException):
        async with websockets.connect(
            f"{live_server.ws_url}/api/v1/stream", additional_headers=headers, open_timeout=5
        ) as ws:
            await next_message(ws, wait=2)
