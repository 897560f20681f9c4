"""The escalation policy pages, in-process: the ordered levels editor saves what the API then
shows, bad input is shown beside its row with nothing saved, the Simulate panel shows the
API's dry run, and another team's policy is a 404 page."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World
from tests.ui.support import csrf_of, give_password, sign_in


@pytest.fixture
async def people(engine: AsyncEngine, world: World) -> World:
    cast = world.cast
    await give_password(engine, cast.alice.id, cast.bob.id, cast.olive.id, cast.mallory.id)
    return world


def field_error(page: Response, field_id: str) -> str:
    found = re.search(
        rf'<p class="field-error" id="{re.escape(field_id)}-error"[^>]*>([^<]*)<', page.text
    )
    return html.unescape(found.group(1)) if found else ""


async def api_policy(client: AsyncClient, world: World) -> dict[str, Any]:
    got = await client.get(
        f"/api/v1/escalation-policies/{world.policy}", headers=world.cast.alice.headers
    )
    policy: dict[str, Any] = got.json()
    return policy


def editor_form(token: str, rows: list[tuple[str, str, str]], **extra: str) -> dict[str, str]:
    form = {
        "csrf_token": token,
        "level_rows": str(len(rows)),
        "name": "Default",
        "description": "",
        "repeat_count": "2",
        "ack_timeout_minutes": "",
        "is_default": "1",
        "is_active": "1",
    }
    for i, (order, target, timeout) in enumerate(rows):
        form |= {f"level{i}_order": order, f"level{i}_target": target, f"level{i}_timeout": timeout}
    return form | extra


async def test_the_levels_editor_saves_levels_in_the_order_asked(
    client: AsyncClient, people: World
) -> None:
    cast = people.cast
    await sign_in(client, "alice@example.com")
    url = f"/policies/{people.policy}"
    page = await client.get(url)
    assert page.status_code == 200
    assert "Entire team" in page.text and "Simulate" in page.text
    saved = await client.post(
        url,
        data=editor_form(
            csrf_of(page),
            [
                ("2", "entire_team", "30"),
                ("1", f"user:{cast.bob.id}", "5"),
                ("3", "", "30"),  # the blank row adds nothing
            ],
        ),
    )
    assert saved.status_code == 303
    policy = await api_policy(client, people)
    assert [
        (lv["target_type"], lv["target_id"], lv["timeout_minutes"]) for lv in policy["levels"]
    ] == [
        ("user", str(cast.bob.id), 5),
        ("entire_team", None, 30),
    ]
    assert policy["repeat_count"] == 2
    shown = (await client.get(url)).text
    assert shown.index("Bob") < shown.index("Entire team</span>")


async def test_a_level_can_be_removed(client: AsyncClient, people: World) -> None:
    cast = people.cast
    await sign_in(client, "alice@example.com")
    url = f"/policies/{people.policy}"
    page = await client.get(url)
    await client.post(
        url,
        data=editor_form(
            csrf_of(page), [("1", "entire_team", "30"), ("2", f"user:{cast.bob.id}", "5")]
        ),
    )
    removed = await client.post(
        url,
        data=editor_form(
            csrf_of(page),
            [("1", "entire_team", "30"), ("2", f"user:{cast.bob.id}", "5")],
            level0_remove="1",
        ),
    )
    assert removed.status_code == 303
    [level] = (await api_policy(client, people))["levels"]
    assert level["target_id"] == str(cast.bob.id)


async def test_bad_levels_are_shown_beside_their_row_and_nothing_is_saved(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "alice@example.com")
    url = f"/policies/{people.policy}"
    page = await client.get(url)
    before = await api_policy(client, people)
    outsider = await client.post(
        url,
        data=editor_form(
            csrf_of(page),
            [("1", "entire_team", "0"), ("2", f"user:{people.cast.mallory.id}", "5")],
            repeat_count="12",
        ),
    )
    assert outsider.status_code == 422
    assert "less than or equal to 9" in field_error(outsider, "repeat_count")
    assert "greater than or equal to 1" in field_error(outsider, "level0-timeout")
    not_member = await client.post(
        url,
        data=editor_form(csrf_of(page), [("1", f"user:{people.cast.mallory.id}", "5")]),
    )
    assert not_member.status_code == 422
    assert "is not a member of team" in field_error(not_member, "level0-target")
    nothing = await client.post(url, data=editor_form(csrf_of(page), [("1", "", "30")]))
    assert nothing.status_code == 422
    assert "at least 1 item" in nothing.text
    assert await api_policy(client, people) == before


async def test_the_simulate_panel_shows_who_would_be_paged(
    client: AsyncClient, people: World
) -> None:
    service = await client.patch(
        f"/api/v1/services/{people.service}",
        json={"escalation_policy_id": str(people.policy)},
        headers=people.cast.alice.headers,
    )
    assert service.status_code == 200, service.text
    await sign_in(client, "bob@example.com")
    url = f"/policies/{people.policy}"
    page = await client.get(url)
    assert "payments-api" in page.text  # the sample payload names the policy's service
    payload = '{"title": "Disk full", "routing_key": "payments-api"}'
    shown = await client.post(
        f"{url}/simulate",
        data={
            "csrf_token": csrf_of(page),
            "integration_id": str(people.integration.id),
            "payload": payload,
        },
    )
    assert shown.status_code == 200
    assert "Simulation result" in shown.text and "Disk full" in shown.text
    assert "<strong>Page</strong> level 1" in shown.text
    assert "Alice" in shown.text and "Bob" in shown.text
    incidents = await client.get("/api/v1/incidents", headers=people.cast.bob.headers)
    assert incidents.json()["items"] == []  # nothing was stored


async def test_a_payload_that_is_not_json_is_shown_beside_the_payload(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "bob@example.com")
    url = f"/policies/{people.policy}"
    page = await client.get(url)
    refused = await client.post(
        f"{url}/simulate",
        data={
            "csrf_token": csrf_of(page),
            "integration_id": str(people.integration.id),
            "payload": "{title: nope",
        },
    )
    assert refused.status_code == 422
    assert "is not valid JSON" in field_error(refused, "sim-payload")
    assert "{title: nope" in refused.text


async def test_someone_outside_the_team_gets_404_and_changes_nothing(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "mallory@example.com")
    listed = await client.get("/policies")
    assert f"/policies/{people.policy}" not in listed.text
    url = f"/policies/{people.policy}"
    assert (await client.get(url)).status_code == 404
    token = csrf_of(listed)
    for path in (url, f"{url}/delete", f"{url}/simulate"):
        assert (await client.post(path, data={"csrf_token": token})).status_code == 404
    assert (await api_policy(client, people))["name"] == "Default"


async def test_an_observer_sees_the_policy_but_not_the_editor(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "olive@example.com")
    url = f"/policies/{people.policy}"
    page = await client.get(url)
    assert page.status_code == 200
    assert "Save policy" not in page.text
    refused = await client.post(url, data=editor_form(csrf_of(page), [("1", "entire_team", "1")]))
    assert refused.status_code == 403
    assert (await api_policy(client, people))["levels"][0]["timeout_minutes"] == 30


async def test_a_manager_creates_a_policy_and_lands_in_its_editor(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "alice@example.com")
    page = await client.get("/policies")
    blank = await client.post(
        "/policies",
        data={"csrf_token": csrf_of(page), "team_id": str(people.cast.payments), "name": " "},
    )
    assert blank.status_code == 422
    assert "at least 1 character" in field_error(blank, "new-name")
    made = await client.post(
        "/policies",
        data={"csrf_token": csrf_of(page), "team_id": str(people.cast.payments), "name": "Nights"},
    )
    assert made.status_code == 303
    editor = await client.get(made.headers["location"])
    assert "<h1>Nights</h1>" in editor.text and "Set its levels below" in editor.text
