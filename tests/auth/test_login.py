"""Logging in with an email and password trades them for a new API key."""

from __future__ import annotations

from httpx import AsyncClient

from tests.factories import Cast

LOGIN = "/api/v1/auth/login"


async def make_carol(client: AsyncClient, cast: Cast) -> str:
    response = await client.post(
        "/api/v1/users",
        headers=cast.admin.headers,
        json={"email": "carol@example.com", "name": "Carol", "password": "correct horse"},
    )
    assert response.status_code == 201
    carol_id: str = response.json()["id"]
    return carol_id


async def test_it_logs_in_and_the_key_it_returns_works(client: AsyncClient, cast: Cast) -> None:
    carol_id = await make_carol(client, cast)
    response = await client.post(
        LOGIN, json={"email": "Carol@Example.com", "password": "correct horse"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["id"] == carol_id
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {body['api_key']}"}
    )
    assert me.json()["id"] == carol_id


async def test_a_wrong_password_is_unauthorized(client: AsyncClient, cast: Cast) -> None:
    await make_carol(client, cast)
    response = await client.post(LOGIN, json={"email": "carol@example.com", "password": "nope"})
    assert response.status_code == 401
    assert response.json() == {"detail": "wrong email or password"}


async def test_an_unknown_email_is_unauthorized_the_same_way(client: AsyncClient) -> None:
    response = await client.post(LOGIN, json={"email": "who@example.com", "password": "x"})
    assert response.status_code == 401
    assert response.json() == {"detail": "wrong email or password"}


async def test_a_user_without_a_password_cannot_log_in(client: AsyncClient, cast: Cast) -> None:
    response = await client.post(LOGIN, json={"email": "bob@example.com", "password": ""})
    assert response.status_code == 401


async def test_a_deactivated_user_cannot_log_in(client: AsyncClient, cast: Cast) -> None:
    carol_id = await make_carol(client, cast)
    await client.patch(
        f"/api/v1/users/{carol_id}", headers=cast.admin.headers, json={"is_active": False}
    )
    response = await client.post(
        LOGIN, json={"email": "carol@example.com", "password": "correct horse"}
    )
    assert response.status_code == 401


async def test_it_rejects_a_login_body_without_a_password(client: AsyncClient) -> None:
    response = await client.post(LOGIN, json={"email": "carol@example.com"})
    assert response.status_code == 422
    assert any(err["loc"][-1] == "password" for err in response.json()["detail"])
