"""Alertmanager webhook v4 (PROTOCOLS.md section 2): one incident per group or per alert,
partial and full resolves, and identical re-sends that add nothing."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World
from tests.integrations.adapter_support import incident, incidents, integration_of, later, stored
from tocsin.clock import FrozenClock
from tocsin.integrations.models import IntegrationType

ZERO = "0001-01-01T00:00:00Z"


def am_alert(instance: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "InstanceDown", "instance": instance, **labels},
        "annotations": {"description": f"{instance} has been down for 5 minutes"},
        "startsAt": "2026-03-10T08:50:00Z",
        "endsAt": ZERO if status == "firing" else "2026-03-10T09:10:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0",
        "fingerprint": f"fp-{instance}",
    }


def message(*alerts: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": '{}:{alertname="InstanceDown"}',
        "truncatedAlerts": 0,
        "status": status or ("firing" if firing else "resolved"),
        "receiver": "team\\.payments",
        "groupLabels": {"alertname": "InstanceDown"},
        "commonLabels": {"alertname": "InstanceDown", "severity": "critical"},
        "commonAnnotations": {"summary": "Instances are down"},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


async def test_a_group_opens_one_incident_and_identical_resends_add_nothing(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    am = await integration_of(engine, clock, world, IntegrationType.ALERTMANAGER)
    first = message(am_alert("a:9100"), am_alert("b:9100"))
    response = await client.post(am.url, json=first)
    assert response.status_code == 202
    [result] = response.json()["alerts"]
    assert result["deduplicated"] is False
    detail = await incident(client, world, result["incident_id"])
    assert detail["title"] == "Instances are down"
    assert detail["priority"] == "critical"
    alert = detail["alerts"][0]
    assert alert["details"]["receiver"] == "team.payments"
    assert alert["details"]["firing"] == 2
    assert alert["tags"] == {"alertname": "InstanceDown", "severity": "critical"}

    for _ in range(3):  # repeat_interval re-sends the same message
        later(clock, 4 * 3600)
        again = await client.post(am.url, json=copy.deepcopy(first))
        assert again.status_code == 202
        assert again.json()["alerts"][0]["repeat"] is True
        assert again.json()["alerts"][0]["incident_id"] == result["incident_id"]
    assert await stored(engine) == (1, 1)


async def test_a_partial_resolve_is_recorded_and_the_full_resolve_resolves(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    am = await integration_of(engine, clock, world, IntegrationType.ALERTMANAGER)
    opened = await client.post(am.url, json=message(am_alert("a:9100"), am_alert("b:9100")))
    incident_id = opened.json()["alerts"][0]["incident_id"]

    later(clock)
    partial = message(am_alert("a:9100", "resolved"), am_alert("b:9100"))
    assert partial["status"] == "firing"
    await client.post(am.url, json=partial)
    detail = await incident(client, world, incident_id)
    assert detail["status"] == "open"
    assert detail["alert_count"] == 2
    assert detail["alerts"][0]["details"]["resolved"] == 1 or (
        detail["alerts"][1]["details"]["resolved"] == 1
    )

    later(clock)
    await client.post(
        am.url, json=message(am_alert("a:9100", "resolved"), am_alert("b:9100", "resolved"))
    )
    assert (await incident(client, world, incident_id))["status"] == "resolved"

    # The same group firing again later is a new incident.
    later(clock)
    again = await client.post(am.url, json=message(am_alert("a:9100")))
    assert again.json()["alerts"][0]["incident_id"] != incident_id
    assert len(await incidents(client, world)) == 2


async def test_per_alert_grouping_opens_one_incident_per_alert_resolved_by_its_own_status(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    am = await integration_of(
        engine, clock, world, IntegrationType.ALERTMANAGER, options={"grouping": "alert"}
    )
    response = await client.post(
        am.url, json=message(am_alert("a:9100", severity="warning"), am_alert("b:9100"))
    )
    results = response.json()["alerts"]
    assert len({r["incident_id"] for r in results}) == 2
    a_id, b_id = (r["incident_id"] for r in results)
    a = await incident(client, world, a_id)
    assert a["title"] == "InstanceDown on a:9100"
    assert a["priority"] == "medium"

    later(clock)
    again = await client.post(
        am.url, json=message(am_alert("a:9100", "resolved"), am_alert("b:9100"))
    )
    assert [r["repeat"] for r in again.json()["alerts"]] == [False, True]
    assert (await incident(client, world, a_id))["status"] == "resolved"
    assert (await incident(client, world, b_id))["status"] == "open"
    # b's firing alert was identical to the one stored: nothing new for it.
    assert await stored(engine) == (3, 2)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": "3"}, "version"),
        ({"alerts": []}, "alerts"),
        ({"status": "pending"}, "status"),
        ({"groupKey": None}, "groupKey"),
        ({"alerts": [{"status": "firing"}]}, "labels"),
    ],
)
async def test_a_malformed_message_is_refused_naming_the_field_and_nothing_is_stored(
    client: AsyncClient,
    world: World,
    engine: AsyncEngine,
    clock: FrozenClock,
    change: dict[str, Any],
    field: str,
) -> None:
    am = await integration_of(engine, clock, world, IntegrationType.ALERTMANAGER)
    response = await client.post(am.url, json={**message(am_alert("a:9100")), **change})
    assert response.status_code == 422
    assert any(field in map(str, error["loc"]) for error in response.json()["detail"])
    assert await stored(engine) == (0, 0)


async def test_unparseable_and_oversized_bodies_are_refused(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    am = await integration_of(engine, clock, world, IntegrationType.ALERTMANAGER)
    garbage = await client.post(am.url, content=b"not json")
    assert garbage.status_code == 422
    huge = message(*(am_alert(f"host-{n}:9100") for n in range(3000)))
    too_big = await client.post(am.url, json=huge)
    assert too_big.status_code == 413
    assert await stored(engine) == (0, 0)


async def test_invalid_grouping_option_is_refused_when_saved(
    client: AsyncClient, world: World
) -> None:
    response = await client.post(
        "/api/v1/integrations",
        json={"name": "am", "type": "alertmanager", "options": {"grouping": "label"}},
        headers=world.cast.admin.headers,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "options"]
    assert "grouping" in response.json()["detail"][0]["msg"]
