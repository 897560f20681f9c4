"""PagerDuty Events API v2 (/v2/enqueue, /v2/change/enqueue) and v1 (create_event.json):
the fields, answers and dedup rules of PROTOCOLS.md section 1."""

from __future__ import annotations

import re
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.factories import IntegrationRef, World
from tests.integrations.adapter_support import incident, incidents, integration_of, later, stored
from tocsin.clock import FrozenClock
from tocsin.integrations.models import IntegrationType


@pytest.fixture
async def pd(engine: AsyncEngine, clock: FrozenClock, world: World) -> IntegrationRef:
    return await integration_of(engine, clock, world, IntegrationType.PAGERDUTY)


def trigger(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "routing_key": key,
        "event_action": "trigger",
        "payload": {
            "summary": "DB replica lag over 30 s",
            "source": "db-2.example.com",
            "severity": "critical",
            "component": "postgres",
            "group": "db",
            "class": "replication",
            "custom_details": {"lag_s": 42},
            "timestamp": "2015-07-17T08:42:58.315+0000",
        },
        "links": [{"href": "https://grafana.example.com/d/1", "text": "dashboard"}],
        "client": "Nagios",
        "client_url": "https://nagios.example.com",
        **extra,
    }


async def test_a_trigger_opens_an_incident_and_returns_a_generated_dedup_key(
    client: AsyncClient, world: World, pd: IntegrationRef
) -> None:
    response = await client.post("/v2/enqueue", json=trigger(pd.key))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "success"
    assert body["message"] == "Event processed"
    assert re.fullmatch(r"[0-9a-f]{32}", body["dedup_key"])
    [found] = await incidents(client, world)
    detail = await incident(client, world, found["id"])
    assert detail["title"] == "DB replica lag over 30 s"
    assert detail["priority"] == "critical"
    assert detail["service"]["id"] == str(world.service)
    [alert] = detail["alerts"]
    assert alert["dedup_key"] == body["dedup_key"]
    assert alert["source"] == "db-2.example.com"
    assert alert["tags"] == {"component": "postgres", "group": "db", "class": "replication"}
    assert alert["details"]["custom_details"] == {"lag_s": 42}
    assert alert["details"]["client"] == "Nagios"


async def test_the_integration_key_is_32_characters_as_pagerduty_clients_expect(
    client: AsyncClient, world: World
) -> None:
    response = await client.post(
        "/api/v1/integrations",
        json={"name": "pd", "type": "pagerduty"},
        headers=world.cast.admin.headers,
    )
    assert response.status_code == 201
    assert len(response.json()["key"]) == 32
    assert response.json()["dedup_window_minutes"] == 7 * 24 * 60


async def test_triggers_without_a_dedup_key_are_always_new_incidents(
    client: AsyncClient, world: World, pd: IntegrationRef
) -> None:
    first = (await client.post("/v2/enqueue", json=trigger(pd.key))).json()
    second = (await client.post("/v2/enqueue", json=trigger(pd.key))).json()
    assert first["dedup_key"] != second["dedup_key"]
    assert len(await incidents(client, world)) == 2


async def test_ack_then_resolve_by_dedup_key_and_a_later_trigger_opens_a_new_incident(
    client: AsyncClient, world: World, pd: IntegrationRef, clock: FrozenClock
) -> None:
    key = "disk-full/db-2"
    assert (await client.post("/v2/enqueue", json=trigger(pd.key, dedup_key=key))).json()[
        "dedup_key"
    ] == key
    later(clock)
    again = await client.post("/v2/enqueue", json=trigger(pd.key, dedup_key=key))
    assert again.status_code == 202
    [only] = await incidents(client, world)
    assert (await incident(client, world, only["id"]))["alert_count"] == 2

    ack = {"routing_key": pd.key, "dedup_key": key, "event_action": "acknowledge"}
    response = await client.post("/v2/enqueue", json=ack)
    assert response.status_code == 202
    assert response.json()["dedup_key"] == key
    assert (await incident(client, world, only["id"]))["status"] == "acknowledged"

    resolve = {"routing_key": pd.key, "dedup_key": key, "event_action": "resolve"}
    assert (await client.post("/v2/enqueue", json=resolve)).status_code == 202
    detail = await incident(client, world, only["id"])
    assert detail["status"] == "resolved"
    assert "resolved" in [e["kind"] for e in detail["timeline"]]

    later(clock)
    await client.post("/v2/enqueue", json=trigger(pd.key, dedup_key=key))
    assert [i["status"] for i in await incidents(client, world)] == ["open", "resolved"]


async def test_ack_and_resolve_of_an_unknown_key_answer_202_and_change_nothing(
    client: AsyncClient, world: World, pd: IntegrationRef, engine: AsyncEngine
) -> None:
    for action in ("acknowledge", "resolve"):
        response = await client.post(
            "/v2/enqueue",
            json={"routing_key": pd.key, "dedup_key": "never-seen", "event_action": action},
        )
        assert response.status_code == 202
        assert response.json() == {
            "status": "success",
            "message": "Event processed",
            "dedup_key": "never-seen",
        }
    assert await stored(engine) == (0, 0)


async def test_follow_ups_through_another_routing_key_are_dropped(
    client: AsyncClient, world: World, pd: IntegrationRef, engine: AsyncEngine, clock: FrozenClock
) -> None:
    other = await integration_of(engine, clock, world, IntegrationType.PAGERDUTY)
    await client.post("/v2/enqueue", json=trigger(pd.key, dedup_key="k1"))
    response = await client.post(
        "/v2/enqueue",
        json={"routing_key": other.key, "dedup_key": "k1", "event_action": "resolve"},
    )
    assert response.status_code == 202
    [only] = await incidents(client, world)
    assert only["status"] == "open"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event_action": "snooze"}, "event_action"),
        ({"payload": {"summary": "x", "source": "y", "severity": "Critical"}}, "severity"),
        ({"payload": {"source": "y", "severity": "info"}}, "summary"),
        ({"payload": {"summary": "x" * 1025, "source": "y", "severity": "info"}}, "summary"),
        ({"payload": {"summary": "x", "severity": "info"}}, "source"),
        ({"dedup_key": "k" * 256}, "dedup_key"),
        ({"payload": None}, "payload"),
        ({"images": [{"src": "http://insecure.example.com/a.png"}]}, "src"),
        ({"links": [{"text": "no href"}]}, "href"),
    ],
)
async def test_an_invalid_event_gets_pagerdutys_400_naming_the_field_and_nothing_is_stored(
    client: AsyncClient,
    world: World,
    pd: IntegrationRef,
    engine: AsyncEngine,
    change: dict[str, Any],
    field: str,
) -> None:
    response = await client.post("/v2/enqueue", json={**trigger(pd.key), **change})
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "invalid event"
    assert body["message"] == "Event object is invalid"
    assert any(field in error for error in body["errors"]), body
    assert await stored(engine) == (0, 0)


async def test_ack_without_a_dedup_key_is_invalid(
    client: AsyncClient, world: World, pd: IntegrationRef
) -> None:
    response = await client.post(
        "/v2/enqueue", json={"routing_key": pd.key, "event_action": "acknowledge"}
    )
    assert response.status_code == 400
    assert any("dedup_key" in e for e in response.json()["errors"])


async def test_malformed_json_and_unknown_keys_are_refused(
    client: AsyncClient, world: World, pd: IntegrationRef, engine: AsyncEngine
) -> None:
    response = await client.post(
        "/v2/enqueue", content=b'{"routing_key": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["status"] == "Unrecognized object"
    assert response.json()["errors"] == ["JSON parse error"]

    unknown = await client.post("/v2/enqueue", json=trigger("0" * 32))
    assert unknown.status_code == 400
    assert unknown.json()["status"] == "invalid event"

    # A generic integration's key is not a PagerDuty routing key.
    generic = await client.post("/v2/enqueue", json=trigger(world.integration.key))
    assert generic.status_code == 400

    missing = await client.post("/v2/enqueue", json={"event_action": "trigger"})
    assert missing.status_code == 400
    assert any("routing_key" in e for e in missing.json()["errors"])
    assert await stored(engine) == (0, 0)


async def test_an_oversized_event_is_refused_before_anything_is_stored(
    client: AsyncClient, world: World, pd: IntegrationRef, engine: AsyncEngine
) -> None:
    event = trigger(pd.key)
    event["payload"]["custom_details"] = {"blob": "x" * (512 * 1024)}
    response = await client.post("/v2/enqueue", json=event)
    assert response.status_code == 413
    assert await stored(engine) == (0, 0)


async def test_the_same_events_work_at_the_integrations_webhook_url(
    client: AsyncClient, world: World, pd: IntegrationRef
) -> None:
    event = trigger(pd.key, dedup_key="via-webhook")
    del event["routing_key"]
    response = await client.post(pd.url, json=event)
    assert response.status_code == 202
    assert response.json()["dedup_key"] == "via-webhook"
    bad = await client.post(pd.url, json={"event_action": "trigger"})
    assert bad.status_code == 400
    assert bad.json()["status"] == "invalid event"


async def test_a_rate_limited_integration_gets_429_with_retry_after_until_time_passes(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    limited = await integration_of(
        engine, clock, world, IntegrationType.PAGERDUTY, rate_limit_per_minute=2
    )
    for _ in range(2):
        assert (await client.post("/v2/enqueue", json=trigger(limited.key))).status_code == 202
    refused = await client.post("/v2/enqueue", json=trigger(limited.key))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) == 30
    assert await count_rows(engine, "incidents") == 2
    later(clock, 30)
    assert (await client.post("/v2/enqueue", json=trigger(limited.key))).status_code == 202


async def test_change_events_are_shown_on_the_service_and_its_open_incidents_never_paging(
    client: AsyncClient, world: World, pd: IntegrationRef, engine: AsyncEngine
) -> None:
    opened = await client.post("/v2/enqueue", json=trigger(pd.key, dedup_key="k"))
    assert opened.status_code == 202
    jobs_before = await count_rows(engine, "escalation_jobs")
    change = {
        "routing_key": pd.key,
        "payload": {
            "summary": "Deployed api v1.2.3",
            "source": "ci",
            "timestamp": "2026-03-10T08:55:00Z",
            "custom_details": {"commit": "abc123"},
        },
        "links": [{"href": "https://ci.example.com/build/7", "text": "build"}],
    }
    response = await client.post("/v2/change/enqueue", json=change)
    assert response.status_code == 202
    assert response.json()["status"] == "success"
    assert await count_rows(engine, "incidents") == 1
    assert await count_rows(engine, "escalation_jobs") == jobs_before

    listed = await client.get(
        f"/api/v1/services/{world.service}/change-events", headers=world.cast.bob.headers
    )
    assert listed.status_code == 200
    [event] = listed.json()["items"]
    assert event["summary"] == "Deployed api v1.2.3"
    assert event["custom_details"] == {"commit": "abc123"}
    assert event["links"] == [{"href": "https://ci.example.com/build/7", "text": "build"}]
    assert event["happened_at"].startswith("2026-03-10T08:55:00")

    [only] = await incidents(client, world)
    timeline = (await incident(client, world, only["id"]))["timeline"]
    assert [e["note"] for e in timeline if e["kind"] == "change_event"] == ["Deployed api v1.2.3"]

    invalid = await client.post(
        "/v2/change/enqueue", json={"routing_key": pd.key, "payload": {"source": "ci"}}
    )
    assert invalid.status_code == 400
    assert any("summary" in e for e in invalid.json()["errors"])


async def test_v1_events_trigger_and_resolve_with_200_and_incident_key(
    client: AsyncClient, world: World, pd: IntegrationRef, engine: AsyncEngine
) -> None:
    url = "/generic/2010-04-15/create_event.json"
    response = await client.post(
        url,
        json={
            "service_key": pd.key,
            "event_type": "trigger",
            "description": "FAILURE for production/HTTP on machine srv01",
            "incident_key": "srv01/HTTP",
            "details": {"ping time": "1500ms"},
            "contexts": [{"type": "link", "href": "https://example.com/srv01"}],
        },
    )
    assert response.status_code == 200
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "incident_key": "srv01/HTTP",
    }
    [only] = await incidents(client, world)
    assert only["title"] == "FAILURE for production/HTTP on machine srv01"

    resolved = await client.post(
        url, json={"service_key": pd.key, "event_type": "resolve", "incident_key": "srv01/HTTP"}
    )
    assert resolved.status_code == 200
    assert (await incident(client, world, only["id"]))["status"] == "resolved"

    generated = await client.post(
        url, json={"service_key": pd.key, "event_type": "trigger", "description": "x"}
    )
    assert re.fullmatch(r"[0-9a-f]{32}", generated.json()["incident_key"])

    invalid = await client.post(url, json={"service_key": pd.key, "event_type": "trigger"})
    assert invalid.status_code == 400
    assert any("description" in e for e in invalid.json()["errors"])
    assert await count_rows(engine, "incidents") == 2
