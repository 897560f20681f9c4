"""Signing in and out of the web UI, in-process: the redirect to /login?next=, the session
cookie's flags, no open redirect, CSRF on every state-changing request, and the limits."""

from __future__ import annotations

from datetime import timedelta
from http.cookies import Morsel, SimpleCookie

import pytest
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Cast, World
from tests.ui.support import PASSWORD, csrf_of, give_password, sign_in
from tocsin.app import create_app
from tocsin.clock import FrozenClock
from tocsin.config import Settings


@pytest.fixture
async def people(engine: AsyncEngine, world: World) -> Cast:
    cast = world.cast
    await give_password(engine, cast.admin.id, cast.alice.id, cast.bob.id, cast.olive.id)
    await give_password(engine, cast.mallory.id)
    return cast


def session_cookie(response: Response) -> Morsel[str]:
    """The tocsin_session cookie the response sets, with its attributes."""
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if "tocsin_session" in jar:
            return jar["tocsin_session"]
    raise AssertionError("no tocsin_session cookie set")


async def test_a_page_without_a_session_redirects_to_the_sign_in_form_with_next(
    client: AsyncClient,
) -> None:
    response = await client.get("/incidents?status=open")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/incidents%3Fstatus%3Dopen"
    form = await client.get(response.headers["location"])
    assert form.status_code == 200
    assert '<label for="email">Email</label>' in form.text
    assert '<label for="password">Password</label>' in form.text
    assert ">Sign in</button>" in form.text
    assert 'name="next" value="/incidents?status=open"' in form.text


async def test_signing_in_returns_to_next_with_an_httponly_lax_cookie_that_expires(
    client: AsyncClient, people: Cast, settings: Settings
) -> None:
    response = await sign_in(client, "bob@example.com", next_path="/incidents?status=open")
    assert response.status_code == 303
    assert response.headers["location"] == "/incidents?status=open"
    cookie = session_cookie(response)
    assert cookie.value.startswith("ts_")
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "lax"
    assert int(cookie["max-age"]) == int(
        timedelta(hours=settings.session_ttl_hours).total_seconds()
    )
    assert not cookie["secure"]  # the public URL is http here
    page = await client.get("/incidents?status=open")
    assert page.status_code == 200
    assert "Sign out" in page.text


async def test_the_cookie_is_secure_when_the_public_url_is_https(
    database_url: str, clock: FrozenClock, people: Cast
) -> None:
    settings = Settings(
        database_url=database_url, secret_key="s", public_url="https://tocsin.example.com"
    )
    app = create_app(settings, clock=clock, run_worker=False)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="https://test") as client,
    ):
        response = await sign_in(client, "bob@example.com")
    assert session_cookie(response)["secure"] is True


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", ""],
)
async def test_next_only_ever_leads_to_a_path_on_this_site(
    client: AsyncClient, people: Cast, target: str
) -> None:
    response = await sign_in(client, "bob@example.com", next_path=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_a_wrong_password_shows_the_form_again_and_sets_no_session(
    client: AsyncClient, people: Cast
) -> None:
    response = await sign_in(client, "bob@example.com", "wrong")
    assert response.status_code == 401
    assert "wrong email or password" in response.text
    assert "tocsin_session" not in response.headers.get("set-cookie", "")
    assert (await client.get("/incidents")).status_code == 303


async def test_the_form_is_limited_like_the_api(
    client: AsyncClient, people: Cast, settings: Settings
) -> None:
    for _ in range(settings.login_failures_per_email):
        await sign_in(client, "bob@example.com", "wrong")
    refused = await sign_in(client, "bob@example.com")
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert "too many failed sign-in attempts" in refused.text


async def test_signing_in_without_the_forms_token_is_refused(
    client: AsyncClient, people: Cast
) -> None:
    await client.get("/login")  # the nonce cookie, but no token sent
    response = await client.post(
        "/login", data={"email": "bob@example.com", "password": PASSWORD, "next": "/"}
    )
    assert response.status_code == 403
    assert "tocsin_session" not in response.headers.get("set-cookie", "")


async def test_signing_out_without_a_token_is_refused_and_the_session_stays(
    client: AsyncClient, people: Cast
) -> None:
    await sign_in(client, "bob@example.com")
    refused = await client.post("/logout", data={})
    assert refused.status_code == 403
    assert (await client.get("/incidents")).status_code == 200


async def test_a_token_from_another_session_is_refused(
    client: AsyncClient, app: object, people: Cast
) -> None:
    await sign_in(client, "bob@example.com")
    async with AsyncClient(
        transport=ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://test",
    ) as other:
        await sign_in(other, "alice@example.com")
        alices_token = csrf_of(await other.get("/incidents"))
    refused = await client.post("/logout", data={"csrf_token": alices_token})
    assert refused.status_code == 403
    assert (await client.get("/incidents")).status_code == 200


async def test_signing_out_ends_the_session_on_the_server(
    client: AsyncClient, app: object, people: Cast
) -> None:
    await sign_in(client, "bob@example.com")
    key = client.cookies["tocsin_session"]
    token = csrf_of(await client.get("/incidents"))
    out = await client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    # The old cookie, replayed, no longer signs anyone in.
    async with AsyncClient(
        transport=ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://test",
        cookies={"tocsin_session": key},
    ) as replay:
        assert (await replay.get("/incidents")).status_code == 303
        assert (
            await replay.get("/api/v1/users/me", headers={"Authorization": f"Bearer {key}"})
        ).status_code == 401


async def test_an_expired_session_sends_the_browser_to_sign_in(
    client: AsyncClient, people: Cast, clock: FrozenClock, settings: Settings
) -> None:
    await sign_in(client, "bob@example.com")
    clock.advance(timedelta(hours=settings.session_ttl_hours))
    response = await client.get("/incidents")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/incidents"


async def test_changing_the_password_on_the_page_shows_errors_beside_the_fields(
    client: AsyncClient, people: Cast
) -> None:
    await sign_in(client, "bob@example.com")
    token = csrf_of(await client.get("/profile/password"))
    wrong = await client.post(
        "/profile/password",
        data={"csrf_token": token, "old_password": "guess", "new_password": "long enough now"},
    )
    assert wrong.status_code == 422
    assert 'id="old_password-error"' in wrong.text
    assert "is not your current password" in wrong.text
    short = await client.post(
        "/profile/password",
        data={"csrf_token": token, "old_password": PASSWORD, "new_password": "short"},
    )
    assert short.status_code == 422
    assert 'id="new_password-error"' in short.text
    assert "at least 8 characters" in short.text
    done = await client.post(
        "/profile/password",
        data={"csrf_token": token, "old_password": PASSWORD, "new_password": "long enough now"},
    )
    assert done.status_code == 303
    assert (await client.get(done.headers["location"])).status_code == 200
