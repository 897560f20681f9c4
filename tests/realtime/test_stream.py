"""GET /api/v1/stream: incident events, live, only for the teams a user may see."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import ClientConnection

from tests.conftest import LiveServer, serving
from tests.factories import Person, World
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.escalation.step import fire_due_escalations
from tocsin.realtime.fanout import PostgresFanOut
from tocsin.worker.context import WorkerContext

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


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer tk_wrong"}])
async def test_a_connection_without_a_valid_key_is_refused(
    live_server: LiveServer, world: World, headers: dict[str, str]
) -> None:
    with pytest.raises(websockets.exceptions.WebSocketException):
        async with websockets.connect(
            f"{live_server.ws_url}/api/v1/stream", additional_headers=headers, open_timeout=5
        ) as ws:
            await next_message(ws, wait=2)


async def test_the_worker_announces_paging_level_one(
    live_server: LiveServer, world: World, engine: AsyncEngine, clock: FrozenClock, backend: str
) -> None:
    # A `tocsin worker` of its own on PostgreSQL reaches the API's subscribers through the
    # database; on SQLite the worker runs inside `serve` and tells its hub directly.
    fan_out = None
    if backend == "postgres":
        fan_out = PostgresFanOut(str(engine.url.render_as_string(hide_password=False)))
        await fan_out.start()
        announce = fan_out.send
    else:
        announce = live_server.app.state.tocsin.hub.announce
    ctx = WorkerContext(
        engine, clock, live_server.app.state.tocsin.settings, "stream-test", announce=announce
    )
    try:
        async with (
            connect(live_server, world.cast.bob) as ws,
            httpx.AsyncClient(base_url=live_server.base_url) as http,
        ):
            created = (await http.post(world.integration.url, json=ALERT)).json()
            opened = await next_message(ws)
            assert opened["type"] == "incident.created"
            assert opened["incident"]["current_level"] == 0
            while await fire_due_escalations(ctx):
                pass
            message = await next_message(ws)
            assert message["type"] == "incident.updated"
            assert message["incident"]["id"] == created["incident_id"]
            assert message["incident"]["current_level"] == 1
            assert "paged" in [event["kind"] for event in message["incident"]["timeline"]]
    finally:
        if fan_out is not None:
            await fan_out.close()


async def test_a_subscriber_of_one_api_process_sees_what_another_process_changed(
    live_server: LiveServer, world: World, settings: Settings, clock: FrozenClock, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("several API processes share one database on PostgreSQL only")
    async with (
        serving(settings, clock) as other,
        connect(live_server, world.cast.bob) as ws,
        httpx.AsyncClient(base_url=other.base_url) as http,
    ):
        created = (await http.post(world.integration.url, json=ALERT)).json()
        message = await next_message(ws)
        assert message["type"] == "incident.created"
        assert message["incident"]["id"] == created["incident_id"]

        await http.post(
            f"/api/v1/incidents/{created['incident_id']}/acknowledge",
            headers=world.cast.alice.headers,
        )
        message = await next_message(ws)
        assert message["type"] == "incident.updated"
        assert message["incident"]["status"] == "acknowledged"
        # Each event reaches each subscriber once, though both processes hear it.
        with pytest.raises(TimeoutError):
            await next_message(ws, wait=0.5)


async def test_a_subscriber_who_comes_back_hears_events_again(
    live_server: LiveServer, world: World
) -> None:
    # The last subscriber leaving stops this process listening (PostgreSQL); the next one
    # starts it again before its handshake completes.
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        for dedup_key in ("first", "second"):
            async with connect(live_server, world.cast.bob) as ws:
                alert = {**ALERT, "dedup_key": dedup_key}
                created = (await http.post(world.integration.url, json=alert)).json()
                message = await next_message(ws)
                assert message["incident"]["id"] == created["incident_id"]
            hub = live_server.app.state.tocsin.hub
            for _ in range(500):
                if hub.subscriber_count == 0:
                    break
                await asyncio.sleep(0.01)
            assert hub.subscriber_count == 0
            await hub.drain()
