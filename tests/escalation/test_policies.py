"""The escalation policies API: levels inline and checked, one default per team, who may
read and change a team's policies."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api_checks import all_pages, assert_rejected
from tests.conftest import count_rows, new_uuid
from tests.factories import Cast, World, make_person, make_team
from tocsin.clock import FrozenClock

POLICIES = "/api/v1/escalation-policies"


def level(number: int, target_type: str = "entire_team", **fields: Any) -> dict[str, Any]:
    return {"level_number": number, "target_type": target_type, **fields}


def new_policy(cast: Cast, **fields: Any) -> dict[str, Any]:
    return {
        "team_id": str(cast.payments),
        "name": "Business hours",
        "levels": [
            level(1, "user", target_id=str(cast.bob.id), timeout_minutes=5),
            level(2, "user", target_id=str(cast.alice.id), timeout_minutes=10),
            level(3),
        ],
        **fields,
    }


async def policy_rows(engine: AsyncEngine) -> tuple[int, int]:
    return await count_rows(engine, "escalation_policies"), await count_rows(
        engine, "escalation_levels"
    )


async def test_a_manager_creates_a_policy_with_its_levels_inline(
    client: AsyncClient, cast: Cast
) -> None:
    response = await client.post(
        POLICIES, headers=cast.alice.headers, json=new_policy(cast, repeat_count=3)
    )
    assert response.status_code == 201, response.text
    policy = response.json()
    assert policy["team_id"] == str(cast.payments)
    assert (policy["name"], policy["repeat_count"], policy["is_default"], policy["is_active"]) == (
        "Business hours",
        3,
        False,
        True,
    )
    assert policy["levels"] == [
        {
            "level_number": 1,
            "target_type": "user",
            "target_id": str(cast.bob.id),
            "timeout_minutes": 5,
        },
        {
            "level_number": 2,
            "target_type": "user",
            "target_id": str(cast.alice.id),
            "timeout_minutes": 10,
        },
        {"level_number": 3, "target_type": "entire_team", "target_id": None, "timeout_minutes": 30},
    ]
    read = await client.get(f"{POLICIES}/{policy['id']}", headers=cast.olive.headers)
    assert read.status_code == 200
    assert read.json() == policy


async def test_levels_may_be_sent_in_any_order_and_come_back_numbered(
    client: AsyncClient, cast: Cast
) -> None:
    body = new_policy(cast, levels=[level(2), level(1, "user", target_id=str(cast.bob.id))])
    response = await client.post(POLICIES, headers=cast.alice.headers, json=body)
    assert response.status_code == 201, response.text
    assert [lv["level_number"] for lv in response.json()["levels"]] == [1, 2]
    assert response.json()["levels"][0]["target_type"] == "user"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"levels": [level(1), level(3)]}, ("levels",)),
        ({"levels": [level(2)]}, ("levels",)),
        ({"levels": [level(1), level(1)]}, ("levels",)),
        ({"levels": []}, ("levels",)),
        ({"levels": [level(0)]}, ("levels", "0", "level_number")),
        ({"levels": [level(1, timeout_minutes=0)]}, ("levels", "0", "timeout_minutes")),
        ({"levels": [level(1, timeout_minutes=-5)]}, ("levels", "0", "timeout_minutes")),
        ({"levels": [level(1, timeout_minutes="soon")]}, ("levels", "0", "timeout_minutes")),
        ({"levels": [level(1, "pager")]}, ("levels", "0", "target_type")),
        ({"levels": [level(1, "user")]}, ("levels", "0", "target_id")),
        ({"levels": [level(1, target_id=new_uuid())]}, ("levels", "0", "target_id")),
        ({"repeat_count": 0}, ("repeat_count",)),
        ({"repeat_count": 10}, ("repeat_count",)),
        ({"repeat_count": 2.5}, ("repeat_count",)),
        ({"name": ""}, ("name",)),
        ({"team_id": new_uuid()}, ("team_id",)),
        ({"escalate_to": "everyone"}, ("escalate_to",)),
    ],
)
async def test_it_rejects_a_bad_policy_naming_the_field_and_stores_nothing(
    client: AsyncClient,
    cast: Cast,
    engine: AsyncEngine,
    change: dict[str, Any],
    field: tuple[str, ...],
) -> None:
    response = await client.post(
        POLICIES, headers=cast.admin.headers, json=new_policy(cast, **change)
    )
    assert_rejected(response, *field)
    assert await policy_rows(engine) == (0, 0)


@pytest.mark.parametrize("who", ["nobody", "outsider", "schedule"])
async def test_it_rejects_a_target_that_does_not_exist_or_is_outside_the_team(
    client: AsyncClient, cast: Cast, engine: AsyncEngine, who: str
) -> None:
    target = {
        "nobody": level(2, "user", target_id=new_uuid()),
        "outsider": level(2, "user", target_id=str(cast.mallory.id)),
        "schedule": level(2, "schedule", target_id=new_uuid()),
    }[who]
    body = new_policy(cast, levels=[level(1), target])
    response = await client.post(POLICIES, headers=cast.alice.headers, json=body)
    assert_rejected(response, "levels", "1", "target_id")
    assert await policy_rows(engine) == (0, 0)


async def test_a_team_has_one_default_policy_and_a_new_default_takes_over(
    client: AsyncClient, world: World
) -> None:
    cast = world.cast
    response = await client.post(
        POLICIES, headers=cast.alice.headers, json=new_policy(cast, is_default=True)
    )
    assert response.status_code == 201, response.text
    new = response.json()
    assert new["is_default"] is True
    old = (await client.get(f"{POLICIES}/{world.policy}", headers=cast.alice.headers)).json()
    assert old["is_default"] is False
    defaults = [
        p["id"]
        for p in await all_pages(client, POLICIES, cast.alice.headers, limit=10)
        if p["is_default"]
    ]
    assert defaults == [new["id"]]
    # Handing it back with PATCH works the same way.
    back = await client.patch(
        f"{POLICIES}/{world.policy}", headers=cast.alice.headers, json={"is_default": True}
    )
    assert back.json()["is_default"] is True
    new_now = (await client.get(f"{POLICIES}/{new['id']}", headers=cast.alice.headers)).json()
    assert new_now["is_default"] is False


async def test_each_team_keeps_its_own_default(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    storage = await make_team(engine, clock.now(), name="Storage")
    body = {"team_id": str(storage), "name": "Storage", "is_default": True, "levels": [level(1)]}
    response = await client.post(POLICIES, headers=world.cast.admin.headers, json=body)
    assert response.status_code == 201
    payments = await client.get(f"{POLICIES}/{world.policy}", headers=world.cast.admin.headers)
    assert payments.json()["is_default"] is True


async def test_patch_replaces_the_levels_and_changes_only_the_fields_sent(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    cast = world.cast
    url = f"{POLICIES}/{world.policy}"
    levels = [level(1, "user", target_id=str(cast.bob.id), timeout_minutes=1), level(2)]
    response = await client.patch(
        url, headers=cast.alice.headers, json={"levels": levels, "repeat_count": 9}
    )
    assert response.status_code == 200, response.text
    policy = response.json()
    assert policy["repeat_count"] == 9
    assert policy["name"] == "Default"
    assert [(lv["level_number"], lv["target_type"]) for lv in policy["levels"]] == [
        (1, "user"),
        (2, "entire_team"),
    ]
    assert await count_rows(engine, "escalation_levels") == 2
    renamed = await client.patch(url, headers=cast.alice.headers, json={"name": "Nights"})
    assert renamed.json()["levels"] == policy["levels"]


async def test_patch_refuses_bad_levels_and_keeps_the_old_ones(
    client: AsyncClient, world: World
) -> None:
    cast = world.cast
    url = f"{POLICIES}/{world.policy}"
    before = (await client.get(url, headers=cast.alice.headers)).json()
    cases: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        ({"levels": [level(1), level(3)]}, ("levels",)),
        ({"levels": [level(1, timeout_minutes=0)]}, ("levels", "0", "timeout_minutes")),
        ({"levels": [level(1, "user", target_id=new_uuid())]}, ("levels", "0", "target_id")),
        ({"repeat_count": 10}, ("repeat_count",)),
        ({"levels": None}, ("levels",)),
        ({"team_id": str(cast.payments)}, ("team_id",)),
    ]
    for body, field in cases:
        assert_rejected(await client.patch(url, headers=cast.alice.headers, json=body), *field)
    assert (await client.get(url, headers=cast.alice.headers)).json() == before


async def test_observers_read_but_only_managers_and_admins_change_policies(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    cast = world.cast
    url = f"{POLICIES}/{world.policy}"
    for person in (cast.bob, cast.olive):
        assert (await client.get(url, headers=person.headers)).status_code == 200
    for person in (cast.bob, cast.olive, cast.mallory):
        created = await client.post(POLICIES, headers=person.headers, json=new_policy(cast))
        assert created.status_code == 403
        changed = await client.patch(url, headers=person.headers, json={"name": "Mine"})
        assert changed.status_code == 403
        assert (await client.delete(url, headers=person.headers)).status_code == 403
    assert await count_rows(engine, "escalation_policies") == 1
    by_admin = await client.patch(url, headers=cast.admin.headers, json={"name": "Admin's"})
    assert by_admin.status_code == 200


async def test_someone_outside_the_team_neither_reads_nor_lists_its_policies(
    client: AsyncClient, world: World
) -> None:
    cast = world.cast
    url = f"{POLICIES}/{world.policy}"
    assert (await client.get(url, headers=cast.mallory.headers)).status_code == 403
    listed = await client.get(POLICIES, headers=cast.mallory.headers)
    assert listed.status_code == 200
    assert listed.json() == {"items": [], "next_cursor": None}
    mine = await client.get(POLICIES, headers=cast.olive.headers)
    assert [p["id"] for p in mine.json()["items"]] == [str(world.policy)]


async def test_without_a_key_the_policies_api_answers_401(
    client: AsyncClient, world: World
) -> None:
    url = f"{POLICIES}/{world.policy}"
    assert (await client.get(POLICIES)).status_code == 401
    assert (await client.get(url)).status_code == 401
    assert (await client.post(POLICIES, json=new_policy(world.cast))).status_code == 401
    assert (await client.patch(url, json={"name": "x"})).status_code == 401
    assert (await client.delete(url)).status_code == 401


async def test_the_list_filters_by_team_and_pages(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    cast = world.cast
    for n in range(3):
        body = new_policy(cast, name=f"P{n}", levels=[level(1)])
        assert (await client.post(POLICIES, headers=cast.alice.headers, json=body)).is_success
    storage = await make_team(engine, clock.now(), name="Storage")
    other = {"team_id": str(storage), "name": "S", "levels": [level(1)]}
    assert (await client.post(POLICIES, headers=cast.admin.headers, json=other)).is_success
    everything = await all_pages(client, POLICIES, cast.admin.headers, limit=2)
    assert len({p["id"] for p in everything}) == len(everything) == 5
    payments = await all_pages(
        client, POLICIES, cast.admin.headers, limit=2, params={"team_id": str(cast.payments)}
    )
    assert {p["name"] for p in payments} == {"Default", "P0", "P1", "P2"}
    assert all(len(p["levels"]) == 1 for p in payments)


async def test_a_policy_a_service_uses_is_not_deleted(client: AsyncClient, world: World) -> None:
    cast = world.cast
    await client.patch(
        f"/api/v1/services/{world.service}",
        headers=cast.admin.headers,
        json={"escalation_policy_id": str(world.policy)},
    )
    response = await client.delete(f"{POLICIES}/{world.policy}", headers=cast.alice.headers)
    assert response.status_code == 409
    assert "Payments API" in response.json()["detail"]


async def test_a_policy_an_open_incident_escalates_through_is_not_deleted(
    client: AsyncClient, world: World
) -> None:
    await client.post(world.integration.url, json={"title": "x", "routing_key": "payments-api"})
    response = await client.delete(f"{POLICIES}/{world.policy}", headers=world.cast.alice.headers)
    assert response.status_code == 409
    assert "unfinished incidents" in response.json()["detail"]


async def test_an_unused_policy_is_deleted_with_its_levels(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    created = await client.post(
        POLICIES, headers=world.cast.alice.headers, json=new_policy(world.cast)
    )
    url = f"{POLICIES}/{created.json()['id']}"
    assert (await client.delete(url, headers=world.cast.alice.headers)).status_code == 204
    assert (await client.get(url, headers=world.cast.alice.headers)).status_code == 404
    assert await policy_rows(engine) == (1, 1)


async def test_a_user_target_must_be_a_member_and_stays_one(
    client: AsyncClient, cast: Cast, engine: AsyncEngine, clock: FrozenClock
) -> None:
    carol = await make_person(engine, clock.now(), email="carol@example.com", name="Carol")
    body = new_policy(cast, levels=[level(1, "user", target_id=str(carol.id))])
    refused = await client.post(POLICIES, headers=cast.alice.headers, json=body)
    assert_rejected(refused, "levels", "0", "target_id")
    await client.post(
        f"/api/v1/teams/{cast.payments}/members",
        headers=cast.alice.headers,
        json={"user_id": str(carol.id)},
    )
    accepted = await client.post(POLICIES, headers=cast.alice.headers, json=body)
    assert accepted.status_code == 201
