"""Nested `details` and `tags` at ingest: refused past 32 levels or the size limit, with a 422
naming the field and nothing stored, whatever the payload format; and an incident whose alert
already holds deeper JSON (stored before the limit) still reads, lists and acts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.factories import World, make_integration
from tests.ui.support import give_password, sign_in
from tocsin.alerts.models import Alert
from tocsin.clock import FrozenClock
from tocsin.integrations.models import IntegrationType


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"deeper": value}
    return value


async def test_details_nested_past_the_limit_are_refused_naming_the_field(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    response = await client.post(
        world.integration.url,
        json={"title": "Deep", "routing_key": "payments-api", "details": nested(40)},
    )
    assert response.status_code == 422, response.text
    assert "details" in response.text and "32" in response.text
    assert await count_rows(engine, "alerts") == 0
    assert await count_rows(engine, "incidents") == 0


async def test_details_as_deep_as_the_limit_are_taken(client: AsyncClient, world: World) -> None:
    response = await client.post(
        world.integration.url,
        json={"title": "Deep", "routing_key": "payments-api", "details": nested(31)},
    )
    assert response.status_code == 202, response.text


async def test_details_too_large_are_refused_naming_the_field(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    big = {f"k{i}": "x" * 1000 for i in range(200)}  # 200 KB, under the body limit
    response = await client.post(
        world.integration.url, json={"title": "Big", "routing_key": "payments-api", "details": big}
    )
    assert response.status_code == 422, response.text
    assert "details" in response.text
    assert await count_rows(engine, "alerts") == 0


def pagerduty_event(key: str) -> dict[str, Any]:
    return {
        "routing_key": key,
        "event_action": "trigger",
        "payload": {
            "summary": "Deep",
            "source": "db",
            "severity": "critical",
            "custom_details": nested(40),
        },
    }


def alertmanager_message(_key: str) -> dict[str, Any]:
    alert = {
        "status": "firing",
        "labels": {"alertname": "Big", "instance": "a:9100"},
        "annotations": {f"note{i}": "y" * 1000 for i in range(80)},
        "startsAt": "2026-03-10T08:50:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "fp-a",
    }
    return {
        "version": "4",
        "groupKey": '{}:{alertname="Big"}',
        "status": "firing",
        "receiver": "r",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://am:9093",
        "alerts": [alert],
    }


@pytest.mark.parametrize(
    ("kind", "path", "payload"),
    [
        (IntegrationType.PAGERDUTY, "/v2/enqueue", pagerduty_event),
        (IntegrationType.ALERTMANAGER, None, alertmanager_message),
    ],
)
async def test_every_format_is_held_to_the_same_limits(
    client: AsyncClient,
    world: World,
    engine: AsyncEngine,
    clock: FrozenClock,
    kind: IntegrationType,
    path: str | None,
    payload: Any,
) -> None:
    integration = await make_integration(
        engine, clock.now(), type=kind, default_service_id=world.service
    )
    response = await client.post(path or integration.url, json=payload(integration.key))
    assert 400 <= response.status_code < 500, response.text
    assert "details" in response.text
    assert await count_rows(engine, "alerts") == 0


async def test_an_incident_already_holding_deep_json_still_reads_lists_and_acts(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    opened = await client.post(
        world.integration.url, json={"title": "Old deep one", "routing_key": "payments-api"}
    )
    incident = opened.json()["incident_id"]
    async with engine.begin() as conn:  # as stored before the limit existed
        await conn.execute(
            sa.update(Alert)
            .where(Alert.id == uuid.UUID(opened.json()["alert_id"]))
            .values(details=nested(270), tags={"deep": "yes"})
        )
    bob = world.cast.bob.headers
    detail = await client.get(f"/api/v1/incidents/{incident}", headers=bob)
    assert detail.status_code == 200, detail.text
    assert "cut" in str(detail.json()["alerts"][0]["details"])
    assert (await client.get("/api/v1/alerts", headers=bob)).status_code == 200
    assert (await client.get("/api/v1/incidents", headers=bob)).status_code == 200
    acked = await client.post(f"/api/v1/incidents/{incident}/acknowledge", headers=bob)
    assert acked.status_code == 200, acked.text
    await give_password(engine, world.cast.bob.id)
    await sign_in(client, "bob@example.com")
    page = await client.get(f"/incidents/{incident}")
    assert page.status_code == 200, page.text
    assert (await client.get("/incidents")).status_code == 200
