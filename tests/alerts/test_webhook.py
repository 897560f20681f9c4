"""POST /webhooks/{key}: the generic alert payload, accepted or refused with nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Escalate, count_rows
from tests.factories import World, make_integration
from tocsin.clock import FrozenClock


async def send(client: AsyncClient, world: World, payload: Any) -> Any:
    return await client.post(world.integration.url, json=payload)


async def test_it_opens_an_incident_and_answers_202_once_stored(
    client: AsyncClient, world: World, engine: AsyncEngine, escalate: Escalate
) -> None:
    response = await send(
        client,
        world,
        {
            "title": "Checkout latency high",
            "description": "p99 over 2 s",
            "severity": "critical",
            "source": "prometheus",
            "routing_key": "payments-api",
            "tags": {"env": "prod"},
            "details": {"p99_ms": 2300},
        },
    )
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"alert_id", "incident_id", "deduplicated"}
    assert body["deduplicated"] is False
    detail = (
        await client.get(f"/api/v1/incidents/{body['incident_id']}", headers=world.cast.bob.headers)
    ).json()
    assert detail["title"] == "Checkout latency high"
    assert detail["status"] == "open"
    assert detail["priority"] == "critical"
    assert detail["number"] == 1
    assert detail["alert_count"] == 1
    assert detail["team_id"] == str(world.cast.payments)
    assert detail["escalation_policy_id"] == str(world.policy)
    assert detail["service"] == {
        "id": str(world.service),
        "name": "Payments API",
        "routing_key": "payments-api",
        "team": {"id": str(world.cast.payments), "name": "Payments"},
    }
    assert [a["id"] for a in detail["alerts"]] == [body["alert_id"]]
    assert detail["alerts"][0]["details"] == {"p99_ms": 2300}
    assert [e["kind"] for e in detail["timeline"]] == ["created"]
    # Stored with the incident: its escalation's start, due at once, for the worker.
    assert await count_rows(engine, "escalation_jobs") == 1

    await escalate()
    detail = (
        await client.get(f"/api/v1/incidents/{body['incident_id']}", headers=world.cast.bob.headers)
    ).json()
    assert [e["kind"] for e in detail["timeline"]] == ["created", "paged", "escalation_scheduled"]
    assert detail["current_level"] == 1
    assert await count_rows(engine, "escalation_jobs") == 2  # the start, then level 2's timer


async def test_it_numbers_incidents_one_after_another(client: AsyncClient, world: World) -> None:
    numbers = []
    for title in ("a", "b", "c"):
        body = (await send(client, world, {"title": title, "routing_key": "payments-api"})).json()
        detail = await client.get(
            f"/api/v1/incidents/{body['incident_id']}", headers=world.cast.admin.headers
        )
        numbers.append(detail.json()["number"])
    assert numbers == [1, 2, 3]


async def test_it_answers_404_for_an_unknown_key(client: AsyncClient, world: World) -> None:
    response = await client.post("/webhooks/ik_not-a-key", json={"title": "x"})
    assert response.status_code == 404
    assert "integration" in response.json()["detail"]


async def test_other_methods_and_deeper_paths_are_not_taken_for_alerts(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    assert (await client.get(world.integration.url)).status_code == 405
    assert (await client.put(world.integration.url, json={"title": "x"})).status_code == 405
    deeper = await client.post(world.integration.url + "/extra", json={"title": "x"})
    assert deeper.status_code == 404
    assert (await client.post("/webhooks/", json={"title": "x"})).status_code == 404
    assert await count_rows(engine, "alerts") == 0


async def test_it_answers_404_for_an_inactive_integration(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    inactive = await make_integration(engine, clock.now(), active=False)
    response = await client.post(inactive.url, json={"title": "x"})
    assert response.status_code == 404
    assert await count_rows(engine, "alerts") == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": 42}, "title"),
        ({"title": "x", "severity": "disaster"}, "severity"),
        ({"title": "x", "status": "maybe"}, "status"),
        ({"title": "x", "tags": {"env": 3}}, "tags"),
        ({"title": "x", "tags": ["env"]}, "tags"),
        ({"title": "x", "details": "text"}, "details"),
        ({"title": "x" * 1025}, "title"),
        ({"title": "x", "dedup_key": ""}, "dedup_key"),
    ],
)
async def test_it_refuses_an_invalid_body_with_422_naming_the_field(
    client: AsyncClient, world: World, engine: AsyncEngine, payload: Any, field: str
) -> None:
    response = await send(client, world, payload)
    assert response.status_code == 422
    locations = [err["loc"] for err in response.json()["detail"]]
    assert any(loc[:2] == ["body", field] for loc in locations), locations
    assert await count_rows(engine, "alerts") == 0
    assert await count_rows(engine, "incidents") == 0


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b'"title"'])
async def test_it_refuses_malformed_json(
    client: AsyncClient, world: World, engine: AsyncEngine, raw: bytes
) -> None:
    response = await client.post(
        world.integration.url, content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]
    assert await count_rows(engine, "alerts") == 0


async def test_it_refuses_a_body_over_512_kb_with_413(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    payload = {"title": "big", "details": {"blob": "x" * (512 * 1024)}}
    response = await send(client, world, payload)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert await count_rows(engine, "alerts") == 0


async def test_it_refuses_an_oversized_body_sent_without_a_length(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    async def chunks() -> Any:
        yield b'{"title": "big", "description": "'
        for _ in range(600):
            yield b"x" * 1024
        yield b'"}'

    response = await client.post(world.integration.url, content=chunks())
    assert response.status_code == 413
    assert await count_rows(engine, "alerts") == 0


async def test_it_ignores_fields_it_does_not_know(client: AsyncClient, world: World) -> None:
    response = await send(client, world, {"title": "x", "runbook": "http://wiki", "n": [1]})
    assert response.status_code == 202


@pytest.mark.parametrize(
    "payload",
    [
        {"title": "x", "routingKey": "payments-api"},
        {"title": "x", "details": {"routing_key": "payments-api"}},
        {"title": "x", "details": {"routingKey": "payments-api"}},
        {"title": "x", "metadata": {"routing_key": "payments-api"}},
        {"title": "x", "metadata": {"routingKey": "payments-api"}},
    ],
)
async def test_it_reads_the_routing_key_under_its_other_names(
    client: AsyncClient, world: World, payload: dict[str, Any]
) -> None:
    body = (await send(client, world, payload)).json()
    detail = await client.get(
        f"/api/v1/incidents/{body['incident_id']}", headers=world.cast.admin.headers
    )
    assert detail.json()["service_id"] == str(world.service)


async def test_the_first_alerts_severity_sets_the_priority(
    client: AsyncClient, world: World
) -> None:
    first = {"title": "x", "dedup_key": "k", "routing_key": "payments-api", "severity": "low"}
    body = (await send(client, world, first)).json()
    await send(client, world, {**first, "severity": "critical"})
    detail = await client.get(
        f"/api/v1/incidents/{body['incident_id']}", headers=world.cast.admin.headers
    )
    assert detail.json()["priority"] == "low"
    assert detail.json()["alert_count"] == 2
