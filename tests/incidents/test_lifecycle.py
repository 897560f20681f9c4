"""Acknowledge, resolve, close and reassign through the API: who may, from which state, and
what the timeline records."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Person, World
from tocsin.clock import FrozenClock


async def open_incident(client: AsyncClient, world: World, title: str = "Down") -> str:
    response = await client.post(
        world.integration.url, json={"title": title, "routing_key": "payments-api"}
    )
    incident_id: str = response.json()["incident_id"]
    return incident_id


async def act(
    client: AsyncClient, incident_id: str, action: str, who: Person, body: Any = None
) -> Any:
    return await client.post(
        f"/api/v1/incidents/{incident_id}/{action}", headers=who.headers, json=body
    )


async def test_a_responder_acknowledges_and_the_timeline_says_who_and_when(
    client: AsyncClient, world: World, clock: FrozenClock, engine: AsyncEngine
) -> None:
    incident_id = await open_incident(client, world)
    clock.advance(timedelta(minutes=3))
    response = await act(client, incident_id, "acknowledge", world.cast.bob, {"note": "on it"})
    assert response.status_code == 200
    incident = response.json()
    assert incident["status"] == "acknowledged"
    assert incident["acknowledged_at"] == clock.now().isoformat().replace("+00:00", "Z")
    entry = incident["timeline"][-1]
    assert entry["kind"] == "acknowledged"
    assert entry["actor_type"] == "user"
    assert entry["actor_id"] == str(world.cast.bob.id)
    assert (entry["old_status"], entry["new_status"], entry["note"]) == (
        "open",
        "acknowledged",
        "on it",
    )
    async with engine.connect() as conn:
        pending = await conn.execute(
            text("SELECT count(*) FROM escalation_jobs WHERE cancelled_at IS NULL")
        )
        assert pending.scalar_one() == 0


async def test_an_action_takes_an_empty_body(client: AsyncClient, world: World) -> None:
    incident_id = await open_incident(client, world)
    response = await client.post(
        f"/api/v1/incidents/{incident_id}/resolve", headers=world.cast.alice.headers
    )
    assert response.status_code == 200
    assert response.json()["status"] == "resolved"


async def test_the_whole_lifecycle_runs_in_order(client: AsyncClient, world: World) -> None:
    incident_id = await open_incident(client, world)
    for action, status in (
        ("acknowledge", "acknowledged"),
        ("resolve", "resolved"),
        ("close", "closed"),
    ):
        response = await act(client, incident_id, action, world.cast.bob)
        assert response.json()["status"] == status
    kinds = [e["kind"] for e in response.json()["timeline"]]
    assert kinds[-3:] == ["acknowledged", "resolved", "closed"]
    assert response.json()["closed_at"] is not None


@pytest.mark.parametrize(
    ("steps", "illegal"),
    [
        ([], "close"),
        (["acknowledge"], "acknowledge"),
        (["resolve"], "acknowledge"),
        (["resolve"], "resolve"),
        (["resolve", "close"], "resolve"),
        (["resolve", "close"], "close"),
    ],
)
async def test_an_illegal_transition_answers_409_and_changes_nothing(
    client: AsyncClient, world: World, steps: list[str], illegal: str
) -> None:
    incident_id = await open_incident(client, world)
    for step in steps:
        assert (await act(client, incident_id, step, world.cast.bob)).status_code == 200
    before = (
        await client.get(f"/api/v1/incidents/{incident_id}", headers=world.cast.bob.headers)
    ).json()
    response = await act(client, incident_id, illegal, world.cast.bob)
    assert response.status_code == 409
    assert illegal in response.json()["detail"]
    after = (
        await client.get(f"/api/v1/incidents/{incident_id}", headers=world.cast.bob.headers)
    ).json()
    assert after == before


async def test_an_observer_may_read_but_not_act(client: AsyncClient, world: World) -> None:
    incident_id = await open_incident(client, world)
    olive = world.cast.olive
    assert (
        await client.get(f"/api/v1/incidents/{incident_id}", headers=olive.headers)
    ).status_code == 200
    response = await act(client, incident_id, "acknowledge", olive)
    assert response.status_code == 403
    assert "observer" in response.json()["detail"]


async def test_someone_outside_the_team_can_neither_see_nor_act(
    client: AsyncClient, world: World
) -> None:
    incident_id = await open_incident(client, world)
    mallory = world.cast.mallory
    assert (
        await client.get(f"/api/v1/incidents/{incident_id}", headers=mallory.headers)
    ).status_code == 403
    assert (await act(client, incident_id, "resolve", mallory)).status_code == 403
    listed = await client.get("/api/v1/incidents", headers=mallory.headers)
    assert listed.json()["items"] == []


async def test_an_admin_may_act_on_any_team(client: AsyncClient, world: World) -> None:
    incident_id = await open_incident(client, world)
    response = await act(client, incident_id, "acknowledge", world.cast.admin)
    assert response.status_code == 200


async def test_without_a_key_the_api_answers_401(client: AsyncClient, world: World) -> None:
    incident_id = await open_incident(client, world)
    assert (await client.get("/api/v1/incidents")).status_code == 401
    response = await client.post(f"/api/v1/incidents/{incident_id}/acknowledge")
    assert response.status_code == 401
    bad = await client.get("/api/v1/incidents", headers={"Authorization": "Bearer tk_wrong"})
    assert bad.status_code == 401


async def test_an_unknown_incident_answers_404(client: AsyncClient, world: World) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    response = await act(client, missing, "acknowledge", world.cast.admin)
    assert response.status_code == 404


async def test_reassign_sets_the_assignee_and_records_the_change(
    client: AsyncClient, world: World, escalate: Any
) -> None:
    incident_id = await open_incident(client, world)
    response = await act(
        client, incident_id, "reassign", world.cast.bob, {"user_id": str(world.cast.alice.id)}
    )
    assert response.status_code == 200
    assert response.json()["assigned_user_id"] == str(world.cast.alice.id)
    *_, entry = response.json()["timeline"]
    assert entry["kind"] == "reassigned"
    assert entry["data"]["to_user_id"] == str(world.cast.alice.id)
    # The worker pages the new assignee, and the policy stops escalating (tests/escalation).
    await escalate()
    detail = await client.get(f"/api/v1/incidents/{incident_id}", headers=world.cast.bob.headers)
    *_, paged = detail.json()["timeline"]
    assert paged["kind"] == "paged"
    assert paged["data"]["user_ids"] == [str(world.cast.alice.id)]


async def test_reassign_to_a_user_who_does_not_exist_answers_422(
    client: AsyncClient, world: World
) -> None:
    incident_id = await open_incident(client, world)
    response = await act(
        client,
        incident_id,
        "reassign",
        world.cast.bob,
        {"user_id": "00000000-0000-4000-8000-000000000000"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "user_id"]


async def test_reassign_of_a_resolved_incident_answers_409(
    client: AsyncClient, world: World
) -> None:
    incident_id = await open_incident(client, world)
    await act(client, incident_id, "resolve", world.cast.bob)
    response = await act(
        client, incident_id, "reassign", world.cast.bob, {"user_id": str(world.cast.alice.id)}
    )
    assert response.status_code == 409


async def test_acknowledge_and_resolve_at_once_leave_a_consistent_incident(
    client: AsyncClient, world: World
) -> None:
    incident_id = await open_incident(client, world)
    ack, resolve = await asyncio.gather(
        act(client, incident_id, "acknowledge", world.cast.bob),
        act(client, incident_id, "resolve", world.cast.alice),
    )
    assert resolve.status_code == 200
    assert ack.status_code in (200, 409)
    final = (
        await client.get(f"/api/v1/incidents/{incident_id}", headers=world.cast.bob.headers)
    ).json()
    assert final["status"] == "resolved"
    changes = [e["new_status"] for e in final["timeline"] if e["kind"] != "escalation_scheduled"]
    assert changes[-1] == "resolved"


async def test_the_list_filters_and_pages(client: AsyncClient, world: World) -> None:
    ids = [await open_incident(client, world, title=f"incident {n}") for n in range(5)]
    await act(client, ids[0], "acknowledge", world.cast.bob)
    acknowledged = await client.get(
        "/api/v1/incidents", params={"status": "acknowledged"}, headers=world.cast.bob.headers
    )
    assert [i["id"] for i in acknowledged.json()["items"]] == [ids[0]]
    by_service = await client.get(
        "/api/v1/incidents",
        params={"service_id": str(world.service), "team_id": str(world.cast.payments)},
        headers=world.cast.bob.headers,
    )
    assert len(by_service.json()["items"]) == 5
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (
            await client.get("/api/v1/incidents", params=params, headers=world.cast.bob.headers)
        ).json()
        assert len(page["items"]) <= 2
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
    assert len(seen) == 5


async def test_a_bad_cursor_answers_422(client: AsyncClient, world: World) -> None:
    response = await client.get(
        "/api/v1/incidents", params={"cursor": "garbage!"}, headers=world.cast.bob.headers
    )
    assert response.status_code == 422
