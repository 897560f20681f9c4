"""The incident page's Add responder and Priority forms: they act as the API does, and a
bad choice is said beside its field with nothing changed."""

from __future__ import annotations

from httpx import AsyncClient

from tests.factories import World
from tests.ui.support import csrf_of, sign_in
from tests.ui.test_incident_pages import open_incident, people  # noqa: F401


async def test_adding_a_responder_from_the_incident_page(
    client: AsyncClient,
    people: World,  # noqa: F811
) -> None:
    incident_id = await open_incident(client, people)
    await sign_in(client, "bob@example.com")
    page = await client.get(f"/incidents/{incident_id}")
    assert "Add responder" in page.text
    done = await client.post(
        f"/incidents/{incident_id}/responders",
        data={"csrf_token": csrf_of(page), "responder": f"user:{people.cast.alice.id}"},
    )
    assert done.status_code == 303
    shown = await client.get(f"/incidents/{incident_id}")
    assert "Asked for Alice as a responder" in shown.text


async def test_a_responder_of_no_fitting_kind_is_said_beside_the_field(
    client: AsyncClient,
    people: World,  # noqa: F811
) -> None:
    incident_id = await open_incident(client, people)
    await sign_in(client, "bob@example.com")
    page = await client.get(f"/incidents/{incident_id}")
    refused = await client.post(
        f"/incidents/{incident_id}/responders",
        data={"csrf_token": csrf_of(page), "responder": f"user:{people.cast.mallory.id}"},
    )
    assert refused.status_code == 422
    assert 'id="responder-error"' in refused.text
    assert "not a manager or responder" in refused.text
    detail = await client.get(f"/api/v1/incidents/{incident_id}", headers=people.cast.bob.headers)
    assert "responder_added" not in [e["kind"] for e in detail.json()["timeline"]]


async def test_changing_the_priority_from_the_incident_page(
    client: AsyncClient,
    people: World,  # noqa: F811
) -> None:
    incident_id = await open_incident(client, people)
    await sign_in(client, "bob@example.com")
    page = await client.get(f"/incidents/{incident_id}")
    done = await client.post(
        f"/incidents/{incident_id}/priority",
        data={"csrf_token": csrf_of(page), "priority": "low"},
    )
    assert done.status_code == 303
    shown = await client.get(f"/incidents/{incident_id}")
    assert "Priority changed from" in shown.text
    assert "to low" in shown.text
    refused = await client.post(
        f"/incidents/{incident_id}/priority",
        data={"csrf_token": csrf_of(shown), "priority": "urgent"},
    )
    assert refused.status_code == 422
    assert 'id="priority-error"' in refused.text
