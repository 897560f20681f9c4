"""Notes on an incident: POST /api/v1/incidents/{id}/notes adds a timeline entry of its own
kind, allowed to the same people as the other actions, and the list carries each incident's
service as the detail does."""

from __future__ import annotations

from httpx import AsyncClient

from tests.factories import World
from tests.incidents.test_lifecycle import open_incident


async def test_a_responder_adds_a_note_that_joins_the_timeline(
    client: AsyncClient, world: World
) -> None:
    incident_id = await open_incident(client, world)
    response = await client.post(
        f"/api/v1/incidents/{incident_id}/notes",
        headers=world.cast.bob.headers,
        json={"note": "Rolling back deploy 42"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "open"
    entry = body["timeline"][-1]
    assert (entry["kind"], entry["note"], entry["actor_id"]) == (
        "note",
        "Rolling back deploy 42",
        str(world.cast.bob.id),
    )


async def test_a_blank_note_is_refused_naming_the_field(client: AsyncClient, world: World) -> None:
    incident_id = await open_incident(client, world)
    for body in ({"note": "   "}, {}, {"note": "x" * 10_001}):
        response = await client.post(
            f"/api/v1/incidents/{incident_id}/notes", headers=world.cast.bob.headers, json=body
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][-1] == "note"
    detail = await client.get(f"/api/v1/incidents/{incident_id}", headers=world.cast.bob.headers)
    assert not [e for e in detail.json()["timeline"] if e["kind"] == "note"]


async def test_observers_and_outsiders_may_not_add_notes(client: AsyncClient, world: World) -> None:
    incident_id = await open_incident(client, world)
    for who in (world.cast.olive, world.cast.mallory):
        response = await client.post(
            f"/api/v1/incidents/{incident_id}/notes", headers=who.headers, json={"note": "hi"}
        )
        assert response.status_code == 403


async def test_the_list_gives_each_incident_its_service_team_and_paged_people(
    client: AsyncClient, world: World, escalate: object
) -> None:
    incident_id = await open_incident(client, world)
    await escalate()  # type: ignore[operator]
    listed = await client.get("/api/v1/incidents", headers=world.cast.bob.headers)
    [item] = listed.json()["items"]
    assert item["id"] == incident_id
    assert item["service"] == {
        "id": str(world.service),
        "name": "Payments API",
        "routing_key": "payments-api",
        "team": {"id": str(world.cast.payments), "name": "Payments"},
    }
    assert item["team"] == {"id": str(world.cast.payments), "name": "Payments"}
    assert {p["name"] for p in item["paged"]} == {"Alice", "Bob"}


async def test_mine_lists_what_is_assigned_to_me_or_pages_me_now(
    client: AsyncClient, world: World, escalate: object
) -> None:
    incident_id = await open_incident(client, world)
    await escalate()  # type: ignore[operator]
    mine = await client.get("/api/v1/incidents?mine=true", headers=world.cast.bob.headers)
    assert [i["id"] for i in mine.json()["items"]] == [incident_id]
    olive = await client.get("/api/v1/incidents?mine=true", headers=world.cast.olive.headers)
    assert olive.json()["items"] == []
    await client.post(
        f"/api/v1/incidents/{incident_id}/reassign",
        headers=world.cast.bob.headers,
        json={"user_id": str(world.cast.olive.id)},
    )
    olive = await client.get("/api/v1/incidents?mine=true", headers=world.cast.olive.headers)
    assert [i["id"] for i in olive.json()["items"]] == [incident_id]
