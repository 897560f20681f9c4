"""The admin user pages, integrations and heartbeats, in-process: non-admins are refused
the admin pages and forms, keys and URLs are shown once, payloads only to admins, and bad
input is shown beside its field with nothing saved."""

from __future__ import annotations

import re

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World
from tests.ui.support import PASSWORD, csrf_of, give_password, sign_in

WEBHOOK = re.compile(r'id="webhook-url" type="text" readonly value="([^"]+)"')
PING = re.compile(r'id="ping-url" type="text" readonly value="([^"]+)"')


@pytest.fixture
async def people(engine: AsyncEngine, world: World) -> World:
    cast = world.cast
    await give_password(
        engine, cast.admin.id, cast.alice.id, cast.bob.id, cast.olive.id, cast.mallory.id
    )
    return world


# Admin: users


async def test_non_admins_are_refused_the_user_pages_and_forms(
    client: AsyncClient, people: World
) -> None:
    bob = people.cast.bob
    await sign_in(client, "alice@example.com")
    assert (await client.get("/admin/users")).status_code == 403
    assert 'href="/admin/users"' not in (await client.get("/incidents")).text
    token = csrf_of(await client.get("/profile"))
    attempts = [
        ("/admin/users", {"email": "eve@example.com", "name": "Eve", "is_admin": "1"}),
        (f"/admin/users/{people.cast.alice.id}/admin", {"make_admin": "1"}),
        (f"/admin/users/{bob.id}/active", {}),
    ]
    for path, data in attempts:
        assert (await client.post(path, data={"csrf_token": token, **data})).status_code == 403
    users = (await client.get("/api/v1/users", headers=people.cast.admin.headers)).json()
    by_email = {u["email"]: u for u in users["items"]}
    assert "eve@example.com" not in by_email
    assert not by_email["alice@example.com"]["is_admin"]
    assert by_email["bob@example.com"]["is_active"]


async def test_an_admin_creates_promotes_and_deactivates_a_user(
    client: AsyncClient, people: World, app: object
) -> None:
    await sign_in(client, "admin@example.com")
    page = await client.get("/admin/users")
    assert page.status_code == 200 and "bob@example.com" in page.text
    token = csrf_of(page)
    made = await client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "email": "Eve@Example.com",
            "name": "Eve",
            "password": PASSWORD,
            "time_zone": "Europe/Paris",
        },
    )
    assert made.status_code == 303
    users = (await client.get("/api/v1/users", headers=people.cast.admin.headers)).json()
    eve = next(u for u in users["items"] if u["email"] == "eve@example.com")
    assert eve["time_zone"] == "Europe/Paris" and not eve["is_admin"]
    promoted = await client.post(
        f"/admin/users/{eve['id']}/admin", data={"csrf_token": token, "make_admin": "1"}
    )
    assert promoted.status_code == 303
    # Bob signed in elsewhere is signed out the moment he is deactivated.
    from httpx import ASGITransport

    async with AsyncClient(
        transport=ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://test",
    ) as bobs_browser:
        await sign_in(bobs_browser, "bob@example.com")
        assert (await bobs_browser.get("/incidents")).status_code == 200
        off = await client.post(
            f"/admin/users/{people.cast.bob.id}/active", data={"csrf_token": token}
        )
        assert off.status_code == 303
        assert (await bobs_browser.get("/incidents")).status_code == 303
    users = (await client.get("/api/v1/users", headers=people.cast.admin.headers)).json()
    by_email = {u["email"]: u for u in users["items"]}
    assert by_email["eve@example.com"]["is_admin"] and not by_email["bob@example.com"]["is_active"]


async def test_bad_user_input_is_shown_beside_the_field_and_nothing_is_saved(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "admin@example.com")
    token = csrf_of(await client.get("/admin/users"))
    bad = await client.post(
        "/admin/users",
        data={"csrf_token": token, "email": "not-an-email", "name": "Eve", "password": "short"},
    )
    assert bad.status_code == 422
    assert 'id="email-error"' in bad.text and "is not an email address" in bad.text
    taken = await client.post(
        "/admin/users", data={"csrf_token": token, "email": "bob@example.com", "name": "Bob 2"}
    )
    assert taken.status_code == 409 and "already exists" in taken.text
    last = await client.post(
        f"/admin/users/{people.cast.admin.id}/admin", data={"csrf_token": token}
    )
    assert last.status_code == 409 and "last active administrator" in last.text
    users = (await client.get("/api/v1/users", headers=people.cast.admin.headers)).json()
    assert len(users["items"]) == 5


# Integrations


async def test_an_integrations_webhook_url_is_shown_once_after_creation_and_rotation(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "admin@example.com")
    token = csrf_of(await client.get("/integrations"))
    made = await client.post(
        "/integrations",
        data={
            "csrf_token": token,
            "name": "Prometheus",
            "type": "alertmanager",
            "default_service_id": str(people.service),
            "auto_resolve": "1",
        },
    )
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    url = WEBHOOK.search(made.text)
    assert url is not None and "/webhooks/" in url.group(1)
    assert 'data-copy="webhook-url"' in made.text
    integration_id = re.search(r'href="/integrations/([0-9a-f-]{36})"', made.text)
    assert integration_id is not None
    page = await client.get(f"/integrations/{integration_id.group(1)}")
    assert url.group(1) not in page.text and WEBHOOK.search(page.text) is None
    listing = await client.get(f"/integrations?service={people.service}")
    assert "Prometheus" in listing.text and "Payments API" in listing.text
    assert url.group(1) not in listing.text
    rotated = await client.post(
        f"/integrations/{integration_id.group(1)}/rotate-key", data={"csrf_token": token}
    )
    new_url = WEBHOOK.search(rotated.text)
    assert new_url is not None and new_url.group(1) != url.group(1)
    # The old key stops working; the new one raises an alert.
    path = lambda full: "/" + full.split("://", 1)[1].split("/", 1)[1]  # noqa: E731
    alert = {"version": "4", "status": "firing", "alerts": []}
    old = await client.post(path(url.group(1)), json=alert)
    new = await client.post(path(new_url.group(1)), json=alert)
    assert old.status_code in (401, 404)
    assert new.status_code not in (401, 404), new.text


async def test_payloads_are_for_admins_and_only_admins_create_or_rotate(
    client: AsyncClient, people: World
) -> None:
    sent = await client.post(people.integration.url, json={"title": "Disk full <b>now</b>"})
    assert sent.status_code == 202
    await sign_in(client, "admin@example.com")
    page = await client.get(f"/integrations/{people.integration.id}")
    assert "Last payloads received" in page.text
    assert "Disk full &lt;b&gt;now&lt;/b&gt;" in page.text
    await sign_in(client, "alice@example.com")
    page = await client.get(f"/integrations/{people.integration.id}")
    assert page.status_code == 200
    assert "Last payloads received" not in page.text and "Disk full" not in page.text
    token = csrf_of(page)
    refused = await client.post(
        f"/integrations/{people.integration.id}/rotate-key", data={"csrf_token": token}
    )
    assert refused.status_code == 403
    created = await client.post("/integrations", data={"csrf_token": token, "name": "Mine"})
    assert created.status_code == 403 and WEBHOOK.search(created.text) is None
    # The old key still works: nothing was rotated.
    assert (await client.post(people.integration.url, json={"title": "x"})).status_code == 202


async def test_bad_integration_input_is_shown_beside_the_field(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "admin@example.com")
    token = csrf_of(await client.get("/integrations"))
    bad = await client.post(
        "/integrations",
        data={"csrf_token": token, "name": "", "type": "generic", "dedup_window_minutes": "-5"},
    )
    assert bad.status_code == 422
    assert 'id="name-error"' in bad.text and 'id="dedup_window_minutes-error"' in bad.text
    listed = (await client.get("/api/v1/integrations", headers=people.cast.admin.headers)).json()
    assert len(listed["items"]) == 1


# Heartbeats


async def test_a_manager_creates_a_heartbeat_whose_ping_url_is_shown_once_and_works(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "alice@example.com")
    page = await client.get("/heartbeats")
    assert page.status_code == 200 and "New heartbeat monitor" in page.text
    made = await client.post(
        "/heartbeats",
        data={
            "csrf_token": csrf_of(page),
            "name": "Nightly backup",
            "service_id": str(people.service),
            "interval_seconds": "86400",
            "grace_seconds": "600",
            "severity": "high",
        },
    )
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    url = PING.search(made.text)
    assert url is not None
    listing = await client.get("/heartbeats")
    assert "Nightly backup" in listing.text and "Waiting" in listing.text
    assert "Never" in listing.text and url.group(1) not in listing.text
    ping = "/" + url.group(1).split("://", 1)[1].split("/", 1)[1]
    assert (await client.post(ping)).status_code == 200
    listing = await client.get("/heartbeats")
    assert "hb-up" in listing.text and "Never" not in listing.text


async def test_heartbeats_refuse_outsiders_and_show_bad_input_beside_the_field(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "mallory@example.com")
    page = await client.get("/heartbeats")
    assert "New heartbeat monitor" not in page.text  # she manages no team
    data = {
        "csrf_token": csrf_of(page),
        "name": "Mine",
        "service_id": str(people.service),
        "interval_seconds": "60",
    }
    assert (await client.post("/heartbeats", data=data)).status_code == 403
    await sign_in(client, "alice@example.com")
    token = csrf_of(await client.get("/heartbeats"))
    bad = await client.post(
        "/heartbeats", data={**data, "csrf_token": token, "interval_seconds": "5"}
    )
    assert bad.status_code == 422
    assert 'id="interval_seconds-error"' in bad.text and "greater than or equal to 10" in bad.text
    listed = (await client.get("/api/v1/heartbeats", headers=people.cast.admin.headers)).json()
    assert listed["items"] == []


async def test_integrations_are_listed_per_team_and_an_admin_deactivates_one(
    client: AsyncClient, people: World
) -> None:
    admin = people.cast.admin
    made = await client.post(
        "/api/v1/integrations",
        headers=admin.headers,
        json={
            "name": "Grafana payments",
            "type": "grafana",
            "default_service_id": str(people.service),
        },
    )
    assert made.status_code == 201
    await sign_in(client, "alice@example.com")
    mine = await client.get(f"/integrations?team={people.cast.payments}")
    assert "Grafana payments" in mine.text
    assert f'href="/integrations/{people.integration.id}"' not in mine.text  # no service
    token = csrf_of(mine)
    refused = await client.post(
        f"/integrations/{people.integration.id}/active", data={"csrf_token": token}
    )
    assert refused.status_code == 403
    assert (await client.post(people.integration.url, json={"title": "x"})).status_code == 202
    await sign_in(client, "admin@example.com")
    token = csrf_of(await client.get(f"/integrations/{people.integration.id}"))
    off = await client.post(
        f"/integrations/{people.integration.id}/active", data={"csrf_token": token}
    )
    assert off.status_code == 303
    page = await client.get(off.headers["location"])
    assert "Integration inactive" in page.text and "✕ Inactive" in page.text
    assert (await client.post(people.integration.url, json={"title": "x"})).status_code == 404
    on = await client.post(
        f"/integrations/{people.integration.id}/active", data={"csrf_token": token, "active": "1"}
    )
    assert on.status_code == 303
    assert (await client.post(people.integration.url, json={"title": "x"})).status_code == 202
