"""Login sessions: a login hands out a key that expires, sign-out and a password change end
sessions, failed attempts are limited per email and per address (in the database, so every
process sees them), and passwords are Argon2id, old scrypt hashes upgraded at login."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Literal

import pytest
from argon2 import PasswordHasher
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Cast
from tests.ui.support import PASSWORD, give_password
from tocsin.app import create_app
from tocsin.auth import secrets as auth_secrets
from tocsin.auth.models import User
from tocsin.auth.secrets import scrypt_hash
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.db import create_session_factory

LOGIN = "/api/v1/login"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def log_in(
    client: AsyncClient, email: str = "bob@example.com", password: str = PASSWORD
) -> Response:
    return await client.post(LOGIN, json={"email": email, "password": password})


@pytest.fixture
async def bob(engine: AsyncEngine, cast: Cast) -> Cast:
    await give_password(engine, cast.bob.id)
    return cast


async def stored_hash(engine: AsyncEngine, email: str) -> str:
    async with create_session_factory(engine)() as session:
        value = (
            await session.execute(select(User.password_hash).where(User.email == email))
        ).scalar_one()
    assert value is not None
    return value


async def test_a_login_answers_a_session_key_that_expires_and_works_as_a_bearer(
    client: AsyncClient, bob: Cast, clock: FrozenClock, settings: Settings
) -> None:
    response = await log_in(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["api_key"].startswith("ts_")
    assert body["user"]["email"] == "bob@example.com"
    expires = clock.now() + timedelta(hours=settings.session_ttl_hours)
    assert body["expires_at"] == expires.isoformat().replace("+00:00", "Z")
    me = await client.get("/api/v1/users/me", headers=bearer(body["api_key"]))
    assert me.json()["id"] == str(bob.bob.id)


async def test_the_old_login_path_answers_the_same(client: AsyncClient, bob: Cast) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"email": "bob@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["api_key"].startswith("ts_")


async def test_a_session_key_stops_working_when_it_expires(
    client: AsyncClient, bob: Cast, clock: FrozenClock, settings: Settings
) -> None:
    key = (await log_in(client)).json()["api_key"]
    clock.advance(timedelta(hours=settings.session_ttl_hours) - timedelta(seconds=1))
    assert (await client.get("/api/v1/users/me", headers=bearer(key))).status_code == 200
    clock.advance(timedelta(seconds=1))
    expired = await client.get("/api/v1/users/me", headers=bearer(key))
    assert expired.status_code == 401


async def test_signing_out_ends_the_session_but_not_the_users_api_keys(
    client: AsyncClient, bob: Cast
) -> None:
    key = (await log_in(client)).json()["api_key"]
    assert (await client.post("/api/v1/logout", headers=bearer(key))).status_code == 204
    assert (await client.get("/api/v1/users/me", headers=bearer(key))).status_code == 401
    assert (await client.get("/api/v1/users/me", headers=bob.bob.headers)).status_code == 200


async def test_changing_the_password_ends_the_other_sessions_but_not_this_one(
    client: AsyncClient, bob: Cast
) -> None:
    laptop = (await log_in(client)).json()["api_key"]
    phone = (await log_in(client)).json()["api_key"]
    changed = await client.post(
        "/api/v1/users/me/password",
        headers=bearer(laptop),
        json={"old_password": PASSWORD, "new_password": "a brand new secret"},
    )
    assert changed.status_code == 204, changed.text
    assert (await client.get("/api/v1/users/me", headers=bearer(laptop))).status_code == 200
    assert (await client.get("/api/v1/users/me", headers=bearer(phone))).status_code == 401
    assert (await log_in(client)).status_code == 401
    assert (await log_in(client, password="a brand new secret")).status_code == 200


async def test_changing_the_password_needs_the_current_one(client: AsyncClient, bob: Cast) -> None:
    key = (await log_in(client)).json()["api_key"]
    other = (await log_in(client)).json()["api_key"]
    refused = await client.post(
        "/api/v1/users/me/password",
        headers=bearer(key),
        json={"old_password": "a guess", "new_password": "a brand new secret"},
    )
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"][-1] == "old_password"
    assert (await client.get("/api/v1/users/me", headers=bearer(other))).status_code == 200
    assert (await log_in(client)).status_code == 200


async def test_a_new_password_too_short_is_refused_naming_the_field(
    client: AsyncClient, bob: Cast
) -> None:
    refused = await client.post(
        "/api/v1/users/me/password",
        headers=bob.bob.headers,
        json={"old_password": PASSWORD, "new_password": "short"},
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][-1] == "new_password"


async def test_an_administrator_setting_a_password_ends_every_session_of_that_user(
    client: AsyncClient, bob: Cast
) -> None:
    key = (await log_in(client)).json()["api_key"]
    reset = await client.patch(
        f"/api/v1/users/{bob.bob.id}", headers=bob.admin.headers, json={"password": "reset by ops"}
    )
    assert reset.status_code == 200
    assert (await client.get("/api/v1/users/me", headers=bearer(key))).status_code == 401


async def test_a_deactivated_users_session_stops_working(client: AsyncClient, bob: Cast) -> None:
    key = (await log_in(client)).json()["api_key"]
    await client.patch(
        f"/api/v1/users/{bob.bob.id}", headers=bob.admin.headers, json={"is_active": False}
    )
    assert (await client.get("/api/v1/users/me", headers=bearer(key))).status_code == 401


async def test_too_many_failures_for_one_email_are_refused_even_with_the_right_password(
    client: AsyncClient, bob: Cast, clock: FrozenClock, settings: Settings
) -> None:
    for _ in range(settings.login_failures_per_email):
        assert (await log_in(client, password="guess")).status_code == 401
    refused = await log_in(client)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) == settings.login_failure_window_seconds
    assert "too many failed sign-in attempts" in refused.json()["detail"]
    clock.advance(timedelta(seconds=settings.login_failure_window_seconds))
    assert (await log_in(client)).status_code == 200


async def test_a_success_clears_the_emails_failures(
    client: AsyncClient, bob: Cast, settings: Settings
) -> None:
    for _ in range(settings.login_failures_per_email - 1):
        await log_in(client, password="guess")
    assert (await log_in(client)).status_code == 200
    for _ in range(settings.login_failures_per_email - 1):
        assert (await log_in(client, password="guess")).status_code == 401


async def test_an_unknown_email_is_limited_like_a_known_one(
    client: AsyncClient, settings: Settings
) -> None:
    for _ in range(settings.login_failures_per_email):
        assert (await log_in(client, "nobody@example.com", "guess")).status_code == 401
    assert (await log_in(client, "nobody@example.com", "guess")).status_code == 429


async def test_too_many_failures_from_one_address_are_refused_whatever_the_email(
    database_url: str, clock: FrozenClock, bob: Cast
) -> None:
    settings = Settings(
        database_url=database_url, secret_key="test-secret", login_failures_per_address=3
    )
    async with serve(settings, clock) as client:
        for n in range(3):
            assert (await log_in(client, f"guess{n}@example.com", "x")).status_code == 401
        refused = await log_in(client)
        assert refused.status_code == 429
        assert "Retry-After" in refused.headers


async def test_failures_counted_by_one_process_are_seen_by_another(
    database_url: str, clock: FrozenClock, bob: Cast, settings: Settings
) -> None:
    """Two apps on one database stand for two `serve` processes: the count is in the
    database, not in a process's memory."""
    async with serve(settings, clock) as first, serve(settings, clock) as second:
        for _ in range(settings.login_failures_per_email):
            assert (await log_in(first, password="guess")).status_code == 401
        assert (await log_in(second)).status_code == 429


async def test_an_old_scrypt_password_still_works_and_is_upgraded_to_argon2id(
    client: AsyncClient, cast: Cast, engine: AsyncEngine
) -> None:
    async with create_session_factory(engine)() as session, session.begin():
        await session.execute(
            update(User).where(User.id == cast.bob.id).values(password_hash=scrypt_hash(PASSWORD))
        )
    assert (await log_in(client, password="not it")).status_code == 401
    assert (await stored_hash(engine, "bob@example.com")).startswith("scrypt$")
    assert (await log_in(client)).status_code == 200
    upgraded = await stored_hash(engine, "bob@example.com")
    assert upgraded.startswith("$argon2id$")
    assert (await log_in(client)).status_code == 200


async def test_a_hash_with_weaker_argon2_parameters_is_rehashed_at_login(
    client: AsyncClient, cast: Cast, engine: AsyncEngine
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    async with create_session_factory(engine)() as session, session.begin():
        await session.execute(update(User).where(User.id == cast.bob.id).values(password_hash=weak))
    assert (await log_in(client)).status_code == 200
    stronger = await stored_hash(engine, "bob@example.com")
    assert stronger != weak
    assert not auth_secrets.PASSWORD_HASHER.check_needs_rehash(stronger)


@pytest.mark.parametrize(
    ("email", "password"),
    [("nobody@example.com", "guess"), ("alice@example.com", "guess"), ("bob@example.com", "x")],
    ids=["unknown email", "no password", "wrong password"],
)
async def test_every_failed_login_costs_one_argon2_verification(
    client: AsyncClient,
    bob: Cast,
    monkeypatch: pytest.MonkeyPatch,
    email: str,
    password: str,
) -> None:
    """Equal work whether the email exists, has no password, or the password is wrong, so
    the answer's timing tells nothing."""
    calls: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            calls.append("verify")
            return super().verify(hash, password)

    monkeypatch.setattr(auth_secrets, "PASSWORD_HASHER", CountingHasher())
    assert (await log_in(client, email, password)).status_code == 401
    assert calls == ["verify"]


@contextlib.asynccontextmanager
async def serve(settings: Settings, clock: FrozenClock) -> AsyncIterator[AsyncClient]:
    """An app of its own on the test database (a process of its own, as far as the app
    knows), with its own HTTP client."""
    app = create_app(settings, clock=clock, run_worker=False)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client
