"""The teams API: teams, their members and tags, and who may change them."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api_checks import all_pages, assert_rejected
from tests.conftest import count_rows, new_uuid
from tests.factories import Cast, World, make_person, make_policy, make_team
from tocsin.clock import FrozenClock
from tocsin.escalation.models import TargetType
from tocsin.teams.models import TeamRole

TEAMS = "/api/v1/teams"


def team_url(cast: Cast, *rest: str) -> str:
    return "/".join([TEAMS, str(cast.payments), *rest])


async def test_an_admin_creates_a_team_and_anyone_signed_in_reads_it(
    client: AsyncClient, cast: Cast
) -> None:
    response = await client.post(
        TEAMS, headers=cast.admin.headers, json={"name": " Storage ", "description": "Disks"}
    )
    assert response.status_code == 201, response.text
    team = response.json()
    assert (team["name"], team["description"]) == ("Storage", "Disks")
    assert team["created_at"] == "2026-03-10T09:00:00Z"
    read = await client.get(f"{TEAMS}/{team['id']}", headers=cast.mallory.headers)
    assert read.status_code == 200
    assert read.json() == team
    members = await client.get(f"{TEAMS}/{team['id']}/members", headers=cast.admin.headers)
    assert members.json() == {"items": [], "next_cursor": None}


async def test_only_an_admin_creates_a_team(
    client: AsyncClient, cast: Cast, engine: AsyncEngine
) -> None:
    for person in (cast.alice, cast.bob, cast.olive, cast.mallory):
        response = await client.post(TEAMS, headers=person.headers, json={"name": "Storage"})
        assert response.status_code == 403
    assert await count_rows(engine, "teams") == 1


async def test_a_taken_team_name_is_a_conflict(
    client: AsyncClient, cast: Cast, engine: AsyncEngine
) -> None:
    response = await client.post(TEAMS, headers=cast.admin.headers, json={"name": "Payments"})
    assert response.status_code == 409
    assert "Payments" in response.json()["detail"]
    assert await count_rows(engine, "teams") == 1


async def test_it_rejects_a_blank_name_and_unknown_fields(client: AsyncClient, cast: Cast) -> None:
    blank = await client.post(TEAMS, headers=cast.admin.headers, json={"name": "   "})
    assert_rejected(blank, "name")
    unknown = await client.post(
        TEAMS, headers=cast.admin.headers, json={"name": "Storage", "owner": "me"}
    )
    assert_rejected(unknown, "owner")
    wrong_type = await client.post(TEAMS, headers=cast.admin.headers, json={"name": 7})
    assert_rejected(wrong_type, "name")


async def test_it_lists_teams_page_by_page_without_repeats(client: AsyncClient, cast: Cast) -> None:
    for name in ("Storage", "Network", "Search", "Mobile"):
        response = await client.post(TEAMS, headers=cast.admin.headers, json={"name": name})
        assert response.status_code == 201
    teams = await all_pages(client, TEAMS, cast.bob.headers, limit=2)
    names = [t["name"] for t in teams]
    assert sorted(names) == ["Mobile", "Network", "Payments", "Search", "Storage"]


async def test_a_manager_renames_the_team_and_others_may_not(
    client: AsyncClient, cast: Cast
) -> None:
    for person in (cast.bob, cast.olive, cast.mallory):
        refused = await client.patch(team_url(cast), headers=person.headers, json={"name": "X"})
        assert refused.status_code == 403
    response = await client.patch(
        team_url(cast), headers=cast.alice.headers, json={"name": "Payments EU"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Payments EU"
    assert response.json()["description"] == ""
    read = await client.get(team_url(cast), headers=cast.bob.headers)
    assert read.json()["name"] == "Payments EU"


async def test_renaming_to_a_taken_name_or_to_null_is_refused(
    client: AsyncClient, cast: Cast
) -> None:
    await client.post(TEAMS, headers=cast.admin.headers, json={"name": "Storage"})
    taken = await client.patch(team_url(cast), headers=cast.admin.headers, json={"name": "Storage"})
    assert taken.status_code == 409
    null = await client.patch(team_url(cast), headers=cast.admin.headers, json={"name": None})
    assert_rejected(null, "name")
    read = await client.get(team_url(cast), headers=cast.admin.headers)
    assert read.json()["name"] == "Payments"


async def test_an_admin_deletes_an_empty_team_with_its_members_and_tags(
    client: AsyncClient, cast: Cast, engine: AsyncEngine
) -> None:
    tag = {"key": "env", "value": "prod"}
    assert (
        await client.post(team_url(cast, "tags"), headers=cast.alice.headers, json=tag)
    ).is_success
    assert (await client.delete(team_url(cast), headers=cast.alice.headers)).status_code == 403
    response = await client.delete(team_url(cast), headers=cast.admin.headers)
    assert response.status_code == 204
    assert (await client.get(team_url(cast), headers=cast.admin.headers)).status_code == 404
    assert await count_rows(engine, "team_members") == 0
    assert await count_rows(engine, "team_tags") == 0
    assert await count_rows(engine, "users") == 5


async def test_a_team_that_owns_services_or_policies_is_not_deleted(
    client: AsyncClient, world: World
) -> None:
    cast = world.cast
    response = await client.delete(team_url(cast), headers=cast.admin.headers)
    assert response.status_code == 409
    assert "services" in response.json()["detail"]
    assert (await client.get(team_url(cast), headers=cast.admin.headers)).status_code == 200


async def test_an_unknown_team_is_not_found(client: AsyncClient, cast: Cast) -> None:
    missing = f"{TEAMS}/{new_uuid()}"
    assert (await client.get(missing, headers=cast.admin.headers)).status_code == 404
    assert (await client.get(f"{missing}/members", headers=cast.admin.headers)).status_code == 404
    response = await client.post(
        f"{missing}/tags", headers=cast.admin.headers, json={"key": "a", "value": "b"}
    )
    assert response.status_code == 404
    assert (await client.get(f"{TEAMS}/not-a-uuid", headers=cast.admin.headers)).status_code == 422


async def test_without_a_key_every_team_route_answers_401(client: AsyncClient, cast: Cast) -> None:
    assert (await client.get(TEAMS)).status_code == 401
    assert (await client.post(TEAMS, json={"name": "Storage"})).status_code == 401
    assert (await client.get(team_url(cast))).status_code == 401
    assert (await client.get(team_url(cast, "members"))).status_code == 401
    assert (await client.get(team_url(cast, "tags"))).status_code == 401
    response = await client.post(team_url(cast, "tags"), json={"key": "a", "value": "b"})
    assert response.status_code == 401


# Members


async def test_the_members_are_listed_with_their_roles(client: AsyncClient, cast: Cast) -> None:
    response = await client.get(team_url(cast, "members"), headers=cast.olive.headers)
    assert response.status_code == 200
    assert response.json()["next_cursor"] is None
    roles = {m["user_id"]: m["role"] for m in response.json()["items"]}
    assert roles == {
        str(cast.alice.id): "manager",
        str(cast.bob.id): "responder",
        str(cast.olive.id): "observer",
    }


async def test_a_manager_adds_a_member_who_then_may_act_for_the_team(
    client: AsyncClient, cast: Cast
) -> None:
    response = await client.post(
        team_url(cast, "members"),
        headers=cast.alice.headers,
        json={"user_id": str(cast.mallory.id), "role": "manager"},
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"user_id": str(cast.mallory.id), "role": "manager"}
    # Now a manager, Mallory may tag the team.
    tag = await client.post(
        team_url(cast, "tags"), headers=cast.mallory.headers, json={"key": "k", "value": "v"}
    )
    assert tag.status_code == 201


async def test_a_new_member_is_a_responder_unless_told_otherwise(
    client: AsyncClient, cast: Cast
) -> None:
    response = await client.post(
        team_url(cast, "members"),
        headers=cast.admin.headers,
        json={"user_id": str(cast.mallory.id)},
    )
    assert response.json() == {"user_id": str(cast.mallory.id), "role": "responder"}


async def test_responders_observers_and_outsiders_cannot_change_members(
    client: AsyncClient, cast: Cast, engine: AsyncEngine
) -> None:
    body = {"user_id": str(cast.mallory.id), "role": "responder"}
    for person in (cast.bob, cast.olive, cast.mallory):
        response = await client.post(team_url(cast, "members"), headers=person.headers, json=body)
        assert response.status_code == 403
        promote = await client.patch(
            team_url(cast, "members", str(cast.olive.id)),
            headers=person.headers,
            json={"role": "manager"},
        )
        assert promote.status_code == 403
        remove = await client.delete(
            team_url(cast, "members", str(cast.bob.id)), headers=person.headers
        )
        assert remove.status_code == 403
    assert await count_rows(engine, "team_members") == 3


async def test_adding_a_member_twice_is_a_conflict(client: AsyncClient, cast: Cast) -> None:
    response = await client.post(
        team_url(cast, "members"), headers=cast.alice.headers, json={"user_id": str(cast.bob.id)}
    )
    assert response.status_code == 409


async def test_adding_an_unknown_user_or_role_is_rejected_naming_the_field(
    client: AsyncClient, cast: Cast, engine: AsyncEngine
) -> None:
    unknown_user = await client.post(
        team_url(cast, "members"), headers=cast.alice.headers, json={"user_id": new_uuid()}
    )
    assert_rejected(unknown_user, "user_id")
    bad_role = await client.post(
        team_url(cast, "members"),
        headers=cast.alice.headers,
        json={"user_id": str(cast.mallory.id), "role": "boss"},
    )
    assert_rejected(bad_role, "role")
    not_uuid = await client.post(
        team_url(cast, "members"), headers=cast.alice.headers, json={"user_id": "mallory"}
    )
    assert_rejected(not_uuid, "user_id")
    assert await count_rows(engine, "team_members") == 3


async def test_a_manager_changes_a_role_and_the_new_role_applies(
    client: AsyncClient, world: World
) -> None:
    cast = world.cast
    response = await client.patch(
        team_url(cast, "members", str(cast.olive.id)),
        headers=cast.alice.headers,
        json={"role": "responder"},
    )
    assert response.status_code == 200
    assert response.json() == {"user_id": str(cast.olive.id), "role": "responder"}
    sent = await client.post(
        world.integration.url, json={"title": "x", "routing_key": "payments-api"}
    )
    incident_id = sent.json()["incident_id"]
    ack = await client.post(
        f"/api/v1/incidents/{incident_id}/acknowledge", headers=cast.olive.headers
    )
    assert ack.status_code == 200


async def test_changing_the_role_of_a_non_member_is_not_found(
    client: AsyncClient, cast: Cast
) -> None:
    response = await client.patch(
        team_url(cast, "members", str(cast.mallory.id)),
        headers=cast.alice.headers,
        json={"role": "observer"},
    )
    assert response.status_code == 404


async def test_a_removed_member_loses_access_to_the_teams_policies(
    client: AsyncClient, world: World
) -> None:
    cast = world.cast
    policy = f"/api/v1/escalation-policies/{world.policy}"
    assert (await client.get(policy, headers=cast.bob.headers)).status_code == 200
    response = await client.delete(
        team_url(cast, "members", str(cast.bob.id)), headers=cast.alice.headers
    )
    assert response.status_code == 204
    assert (await client.get(policy, headers=cast.bob.headers)).status_code == 403
    again = await client.delete(
        team_url(cast, "members", str(cast.bob.id)), headers=cast.alice.headers
    )
    assert again.status_code == 404


async def test_a_member_an_escalation_policy_pages_cannot_be_removed(
    client: AsyncClient, cast: Cast, engine: AsyncEngine, clock: FrozenClock
) -> None:
    await make_policy(
        engine,
        clock.now(),
        team_id=cast.payments,
        name="Bob first",
        targets=[(TargetType.USER, cast.bob.id)],
    )
    response = await client.delete(
        team_url(cast, "members", str(cast.bob.id)), headers=cast.alice.headers
    )
    assert response.status_code == 409
    assert "Bob first" in response.json()["detail"]
    assert await count_rows(engine, "team_members") == 3


async def test_membership_of_one_team_gives_no_say_in_another(
    client: AsyncClient, cast: Cast, engine: AsyncEngine, clock: FrozenClock
) -> None:
    carol = await make_person(engine, clock.now(), email="carol@example.com", name="Carol")
    storage = await make_team(
        engine, clock.now(), name="Storage", members={carol.id: TeamRole.MANAGER}
    )
    response = await client.patch(
        team_url(cast), headers=carol.headers, json={"description": "taken over"}
    )
    assert response.status_code == 403
    own = await client.patch(
        f"{TEAMS}/{storage}", headers=carol.headers, json={"description": "ok"}
    )
    assert own.status_code == 200


# Tags


async def test_a_manager_tags_the_team_and_anyone_lists_the_tags_in_order(
    client: AsyncClient, cast: Cast
) -> None:
    for key, value in (("region", "eu"), ("env", "prod"), ("env", "dev")):
        response = await client.post(
            team_url(cast, "tags"), headers=cast.alice.headers, json={"key": key, "value": value}
        )
        assert response.status_code == 201, response.text
        assert (response.json()["key"], response.json()["value"]) == (key, value)
    listed = await client.get(team_url(cast, "tags"), headers=cast.mallory.headers)
    assert listed.status_code == 200
    assert [(t["key"], t["value"]) for t in listed.json()["items"]] == [
        ("env", "dev"),
        ("env", "prod"),
        ("region", "eu"),
    ]
    assert listed.json()["next_cursor"] is None


async def test_a_tag_the_team_already_has_is_a_conflict(
    client: AsyncClient, cast: Cast, engine: AsyncEngine
) -> None:
    tag = {"key": "env", "value": "prod"}
    assert (
        await client.post(team_url(cast, "tags"), headers=cast.alice.headers, json=tag)
    ).status_code == 201
    again = await client.post(team_url(cast, "tags"), headers=cast.alice.headers, json=tag)
    assert again.status_code == 409
    assert await count_rows(engine, "team_tags") == 1


async def test_it_rejects_a_tag_without_a_key_or_with_a_non_string_value(
    client: AsyncClient, cast: Cast, engine: AsyncEngine
) -> None:
    no_key = await client.post(
        team_url(cast, "tags"), headers=cast.alice.headers, json={"key": "", "value": "x"}
    )
    assert_rejected(no_key, "key")
    number = await client.post(
        team_url(cast, "tags"), headers=cast.alice.headers, json={"key": "env", "value": 3}
    )
    assert_rejected(number, "value")
    missing = await client.post(
        team_url(cast, "tags"), headers=cast.alice.headers, json={"key": "env"}
    )
    assert_rejected(missing, "value")
    assert await count_rows(engine, "team_tags") == 0


async def test_only_managers_and_admins_change_tags(client: AsyncClient, cast: Cast) -> None:
    created = await client.post(
        team_url(cast, "tags"), headers=cast.admin.headers, json={"key": "env", "value": "prod"}
    )
    tag_id = created.json()["id"]
    for person in (cast.bob, cast.olive, cast.mallory):
        add = await client.post(
            team_url(cast, "tags"), headers=person.headers, json={"key": "a", "value": "b"}
        )
        assert add.status_code == 403
        remove = await client.delete(team_url(cast, "tags", tag_id), headers=person.headers)
        assert remove.status_code == 403
    removed = await client.delete(team_url(cast, "tags", tag_id), headers=cast.alice.headers)
    assert removed.status_code == 204
    listed = await client.get(team_url(cast, "tags"), headers=cast.alice.headers)
    assert listed.json()["items"] == []


async def test_a_tag_cannot_be_removed_through_another_team(
    client: AsyncClient, cast: Cast, engine: AsyncEngine, clock: FrozenClock
) -> None:
    storage = await make_team(engine, clock.now(), name="Storage", tags={"env": "prod"})
    tags = await client.get(f"{TEAMS}/{storage}/tags", headers=cast.admin.headers)
    tag_id = tags.json()["items"][0]["id"]
    response = await client.delete(team_url(cast, "tags", tag_id), headers=cast.alice.headers)
    assert response.status_code == 404
    assert await count_rows(engine, "team_tags") == 1


async def test_a_new_tag_routes_matching_alerts_to_the_team(
    client: AsyncClient, world: World
) -> None:
    cast = world.cast
    await client.post(
        team_url(cast, "tags"), headers=cast.alice.headers, json={"key": "app", "value": "checkout"}
    )
    sent = await client.post(
        world.integration.url, json={"title": "x", "tags": {"app": "checkout"}}
    )
    assert sent.status_code == 202
    incident = await client.get(
        f"/api/v1/incidents/{sent.json()['incident_id']}", headers=cast.bob.headers
    )
    assert incident.json()["team_id"] == str(cast.payments)
    assert incident.json()["service_id"] is None
