"""The incident list and incident page, in-process: what each member of the cast sees and
may do there is what the API allows them, and bad input is shown beside its field."""

from __future__ import annotations

import re

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Person, World
from tests.ui.support import csrf_of, give_password, sign_in

ROW_ID = re.compile(r'data-incident-id="([^"]+)"')


@pytest.fixture
async def people(engine: AsyncEngine, world: World) -> World:
    cast = world.cast
    await give_password(
        engine, cast.admin.id, cast.alice.id, cast.bob.id, cast.olive.id, cast.mallory.id
    )
    return world


async def open_incident(client: AsyncClient, world: World, title: str = "Checkout down") -> str:
    response = await client.post(
        world.integration.url,
        json={
            "title": title,
            "routing_key": "payments-api",
            "details": {"runbook": "<b>bold</b>", "nested": {"level": [1, 2]}},
        },
    )
    assert response.status_code == 202, response.text
    incident_id: str = response.json()["incident_id"]
    return incident_id


async def status_of(client: AsyncClient, incident_id: str, who: Person) -> str:
    detail = await client.get(f"/api/v1/incidents/{incident_id}", headers=who.headers)
    status: str = detail.json()["status"]
    return status


async def test_the_list_shows_the_incident_with_its_service_team_and_status(
    client: AsyncClient, people: World
) -> None:
    incident_id = await open_incident(client, people)
    await sign_in(client, "bob@example.com")
    page = await client.get("/incidents")
    assert page.status_code == 200
    assert f'id="incident-{incident_id}"' in page.text
    assert "Checkout down" in page.text and "Payments API" in page.text
    assert "status-open" in page.text and ">Open" in page.text.replace("\n", "").replace(" ", "")
    assert (await client.get("/")).text.count(f'id="incident-{incident_id}"') == 1


async def test_someone_outside_the_team_sees_no_row_and_gets_404_on_the_page(
    client: AsyncClient, people: World
) -> None:
    incident_id = await open_incident(client, people)
    await sign_in(client, "mallory@example.com")
    assert f"incident-{incident_id}" not in (await client.get("/incidents")).text
    page = await client.get(f"/incidents/{incident_id}")
    assert page.status_code == 404
    assert "Checkout down" not in page.text
    assert (await client.get(f"/incidents/{incident_id}/live")).status_code == 404
    assert (await client.get(f"/incidents/{incident_id}/row")).status_code == 404
    token = csrf_of(await client.get("/incidents"))
    refused = await client.post(f"/incidents/{incident_id}/resolve", data={"csrf_token": token})
    assert refused.status_code == 404
    assert await status_of(client, incident_id, people.cast.bob) == "open"


async def test_an_observer_sees_the_incident_but_cannot_act_on_it(
    client: AsyncClient, people: World
) -> None:
    incident_id = await open_incident(client, people)
    await sign_in(client, "olive@example.com")
    page = await client.get(f"/incidents/{incident_id}")
    assert page.status_code == 200
    assert "Checkout down" in page.text
    assert ">Acknowledge</button>" not in page.text
    assert "only the team's responders and managers can act" in page.text
    refused = await client.post(
        f"/incidents/{incident_id}/acknowledge", data={"csrf_token": csrf_of(page)}
    )
    assert refused.status_code == 403
    assert "observers may only read" in refused.text
    note = await client.post(
        f"/incidents/{incident_id}/notes", data={"csrf_token": csrf_of(page), "note": "hi"}
    )
    assert note.status_code == 403
    assert await status_of(client, incident_id, people.cast.bob) == "open"


async def test_acknowledging_on_the_page_is_what_the_api_records(
    client: AsyncClient, people: World
) -> None:
    incident_id = await open_incident(client, people)
    await sign_in(client, "bob@example.com")
    page = await client.get(f"/incidents/{incident_id}")
    acked = await client.post(
        f"/incidents/{incident_id}/acknowledge", data={"csrf_token": csrf_of(page)}
    )
    assert acked.status_code == 303
    assert acked.headers["location"] == f"/incidents/{incident_id}?done=acknowledged"
    detail = (
        await client.get(f"/api/v1/incidents/{incident_id}", headers=people.cast.bob.headers)
    ).json()
    assert detail["status"] == "acknowledged"
    entry = detail["timeline"][-1]
    assert (entry["kind"], entry["actor_id"]) == ("acknowledged", str(people.cast.bob.id))
    again = await client.post(
        f"/incidents/{incident_id}/acknowledge", data={"csrf_token": csrf_of(page)}
    )
    assert again.status_code == 409
    assert "cannot acknowledge an incident that is acknowledged" in again.text


async def test_an_action_without_the_csrf_token_is_refused_and_changes_nothing(
    client: AsyncClient, people: World
) -> None:
    incident_id = await open_incident(client, people)
    await sign_in(client, "bob@example.com")
    for action, data in (("acknowledge", {}), ("notes", {"note": "x"}), ("resolve", {})):
        refused = await client.post(f"/incidents/{incident_id}/{action}", data=data)
        assert refused.status_code == 403
        forged = await client.post(
            f"/incidents/{incident_id}/{action}", data={**data, "csrf_token": "forged.token"}
        )
        assert forged.status_code == 403
    detail = (
        await client.get(f"/api/v1/incidents/{incident_id}", headers=people.cast.bob.headers)
    ).json()
    assert detail["status"] == "open"
    assert not [e for e in detail["timeline"] if e["kind"] == "note"]


async def test_a_note_added_on_the_page_joins_the_timeline(
    client: AsyncClient, people: World
) -> None:
    incident_id = await open_incident(client, people)
    await sign_in(client, "bob@example.com")
    page = await client.get(f"/incidents/{incident_id}")
    added = await client.post(
        f"/incidents/{incident_id}/notes",
        data={"csrf_token": csrf_of(page), "note": "Rolled back <deploy> 42"},
    )
    assert added.status_code == 303
    shown = await client.get(f"/incidents/{incident_id}")
    assert "Rolled back &lt;deploy&gt; 42" in shown.text


async def test_an_empty_note_is_shown_beside_the_field_and_nothing_is_kept(
    client: AsyncClient, people: World
) -> None:
    incident_id = await open_incident(client, people)
    await sign_in(client, "bob@example.com")
    page = await client.get(f"/incidents/{incident_id}")
    refused = await client.post(
        f"/incidents/{incident_id}/notes", data={"csrf_token": csrf_of(page), "note": "  "}
    )
    assert refused.status_code == 422
    assert 'id="note-error"' in refused.text and "a note needs some text" in refused.text
    assert 'aria-invalid="true" aria-describedby="note-error"' in refused.text


async def test_reassigning_without_a_target_says_so_beside_the_field(
    client: AsyncClient, people: World
) -> None:
    incident_id = await open_incident(client, people)
    await sign_in(client, "bob@example.com")
    page = await client.get(f"/incidents/{incident_id}")
    refused = await client.post(
        f"/incidents/{incident_id}/reassign",
        data={"csrf_token": csrf_of(page), "target": "", "note": "please take it"},
    )
    assert refused.status_code == 422
    assert 'id="target-error"' in refused.text
    assert "give exactly one of user_id or escalation_policy_id" in refused.text
    assert 'value="please take it"' in refused.text  # what was typed stays


async def test_reassigning_to_a_person_pages_them(client: AsyncClient, people: World) -> None:
    incident_id = await open_incident(client, people)
    await sign_in(client, "bob@example.com")
    page = await client.get(f"/incidents/{incident_id}")
    assert f'value="user:{people.cast.alice.id}"' in page.text
    assert f'value="policy:{people.policy}"' in page.text
    done = await client.post(
        f"/incidents/{incident_id}/reassign",
        data={"csrf_token": csrf_of(page), "target": f"user:{people.cast.alice.id}"},
    )
    assert done.status_code == 303
    detail = (
        await client.get(f"/api/v1/incidents/{incident_id}", headers=people.cast.bob.headers)
    ).json()
    assert detail["assigned_user_id"] == str(people.cast.alice.id)


async def test_alert_details_are_shown_escaped(client: AsyncClient, people: World) -> None:
    incident_id = await open_incident(client, people, title="<script>alert(1)</script>")
    await sign_in(client, "bob@example.com")
    page = await client.get(f"/incidents/{incident_id}")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in page.text


async def test_mine_lists_only_what_pages_me_at_the_current_level(
    client: AsyncClient, people: World, escalate: object
) -> None:
    incident_id = await open_incident(client, people)
    await escalate()  # type: ignore[operator]
    await sign_in(client, "bob@example.com")  # the default policy pages the entire team
    mine = await client.get("/incidents?mine=1")
    assert f"incident-{incident_id}" in mine.text
    assert 'name="mine" value="1" checked' in mine.text
    await sign_in(client, "admin@example.com")  # an admin, not on the team: never paged
    assert f"incident-{incident_id}" not in (await client.get("/incidents?mine=1")).text
    assert f"incident-{incident_id}" in (await client.get("/incidents")).text


async def test_a_row_that_no_longer_matches_the_filters_is_answered_empty(
    client: AsyncClient, people: World
) -> None:
    incident_id = await open_incident(client, people)
    await sign_in(client, "bob@example.com")
    matching = await client.get(f"/incidents/{incident_id}/row?status=open")
    assert matching.status_code == 200 and f'id="incident-{incident_id}"' in matching.text
    gone = await client.get(f"/incidents/{incident_id}/row?status=resolved")
    assert gone.status_code == 204


async def test_a_filter_value_that_is_no_choice_is_a_422_page(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "bob@example.com")
    response = await client.get("/incidents?status=sleeping")
    assert response.status_code == 422
    assert "&#39;sleeping&#39; is not a status" in response.text


async def test_times_are_shown_in_the_viewers_zone_with_the_zone_named(
    client: AsyncClient, people: World
) -> None:
    incident_id = await open_incident(client, people)
    await client.patch(
        f"/api/v1/users/{people.cast.bob.id}",
        headers=people.cast.bob.headers,
        json={"time_zone": "Asia/Tokyo"},
    )
    await sign_in(client, "bob@example.com")
    page = await client.get(f"/incidents/{incident_id}")
    # The frozen clock says 09:00 UTC: 18:00 in Tokyo.
    assert "18:00 JST" in page.text
    assert "Times in Asia/Tokyo" in page.text


async def test_pages_are_paginated(client: AsyncClient, people: World) -> None:
    for n in range(52):
        await open_incident(client, people, title=f"Disk {n} full")
    await sign_in(client, "bob@example.com")
    first = await client.get("/incidents")
    assert "Older →" in first.text
    older = first.text.split('href="/incidents?cursor=')[1].split('"')[0]
    second = await client.get(f"/incidents?cursor={older}")
    on_first, on_second = set(ROW_ID.findall(first.text)), set(ROW_ID.findall(second.text))
    assert (len(on_first), len(on_second)) == (50, 2)
    assert not on_first & on_second
    assert "Older →" not in second.text
