"""Request ids: every answer carries one, the caller's own when it is a sensible token."""

from __future__ import annotations

import uuid

import websockets
from httpx import AsyncClient

from tests.conftest import LiveServer
from tests.factories import World
from tocsin.telemetry.requests import new_request_id


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def test_a_request_without_an_id_gets_a_fresh_one(client: AsyncClient) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert is_uuid(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_well_formed_incoming_id_is_kept_and_a_malformed_one_replaced(
    client: AsyncClient,
) -> None:
    for sent in (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "Root=1-5759e988-bd862e3fe1be46a994272793",
        "req:42/a+b=",
    ):
        response = await client.get("/healthz", headers={"X-Request-ID": sent})
        assert response.headers["x-request-id"] == sent
    for bad in ("", "has space", "x" * 129, 'quote"', "back\\slash", "semi;colon", "ünï"):
        response = await client.get("/healthz", headers=[(b"X-Request-ID", bad.encode())])
        assert is_uuid(response.headers["x-request-id"]), bad


async def test_errors_and_webhooks_carry_the_id_too(client: AsyncClient, world: World) -> None:
    headers = {"X-Request-ID": "trace-me"}
    answers = [
        await client.get("/api/v1/incidents", headers=headers),  # 401
        await client.get("/no/such/page", headers=headers),  # 404
        await client.post("/webhooks/not-a-key", json={"title": "x"}, headers=headers),  # 404
        await client.post(world.integration.url, json={}, headers=headers),  # 422
        await client.post(
            world.integration.url, content=b"x" * (1024 * 1024), headers=headers
        ),  # 413
        await client.post(
            world.integration.url,
            json={"title": "ok", "routing_key": "payments-api"},
            headers=headers,
        ),  # 202
    ]
    assert [a.status_code for a in answers] == [401, 404, 404, 422, 413, 202]
    assert {a.headers["x-request-id"] for a in answers} == {"trace-me"}


async def test_a_websocket_handshake_answers_with_the_id(
    live_server: LiveServer, world: World
) -> None:
    async with websockets.connect(
        f"{live_server.ws_url}/api/v1/stream",
        additional_headers={
            "Authorization": f"Bearer {world.cast.bob.key}",
            "X-Request-ID": "ws-1",
        },
    ) as stream:
        assert stream.response is not None
        assert stream.response.headers["x-request-id"] == "ws-1"


def test_a_made_up_request_id_is_a_random_version_4_uuid() -> None:
    made = {new_request_id() for _ in range(1000)}
    assert len(made) == 1000
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
