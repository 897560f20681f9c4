"""The users API: who may create, read and change users, and what it refuses."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient, Response

from tests.factories import Cast

USERS = "/api/v1/users"


def assert_rejected(response: Response, *field: str) -> None:
    """A 422 whose detail names the field (its loc ends with it)."""
    assert response.status_code == 422, response.text
    locs = [tuple(str(part) for part in err["loc"]) for err in response.json()["detail"]]
    assert any(loc[-len(field) :] == field for loc in locs), locs


async def all_pages(client: AsyncClient, url: str, cast: Cast, limit: int) -> list[Any]:
    items: list[Any] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = await client.get(url, headers=cast.admin.headers, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        if body["next_cursor"] is None:
            return items
        params["cursor"] = body["next_cursor"]


async def emails(client: AsyncClient, cast: Cast) -> set[str]:
    return {u["email"] for u in await all_pages(client, USERS, cast, limit=500)}


async def test_an_admin_creates_a_user_and_anyone_can_read_it(
    client: AsyncClient, cast: Cast
) -> None:
    response = await client.post(
        USERS,
        headers=cast.admin.headers,
        json={"email": " Carol@Example.com ", "name": "Carol", "time_zone": "Europe/Paris"},
    )
    assert response.status_code == 201, response.text
    carol = response.json()
    assert carol["email"] == "carol@example.com"
    assert (carol["name"], carol["time_zone"], carol["is_admin"], carol["is_active"]) == (
        "Carol",
        "Europe/Paris",
        False,
        True,
    )
    assert carol["created_at"] == "2026-03-10T09:00:00Z"
    assert "password" not in carol and "password_hash" not in carol
    read = await client.get(f"{USERS}/{carol['id']}", headers=cast.mallory.headers)
    assert read.status_code == 200
    assert read.json() == carol


async def test_me_is_the_caller(client: AsyncClient, cast: Cast) -> None:
    response = await client.get(f"{USERS}/me", headers=cast.bob.headers)
    assert response.status_code == 200
    assert response.json()["id"] == str(cast.bob.id)
    assert response.json()["email"] == "bob@example.com"


async def test_it_refuses_requests_without_a_valid_key(client: AsyncClient, cast: Cast) -> None:
    assert (await client.get(USERS)).status_code == 401
    assert (await client.get(f"{USERS}/me")).status_code == 401
    bad = {"Authorization": "Bearer tk_not-a-key"}
    response = await client.get(USERS, headers=bad)
    assert response.status_code == 401
    assert "detail" in response.json()


async def test_only_an_admin_creates_users(client: AsyncClient, cast: Cast) -> None:
    body = {"email": "carol@example.com", "name": "Carol"}
    for person in (cast.alice, cast.bob, cast.mallory):
        assert (await client.post(USERS, headers=person.headers, json=body)).status_code == 403
    assert "carol@example.com" not in await emails(client, cast)


async def test_it_lists_users_page_by_page_without_repeats(client: AsyncClient, cast: Cast) -> None:
    for name in ("carol", "dave", "erin"):
        body = {"email": f"{name}@example.com", "name": name}
        assert (await client.post(USERS, headers=cast.admin.headers, json=body)).status_code == 201
    users = await all_pages(client, USERS, cast, limit=2)
    ids = [u["id"] for u in users]
    assert len(ids) == len(set(ids)) == 8
    assert {"carol@example.com", "dave@example.com", "erin@example.com"} <= {
        u["email"] for u in users
    }


async def test_it_rejects_a_cursor_it_did_not_hand_out(client: AsyncClient, cast: Cast) -> None:
    response = await client.get(USERS, headers=cast.admin.headers, params={"cursor": "junk"})
    assert_rejected(response, "cursor")


async def test_it_rejects_a_malformed_email(client: AsyncClient, cast: Cast) -> None:
    response = await client.post(
        USERS, headers=cast.admin.headers, json={"email": "carol.example.com", "name": "Carol"}
    )
    assert_rejected(response, "email")
    assert len(await emails(client, cast)) == 5


async def test_it_rejects_an_unknown_time_zone(client: AsyncClient, cast: Cast) -> None:
    for zone in ("Mars/Olympus_Mons", "America", "../etc/passwd"):
        response = await client.post(
            USERS,
            headers=cast.admin.headers,
            json={"email": "carol@example.com", "name": "Carol", "time_zone": zone},
        )
        assert_rejected(response, "time_zone")
    assert "carol@example.com" not in await emails(client, cast)


async def test_it_rejects_an_empty_name(client: AsyncClient, cast: Cast) -> None:
    response = await client.post(
        USERS, headers=cast.admin.headers, json={"email": "carol@example.com", "name": "  "}
    )
    assert_rejected(response, "name")
    assert "carol@example.com" not in await emails(client, cast)


async def test_it_rejects_a_short_password(client: AsyncClient, cast: Cast) -> None:
    response = await client.post(
        USERS,
        headers=cast.admin.headers,
        json={"email": "carol@example.com", "name": "Carol", "password": "short"},
    )
    assert_rejected(response, "password")
    assert "carol@example.com" not in await emails(client, cast)


async def test_it_rejects_unknown_fields(client: AsyncClient, cast: Cast) -> None:
    response = await client.post(
        USERS,
        headers=cast.admin.headers,
        json={"email": "carol@example.com", "name": "Carol", "role": "boss"},
    )
    assert_rejected(response, "role")
    assert "carol@example.com" not in await emails(client, cast)


async def test_a_taken_email_is_a_conflict_whatever_its_case(
    client: AsyncClient, cast: Cast
) -> None:
    response = await client.post(
        USERS, headers=cast.admin.headers, json={"email": "ALICE@example.com", "name": "Alice 2"}
    )
    assert response.status_code == 409
    assert "alice@example.com" in response.json()["detail"]


async def test_a_user_changes_their_own_name_and_nothing_else(
    client: AsyncClient, cast: Cast
) -> None:
    before = (await client.get(f"{USERS}/me", headers=cast.bob.headers)).json()
    response = await client.patch(
        f"{USERS}/{cast.bob.id}", headers=cast.bob.headers, json={"name": "Robert"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {**before, "name": "Robert"}
    assert (await client.get(f"{USERS}/me", headers=cast.bob.headers)).json()["name"] == "Robert"


async def test_a_user_changes_their_own_time_zone(client: AsyncClient, cast: Cast) -> None:
    response = await client.patch(
        f"{USERS}/{cast.bob.id}", headers=cast.bob.headers, json={"time_zone": "Asia/Tokyo"}
    )
    assert response.status_code == 200
    assert response.json()["time_zone"] == "Asia/Tokyo"


async def test_a_user_cannot_make_themselves_admin(client: AsyncClient, cast: Cast) -> None:
    response = await client.patch(
        f"{USERS}/{cast.bob.id}",
        headers=cast.bob.headers,
        json={"name": "Robert", "is_admin": True},
    )
    assert response.status_code == 403
    assert "is_admin" in response.json()["detail"]
    me = (await client.get(f"{USERS}/me", headers=cast.bob.headers)).json()
    assert (me["name"], me["is_admin"]) == ("Bob", False)


async def test_a_user_cannot_change_another_user(client: AsyncClient, cast: Cast) -> None:
    response = await client.patch(
        f"{USERS}/{cast.bob.id}", headers=cast.alice.headers, json={"name": "Bobby"}
    )
    assert response.status_code == 403
    assert (await client.get(f"{USERS}/{cast.bob.id}", headers=cast.bob.headers)).json()[
        "name"
    ] == "Bob"


async def test_an_admin_changes_any_field_of_anyone(client: AsyncClient, cast: Cast) -> None:
    response = await client.patch(
        f"{USERS}/{cast.bob.id}",
        headers=cast.admin.headers,
        json={"email": "robert@example.com", "is_admin": True, "password": "long enough"},
    )
    assert response.status_code == 200, response.text
    assert (response.json()["email"], response.json()["is_admin"]) == ("robert@example.com", True)
    assert response.json()["name"] == "Bob"
    login = await client.post(
        "/api/v1/auth/login", json={"email": "robert@example.com", "password": "long enough"}
    )
    assert login.status_code == 200


async def test_it_refuses_to_set_a_field_to_null(client: AsyncClient, cast: Cast) -> None:
    response = await client.patch(
        f"{USERS}/{cast.bob.id}", headers=cast.admin.headers, json={"name": None}
    )
    assert_rejected(response, "name")


async def test_it_rejects_an_unknown_time_zone_on_change(client: AsyncClient, cast: Cast) -> None:
    response = await client.patch(
        f"{USERS}/{cast.bob.id}", headers=cast.bob.headers, json={"time_zone": "Nowhere/Town"}
    )
    assert_rejected(response, "time_zone")
    me = (await client.get(f"{USERS}/me", headers=cast.bob.headers)).json()
    assert me["time_zone"] == "UTC"


async def test_changing_email_to_a_taken_one_is_a_conflict(client: AsyncClient, cast: Cast) -> None:
    response = await client.patch(
        f"{USERS}/{cast.bob.id}", headers=cast.admin.headers, json={"email": "alice@example.com"}
    )
    assert response.status_code == 409
    bob = (await client.get(f"{USERS}/{cast.bob.id}", headers=cast.bob.headers)).json()
    assert bob["email"] == "bob@example.com"


async def test_the_last_active_admin_cannot_stop_being_one(client: AsyncClient, cast: Cast) -> None:
    for change in ({"is_admin": False}, {"is_active": False}):
        response = await client.patch(
            f"{USERS}/{cast.admin.id}", headers=cast.admin.headers, json=change
        )
        assert response.status_code == 409, change
    promote = await client.patch(
        f"{USERS}/{cast.alice.id}", headers=cast.admin.headers, json={"is_admin": True}
    )
    assert promote.status_code == 200
    response = await client.patch(
        f"{USERS}/{cast.admin.id}", headers=cast.admin.headers, json={"is_admin": False}
    )
    assert response.status_code == 200


async def test_a_deactivated_users_keys_stop_working(client: AsyncClient, cast: Cast) -> None:
    response = await client.patch(
        f"{USERS}/{cast.mallory.id}", headers=cast.admin.headers, json={"is_active": False}
    )
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert (await client.get(f"{USERS}/me", headers=cast.mallory.headers)).status_code == 401


async def test_an_unknown_user_is_not_found(client: AsyncClient, cast: Cast) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert (await client.get(f"{USERS}/{missing}", headers=cast.bob.headers)).status_code == 404
    response = await client.patch(
        f"{USERS}/{missing}", headers=cast.admin.headers, json={"name": "Nobody"}
    )
    assert response.status_code == 404
