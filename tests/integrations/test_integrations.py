"""The integrations API: the key shown once, default services, and who may change them."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api_checks import all_pages, assert_rejected
from tests.conftest import count_rows, new_uuid
from tests.factories import World, make_service
from tocsin.clock import FrozenClock

INTEGRATIONS = "/api/v1/integrations"


async def create(client: AsyncClient, world: World, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        INTEGRATIONS, headers=world.cast.admin.headers, json={"name": "Grafana", **fields}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_creation_answers_the_key_and_webhook_url_that_then_take_alerts(
    client: AsyncClient, world: World
) -> None:
    created = await create(client, world)
    assert created["name"] == "Grafana"
    assert created["type"] == "generic"
    assert created["default_service_id"] is None
    assert created["dedup_window_minutes"] == 60
    assert created["active"] is True
    assert created["key"].startswith(created["key_prefix"])
    assert created["webhook_url"] == f"http://test/webhooks/{created['key']}"
    sent = await client.post(
        created["webhook_url"].removeprefix("http://test"),
        json={"title": "x", "routing_key": "payments-api"},
    )
    assert sent.status_code == 202
    assert sent.json()["incident_id"] is not None


async def test_the_key_is_never_shown_again(client: AsyncClient, world: World) -> None:
    created = await create(client, world)
    url = f"{INTEGRATIONS}/{created['id']}"
    answers = [
        (await client.get(url, headers=world.cast.admin.headers)).json(),
        (await client.patch(url, headers=world.cast.admin.headers, json={"name": "G"})).json(),
        *(await all_pages(client, INTEGRATIONS, world.cast.admin.headers, limit=50)),
    ]
    for answer in answers:
        assert "key" not in answer and "webhook_url" not in answer
        assert created["key"] not in str(answer)
    assert {a["id"] for a in answers[2:]} == {created["id"], str(world.integration.id)}


async def test_the_stored_key_is_not_the_key_itself(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    created = await create(client, world)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM integrations"))).all()
    assert created["key"] not in str(rows)


async def test_only_an_admin_creates_or_changes_integrations(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    cast = world.cast
    url = f"{INTEGRATIONS}/{world.integration.id}"
    for person in (cast.alice, cast.bob, cast.olive, cast.mallory):
        made = await client.post(INTEGRATIONS, headers=person.headers, json={"name": "G"})
        assert made.status_code == 403
        changed = await client.patch(url, headers=person.headers, json={"active": False})
        assert changed.status_code == 403
        rotated = await client.post(f"{url}/rotate-key", headers=person.headers)
        assert rotated.status_code == 403
        assert (await client.delete(url, headers=person.headers)).status_code == 403
        assert (await client.get(url, headers=person.headers)).status_code == 200
    assert await count_rows(engine, "integrations") == 1
    assert (await client.post(world.integration.url, json={"title": "x"})).status_code == 202


async def test_it_rejects_bad_fields_naming_them(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    headers = world.cast.admin.headers
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "G", "type": "carrier-pigeon"}, "type"),
        ({"name": "G", "dedup_window_minutes": -1}, "dedup_window_minutes"),
        ({"name": "G", "dedup_window_minutes": 10_081}, "dedup_window_minutes"),
        ({"name": "G", "dedup_window_minutes": "soon"}, "dedup_window_minutes"),
        ({"name": "G", "default_service_id": new_uuid()}, "default_service_id"),
        ({"name": "G", "default_service_id": "payments-api"}, "default_service_id"),
        ({"name": "G", "active": "maybe"}, "active"),
        ({"name": "G", "key": "ik_mine"}, "key"),
    ]
    for body, field in cases:
        assert_rejected(await client.post(INTEGRATIONS, headers=headers, json=body), field)
    assert await count_rows(engine, "integrations") == 1


async def test_patch_sets_the_default_service_and_alerts_follow_it(
    client: AsyncClient, world: World
) -> None:
    url = f"{INTEGRATIONS}/{world.integration.id}"
    response = await client.patch(
        url, headers=world.cast.admin.headers, json={"default_service_id": str(world.service)}
    )
    assert response.status_code == 200, response.text
    assert response.json()["default_service_id"] == str(world.service)
    sent = await client.post(world.integration.url, json={"title": "no routing key"})
    incident = await client.get(
        f"/api/v1/incidents/{sent.json()['incident_id']}", headers=world.cast.admin.headers
    )
    assert incident.json()["service_id"] == str(world.service)


async def test_patch_with_null_clears_the_default_service(
    client: AsyncClient, world: World
) -> None:
    url = f"{INTEGRATIONS}/{world.integration.id}"
    headers = world.cast.admin.headers
    await client.patch(url, headers=headers, json={"default_service_id": str(world.service)})
    cleared = await client.patch(url, headers=headers, json={"default_service_id": None})
    assert cleared.status_code == 200
    assert cleared.json()["default_service_id"] is None
    sent = await client.post(world.integration.url, json={"title": "no routing key"})
    assert sent.json()["incident_id"] is None


async def test_patch_refuses_a_default_service_that_does_not_exist(
    client: AsyncClient, world: World
) -> None:
    url = f"{INTEGRATIONS}/{world.integration.id}"
    headers = world.cast.admin.headers
    await client.patch(url, headers=headers, json={"default_service_id": str(world.service)})
    response = await client.patch(url, headers=headers, json={"default_service_id": new_uuid()})
    assert_rejected(response, "default_service_id")
    read = await client.get(url, headers=headers)
    assert read.json()["default_service_id"] == str(world.service)


async def test_patch_changes_only_the_fields_sent_and_refuses_nulls(
    client: AsyncClient, world: World
) -> None:
    url = f"{INTEGRATIONS}/{world.integration.id}"
    headers = world.cast.admin.headers
    response = await client.patch(url, headers=headers, json={"dedup_window_minutes": 5})
    assert response.json()["dedup_window_minutes"] == 5
    assert response.json()["name"] == "monitoring"
    for field in ("name", "dedup_window_minutes", "active", "auto_resolve"):
        assert_rejected(await client.patch(url, headers=headers, json={field: None}), field)
    assert_rejected(await client.patch(url, headers=headers, json={"type": "generic"}), "type")


async def test_a_deactivated_integration_refuses_alerts_until_reactivated(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    url = f"{INTEGRATIONS}/{world.integration.id}"
    headers = world.cast.admin.headers
    await client.patch(url, headers=headers, json={"active": False})
    assert (await client.post(world.integration.url, json={"title": "x"})).status_code == 404
    assert await count_rows(engine, "alerts") == 0
    await client.patch(url, headers=headers, json={"active": True})
    assert (await client.post(world.integration.url, json={"title": "x"})).status_code == 202


async def test_rotating_the_key_retires_the_old_one_at_once(
    client: AsyncClient, world: World
) -> None:
    response = await client.post(
        f"{INTEGRATIONS}/{world.integration.id}/rotate-key", headers=world.cast.admin.headers
    )
    assert response.status_code == 200
    new_key = response.json()["key"]
    assert new_key != world.integration.key
    assert response.json()["webhook_url"] == f"http://test/webhooks/{new_key}"
    assert (await client.post(world.integration.url, json={"title": "x"})).status_code == 404
    assert (await client.post(f"/webhooks/{new_key}", json={"title": "x"})).status_code == 202


async def test_a_deleted_integrations_key_stops_working(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    response = await client.delete(
        f"{INTEGRATIONS}/{world.integration.id}", headers=world.cast.admin.headers
    )
    assert response.status_code == 204
    assert (await client.post(world.integration.url, json={"title": "y"})).status_code == 404
    assert await count_rows(engine, "integrations") == 0


async def test_an_integration_with_alerts_is_kept_and_may_be_deactivated_instead(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    await client.post(world.integration.url, json={"title": "x", "routing_key": "payments-api"})
    url = f"{INTEGRATIONS}/{world.integration.id}"
    response = await client.delete(url, headers=world.cast.admin.headers)
    assert response.status_code == 409
    assert "active" in response.json()["detail"]
    assert await count_rows(engine, "alerts") == 1
    assert (await client.post(world.integration.url, json={"title": "y"})).status_code == 202


async def test_a_service_an_integration_sends_to_cannot_be_deleted(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    spare = await make_service(engine, clock.now(), team_id=world.cast.payments, routing_key="x")
    await create(client, world, default_service_id=str(spare))
    response = await client.delete(f"/api/v1/services/{spare}", headers=world.cast.admin.headers)
    assert response.status_code == 409
    assert "Grafana" in response.json()["detail"]


async def test_the_list_pages_with_a_cursor(client: AsyncClient, world: World) -> None:
    for n in range(4):
        await create(client, world, name=f"source {n}")
    items = await all_pages(client, INTEGRATIONS, world.cast.bob.headers, limit=2)
    assert len({i["id"] for i in items}) == len(items) == 5


async def test_without_a_key_the_integrations_api_answers_401(
    client: AsyncClient, world: World
) -> None:
    url = f"{INTEGRATIONS}/{world.integration.id}"
    assert (await client.get(INTEGRATIONS)).status_code == 401
    assert (await client.get(url)).status_code == 401
    assert (await client.post(INTEGRATIONS, json={"name": "G"})).status_code == 401
    assert (await client.patch(url, json={"active": False})).status_code == 401
    assert (await client.post(f"{url}/rotate-key")).status_code == 401


async def test_an_unknown_integration_is_not_found(client: AsyncClient, world: World) -> None:
    url = f"{INTEGRATIONS}/{new_uuid()}"
    headers = world.cast.admin.headers
    assert (await client.get(url, headers=headers)).status_code == 404
    assert (await client.patch(url, headers=headers, json={"name": "x"})).status_code == 404
    assert (await client.post(f"{url}/rotate-key", headers=headers)).status_code == 404
