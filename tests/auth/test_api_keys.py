"""API keys through the API: issued once, listed without the secret, revoked for good."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.factories import Cast, Person


def keys_url(person: Person) -> str:
    return f"/api/v1/users/{person.id}/api-keys"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_user_creates_a_key_that_works_and_is_shown_once(
    client: AsyncClient, cast: Cast
) -> None:
    response = await client.post(keys_url(cast.bob), headers=cast.bob.headers, json={"name": "ci"})
    assert response.status_code == 201, response.text
    issued = response.json()
    assert set(issued) == {
        "id",
        "name",
        "prefix",
        "created_at",
        "scope",
        "team_id",
        "expires_at",
        "key",
    }
    assert issued["name"] == "ci"
    assert issued["key"].startswith(issued["prefix"])
    me = await client.get("/api/v1/users/me", headers=bearer(issued["key"]))
    assert me.json()["id"] == str(cast.bob.id)
    listed = (await client.get(keys_url(cast.bob), headers=cast.bob.headers)).json()["items"]
    assert issued["id"] in {k["id"] for k in listed}
    assert all("key" not in k for k in listed)


async def test_a_revoked_key_stops_working_and_stays_listed(
    client: AsyncClient, cast: Cast
) -> None:
    issued = (await client.post(keys_url(cast.bob), headers=cast.bob.headers, json={})).json()
    response = await client.delete(f"{keys_url(cast.bob)}/{issued['id']}", headers=cast.bob.headers)
    assert response.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=bearer(issued["key"]))).status_code == 401
    listed = (await client.get(keys_url(cast.bob), headers=cast.bob.headers)).json()["items"]
    revoked = next(k for k in listed if k["id"] == issued["id"])
    assert revoked["revoked_at"] == "2026-03-10T09:00:00Z"
    again = await client.delete(f"{keys_url(cast.bob)}/{issued['id']}", headers=cast.bob.headers)
    assert again.status_code == 204


async def test_only_the_owner_or_an_admin_manages_keys(client: AsyncClient, cast: Cast) -> None:
    own_key = (await client.get(keys_url(cast.bob), headers=cast.bob.headers)).json()["items"][0]
    assert (await client.get(keys_url(cast.bob), headers=cast.alice.headers)).status_code == 403
    assert (
        await client.post(keys_url(cast.bob), headers=cast.alice.headers, json={})
    ).status_code == 403
    assert (
        await client.delete(f"{keys_url(cast.bob)}/{own_key['id']}", headers=cast.alice.headers)
    ).status_code == 403
    assert (await client.get("/api/v1/users/me", headers=cast.bob.headers)).status_code == 200
    assert (await client.get(keys_url(cast.bob), headers=cast.admin.headers)).status_code == 200
    by_admin = await client.post(keys_url(cast.bob), headers=cast.admin.headers, json={})
    assert by_admin.status_code == 201
    assert (await client.post(keys_url(cast.bob), json={})).status_code == 401


async def test_revoking_a_key_of_another_user_is_not_found(client: AsyncClient, cast: Cast) -> None:
    alices = (await client.get(keys_url(cast.alice), headers=cast.alice.headers)).json()["items"]
    response = await client.delete(
        f"{keys_url(cast.bob)}/{alices[0]['id']}", headers=cast.bob.headers
    )
    assert response.status_code == 404
    assert (await client.get("/api/v1/users/me", headers=cast.alice.headers)).status_code == 200


async def test_it_rejects_a_key_name_that_is_too_long(client: AsyncClient, cast: Cast) -> None:
    response = await client.post(
        keys_url(cast.bob), headers=cast.bob.headers, json={"name": "x" * 201}
    )
    assert response.status_code == 422
    assert any(err["loc"][-1] == "name" for err in response.json()["detail"])
    listed = (await client.get(keys_url(cast.bob), headers=cast.bob.headers)).json()["items"]
    assert len(listed) == 1


async def test_it_lists_keys_page_by_page_without_repeats(client: AsyncClient, cast: Cast) -> None:
    for name in ("a", "b"):
        await client.post(keys_url(cast.bob), headers=cast.bob.headers, json={"name": name})
    seen: list[Any] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = (
            await client.get(keys_url(cast.bob), headers=cast.bob.headers, params=params)
        ).json()
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert len({k["id"] for k in seen}) == len(seen) == 3
