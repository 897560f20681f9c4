"""Suppressed alerts end to end: stored and listed with their reason, no incident, nobody
paged; the order maintenance -> silence -> inhibition; expiry by the worker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.factories import World
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.noise.expiry import end_silences_and_snoozes
from tocsin.worker.context import WorkerContext

ALERT = {
    "title": "Disk full",
    "source": "node-7",
    "routing_key": "payments-api",
    "tags": {"env": "prod", "instance": "db-1", "alertname": "DiskFull"},
}


async def send(client: AsyncClient, world: World, **changes: Any) -> dict[str, Any]:
    response = await client.post(world.integration.url, json={**ALERT, **changes})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def silence(
    client: AsyncClient,
    world: World,
    clock: FrozenClock,
    matchers: list[dict[str, str]],
    **more: Any,
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/silences",
        json={
            "team_id": str(world.cast.payments),
            "matchers": matchers,
            "ends_at": (clock.now() + timedelta(hours=1)).isoformat(),
            "comment": "disk swap on db-1",
            **more,
        },
        headers=world.cast.bob.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def window(client: AsyncClient, world: World, clock: FrozenClock) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/services/{world.service}/maintenance-windows",
        json={
            "starts_at": clock.now().isoformat(),
            "ends_at": (clock.now() + timedelta(hours=1)).isoformat(),
            "description": "database upgrade",
        },
        headers=world.cast.alice.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def inhibition(client: AsyncClient, world: World) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/inhibition-rules",
        json={
            "team_id": str(world.cast.payments),
            "name": "node down mutes its disks",
            "source_matchers": [
                {"field": "tag", "name": "alertname", "op": "=", "value": "NodeDown"}
            ],
            "target_matchers": [
                {"field": "tag", "name": "alertname", "op": "=", "value": "DiskFull"}
            ],
            "equal": ["instance"],
        },
        headers=world.cast.alice.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def worker(engine: AsyncEngine, clock: FrozenClock, settings: Settings) -> WorkerContext:
    return WorkerContext(engine, clock, settings, worker_id="noise-test")


async def test_a_silenced_alert_is_stored_and_listed_but_opens_no_incident(
    client: AsyncClient, world: World, clock: FrozenClock, engine: AsyncEngine
) -> None:
    made = await silence(
        client, world, clock, [{"field": "tag", "name": "instance", "op": "=~", "value": "db-.*"}]
    )
    body = await send(client, world)
    assert body["incident_id"] is None
    assert body["suppressed"]["kind"] == "silence"
    assert body["suppressed"]["id"] == made["id"]
    assert "disk swap on db-1" in body["suppressed"]["reason"]
    assert await count_rows(engine, "incidents") == 0
    assert await count_rows(engine, "escalation_jobs") == 0
    listed = await client.get(
        "/api/v1/alerts", params={"unrouted": "false"}, headers=world.cast.admin.headers
    )
    (alert,) = listed.json()["items"]
    assert (alert["suppressed_kind"], alert["suppressed_by"]) == ("silence", made["id"])
    # An alert the silence does not match opens an incident as usual.
    other = await send(client, world, tags={"instance": "web-1"}, dedup_key="web")
    assert other["incident_id"] is not None
    assert "suppressed" not in other


async def test_the_worker_expires_a_silence_and_alerts_page_again(
    client: AsyncClient,
    world: World,
    clock: FrozenClock,
    engine: AsyncEngine,
    settings: Settings,
) -> None:
    made = await silence(
        client, world, clock, [{"field": "title", "op": "=", "value": "Disk full"}]
    )
    assert (await send(client, world))["incident_id"] is None
    clock.advance(timedelta(hours=1, seconds=1))
    assert await end_silences_and_snoozes(worker(engine, clock, settings))
    shown = await client.get(f"/api/v1/silences/{made['id']}", headers=world.cast.bob.headers)
    assert shown.json()["state"] == "expired"
    assert shown.json()["expired_at"] is not None
    assert (await send(client, world))["incident_id"] is not None


async def test_expiring_a_silence_by_hand_ends_it_at_once(
    client: AsyncClient, world: World, clock: FrozenClock
) -> None:
    made = await silence(client, world, clock, [{"field": "severity", "op": "=", "value": "high"}])
    expired = await client.post(
        f"/api/v1/silences/{made['id']}/expire", headers=world.cast.bob.headers
    )
    assert expired.json()["state"] == "expired"
    assert (await send(client, world, severity="high"))["incident_id"] is not None
    again = await client.post(
        f"/api/v1/silences/{made['id']}/expire", headers=world.cast.bob.headers
    )
    assert again.status_code == 409


async def test_an_alert_in_a_maintenance_window_pages_nobody(
    client: AsyncClient, world: World, clock: FrozenClock, engine: AsyncEngine
) -> None:
    made = await window(client, world, clock)
    body = await send(client, world)
    assert body["suppressed"]["kind"] == "maintenance"
    assert body["suppressed"]["id"] == made["id"]
    assert body["suppressed"]["reason"] == "Payments API is in maintenance: database upgrade"
    assert await count_rows(engine, "incidents") == 0
    clock.advance(timedelta(hours=1))
    assert (await send(client, world))["incident_id"] is not None


async def test_a_firing_source_inhibits_its_target_until_it_resolves(
    client: AsyncClient, world: World
) -> None:
    rule = await inhibition(client, world)
    node_down = {
        "title": "Node down",
        "dedup_key": "node",
        "tags": {"alertname": "NodeDown", "instance": "db-1"},
    }
    source = await send(client, world, **node_down)
    assert source["incident_id"] is not None
    target = await send(client, world)
    assert target["suppressed"] == {
        "kind": "inhibition",
        "id": rule["id"],
        "reason": "inhibited by rule 'node down mutes its disks'",
    }
    # Another instance's disk is not muted by db-1 being down.
    elsewhere = await send(client, world, tags={**ALERT["tags"], "instance": "db-2"})
    assert elsewhere["incident_id"] is not None
    await send(client, world, **node_down, status="resolved")
    assert (await send(client, world))["incident_id"] is not None


async def test_the_order_is_maintenance_then_silence_then_inhibition(
    client: AsyncClient, world: World, clock: FrozenClock
) -> None:
    await inhibition(client, world)
    await send(
        client,
        world,
        title="Node down",
        dedup_key="node",
        tags={"alertname": "NodeDown", "instance": "db-1"},
    )
    made = await silence(
        client, world, clock, [{"field": "tag", "name": "env", "op": "=", "value": "prod"}]
    )
    windowed = await window(client, world, clock)
    assert (await send(client, world))["suppressed"]["kind"] == "maintenance"
    await client.delete(
        f"/api/v1/services/{world.service}/maintenance-windows/{windowed['id']}",
        headers=world.cast.alice.headers,
    )
    assert (await send(client, world))["suppressed"]["kind"] == "silence"
    await client.post(f"/api/v1/silences/{made['id']}/expire", headers=world.cast.bob.headers)
    assert (await send(client, world))["suppressed"]["kind"] == "inhibition"


async def test_simulate_says_why_an_alert_would_be_suppressed(
    client: AsyncClient, world: World, clock: FrozenClock, engine: AsyncEngine
) -> None:
    made = await silence(client, world, clock, [{"field": "source", "op": "=", "value": "node-7"}])
    response = await client.post(
        "/api/v1/simulate",
        json={"integration_id": str(world.integration.id), "payload": ALERT},
        headers=world.cast.bob.headers,
    )
    assert response.status_code == 200, response.text
    (simulated,) = response.json()["alerts"]
    assert simulated["suppressed"]["kind"] == "silence"
    assert simulated["suppressed"]["id"] == made["id"]
    assert simulated["plan"] == []
    assert await count_rows(engine, "alerts") == 0


async def test_bad_silences_get_a_422_naming_the_field(
    client: AsyncClient, world: World, clock: FrozenClock, engine: AsyncEngine
) -> None:
    ends = (clock.now() + timedelta(hours=1)).isoformat()
    cases = [
        ({"matchers": [], "ends_at": ends}, "matchers"),
        ({"matchers": [{"field": "title", "op": "=~", "value": "("}], "ends_at": ends}, "matchers"),
        ({"matchers": [{"field": "colour", "op": "=", "value": "x"}], "ends_at": ends}, "matchers"),
        ({"matchers": [{"field": "tag", "op": "=", "value": "x"}], "ends_at": ends}, "matchers"),
        # Matches everything: refused.
        (
            {"matchers": [{"field": "title", "op": "=~", "value": ".*"}], "ends_at": ends},
            "matchers",
        ),
        (
            {
                "matchers": [{"field": "title", "op": "=", "value": "x"}],
                "starts_at": ends,
                "ends_at": clock.now().isoformat(),
            },
            "",
        ),
    ]
    for body, field in cases:
        response = await client.post(
            "/api/v1/silences",
            json={"team_id": str(world.cast.payments), **body},
            headers=world.cast.bob.headers,
        )
        assert response.status_code == 422, body
        assert field in str(response.json()), response.text
    assert await count_rows(engine, "silences") == 0


async def test_outsiders_may_not_silence_or_see_a_teams_silences(
    client: AsyncClient, world: World, clock: FrozenClock
) -> None:
    made = await silence(client, world, clock, [{"field": "title", "op": "=", "value": "x"}])
    ends = (clock.now() + timedelta(hours=1)).isoformat()
    matchers = [{"field": "title", "op": "=", "value": "x"}]
    as_mallory = await client.post(
        "/api/v1/silences",
        json={"team_id": str(world.cast.payments), "matchers": matchers, "ends_at": ends},
        headers=world.cast.mallory.headers,
    )
    assert as_mallory.status_code == 403
    as_observer = await client.post(
        "/api/v1/silences",
        json={"team_id": str(world.cast.payments), "matchers": matchers, "ends_at": ends},
        headers=world.cast.olive.headers,
    )
    assert as_observer.status_code == 403
    everyone = await client.post(
        "/api/v1/silences",
        json={"matchers": matchers, "ends_at": ends},
        headers=world.cast.bob.headers,
    )
    assert everyone.status_code == 403  # a silence over every team is for admins
    assert (await client.get("/api/v1/silences", headers=world.cast.mallory.headers)).json() == []
    seen = await client.get(f"/api/v1/silences/{made['id']}", headers=world.cast.mallory.headers)
    assert seen.status_code == 403
    expire = await client.post(
        f"/api/v1/silences/{made['id']}/expire", headers=world.cast.mallory.headers
    )
    assert expire.status_code == 403
    window_by_mallory = await client.post(
        f"/api/v1/services/{world.service}/maintenance-windows",
        json={"starts_at": clock.now().isoformat(), "ends_at": ends},
        headers=world.cast.mallory.headers,
    )
    assert window_by_mallory.status_code == 403


async def test_silence_like_this_drafts_a_silence_from_an_incident(
    client: AsyncClient, world: World, clock: FrozenClock
) -> None:
    incident_id = (await send(client, world))["incident_id"]
    draft = await client.get(
        f"/api/v1/incidents/{incident_id}/silence-like-this", headers=world.cast.bob.headers
    )
    assert draft.status_code == 200, draft.text
    body = draft.json()
    assert {"field": "service", "name": "", "op": "=", "value": "Payments API"} in body["matchers"]
    assert {"field": "tag", "name": "instance", "op": "=", "value": "db-1"} in body["matchers"]
    saved = await client.post("/api/v1/silences", json=body, headers=world.cast.bob.headers)
    assert saved.status_code == 201, saved.text
    assert (await send(client, world, dedup_key="again"))["suppressed"]["kind"] == "silence"
