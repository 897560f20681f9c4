"""The schedules API: creating schedules, layers and overrides, asking who is on call and for
shifts, and what it refuses, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.conftest import count_rows
from tests.factories import Cast, make_person, make_policy, make_team

from tocsin.auth.models import User
from tocsin.clock import FrozenClock
from tocsin.escalation.models import EscalationLevel, TargetType
from tocsin.teams.models import TeamMember, TeamRole

SCHEDULES = "/api/v1/schedules"


def assert_rejected(response: Response, *field: str) -> None:
    """A 422 whose detail names the field (its loc ends with it)."""
    assert response.status_code == 422, response.text
    locs = [tuple(str(part) for part in err["loc"]) for err in response.json()["detail"]]
    assert any(loc[-len(field) :] == field for loc in locs), locs


def weekly_layer(*users: uuid.UUID, **extra: Any) -> dict[str, Any]:
    """Example 1 of SCHEDULES.md: weekly, Monday 09:00 local, first turn 2026-02-23."""
    return {
        "name": "primary",
        "start": "2026-01-01T00:00:00Z",
        "rotation": "weekly",
        "handoff": "2026-02-23T09:00",
        "participants": [{"user_ids": [str(user)]} for user in users],
        **extra,
    }


def schedule_body(cast: Cast, *layers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "team_id": str(cast.payments),
        "name": "Payments primary",
        "description": "Who answers for payments",
        "time_zone": "America/New_York",
        "layers": list(layers),
        **extra,
    }


async def create(client: AsyncClient, cast: Cast, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(SCHEDULES, headers=cast.alice.headers, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def on_call(client: AsyncClient, cast: Cast, schedule_id: str, at: str) -> dict[str, Any]:
    response = await client.get(
        f"{SCHEDULES}/{schedule_id}/oncall", headers=cast.bob.headers, params={"at": at}
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_manager_creates_a_schedule_and_members_read_it_back_with_layer_ids_in_order(
    client: AsyncClient, cast: Cast
) -> None:
    bottom = weekly_layer(cast.alice.id, cast.bob.id, cast.olive.id)
    top = {
        "name": "business hours",
        "start": "2026-01-01T00:00:00Z",
        "rotation": "daily",
        "turn_length": 2,
        "handoff": "2026-03-02T09:00",
        "participants": [{"user_ids": [str(cast.bob.id), str(cast.olive.id)]}],
        "restrictions": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
        ],
    }
    created = await create(client, cast, schedule_body(cast, bottom, top))

    assert [layer["name"] for layer in created["layers"]] == ["primary", "business hours"]
    assert [layer["position"] for layer in created["layers"]] == [0, 1]
    assert all(uuid.UUID(layer["id"]) for layer in created["layers"])
    assert created["layers"][1]["restrictions"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
    ]
    assert created["layers"][1]["participants"] == [
        {"user_ids": sorted([str(cast.bob.id), str(cast.olive.id)])}
    ] or created["layers"][1]["participants"] == [
        {"user_ids": [str(cast.bob.id), str(cast.olive.id)]}
    ]
    assert created["layers"][0]["handoff"] == "2026-02-23T09:00"

    for reader in (cast.bob, cast.olive, cast.admin):
        response = await client.get(f"{SCHEDULES}/{created['id']}", headers=reader.headers)
        assert response.status_code == 200, response.text
        read = response.json()
        assert [layer["id"] for layer in read["layers"]] == [
            layer["id"] for layer in created["layers"]
        ]
        assert read["time_zone"] == "America/New_York"
        assert read["layers"][1]["turn_length"] == 2

    listed = await client.get(SCHEDULES, headers=cast.olive.headers)
    assert [item["id"] for item in listed.json()["items"]] == [created["id"]]


async def test_oncall_follows_example_1_across_spring_forward(
    client: AsyncClient, cast: Cast
) -> None:
    schedule = await create(
        client, cast, schedule_body(cast, weekly_layer(cast.alice.id, cast.bob.id, cast.olive.id))
    )
    layer_id = schedule["layers"][0]["id"]
    # Alice, Bob, Carol of the example are Alice, Bob, Olive here.
    expected = {
        "2026-03-09T12:59:00Z": cast.bob.id,
        "2026-03-09T13:00:00Z": cast.olive.id,  # Mon 09:00 EDT: the handoff stays at 09:00
        "2026-11-02T13:30:00Z": cast.olive.id,  # Mon 08:30 EST, end of the 169-hour shift
        "2026-11-02T14:00:00Z": cast.alice.id,
    }
    for at, user in expected.items():
        answer = await on_call(client, cast, schedule["id"], at)
        assert answer["user_ids"] == [str(user)], at
        assert answer["source"] == {"kind": "layer", "id": layer_id}
        assert answer["at"] == at


async def test_oncall_defaults_to_now_and_says_nobody_with_null_source(
    client: AsyncClient, cast: Cast, clock: FrozenClock
) -> None:
    layer = weekly_layer(cast.alice.id, start="2026-04-01T00:00:00Z")
    schedule = await create(client, cast, schedule_body(cast, layer))

    response = await client.get(f"{SCHEDULES}/{schedule['id']}/oncall", headers=cast.bob.headers)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "at": clock.now().isoformat().replace("+00:00", "Z"),
        "user_ids": [],
        "source": None,
    }


async def test_example_8_layers_fall_through_and_an_override_beats_them(
    client: AsyncClient, cast: Cast
) -> None:
    bottom = {
        "name": "weekly",
        "start": "2026-04-06T13:00:00Z",
        "rotation": "weekly",
        "handoff": "2026-04-06T09:00",
        "participants": [{"user_ids": [str(cast.alice.id)]}, {"user_ids": [str(cast.bob.id)]}],
    }
    top = {
        "name": "office",
        "start": "2026-04-06T13:00:00Z",
        "rotation": "weekly",
        "handoff": "2026-04-06T09:00",
        "participants": [{"user_ids": [str(cast.olive.id)]}],
        "restrictions": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
        ],
    }
    schedule = await create(client, cast, schedule_body(cast, bottom, top))
    override = await client.post(
        f"{SCHEDULES}/{schedule['id']}/overrides",
        headers=cast.alice.headers,
        json={
            "user_ids": [str(cast.admin.id)],
            "start": "2026-04-07T14:00:00Z",
            "end": "2026-04-07T15:00:00Z",
        },
    )
    assert override.status_code == 422  # the admin is not on the team
    dave = cast.bob  # Dave of the example: Bob takes the override here
    override = await client.post(
        f"{SCHEDULES}/{schedule['id']}/overrides",
        headers=cast.alice.headers,
        json={
            "user_ids": [str(dave.id)],
            "start": "2026-04-07T10:00:00-04:00",
            "end": "2026-04-07T11:00:00-04:00",
        },
    )
    assert override.status_code == 201, override.text
    override_id = override.json()["id"]
    assert override.json()["start"] == "2026-04-07T14:00:00Z"

    bottom_id, top_id = (layer["id"] for layer in schedule["layers"])
    expected = [
        ("2026-04-07T13:30:00Z", cast.olive.id, ("layer", top_id)),
        ("2026-04-07T14:30:00Z", dave.id, ("override", override_id)),
        ("2026-04-07T00:30:00Z", cast.alice.id, ("layer", bottom_id)),
        ("2026-04-13T12:30:00Z", cast.alice.id, ("layer", bottom_id)),
        ("2026-04-13T13:30:00Z", cast.olive.id, ("layer", top_id)),
        ("2026-04-13T21:30:00Z", cast.bob.id, ("layer", bottom_id)),
    ]
    for at, user, (kind, source_id) in expected:
        answer = await on_call(client, cast, schedule["id"], at)
        assert answer["user_ids"] == [str(user)], at
        assert answer["source"] == {"kind": kind, "id": source_id}, at


async def test_shifts_answer_final_layers_and_gaps_as_example_1_says(
    client: AsyncClient, cast: Cast
) -> None:
    schedule = await create(
        client,
        cast,
        schedule_body(
            cast,
            weekly_layer(cast.alice.id, cast.bob.id, cast.olive.id, end="2026-03-16T20:00:00Z"),
        ),
    )
    layer_id = schedule["layers"][0]["id"]

    response = await client.get(
        f"{SCHEDULES}/{schedule['id']}/shifts",
        headers=cast.olive.headers,
        params={"start": "2026-03-01T00:00:00Z", "end": "2026-03-17T00:00:00Z"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    source = {"kind": "layer", "id": layer_id}
    wall = [
        (cast.alice.id, "2026-03-01T00:00:00Z", "2026-03-02T14:00:00Z"),
        (cast.bob.id, "2026-03-02T14:00:00Z", "2026-03-09T13:00:00Z"),
        (cast.olive.id, "2026-03-09T13:00:00Z", "2026-03-16T13:00:00Z"),
        (cast.alice.id, "2026-03-16T13:00:00Z", "2026-03-16T20:00:00Z"),
    ]
    expected = [
        {"start": start, "end": end, "user_ids": [str(user)], "source": source}
        for user, start, end in wall
    ]
    assert body["final"] == expected
    assert body["layers"] == {layer_id: expected}
    assert body["gaps"] == [{"start": "2026-03-16T20:00:00Z", "end": "2026-03-17T00:00:00Z"}]


async def test_shifts_range_must_be_ordered_and_bounded(client: AsyncClient, cast: Cast) -> None:
    schedule = await create(client, cast, schedule_body(cast, weekly_layer(cast.alice.id)))
    url = f"{SCHEDULES}/{schedule['id']}/shifts"

    backwards = await client.get(
        url,
        headers=cast.bob.headers,
        params={"start": "2026-03-10T00:00:00Z", "end": "2026-03-01T00:00:00Z"},
    )
    too_long = await client.get(
        url,
        headers=cast.bob.headers,
        params={"start": "2026-01-01T00:00:00Z", "end": "2028-01-01T00:00:00Z"},
    )
    naive = await client.get(
        url,
        headers=cast.bob.headers,
        params={"start": "2026-01-01T00:00", "end": "2026-02-01T00:00"},
    )
    a_year = await client.get(
        url,
        headers=cast.bob.headers,
        params={"start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"},
    )

    assert_rejected(backwards, "end")
    assert_rejected(too_long, "end")
    assert "400 days" in str(too_long.json()["detail"])
    assert_rejected(naive, "start")
    assert a_year.status_code == 200, a_year.text
    assert len(a_year.json()["final"]) == 1  # one participant: one merged shift


async def test_bad_definitions_are_refused_naming_the_field_and_nothing_is_stored(
    client: AsyncClient, cast: Cast, engine: AsyncEngine
) -> None:
    good = weekly_layer(cast.alice.id)
    cases: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        (schedule_body(cast, good, time_zone="Mars/Olympus_Mons"), ("time_zone",)),
        (schedule_body(cast, good, time_zone="../../etc/passwd"), ("time_zone",)),
        (
            schedule_body(cast, {**good, "end": "2025-12-01T00:00:00Z"}),
            ("layers", "0", "end"),
        ),
        (schedule_body(cast, {**good, "participants": []}), ("layers", "0", "participants")),
        (
            schedule_body(cast, {**good, "participants": [{"user_ids": []}]}),
            ("layers", "0", "participants", "0", "user_ids"),
        ),
        (
            schedule_body(
                cast,
                {
                    **good,
                    "restrictions": [
                        {"days": ["mon"], "start": "09:00", "end": "17:00"},
                        {"days": ["mon", "tue"], "start": "16:00", "end": "18:00"},
                    ],
                },
            ),
            ("layers", "0", "restrictions"),
        ),
        (
            schedule_body(cast, {**good, "restrictions": [{"start": "09:00", "end": "09:00"}]}),
            ("layers", "0", "restrictions", "0", "end"),
        ),
        (schedule_body(cast, {**good, "handoff": "2026-02-23T09:00Z"}), ("layers", "0", "handoff")),
        (schedule_body(cast, {**good, "rotation": "monthly"}), ("layers", "0", "rotation")),
        (schedule_body(cast, {**good, "turn_length": 0}), ("layers", "0", "turn_length")),
        (
            schedule_body(
                cast,
                good,
                weekly_layer(cast.bob.id, cast.mallory.id),
            ),
            ("layers", "1", "participants", "1", "user_ids"),
        ),
        (schedule_body(cast, good, team_id=str(uuid.uuid4())), ("team_id",)),
    ]
    for body, field in cases:
        response = await client.post(SCHEDULES, headers=cast.admin.headers, json=body)
        assert_rejected(response, *field)

    assert await count_rows(engine, "schedules") == 0
    assert await count_rows(engine, "schedule_layers") == 0
    assert await count_rows(engine, "schedule_participants") == 0


async def test_a_name_is_unique_within_a_team(client: AsyncClient, cast: Cast) -> None:
    await create(client, cast, schedule_body(cast))

    again = await client.post(SCHEDULES, headers=cast.alice.headers, json=schedule_body(cast))

    assert again.status_code == 409, again.text


async def test_only_managers_and_admins_write_and_outsiders_read_nothing(
    client: AsyncClient, cast: Cast
) -> None:
    body = schedule_body(cast, weekly_layer(cast.alice.id))
    for person in (cast.bob, cast.olive, cast.mallory):
        response = await client.post(SCHEDULES, headers=person.headers, json=body)
        assert response.status_code == 403, response.text
    schedule = await create(client, cast, body)
    url = f"{SCHEDULES}/{schedule['id']}"

    assert (await client.get(url, headers=cast.mallory.headers)).status_code == 403
    assert (await client.get(f"{url}/oncall", headers=cast.mallory.headers)).status_code == 403
    listed = await client.get(SCHEDULES, headers=cast.mallory.headers)
    assert listed.json()["items"] == []
    for person in (cast.bob, cast.olive):
        patch = await client.patch(url, headers=person.headers, json={"name": "mine"})
        assert patch.status_code == 403
        layer = await client.post(
            f"{url}/layers", headers=person.headers, json=weekly_layer(cast.bob.id)
        )
        assert layer.status_code == 403
        override = await client.post(
            f"{url}/overrides",
            headers=person.headers,
            json={
                "user_ids": [str(cast.bob.id)],
                "start": "2026-03-10T00:00:00Z",
                "end": "2026-03-11T00:00:00Z",
            },
        )
        assert override.status_code == 403
        assert (await client.delete(url, headers=person.headers)).status_code == 403
    admin_patch = await client.patch(url, headers=cast.admin.headers, json={"name": "Renamed"})
    assert admin_patch.status_code == 200
    assert admin_patch.json()["name"] == "Renamed"
    assert (
        await client.get(f"{SCHEDULES}/{uuid.uuid4()}", headers=cast.admin.headers)
    ).status_code == 404


async def test_layers_are_added_on_top_changed_and_removed(client: AsyncClient, cast: Cast) -> None:
    schedule = await create(client, cast, schedule_body(cast, weekly_layer(cast.alice.id)))
    url = f"{SCHEDULES}/{schedule['id']}"
    at = {"at": "2026-03-10T12:00:00Z"}

    added = await client.post(
        f"{url}/layers", headers=cast.alice.headers, json=weekly_layer(cast.bob.id)
    )
    assert added.status_code == 201, added.text
    top = added.json()
    assert top["position"] == 1
    assert (await on_call(client, cast, schedule["id"], at["at"]))["user_ids"] == [str(cast.bob.id)]

    changed = await client.patch(
        f"{url}/layers/{top['id']}",
        headers=cast.alice.headers,
        json={"participants": [{"user_ids": [str(cast.olive.id)]}], "name": "nights"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "nights"
    assert changed.json()["rotation"] == "weekly"
    assert (await on_call(client, cast, schedule["id"], at["at"]))["user_ids"] == [
        str(cast.olive.id)
    ]

    refused = await client.patch(
        f"{url}/layers/{top['id']}",
        headers=cast.alice.headers,
        json={"end": "2025-01-01T00:00:00Z"},
    )
    assert_rejected(refused, "end")
    outsider = await client.patch(
        f"{url}/layers/{top['id']}",
        headers=cast.alice.headers,
        json={"participants": [{"user_ids": [str(cast.mallory.id)]}]},
    )
    assert_rejected(outsider, "participants", "0", "user_ids")

    removed = await client.delete(f"{url}/layers/{top['id']}", headers=cast.alice.headers)
    assert removed.status_code == 204
    assert (await on_call(client, cast, schedule["id"], at["at"]))["user_ids"] == [
        str(cast.alice.id)
    ]
    read = (await client.get(url, headers=cast.alice.headers)).json()
    assert [layer["id"] for layer in read["layers"]] == [schedule["layers"][0]["id"]]
    missing = await client.get(f"{url}/layers/{top['id']}", headers=cast.alice.headers)
    assert missing.status_code == 404


async def test_overrides_are_listed_read_and_deleted(client: AsyncClient, cast: Cast) -> None:
    schedule = await create(client, cast, schedule_body(cast, weekly_layer(cast.alice.id)))
    url = f"{SCHEDULES}/{schedule['id']}/overrides"
    body = {
        "user_ids": [str(cast.bob.id), str(cast.olive.id)],
        "start": "2026-03-12T00:00:00Z",
        "end": "2026-03-13T00:00:00Z",
    }
    backwards = await client.post(
        url, headers=cast.alice.headers, json={**body, "end": "2026-03-11T00:00:00Z"}
    )
    assert_rejected(backwards, "end")
    empty = await client.post(url, headers=cast.alice.headers, json={**body, "user_ids": []})
    assert_rejected(empty, "user_ids")

    created = await client.post(url, headers=cast.alice.headers, json=body)
    assert created.status_code == 201, created.text
    override = created.json()
    assert override["created_by"] == str(cast.alice.id)
    assert sorted(override["user_ids"]) == sorted(body["user_ids"])

    answer = await on_call(client, cast, schedule["id"], "2026-03-12T12:00:00Z")
    assert sorted(answer["user_ids"]) == sorted(body["user_ids"])
    assert answer["source"] == {"kind": "override", "id": override["id"]}

    listed = await client.get(
        url,
        headers=cast.olive.headers,
        params={"start": "2026-03-12T23:00:00Z", "end": "2026-03-20T00:00:00Z"},
    )
    assert [item["id"] for item in listed.json()] == [override["id"]]
    later = await client.get(
        url, headers=cast.olive.headers, params={"start": "2026-03-13T00:00:00Z"}
    )
    assert later.json() == []
    one = await client.get(f"{url}/{override['id']}", headers=cast.olive.headers)
    assert one.json()["id"] == override["id"]

    assert (
        await client.delete(f"{url}/{override['id']}", headers=cast.alice.headers)
    ).status_code == 204
    assert (
        await client.delete(f"{url}/{override['id']}", headers=cast.alice.headers)
    ).status_code == 404
    answer = await on_call(client, cast, schedule["id"], "2026-03-12T12:00:00Z")
    assert answer["user_ids"] == [str(cast.alice.id)]


async def test_a_schedule_is_deleted_with_its_layers_unless_a_policy_pages_through_it(
    client: AsyncClient, cast: Cast, engine: AsyncEngine, clock: FrozenClock
) -> None:
    schedule = await create(client, cast, schedule_body(cast, weekly_layer(cast.alice.id)))
    await client.post(
        f"{SCHEDULES}/{schedule['id']}/overrides",
        headers=cast.alice.headers,
        json={
            "user_ids": [str(cast.bob.id)],
            "start": "2026-03-12T00:00:00Z",
            "end": "2026-03-13T00:00:00Z",
        },
    )
    policy_id = await make_policy(
        engine,
        clock.now(),
        team_id=cast.payments,
        targets=[(TargetType.SCHEDULE, uuid.UUID(schedule["id"]))],
    )

    refused = await client.delete(f"{SCHEDULES}/{schedule['id']}", headers=cast.alice.headers)
    assert refused.status_code == 409, refused.text
    assert str(policy_id) in refused.json()["detail"]

    async with engine.begin() as conn:
        await conn.execute(delete(EscalationLevel))
    deleted = await client.delete(f"{SCHEDULES}/{schedule['id']}", headers=cast.alice.headers)
    assert deleted.status_code == 204
    for table in ("schedules", "schedule_layers", "schedule_participants", "schedule_overrides"):
        assert await count_rows(engine, table) == 0, table


async def test_team_oncall_lists_every_schedule_of_the_team(
    client: AsyncClient, cast: Cast
) -> None:
    first = await create(client, cast, schedule_body(cast, weekly_layer(cast.alice.id)))
    second = await create(
        client,
        cast,
        schedule_body(cast, weekly_layer(cast.bob.id, start="2027-01-01T00:00:00Z"), name="Later"),
    )

    response = await client.get(
        "/api/v1/oncall", headers=cast.olive.headers, params={"team_id": str(cast.payments)}
    )
    outsider = await client.get(
        "/api/v1/oncall", headers=cast.mallory.headers, params={"team_id": str(cast.payments)}
    )

    assert response.status_code == 200, response.text
    items = {item["schedule_id"]: item for item in response.json()["items"]}
    assert items[first["id"]]["user_ids"] == [str(cast.alice.id)]
    assert items[first["id"]]["schedule_name"] == "Payments primary"
    assert items[second["id"]]["user_ids"] == []
    assert items[second["id"]]["source"] is None
    assert outsider.status_code == 403


async def test_my_upcoming_shifts_span_schedules_and_overrides(
    client: AsyncClient, cast: Cast, engine: AsyncEngine, clock: FrozenClock
) -> None:
    # Kolkata has no DST: Bob's daily 09:00 IST turn is 03:30Z all year.
    await create(
        client,
        cast,
        schedule_body(
            cast,
            {
                "rotation": "daily",
                "start": "2026-01-01T00:00:00Z",
                "handoff": "2026-03-01T09:00",
                "participants": [
                    {"user_ids": [str(cast.alice.id)]},
                    {"user_ids": [str(cast.bob.id)]},
                ],
            },
            name="Kolkata",
            time_zone="Asia/Kolkata",
        ),
    )
    berlin = await create(
        client,
        cast,
        schedule_body(cast, weekly_layer(cast.alice.id), name="Berlin", time_zone="Europe/Berlin"),
    )
    await client.post(
        f"{SCHEDULES}/{berlin['id']}/overrides",
        headers=cast.alice.headers,
        json={
            "user_ids": [str(cast.bob.id)],
            "start": "2026-03-11T10:00:00Z",
            "end": "2026-03-11T12:00:00Z",
        },
    )

    response = await client.get(
        f"/api/v1/users/{cast.bob.id}/shifts",
        headers=cast.bob.headers,
        params={"start": "2026-03-10T00:00:00Z", "end": "2026-03-13T00:00:00Z"},
    )

    assert response.status_code == 200, response.text
    shifts = [
        (item["schedule_name"], item["start"], item["end"], item["source"]["kind"])
        for item in response.json()["shifts"]
    ]
    assert shifts == [
        ("Kolkata", "2026-03-10T03:30:00Z", "2026-03-11T03:30:00Z", "layer"),
        ("Berlin", "2026-03-11T10:00:00Z", "2026-03-11T12:00:00Z", "override"),
        ("Kolkata", "2026-03-12T03:30:00Z", "2026-03-13T00:00:00Z", "layer"),
    ]
    default_range = await client.get(
        f"/api/v1/users/{cast.bob.id}/shifts", headers=cast.bob.headers
    )
    body = default_range.json()
    assert body["start"] == "2026-03-10T09:00:00Z"
    assert body["end"] == "2026-04-07T09:00:00Z"
    # Someone in no shared team sees none of Bob's shifts.
    stranger = await client.get(
        f"/api/v1/users/{cast.bob.id}/shifts",
        headers=cast.mallory.headers,
        params={"start": "2026-03-10T00:00:00Z", "end": "2026-03-13T00:00:00Z"},
    )
    assert stranger.json()["shifts"] == []


async def test_a_schedule_zone_differs_from_its_users_zones(
    client: AsyncClient, cast: Cast, engine: AsyncEngine, clock: FrozenClock
) -> None:
    """Users' own zones never move a handoff: Sydney-based Kim's turn starts at 09:00 in
    the schedule's zone (New York), not 09:00 Sydney."""
    kim = await make_person(engine, clock.now(), email="kim@example.com", name="Kim")
    async with engine.begin() as conn:
        await conn.execute(
            update(User).where(User.id == kim.id).values(time_zone="Australia/Sydney")
        )
        await conn.execute(
            insert(TeamMember).values(
                team_id=cast.payments,
                user_id=kim.id,
                role=TeamRole.RESPONDER,
                created_at=clock.now(),
            )
        )
    schedule = await create(client, cast, schedule_body(cast, weekly_layer(kim.id, cast.bob.id)))

    before = await on_call(client, cast, schedule["id"], "2026-03-09T12:59:00Z")
    after = await on_call(client, cast, schedule["id"], "2026-03-09T13:00:00Z")

    assert before["user_ids"] == [str(cast.bob.id)]
    assert after["user_ids"] == [str(kim.id)]


async def test_a_team_of_its_own_keeps_its_schedules_to_itself(
    client: AsyncClient, cast: Cast, engine: AsyncEngine, clock: FrozenClock
) -> None:
    other = await make_team(
        engine, clock.now(), name="Search", members={cast.mallory.id: TeamRole.MANAGER}
    )
    body = {**schedule_body(cast, weekly_layer(cast.mallory.id)), "team_id": str(other)}
    response = await client.post(SCHEDULES, headers=cast.mallory.headers, json=body)
    assert response.status_code == 201, response.text

    as_alice = await client.get(SCHEDULES, headers=cast.alice.headers)
    filtered = await client.get(
        SCHEDULES, headers=cast.admin.headers, params={"team_id": str(other)}
    )

    assert as_alice.json()["items"] == []
    assert [item["id"] for item in filtered.json()["items"]] == [response.json()["id"]]


async def test_instants_outside_the_supported_years_are_refused(
    client: AsyncClient, cast: Cast
) -> None:
    schedule = await create(client, cast, schedule_body(cast, weekly_layer(cast.alice.id)))
    url = f"{SCHEDULES}/{schedule['id']}"

    far_past = await client.get(
        f"{url}/oncall", headers=cast.bob.headers, params={"at": "0001-01-01T00:00:00Z"}
    )
    far_future = await client.post(
        f"{url}/layers",
        headers=cast.alice.headers,
        json=weekly_layer(cast.bob.id, handoff="9000-01-01T09:00"),
    )

    assert_rejected(far_past, "at")
    assert_rejected(far_future, "handoff")


async def test_oncall_agrees_with_the_shift_containing_each_instant_at_every_boundary(
    client: AsyncClient, cast: Cast
) -> None:
    """The two endpoints load overrides for different windows; at every shift and gap boundary
    (and a second before each) they must still agree."""
    office = {
        **weekly_layer(cast.bob.id, cast.olive.id, name="office"),
        "rotation": "daily",
        "handoff": "2026-03-01T09:00",
        "restrictions": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
        ],
    }
    schedule = await create(
        client,
        cast,
        schedule_body(cast, weekly_layer(cast.alice.id, end="2026-03-12T00:00:00Z"), office),
    )
    url = f"{SCHEDULES}/{schedule['id']}"
    for user, start, end in [
        (cast.alice.id, "2026-03-09T12:00:00Z", "2026-03-09T14:00:00Z"),  # across a handoff
        (cast.bob.id, "2026-03-09T13:30:00Z", "2026-03-09T13:45:00Z"),  # newer, inside it
        (cast.olive.id, "2026-03-12T00:00:00Z", "2026-03-12T01:00:00Z"),  # in the gap
    ]:
        response = await client.post(
            f"{url}/overrides",
            headers=cast.alice.headers,
            json={"user_ids": [str(user)], "start": start, "end": end},
        )
        assert response.status_code == 201, response.text
    shifts = (
        await client.get(
            f"{url}/shifts",
            headers=cast.bob.headers,
            params={"start": "2026-03-07T00:00:00Z", "end": "2026-03-14T00:00:00Z"},
        )
    ).json()
    assert shifts["gaps"], "the range should include time with nobody on call"

    def iso(at: datetime) -> str:
        return at.isoformat().replace("+00:00", "Z")

    boundaries = {
        datetime.fromisoformat(piece[edge])
        for piece in shifts["final"] + shifts["gaps"]
        for edge in ("start", "end")
    }
    probes = sorted(boundaries | {at - timedelta(seconds=1) for at in boundaries})
    for at in probes:
        if not datetime(2026, 3, 7, tzinfo=UTC) <= at < datetime(2026, 3, 14, tzinfo=UTC):
            continue
        answer = await on_call(client, cast, schedule["id"], iso(at))
        containing = [
            shift
            for shift in shifts["final"]
            if datetime.fromisoformat(shift["start"]) <= at < datetime.fromisoformat(shift["end"])
        ]
        if containing:
            (shift,) = containing
            assert (answer["user_ids"], answer["source"]) == (shift["user_ids"], shift["source"]), (
                at
            )
        else:
            assert (answer["user_ids"], answer["source"]) == ([], None), at


async def test_changing_the_zone_keeps_handoffs_at_the_same_local_time(
    client: AsyncClient, cast: Cast
) -> None:
    schedule = await create(
        client, cast, schedule_body(cast, weekly_layer(cast.alice.id, cast.bob.id))
    )
    url = f"{SCHEDULES}/{schedule['id']}"
    # Monday 2026-03-02 09:00 is 14:00Z in New York and 08:00Z in Berlin.
    assert (await on_call(client, cast, schedule["id"], "2026-03-02T13:00:00Z"))["user_ids"] == [
        str(cast.alice.id)
    ]

    changed = await client.patch(
        url, headers=cast.alice.headers, json={"time_zone": "Europe/Berlin"}
    )
    refused = await client.patch(
        url, headers=cast.alice.headers, json={"time_zone": "Europe/Nowhere"}
    )

    assert changed.status_code == 200, changed.text
    assert changed.json()["layers"][0]["handoff"] == "2026-02-23T09:00"
    assert (await on_call(client, cast, schedule["id"], "2026-03-02T08:00:00Z"))["user_ids"] == [
        str(cast.bob.id)
    ]
    assert_rejected(refused, "time_zone")
    assert (await client.get(url, headers=cast.bob.headers)).json()["time_zone"] == "Europe/Berlin"


async def test_a_team_that_owns_a_schedule_is_not_deleted(client: AsyncClient, cast: Cast) -> None:
    schedule = await create(client, cast, schedule_body(cast, weekly_layer(cast.alice.id)))
    response = await client.delete(f"/api/v1/teams/{cast.payments}", headers=cast.admin.headers)
    assert response.status_code == 409
    assert "schedules" in response.json()["detail"]
    read = await client.get(f"{SCHEDULES}/{schedule['id']}", headers=cast.alice.headers)
    assert read.status_code == 200
