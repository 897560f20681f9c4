"""Integration templates (sandboxed Jinja2 overrides, checked when saved) and the
per-integration log of received payloads."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World, make_service
from tests.integrations.adapter_support import incident, integration_of, later
from tocsin.clock import FrozenClock
from tocsin.integrations import payload_log
from tocsin.integrations.models import IntegrationType


def am_message(team: str, status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="QueueBacklog"}',
        "status": status,
        "receiver": "tocsin",
        "groupLabels": {"alertname": "QueueBacklog"},
        "commonLabels": {"alertname": "QueueBacklog", "team": team, "prio": "P1"},
        "commonAnnotations": {},
        "externalURL": "http://am:9093",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "QueueBacklog", "team": team, "prio": "P1"},
                "annotations": {},
                "startsAt": "2026-03-10T08:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "f1",
            }
        ],
    }


async def test_templates_override_title_severity_dedup_key_and_routing_key(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    billing = await make_service(
        engine, clock.now(), team_id=world.cast.payments, routing_key="billing"
    )
    created = await client.post(
        "/api/v1/integrations",
        json={
            "name": "am with templates",
            "type": "alertmanager",
            "templates": {
                "title": "{{ payload.commonLabels.alertname }} for {{ payload.commonLabels.team }}",
                "severity": "{{ payload.commonLabels.prio }}",
                "dedup_key": "{{ payload.commonLabels.team }}-{{ alert.status }}",
                "routing_key": "{{ payload.commonLabels.team }}",
            },
        },
        headers=world.cast.admin.headers,
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    response = await client.post(f"/webhooks/{key}", json=am_message("billing"))
    detail = await incident(client, world, response.json()["alerts"][0]["incident_id"])
    assert detail["title"] == "QueueBacklog for billing"
    assert detail["priority"] == "critical"
    assert detail["service"]["id"] == str(billing)
    assert detail["alerts"][0]["dedup_key"] == "billing-firing"


async def test_a_template_that_fails_at_render_time_keeps_the_adapters_value(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    am = await integration_of(
        engine,
        clock,
        world,
        IntegrationType.ALERTMANAGER,
        templates={
            "title": "{{ payload.alerts[0].labels.team | int / 0 }}",
            "severity": "{{ 'sort of bad' }}",
            # The sandbox refuses reaching into Python internals.
            "routing_key": "{{ payload.__class__.__mro__ }}",
        },
    )
    response = await client.post(am.url, json=am_message("billing"))
    assert response.status_code == 202
    detail = await incident(client, world, response.json()["alerts"][0]["incident_id"])
    assert detail["title"] == "QueueBacklog"
    assert detail["priority"] == "high"
    assert detail["service"]["id"] == str(world.service)


@pytest.mark.parametrize(
    ("templates", "field"),
    [
        ({"title": "{{ payload.title "}, "title"),
        ({"severity": "{% if %}"}, "severity"),
        ({"dedup_key": "{{ x }}{% endfor %}"}, "dedup_key"),
        ({"subject": "{{ x }}"}, "subject"),
    ],
)
async def test_invalid_templates_are_refused_with_422_on_create_and_update(
    client: AsyncClient, world: World, templates: dict[str, str], field: str
) -> None:
    created = await client.post(
        "/api/v1/integrations",
        json={"name": "bad", "type": "grafana", "templates": templates},
        headers=world.cast.admin.headers,
    )
    assert created.status_code == 422
    assert created.json()["detail"][0]["loc"] == ["body", "templates", field]

    integration_url = f"/api/v1/integrations/{world.integration.id}"
    patched = await client.patch(
        integration_url, json={"templates": templates}, headers=world.cast.admin.headers
    )
    assert patched.status_code == 422
    assert patched.json()["detail"][0]["loc"] == ["body", "templates", field]
    unchanged = await client.get(integration_url, headers=world.cast.admin.headers)
    assert unchanged.json()["templates"] == {}


async def test_templates_options_and_rate_limit_can_be_changed_and_cleared(
    client: AsyncClient, world: World
) -> None:
    integration_url = f"/api/v1/integrations/{world.integration.id}"
    patched = await client.patch(
        integration_url,
        json={"templates": {"title": "{{ payload.name }}"}, "rate_limit_per_minute": 120},
        headers=world.cast.admin.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["templates"] == {"title": "{{ payload.name }}"}
    assert patched.json()["rate_limit_per_minute"] == 120
    response = await client.post(
        world.integration.url, json={"title": "ignored", "name": "From template"}
    )
    assert response.status_code == 202
    cleared = await client.patch(
        integration_url,
        json={"templates": {}, "rate_limit_per_minute": None},
        headers=world.cast.admin.headers,
    )
    assert cleared.json()["templates"] == {}
    assert cleared.json()["rate_limit_per_minute"] is None
    bad_options = await client.patch(
        integration_url, json={"options": {"grouping": "alert"}}, headers=world.cast.admin.headers
    )
    assert bad_options.status_code == 422
    assert bad_options.json()["detail"][0]["loc"] == ["body", "options"]


async def test_the_payload_log_shows_recent_payloads_and_their_mapping_newest_first(
    client: AsyncClient,
    world: World,
    engine: AsyncEngine,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(payload_log, "RING_SIZE", 3)
    pd = await integration_of(engine, clock, world, IntegrationType.PAGERDUTY)
    event = {
        "routing_key": pd.key,
        "event_action": "trigger",
        "dedup_key": "k",
        "payload": {"summary": "s", "source": "h", "severity": "info"},
    }
    for n in range(4):
        later(clock)
        await client.post("/v2/enqueue", json={**event, "dedup_key": f"k{n}"})
    later(clock)
    await client.post("/v2/enqueue", json={**event, "payload": {"summary": "s"}})

    url = f"/api/v1/integrations/{pd.id}/payloads"
    assert (await client.get(url, headers=world.cast.bob.headers)).status_code == 403
    response = await client.get(url, headers=world.cast.admin.headers)
    assert response.status_code == 200
    entries = response.json()
    assert len(entries) == 3
    refused, newest_ok, older_ok = entries
    assert refused["status_code"] == 400
    assert {e["loc"][-1] for e in refused["mapping"]["error"]} == {"source", "severity"}
    assert newest_ok["status_code"] == 202
    assert newest_ok["mapping"]["alerts"][0]["dedup_key"] == "k3"
    assert older_ok["mapping"]["alerts"][0]["dedup_key"] == "k2"
    # The body carries the integration key as routing_key: it is not kept.
    assert pd.key not in newest_ok["body"]
    assert '"dedup_key":"k3"' in newest_ok["body"].replace(" ", "")

    # A generic integration's payloads are logged too.
    await client.post(world.integration.url, json={"title": "x"})
    generic = await client.get(
        f"/api/v1/integrations/{world.integration.id}/payloads",
        headers=world.cast.admin.headers,
    )
    [only] = generic.json()
    assert only["mapping"]["alerts"][0]["status"] == "firing"
    assert only["body_truncated"] is False

    # Big bodies are kept only in part.
    await client.post(world.integration.url, json={"title": "big", "details": {"x": "y" * 70_000}})
    big = await client.get(
        f"/api/v1/integrations/{world.integration.id}/payloads",
        headers=world.cast.admin.headers,
    )
    newest = big.json()[0]
    assert newest["body_truncated"] is True
    assert len(newest["body"]) == payload_log.MAX_BODY_CHARS
