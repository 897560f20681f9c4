"""Grafana (unified and legacy), Datadog and Opsgenie payloads (PROTOCOLS.md sections 3.1-3.4)."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World
from tests.integrations.adapter_support import incident, incidents, integration_of, later, stored
from tocsin.clock import FrozenClock
from tocsin.integrations.models import IntegrationType

# Grafana ---------------------------------------------------------------------------------


def grafana_unified(status: str = "firing") -> dict[str, Any]:
    return {
        "receiver": "tocsin",
        "status": status,
        "orgId": 1,
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "HighCPU", "grafana_folder": "prod", "severity": "warning"},
                "annotations": {"summary": "CPU over 90% on web-1"},
                "startsAt": "2026-03-10T08:50:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "https://grafana.example.com/alerting/grafana/abc/view",
                "fingerprint": "57c6d9296de2ad39",
                "silenceURL": "https://grafana.example.com/alerting/silence/new",
                "dashboardURL": "https://grafana.example.com/d/x",
                "panelURL": "https://grafana.example.com/d/x?viewPanel=1",
                "values": {"A": 93.5},
                "valueString": "[ var='A' value=93.5 ]",
            }
        ],
        "groupLabels": {"alertname": "HighCPU"},
        "commonLabels": {"alertname": "HighCPU", "severity": "warning"},
        "commonAnnotations": {"summary": "CPU over 90% on web-1"},
        "externalURL": "https://grafana.example.com/",
        "version": "1",
        "groupKey": '{}/{}:{alertname="HighCPU"}',
        "truncatedAlerts": 0,
        "title": "[FIRING:1] HighCPU (prod)",
        "state": "alerting" if status == "firing" else "ok",
        "message": "**Firing**",
    }


def grafana_legacy(state: str) -> dict[str, Any]:
    return {
        "dashboardId": 1,
        "evalMatches": [{"value": 100, "metric": "High value", "tags": None}],
        "imageUrl": "https://grafana.example.com/render/x.png",
        "message": "Notification Message",
        "orgId": 1,
        "panelId": 2,
        "ruleId": 7,
        "ruleName": "Panel Title alert",
        "ruleUrl": "http://grafana.example.com/d/x?panelId=2",
        "state": state,
        "tags": {"tag name": "tag value"},
        "title": f"[{state.capitalize()}] Panel Title alert",
    }


async def test_grafana_unified_alerting_opens_and_resolves_by_group(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    grafana = await integration_of(engine, clock, world, IntegrationType.GRAFANA)
    response = await client.post(grafana.url, json=grafana_unified())
    assert response.status_code == 202
    incident_id = response.json()["alerts"][0]["incident_id"]
    detail = await incident(client, world, incident_id)
    assert detail["title"] == "CPU over 90% on web-1"
    assert detail["priority"] == "medium"
    alert = detail["alerts"][0]["details"]["alerts"][0]
    assert alert["dashboardURL"] == "https://grafana.example.com/d/x"
    assert alert["values"] == {"A": 93.5}

    later(clock)
    await client.post(grafana.url, json=grafana_unified())  # identical resend
    later(clock)
    await client.post(grafana.url, json=grafana_unified("resolved"))
    assert (await incident(client, world, incident_id))["status"] == "resolved"
    assert await stored(engine) == (2, 1)


async def test_grafana_legacy_alerting_and_ok_and_states_that_say_nothing(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    grafana = await integration_of(engine, clock, world, IntegrationType.GRAFANA)
    for state in ("no_data", "pending", "paused"):
        ignored = await client.post(grafana.url, json=grafana_legacy(state))
        assert ignored.status_code == 202
        assert ignored.json()["alerts"] == []
        assert ignored.json()["ignored"]
    assert await stored(engine) == (0, 0)

    opened = await client.post(grafana.url, json=grafana_legacy("alerting"))
    incident_id = opened.json()["alerts"][0]["incident_id"]
    detail = await incident(client, world, incident_id)
    assert detail["title"] == "Panel Title alert"
    assert detail["alerts"][0]["details"]["evalMatches"][0]["value"] == 100
    later(clock)
    await client.post(grafana.url, json=grafana_legacy("ok"))
    assert (await incident(client, world, incident_id))["status"] == "resolved"

    unknown = await client.post(grafana.url, json=grafana_legacy("exploded"))
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "state"]
    unified_wrong_version = await client.post(
        grafana.url, json={**grafana_unified(), "version": "4"}
    )
    assert unified_wrong_version.status_code == 422


# Datadog ---------------------------------------------------------------------------------


def datadog(transition: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": f"[{transition}] CPU high on web-1",
        "body": "%%%\nCPU above 90% for 5 minutes\n%%%",
        "alert_id": "1234567",
        "alert_cycle_key": "6543210987",
        "alert_transition": transition,
        "alert_type": "error",
        "priority": "P2",
        "hostname": "web-1",
        "link": "https://app.datadoghq.com/monitors/1234567",
        "tags": "env:prod,service:checkout",
        "date": 1773133200000,
        "id": "7000000000000000001",
        **extra,
    }


async def test_datadog_triggers_renotifies_without_a_new_alert_and_recovers(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    dd = await integration_of(engine, clock, world, IntegrationType.DATADOG)
    opened = await client.post(dd.url, json=datadog("Triggered"))
    assert opened.status_code == 202
    incident_id = opened.json()["alerts"][0]["incident_id"]
    detail = await incident(client, world, incident_id)
    assert detail["title"] == "CPU high on web-1"
    assert detail["priority"] == "high"
    assert detail["alerts"][0]["tags"] == {"env": "prod", "service": "checkout"}
    assert detail["alerts"][0]["details"]["link"] == "https://app.datadoghq.com/monitors/1234567"

    for transition in ("Renotify", "Re-Triggered"):
        later(clock)
        again = await client.post(dd.url, json=datadog(transition, id="other"))
        assert again.json()["alerts"][0]["repeat"] is True
    assert await stored(engine) == (1, 1)

    later(clock)
    await client.post(dd.url, json=datadog("Recovered", alert_type="success"))
    assert (await incident(client, world, incident_id))["status"] == "resolved"


async def test_datadogs_default_payload_is_read_from_the_title(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    dd = await integration_of(engine, clock, world, IntegrationType.DATADOG)
    default = {
        "body": "CPU above 90%",
        "last_updated": "1773133200000",
        "event_type": "query_alert_monitor",
        "title": "[Triggered on {host:web-1}] CPU high",
        "date": "1773133200000",
        "org": {"id": "1", "name": "Example"},
        "id": "1",
    }
    opened = await client.post(dd.url, json=default)
    incident_id = opened.json()["alerts"][0]["incident_id"]
    assert (await incident(client, world, incident_id))["title"] == "CPU high"
    later(clock)
    recovered = {**default, "title": "[Recovered on {host:web-1}] CPU high", "id": "2"}
    await client.post(dd.url, json=recovered)
    assert (await incident(client, world, incident_id))["status"] == "resolved"


async def test_a_datadog_payload_without_a_title_is_refused(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    dd = await integration_of(engine, clock, world, IntegrationType.DATADOG)
    response = await client.post(dd.url, json={"alert_id": "1"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "title"]
    listed = await client.post(dd.url, json=["not", "an", "object"])
    assert listed.status_code == 422
    assert await stored(engine) == (0, 0)


# Opsgenie --------------------------------------------------------------------------------


def genie(key: str) -> dict[str, str]:
    return {"Authorization": f"GenieKey {key}"}


async def test_opsgenie_create_dedups_on_alias_and_close_by_alias_resolves(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    og = await integration_of(engine, clock, world, IntegrationType.OPSGENIE)
    create = {
        "message": "Checkout is failing",
        "alias": "checkout-failing",
        "description": "5xx over 10%",
        "tags": ["env:prod", "critical"],
        "details": {"region": "eu-west-1"},
        "entity": "checkout",
        "priority": "P1",
    }
    response = await client.post("/v2/alerts", json=create, headers=genie(og.key))
    assert response.status_code == 202
    assert response.json()["result"] == "Request will be processed"
    assert response.json()["requestId"]
    later(clock)
    await client.post("/v2/alerts", json=create, headers=genie(og.key))
    [only] = await incidents(client, world)
    detail = await incident(client, world, only["id"])
    assert detail["priority"] == "critical"
    assert detail["alert_count"] == 2
    assert detail["alerts"][0]["tags"] == {"env": "prod", "critical": ""}

    ack = await client.post(
        "/v2/alerts/checkout-failing/acknowledge?identifierType=alias",
        json={"user": "alice", "note": "looking"},
        headers=genie(og.key),
    )
    assert ack.status_code == 202
    assert (await incident(client, world, only["id"]))["status"] == "acknowledged"
    close = await client.post(
        "/v2/alerts/checkout-failing/close?identifierType=alias", headers=genie(og.key)
    )
    assert close.status_code == 202
    assert (await incident(client, world, only["id"]))["status"] == "resolved"

    # The same body also works at the integration's webhook URL; P3 is the default.
    via_webhook = await client.post(og.url, json={"message": "Disk almost full"})
    assert via_webhook.status_code == 202
    newest = (await incidents(client, world))[0]
    assert newest["priority"] == "medium"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "x" * 131}, "message"),
        ({"description": "no message"}, "message"),
        ({"message": "m", "priority": "P0"}, "priority"),
        ({"message": "m", "tags": ["t"] * 21}, "tags"),
        ({"message": "m", "alias": "a" * 513}, "alias"),
    ],
)
async def test_opsgenie_limits_are_enforced_with_422_and_nothing_stored(
    client: AsyncClient,
    world: World,
    engine: AsyncEngine,
    clock: FrozenClock,
    body: dict[str, Any],
    field: str,
) -> None:
    og = await integration_of(engine, clock, world, IntegrationType.OPSGENIE)
    response = await client.post("/v2/alerts", json=body, headers=genie(og.key))
    assert response.status_code == 422
    assert any(field in name for name in response.json()["errors"])
    assert await stored(engine) == (0, 0)


async def test_opsgenie_needs_its_key_and_an_alias_identifier(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    og = await integration_of(engine, clock, world, IntegrationType.OPSGENIE)
    anonymous = await client.post("/v2/alerts", json={"message": "m"})
    assert anonymous.status_code == 401
    wrong = await client.post("/v2/alerts", json={"message": "m"}, headers=genie("nope"))
    assert wrong.status_code == 401
    by_id = await client.post("/v2/alerts/some-id/close", headers=genie(og.key))
    assert by_id.status_code == 422
    assert "identifierType" in by_id.json()["errors"]
    unknown = await client.post(
        "/v2/alerts/never-created/close?identifierType=alias", headers=genie(og.key)
    )
    assert unknown.status_code == 202
    assert await stored(engine) == (0, 0)
