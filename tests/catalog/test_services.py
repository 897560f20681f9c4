"""The services API: registering, changing, archiving and listing services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api_checks import all_pages, assert_rejected
from tests.conftest import count_rows, new_uuid
from tests.factories import Cast, World, make_policy, make_service, make_team
from tocsin.catalog.models import ServiceStatus
from tocsin.clock import FrozenClock

SERVICES = "/api/v1/services"


def new_service(world: World, **fields: Any) -> dict[str, Any]:
    return {
        "name": "Ledger",
        "routing_key": "ledger",
        "team_id": str(world.cast.payments),
        **fields,
    }


async def test_a_manager_registers_a_service_and_anyone_signed_in_reads_it(
    client: AsyncClient, world: World
) -> None:
    cast = world.cast
    response = await client.post(
        SERVICES,
        headers=cast.alice.headers,
        json=new_service(world, description="Double entry", escalation_policy_id=str(world.policy)),
    )
    assert response.status_code == 201, response.text
    service = response.json()
    assert {k: service[k] for k in ("name", "description", "routing_key", "team_id", "status")} == {
        "name": "Ledger",
        "description": "Double entry",
        "routing_key": "ledger",
        "team_id": str(cast.payments),
        "status": "active",
    }
    assert service["escalation_policy_id"] == str(world.policy)
    read = await client.get(f"{SERVICES}/{service['id']}", headers=cast.mallory.headers)
    assert read.status_code == 200
    assert read.json() == service


async def test_alerts_naming_a_new_services_routing_key_reach_it(
    client: AsyncClient, world: World
) -> None:
    created = await client.post(SERVICES, headers=world.cast.alice.headers, json=new_service(world))
    sent = await client.post(world.integration.url, json={"title": "x", "routing_key": "ledger"})
    incident = await client.get(
        f"/api/v1/incidents/{sent.json()['incident_id']}", headers=world.cast.bob.headers
    )
    assert incident.json()["service_id"] == created.json()["id"]


async def test_only_the_teams_managers_or_an_admin_register_services(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    cast = world.cast
    for person in (cast.bob, cast.olive, cast.mallory):
        response = await client.post(SERVICES, headers=person.headers, json=new_service(world))
        assert response.status_code == 403
    assert await count_rows(engine, "services") == 1
    by_admin = await client.post(SERVICES, headers=cast.admin.headers, json=new_service(world))
    assert by_admin.status_code == 201


async def test_a_routing_key_another_service_has_is_a_conflict(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    headers = world.cast.alice.headers
    taken = await client.post(
        SERVICES, headers=headers, json=new_service(world, routing_key="payments-api")
    )
    assert taken.status_code == 409
    assert "payments-api" in taken.json()["detail"]
    assert await count_rows(engine, "services") == 1
    ledger = (await client.post(SERVICES, headers=headers, json=new_service(world))).json()
    renamed = await client.patch(
        f"{SERVICES}/{ledger['id']}", headers=headers, json={"routing_key": "payments-api"}
    )
    assert renamed.status_code == 409
    read = await client.get(f"{SERVICES}/{ledger['id']}", headers=headers)
    assert read.json()["routing_key"] == "ledger"


async def test_an_archived_services_routing_key_stays_taken(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    await make_service(
        engine,
        clock.now(),
        team_id=world.cast.payments,
        routing_key="old",
        status=ServiceStatus.ARCHIVED,
    )
    response = await client.post(
        SERVICES, headers=world.cast.alice.headers, json=new_service(world, routing_key="old")
    )
    assert response.status_code == 409


async def test_it_rejects_bad_fields_naming_them(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    headers = world.cast.admin.headers
    cases: list[tuple[dict[str, Any], str]] = [
        (new_service(world, routing_key="has spaces"), "routing_key"),
        (new_service(world, routing_key=""), "routing_key"),
        (new_service(world, name=""), "name"),
        (new_service(world, status="retired"), "status"),
        (new_service(world, urgency="urgent"), "urgency"),
        (new_service(world, urgency="HIGH"), "urgency"),
        (new_service(world, team_id="payments"), "team_id"),
        (new_service(world, team_id=new_uuid()), "team_id"),
        (new_service(world, escalation_policy_id=new_uuid()), "escalation_policy_id"),
        (new_service(world, colour="red"), "colour"),
        ({"name": "Ledger", "team_id": str(world.cast.payments)}, "routing_key"),
    ]
    for body, field in cases:
        assert_rejected(await client.post(SERVICES, headers=headers, json=body), field)
    assert await count_rows(engine, "services") == 1


async def test_a_service_cannot_use_another_teams_policy(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    storage = await make_team(engine, clock.now(), name="Storage")
    foreign = await make_policy(engine, clock.now(), team_id=storage)
    response = await client.post(
        SERVICES,
        headers=world.cast.admin.headers,
        json=new_service(world, escalation_policy_id=str(foreign)),
    )
    assert_rejected(response, "escalation_policy_id")
    patched = await client.patch(
        f"{SERVICES}/{world.service}",
        headers=world.cast.admin.headers,
        json={"escalation_policy_id": str(foreign)},
    )
    assert_rejected(patched, "escalation_policy_id")


async def test_a_manager_changes_only_the_fields_sent(client: AsyncClient, world: World) -> None:
    url = f"{SERVICES}/{world.service}"
    before = (await client.get(url, headers=world.cast.alice.headers)).json()
    response = await client.patch(
        url,
        headers=world.cast.alice.headers,
        json={"description": "Card payments", "escalation_policy_id": str(world.policy)},
    )
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["description"] == "Card payments"
    assert after["escalation_policy_id"] == str(world.policy)
    assert {k: after[k] for k in ("name", "routing_key", "team_id", "status")} == {
        k: before[k] for k in ("name", "routing_key", "team_id", "status")
    }
    cleared = await client.patch(
        url, headers=world.cast.alice.headers, json={"escalation_policy_id": None}
    )
    assert cleared.json()["escalation_policy_id"] is None


async def test_a_field_may_be_left_out_but_not_set_to_null(
    client: AsyncClient, world: World
) -> None:
    url = f"{SERVICES}/{world.service}"
    for field in ("name", "routing_key", "status", "team_id", "urgency"):
        response = await client.patch(url, headers=world.cast.admin.headers, json={field: None})
        assert_rejected(response, field)


async def test_a_service_pages_by_severity_unless_registered_with_an_urgency(
    client: AsyncClient, world: World
) -> None:
    headers = world.cast.alice.headers
    plain = await client.post(SERVICES, headers=headers, json=new_service(world))
    assert plain.status_code == 201, plain.text
    assert plain.json()["urgency"] == "severity_based"
    batch = await client.post(
        SERVICES,
        headers=headers,
        json=new_service(world, name="Nightly export", routing_key="export", urgency="low"),
    )
    assert batch.status_code == 201, batch.text
    assert batch.json()["urgency"] == "low"
    read = await client.get(f"{SERVICES}/{batch.json()['id']}", headers=world.cast.bob.headers)
    assert read.json()["urgency"] == "low"
    listed = await client.get(SERVICES, headers=world.cast.bob.headers)
    assert {s["routing_key"]: s["urgency"] for s in listed.json()["items"]} == {
        "payments-api": "severity_based",
        "ledger": "severity_based",
        "export": "low",
    }


async def test_a_manager_changes_the_urgency_and_a_bad_value_changes_nothing(
    client: AsyncClient, world: World
) -> None:
    url = f"{SERVICES}/{world.service}"
    headers = world.cast.alice.headers
    changed = await client.patch(url, headers=headers, json={"urgency": "high"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["urgency"] == "high"
    before = (await client.get(url, headers=headers)).json()
    for bad in ("urgent", "", 1, "severity-based"):
        refused = await client.patch(
            url, headers=headers, json={"urgency": bad, "description": "changed"}
        )
        assert_rejected(refused, "urgency")
    assert (await client.get(url, headers=headers)).json() == before
    by_responder = await client.patch(url, headers=world.cast.bob.headers, json={"urgency": "low"})
    assert by_responder.status_code == 403
    assert (await client.get(url, headers=headers)).json()["urgency"] == "high"


async def test_observers_responders_and_outsiders_cannot_change_a_service(
    client: AsyncClient, world: World
) -> None:
    url = f"{SERVICES}/{world.service}"
    for person in (world.cast.bob, world.cast.olive, world.cast.mallory):
        response = await client.patch(url, headers=person.headers, json={"status": "archived"})
        assert response.status_code == 403
        assert (await client.delete(url, headers=person.headers)).status_code == 403
    read = await client.get(url, headers=world.cast.olive.headers)
    assert read.json()["status"] == "active"


async def test_archiving_a_service_stops_routing_to_it(client: AsyncClient, world: World) -> None:
    url = f"{SERVICES}/{world.service}"
    response = await client.patch(
        url, headers=world.cast.alice.headers, json={"status": "archived"}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "archived"
    sent = await client.post(
        world.integration.url, json={"title": "x", "routing_key": "payments-api"}
    )
    assert sent.status_code == 202
    assert sent.json()["incident_id"] is None


async def test_moving_a_service_needs_a_manager_of_both_teams(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    storage = await make_team(engine, clock.now(), name="Storage")
    url = f"{SERVICES}/{world.service}"
    refused = await client.patch(
        url, headers=world.cast.alice.headers, json={"team_id": str(storage)}
    )
    assert refused.status_code == 403
    moved = await client.patch(
        url, headers=world.cast.admin.headers, json={"team_id": str(storage)}
    )
    assert moved.status_code == 200
    assert moved.json()["team_id"] == str(storage)


async def test_moving_a_service_with_its_teams_policy_is_refused(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    url = f"{SERVICES}/{world.service}"
    await client.patch(
        url, headers=world.cast.admin.headers, json={"escalation_policy_id": str(world.policy)}
    )
    storage = await make_team(engine, clock.now(), name="Storage")
    response = await client.patch(
        url, headers=world.cast.admin.headers, json={"team_id": str(storage)}
    )
    assert_rejected(response, "escalation_policy_id")
    assert (await client.get(url, headers=world.cast.admin.headers)).json()["team_id"] == str(
        world.cast.payments
    )


async def test_the_list_filters_by_team_and_status(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    storage = await make_team(engine, clock.now(), name="Storage")
    await make_service(engine, clock.now(), team_id=storage, routing_key="disks")
    await make_service(
        engine,
        clock.now(),
        team_id=world.cast.payments,
        routing_key="legacy",
        status=ServiceStatus.DEPRECATED,
    )
    await make_service(
        engine,
        clock.now(),
        team_id=world.cast.payments,
        routing_key="gone",
        status=ServiceStatus.ARCHIVED,
    )
    headers = world.cast.mallory.headers

    async def keys(**params: str) -> set[str]:
        response = await client.get(SERVICES, headers=headers, params=params)
        assert response.status_code == 200, response.text
        return {s["routing_key"] for s in response.json()["items"]}

    assert await keys() == {"payments-api", "legacy", "gone", "disks"}
    assert await keys(team_id=str(world.cast.payments)) == {"payments-api", "legacy", "gone"}
    assert await keys(status="archived") == {"gone"}
    assert await keys(status="active") == {"payments-api", "disks"}
    assert await keys(status="active", team_id=str(storage)) == {"disks"}
    assert_rejected(await client.get(SERVICES, headers=headers, params={"status": "x"}), "status")


async def test_the_list_pages_with_a_cursor_without_repeats_or_gaps(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    for n in range(6):
        clock.advance(timedelta(minutes=1))
        await make_service(engine, clock.now(), team_id=world.cast.payments, routing_key=f"s{n}")
    services = await all_pages(client, SERVICES, world.cast.bob.headers, limit=2)
    keys = [s["routing_key"] for s in services]
    assert len(keys) == len(set(keys)) == 7
    assert keys[:6] == ["s5", "s4", "s3", "s2", "s1", "s0"]
    filtered = await all_pages(
        client, SERVICES, world.cast.bob.headers, limit=1, params={"status": "active"}
    )
    assert len(filtered) == 7
    bad = await client.get(SERVICES, headers=world.cast.bob.headers, params={"cursor": "junk"})
    assert_rejected(bad, "cursor")
    too_big = await client.get(SERVICES, headers=world.cast.bob.headers, params={"limit": 501})
    assert_rejected(too_big, "limit")


async def test_an_unused_service_is_deleted(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    spare = await make_service(engine, clock.now(), team_id=world.cast.payments, routing_key="x")
    response = await client.delete(f"{SERVICES}/{spare}", headers=world.cast.alice.headers)
    assert response.status_code == 204
    assert (
        await client.get(f"{SERVICES}/{spare}", headers=world.cast.alice.headers)
    ).status_code == 404


async def test_a_service_incidents_refer_to_can_only_be_archived(
    client: AsyncClient, world: World
) -> None:
    await client.post(world.integration.url, json={"title": "x", "routing_key": "payments-api"})
    url = f"{SERVICES}/{world.service}"
    response = await client.delete(url, headers=world.cast.alice.headers)
    assert response.status_code == 409
    assert "archive" in response.json()["detail"]
    assert (await client.get(url, headers=world.cast.alice.headers)).status_code == 200


async def test_without_a_key_the_services_api_answers_401(
    client: AsyncClient, world: World
) -> None:
    assert (await client.get(SERVICES)).status_code == 401
    assert (await client.get(f"{SERVICES}/{world.service}")).status_code == 401
    assert (await client.post(SERVICES, json=new_service(world))).status_code == 401
    response = await client.patch(f"{SERVICES}/{world.service}", json={"status": "archived"})
    assert response.status_code == 401


async def test_an_unknown_service_is_not_found(client: AsyncClient, cast: Cast) -> None:
    url = f"{SERVICES}/{new_uuid()}"
    assert (await client.get(url, headers=cast.admin.headers)).status_code == 404
    patched = await client.patch(url, headers=cast.admin.headers, json={"name": "x"})
    assert patched.status_code == 404
