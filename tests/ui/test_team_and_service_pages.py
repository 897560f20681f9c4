"""The team and service pages, in-process: anyone signed in reads them as the API lets them,
a team's managers (and admins) change them, someone outside the team is refused and nothing
changes, and bad input is shown beside its field with the API's message."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World, make_team
from tests.ui.support import csrf_of, give_password, sign_in
from tocsin.clock import FrozenClock
from tocsin.teams.models import TeamRole


@pytest.fixture
async def people(engine: AsyncEngine, world: World) -> World:
    cast = world.cast
    await give_password(
        engine, cast.admin.id, cast.alice.id, cast.bob.id, cast.olive.id, cast.mallory.id
    )
    return world


async def api_get(client: AsyncClient, world: World, path: str) -> object:
    response = await client.get(path, headers=world.cast.admin.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def token_for(client: AsyncClient, path: str) -> str:
    return csrf_of(await client.get(path))


# Teams


async def test_the_team_list_and_page_show_members_roles_and_tags(
    client: AsyncClient, people: World
) -> None:
    payments = people.cast.payments
    await client.post(
        f"/api/v1/teams/{payments}/tags",
        headers=people.cast.admin.headers,
        json={"key": "env", "value": "prod"},
    )
    await sign_in(client, "bob@example.com")
    listing = await client.get("/teams")
    assert listing.status_code == 200
    assert f'href="/teams/{payments}"' in listing.text and "Payments" in listing.text
    assert "Responder" in listing.text  # Bob's role
    page = await client.get(f"/teams/{payments}")
    assert page.status_code == 200
    for name in ("Alice", "Bob", "Olive"):
        assert name in page.text
    assert "env=prod" in page.text and "Payments API" in page.text
    # A responder reads, but is offered no form that changes the team.
    assert f'action="/teams/{payments}/members"' not in page.text
    assert "Only the team's managers" in page.text


async def test_a_manager_adds_a_member_changes_the_role_and_removes_them(
    client: AsyncClient, people: World
) -> None:
    cast, payments = people.cast, people.cast.payments
    await sign_in(client, "alice@example.com")
    token = await token_for(client, f"/teams/{payments}")
    added = await client.post(
        f"/teams/{payments}/members",
        data={"csrf_token": token, "user_id": str(cast.mallory.id), "role": "observer"},
    )
    assert added.status_code == 303
    members = await api_get(client, people, f"/api/v1/teams/{payments}/members")
    roles = {m["user_id"]: m["role"] for m in members["items"]}  # type: ignore[index]
    assert roles[str(cast.mallory.id)] == "observer"
    changed = await client.post(
        f"/teams/{payments}/members/{cast.mallory.id}/role",
        data={"csrf_token": token, "role": "responder"},
    )
    assert changed.status_code == 303
    page = await client.get(changed.headers["location"])
    assert "Role changed." in page.text
    members = await api_get(client, people, f"/api/v1/teams/{payments}/members")
    roles = {m["user_id"]: m["role"] for m in members["items"]}  # type: ignore[index]
    assert roles[str(cast.mallory.id)] == "responder"
    removed = await client.post(
        f"/teams/{payments}/members/{cast.mallory.id}/remove", data={"csrf_token": token}
    )
    assert removed.status_code == 303
    members = await api_get(client, people, f"/api/v1/teams/{payments}/members")
    assert str(cast.mallory.id) not in {m["user_id"] for m in members["items"]}  # type: ignore[index]


async def test_a_member_of_another_team_is_refused_and_nothing_changes(
    client: AsyncClient, people: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    cast, payments = people.cast, people.cast.payments
    # Mallory manages a team of her own: that gives her nothing over Payments.
    await make_team(engine, clock.now(), name="Growth", members={cast.mallory.id: TeamRole.MANAGER})
    await sign_in(client, "mallory@example.com")
    page = await client.get(f"/teams/{payments}")
    assert page.status_code == 200  # teams are readable by anyone signed in, as in the API
    assert f'action="/teams/{payments}/tags"' not in page.text
    token = csrf_of(page)
    attempts = [
        (f"/teams/{payments}", {"name": "Mine now", "description": ""}),
        (f"/teams/{payments}/members", {"user_id": str(cast.mallory.id), "role": "manager"}),
        (f"/teams/{payments}/members/{cast.bob.id}/role", {"role": "observer"}),
        (f"/teams/{payments}/members/{cast.bob.id}/remove", {}),
        (f"/teams/{payments}/tags", {"tag_key": "stolen", "tag_value": "yes"}),
        (f"/teams/{payments}/delete", {}),
    ]
    for path, data in attempts:
        refused = await client.post(path, data={"csrf_token": token, **data})
        assert refused.status_code == 403, path
        assert "manager of this team or an administrator" in refused.text or (
            "only an administrator" in refused.text
        )
    team = await api_get(client, people, f"/api/v1/teams/{payments}")
    assert team["name"] == "Payments"  # type: ignore[index]
    members = await api_get(client, people, f"/api/v1/teams/{payments}/members")
    roles = {m["user_id"]: m["role"] for m in members["items"]}  # type: ignore[index]
    assert roles[str(cast.bob.id)] == "responder" and str(cast.mallory.id) not in roles
    tags = await api_get(client, people, f"/api/v1/teams/{payments}/tags")
    assert tags["items"] == []  # type: ignore[index]


async def test_bad_team_input_is_shown_beside_the_field_and_nothing_is_saved(
    client: AsyncClient, people: World
) -> None:
    payments = people.cast.payments
    await sign_in(client, "alice@example.com")
    token = await token_for(client, f"/teams/{payments}")
    blank = await client.post(
        f"/teams/{payments}", data={"csrf_token": token, "name": "   ", "description": "new"}
    )
    assert blank.status_code == 422
    assert 'id="name-error"' in blank.text and "at least 1 character" in blank.text
    assert 'aria-invalid="true" aria-describedby="name-error"' in blank.text
    no_key = await client.post(
        f"/teams/{payments}/tags", data={"csrf_token": token, "tag_key": "", "tag_value": "x"}
    )
    assert no_key.status_code == 422
    assert 'id="tag_key-error"' in no_key.text
    nobody = await client.post(
        f"/teams/{payments}/members", data={"csrf_token": token, "user_id": "", "role": "manager"}
    )
    assert nobody.status_code == 422 and 'id="user_id-error"' in nobody.text
    team = await api_get(client, people, f"/api/v1/teams/{payments}")
    assert team == {**team, "name": "Payments", "description": ""}  # type: ignore[dict-item]


async def test_only_an_admin_creates_a_team(client: AsyncClient, people: World) -> None:
    await sign_in(client, "alice@example.com")
    token = await token_for(client, "/teams")
    assert 'action="/teams"' not in (await client.get("/teams")).text
    refused = await client.post("/teams", data={"csrf_token": token, "name": "Rogue"})
    assert refused.status_code == 403
    await sign_in(client, "admin@example.com")
    token = await token_for(client, "/teams")
    taken = await client.post("/teams", data={"csrf_token": token, "name": "Payments"})
    assert taken.status_code == 409 and "already exists" in taken.text
    made = await client.post("/teams", data={"csrf_token": token, "name": "Search"})
    assert made.status_code == 303
    assert "Search" in (await client.get(made.headers["location"])).text
    teams = await api_get(client, people, "/api/v1/teams")
    assert sorted(t["name"] for t in teams["items"]) == ["Payments", "Search"]  # type: ignore[index]


async def test_a_team_form_without_the_csrf_token_is_refused(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "alice@example.com")
    refused = await client.post(
        f"/teams/{people.cast.payments}/tags", data={"tag_key": "a", "tag_value": "b"}
    )
    assert refused.status_code == 403
    tags = await api_get(client, people, f"/api/v1/teams/{people.cast.payments}/tags")
    assert tags["items"] == []  # type: ignore[index]


# Services


async def test_the_service_list_and_page_show_key_policy_urgency_and_status(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "olive@example.com")
    listing = await client.get("/services")
    assert listing.status_code == 200
    assert "Payments API" in listing.text and "payments-api" in listing.text
    assert "New service" not in listing.text  # an observer manages nothing
    page = await client.get(f"/services/{people.service}")
    assert page.status_code == 200
    for text in ("payments-api", "Payments", "By severity", "Active"):
        assert text in page.text
    assert f'href="/services/{people.service}/edit"' not in page.text
    assert (await client.get(f"/services/{people.service}/edit")).status_code == 403


async def test_a_manager_creates_and_edits_a_service(client: AsyncClient, people: World) -> None:
    payments = people.cast.payments
    await sign_in(client, "alice@example.com")
    form = await client.get(f"/services/new?team={payments}")
    assert form.status_code == 200
    for label in ("Name", "Routing key", "Team", "Escalation policy", "Urgency", "Status"):
        assert f">{label}</label>" in form.text
    made = await client.post(
        "/services",
        data={
            "csrf_token": csrf_of(form),
            "name": "Ledger",
            "routing_key": "ledger",
            "team_id": str(payments),
            "escalation_policy_id": str(people.policy),
            "urgency": "high",
            "status": "active",
            "description": "",
        },
    )
    assert made.status_code == 303, made.text
    service_id = made.headers["location"].split("/")[2].split("?")[0]
    shown = await client.get(made.headers["location"])
    assert "Service created." in shown.text and "Always high" in shown.text
    edit = await client.get(f"/services/{service_id}/edit")
    assert 'value="ledger"' in edit.text
    saved = await client.post(
        f"/services/{service_id}",
        data={
            "csrf_token": csrf_of(edit),
            "name": "Ledger",
            "routing_key": "ledger-v2",
            "team_id": str(payments),
            "escalation_policy_id": "",
            "urgency": "low",
            "status": "deprecated",
            "description": "Books",
        },
    )
    assert saved.status_code == 303
    service = await api_get(client, people, f"/api/v1/services/{service_id}")
    assert service["routing_key"] == "ledger-v2"  # type: ignore[index]
    assert service["urgency"] == "low" and service["status"] == "deprecated"  # type: ignore[index]
    assert service["escalation_policy_id"] is None  # type: ignore[index]


async def test_bad_service_input_is_shown_beside_the_field_and_nothing_is_saved(
    client: AsyncClient, people: World
) -> None:
    payments = people.cast.payments
    await sign_in(client, "alice@example.com")
    token = await token_for(client, "/services/new")
    base = {
        "csrf_token": token,
        "name": "Ledger",
        "team_id": str(payments),
        "escalation_policy_id": "",
        "urgency": "severity_based",
        "status": "active",
        "description": "",
    }
    bad_key = await client.post("/services", data={**base, "routing_key": "has spaces"})
    assert bad_key.status_code == 422
    assert 'id="routing_key-error"' in bad_key.text and "should match pattern" in bad_key.text
    assert 'value="Ledger"' in bad_key.text  # what was typed stays
    taken = await client.post("/services", data={**base, "routing_key": "payments-api"})
    assert taken.status_code == 409
    assert "already has the routing key" in taken.text
    services = await api_get(client, people, "/api/v1/services")
    assert [s["name"] for s in services["items"]] == ["Payments API"]  # type: ignore[index]


async def test_someone_outside_the_team_cannot_create_or_change_its_services(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "mallory@example.com")
    token = await token_for(client, "/services")
    data = {
        "csrf_token": token,
        "name": "Mine",
        "routing_key": "mine",
        "team_id": str(people.cast.payments),
        "escalation_policy_id": "",
        "urgency": "high",
        "status": "archived",
        "description": "",
    }
    assert (await client.post("/services", data=data)).status_code == 403
    refused = await client.post(f"/services/{people.service}", data=data)
    assert refused.status_code == 403
    service = await api_get(client, people, f"/api/v1/services/{people.service}")
    assert service["status"] == "active" and service["name"] == "Payments API"  # type: ignore[index]
