"""The `pagerduty` package's Events API v2 client, pointed at Tocsin instead of PagerDuty:
trigger, acknowledge, resolve and change events work with nothing changed but the URL."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pagerduty
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World
from tests.integrations.adapter_support import (
    integration_of,
    self_signed_certificate,
    write_pem,
)
from tocsin.app import create_app
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.integrations.models import IntegrationType


@dataclass(frozen=True)
class TlsServer:
    base_url: str
    trust: ssl.SSLContext


@pytest.fixture
async def live_server(
    settings: Settings, clock: FrozenClock, tmp_path: Path
) -> AsyncIterator[TlsServer]:
    """Tocsin over HTTPS on loopback (the client refuses plain http base URLs), with a
    certificate made for the test that the client is told to trust."""
    key, certificate = self_signed_certificate(
        organisation="Tocsin test", now=datetime.now(UTC), ip="127.0.0.1"
    )
    key_path, cert_path = write_pem(tmp_path, key, certificate)
    config = uvicorn.Config(
        create_app(settings, clock=clock),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        ssl_keyfile=str(key_path),
        ssl_certfile=str(cert_path),
        # The sync client keeps its connection alive; do not wait for it at shutdown.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield TlsServer(f"https://127.0.0.1:{port}", ssl.create_default_context(cafile=cert_path))
    finally:
        server.should_exit = True
        await task


async def test_the_pagerduty_client_triggers_acknowledges_and_resolves(
    live_server: TlsServer, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    pd = await integration_of(engine, clock, world, IntegrationType.PAGERDUTY)
    events = pagerduty.EventsApiV2Client(
        pd.key, base_url=live_server.base_url, verify=live_server.trust
    )

    async def status_of_only_incident() -> str:
        async with httpx.AsyncClient(
            base_url=live_server.base_url, verify=live_server.trust
        ) as http:
            response = await http.get("/api/v1/incidents", headers=world.cast.admin.headers)
        [only] = response.json()["items"]
        status: str = only["status"]
        return status

    # The client is synchronous: run it off the loop that serves Tocsin.
    dedup_key = await asyncio.to_thread(
        events.trigger,
        "Checkout error rate over 5%",
        "checkout-1.example.com",
        severity="error",
        custom_details={"rate": 0.07},
    )
    assert len(dedup_key) == 32
    assert await status_of_only_incident() == "open"

    assert await asyncio.to_thread(events.acknowledge, dedup_key) == dedup_key
    assert await status_of_only_incident() == "acknowledged"

    assert await asyncio.to_thread(events.resolve, dedup_key) == dedup_key
    assert await status_of_only_incident() == "resolved"

    # Resolving a key nothing is open for is accepted, as PagerDuty does.
    assert await asyncio.to_thread(events.resolve, "nothing-open") == "nothing-open"

    await asyncio.to_thread(
        events.submit,
        "Deployed checkout 2.4.1",
        source="ci",
        timestamp="2026-03-10T08:59:00Z",
    )
    async with httpx.AsyncClient(base_url=live_server.base_url, verify=live_server.trust) as http:
        changes = await http.get(
            f"/api/v1/services/{world.service}/change-events", headers=world.cast.bob.headers
        )
    assert [c["summary"] for c in changes.json()["items"]] == ["Deployed checkout 2.4.1"]
    events.close()


async def test_the_pagerduty_client_raises_on_an_invalid_event(
    live_server: TlsServer, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    pd = await integration_of(engine, clock, world, IntegrationType.PAGERDUTY)
    events = pagerduty.EventsApiV2Client(
        pd.key, base_url=live_server.base_url, verify=live_server.trust
    )
    try:
        with pytest.raises(pagerduty.HttpError) as raised:
            await asyncio.to_thread(events.trigger, "x", "y", severity="fatal")
    finally:
        events.close()
    assert raised.value.response.status_code == 400
    assert raised.value.response.json()["status"] == "invalid event"
