"""The profile page, in-process: contact methods verified by the code that was queued to
them, notification rules, time zone, the calendar link and API keys shown once, each change
visible through the API; bad input beside its field; nobody reaches another's settings."""

from __future__ import annotations

import re

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World
from tests.ui.support import csrf_of, give_password, sign_in
from tocsin.notifications.models import Delivery, DeliveryKind

KEY = re.compile(r'id="new-api-key" type="text" readonly value="([^"]+)"')
CALENDAR = re.compile(r'id="calendar-url" type="text" readonly value="([^"]+)"')


@pytest.fixture
async def people(engine: AsyncEngine, world: World) -> World:
    cast = world.cast
    await give_password(engine, cast.admin.id, cast.alice.id, cast.bob.id, cast.mallory.id)
    return world


async def queued_code(engine: AsyncEngine, address: str) -> str:
    """The verification code queued to this address (what the email would carry)."""
    async with engine.connect() as conn:
        payloads = (
            await conn.execute(
                select(Delivery.payload)
                .where(Delivery.kind == DeliveryKind.VERIFICATION, Delivery.address == address)
                .order_by(Delivery.created_at.desc())
            )
        ).scalars()
        code: str = next(iter(payloads))["code"]
        return code


async def test_the_profile_shows_every_section_with_labelled_controls(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "bob@example.com")
    page = await client.get("/profile")
    assert page.status_code == 200
    for heading in (
        "Contact methods",
        "Notification rules",
        "Account",
        "Calendar link",
        "API keys",
    ):
        assert f">{heading}</h2>" in page.text
    assert 'href="/profile/password"' in page.text
    # Every input, select and textarea (but hidden ones) has a label pointing at it.
    for control_id in re.findall(r'<(?:input|select|textarea) id="([^"]+)"', page.text):
        assert f'for="{control_id}"' in page.text, control_id
    # Pages without contact methods warn that pages go by email only.
    assert "no notification rule for high urgency" in page.text


async def test_a_contact_method_is_added_verified_by_code_tested_and_removed(
    client: AsyncClient, people: World, engine: AsyncEngine
) -> None:
    bob = people.cast.bob
    await sign_in(client, "bob@example.com")
    token = csrf_of(await client.get("/profile"))
    added = await client.post(
        "/profile/contact-methods",
        data={
            "csrf_token": token,
            "kind": "email",
            "method_name": "Pager mail",
            "address": "bob@pager.example.com",
        },
    )
    assert added.status_code == 303
    page = await client.get(added.headers["location"])
    assert "Pager mail" in page.text and "Not verified" in page.text
    [method] = (
        await client.get(f"/api/v1/users/{bob.id}/contact-methods", headers=bob.headers)
    ).json()["items"]
    wrong = await client.post(
        f"/profile/contact-methods/{method['id']}/verify",
        data={"csrf_token": token, "code": "12345"},
    )
    assert wrong.status_code == 422
    assert f'id="code-{method["id"]}-error"' in wrong.text
    code = await queued_code(engine, "bob@pager.example.com")
    verified = await client.post(
        f"/profile/contact-methods/{method['id']}/verify",
        data={"csrf_token": token, "code": code},
    )
    assert verified.status_code == 303
    assert "✓ Verified" in (await client.get("/profile")).text
    tested = await client.post(
        f"/profile/contact-methods/{method['id']}/test", data={"csrf_token": token}
    )
    assert tested.status_code == 303 and "test-sent" in tested.headers["location"]
    rule = await client.post(
        "/profile/rules",
        data={
            "csrf_token": token,
            "urgency": "high",
            "delay_minutes": "5",
            "contact_method_id": method["id"],
        },
    )
    assert rule.status_code == 303
    rules = (
        await client.get(f"/api/v1/users/{bob.id}/notification-rules", headers=bob.headers)
    ).json()["items"]
    assert [(r["urgency"], r["delay_minutes"]) for r in rules] == [("high", 5)]
    removed = await client.post(
        f"/profile/contact-methods/{method['id']}/remove", data={"csrf_token": token}
    )
    assert removed.status_code == 303
    methods = (
        await client.get(f"/api/v1/users/{bob.id}/contact-methods", headers=bob.headers)
    ).json()["items"]
    assert methods == []


async def test_bad_profile_input_is_shown_beside_the_field_and_nothing_is_saved(
    client: AsyncClient, people: World
) -> None:
    bob = people.cast.bob
    await sign_in(client, "bob@example.com")
    token = csrf_of(await client.get("/profile"))
    phone = await client.post(
        "/profile/contact-methods",
        data={"csrf_token": token, "kind": "sms", "method_name": "Phone", "address": "12345"},
    )
    assert phone.status_code == 422
    assert 'id="address-error"' in phone.text and "E.164" in phone.text
    assert 'value="12345"' in phone.text
    zone = await client.post(
        "/profile", data={"csrf_token": token, "name": "Bobby", "time_zone": "Mars/Olympus"}
    )
    assert zone.status_code == 422
    assert 'id="time_zone-error"' in zone.text and "not a known IANA time zone" in zone.text
    rule = await client.post(
        "/profile/rules",
        data={
            "csrf_token": token,
            "urgency": "high",
            "delay_minutes": "-1",
            "contact_method_id": "",
        },
    )
    assert rule.status_code == 422 and 'id="delay_minutes-error"' in rule.text
    me = (await client.get("/api/v1/users/me", headers=bob.headers)).json()
    assert me["name"] == "Bob" and me["time_zone"] == "UTC"
    assert (
        await client.get(f"/api/v1/users/{bob.id}/contact-methods", headers=bob.headers)
    ).json()["items"] == []


async def test_the_time_zone_changes_how_times_are_shown(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "bob@example.com")
    token = csrf_of(await client.get("/profile"))
    saved = await client.post(
        "/profile", data={"csrf_token": token, "name": "Bob B", "time_zone": "Europe/Paris"}
    )
    assert saved.status_code == 303
    page = await client.get("/profile")
    assert "Times in Europe/Paris" in page.text and "Bob B" in page.text


async def test_an_api_key_is_shown_once_works_and_is_revoked(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "bob@example.com")
    token = csrf_of(await client.get("/profile"))
    made = await client.post("/profile/api-keys", data={"csrf_token": token, "key_name": "CI"})
    assert made.status_code == 200
    assert made.headers["cache-control"] == "no-store"
    key = KEY.search(made.text)
    assert key is not None
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {key.group(1)}"})
    assert me.status_code == 200 and me.json()["email"] == "bob@example.com"
    again = await client.get("/profile")
    assert key.group(1) not in again.text and KEY.search(again.text) is None
    key_id = re.search(
        r'<strong>CI</strong>.*?action="/profile/api-keys/([^/]+)/revoke"', again.text, re.S
    )
    assert key_id is not None
    revoked = await client.post(
        f"/profile/api-keys/{key_id.group(1)}/revoke", data={"csrf_token": token}
    )
    assert revoked.status_code == 303
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {key.group(1)}"})
    assert me.status_code == 401


async def test_the_calendar_link_is_shown_once_and_serves_the_calendar(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "bob@example.com")
    token = csrf_of(await client.get("/profile"))
    made = await client.post("/profile/calendar", data={"csrf_token": token})
    assert made.status_code == 200
    link = CALENDAR.search(made.text)
    assert link is not None
    path = link.group(1).split("://", 1)[1].split("/", 1)[1]
    feed = await client.get("/" + path)
    assert feed.status_code == 200 and "BEGIN:VCALENDAR" in feed.text
    assert CALENDAR.search((await client.get("/profile")).text) is None
    await client.post("/profile/calendar/revoke", data={"csrf_token": token})
    assert (await client.get("/" + path)).status_code == 401


async def test_nobody_reaches_another_persons_contact_methods_or_keys(
    client: AsyncClient, people: World
) -> None:
    bob = people.cast.bob
    method = await client.post(
        f"/api/v1/users/{bob.id}/contact-methods",
        headers=bob.headers,
        json={"kind": "email", "name": "Bob's", "address": "bob@pager.example.com"},
    )
    key = await client.post(f"/api/v1/users/{bob.id}/api-keys", headers=bob.headers, json={})
    method_id, key_id = method.json()["id"], key.json()["id"]
    await sign_in(client, "mallory@example.com")
    token = csrf_of(await client.get("/profile"))
    for path in (
        f"/profile/contact-methods/{method_id}/remove",
        f"/profile/contact-methods/{method_id}/resend",
        f"/profile/api-keys/{key_id}/revoke",
    ):
        refused = await client.post(path, data={"csrf_token": token})
        assert refused.status_code == 404, path
    assert "Bob&#39;s" not in (await client.get("/profile")).text
    methods = (
        await client.get(f"/api/v1/users/{bob.id}/contact-methods", headers=bob.headers)
    ).json()["items"]
    assert len(methods) == 1
    keys = (await client.get(f"/api/v1/users/{bob.id}/api-keys", headers=bob.headers)).json()
    assert all(k["revoked_at"] is None for k in keys["items"])


async def test_profile_forms_without_the_csrf_token_are_refused(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "bob@example.com")
    refused = await client.post("/profile/api-keys", data={"key_name": "sneaky"})
    assert refused.status_code == 403
    keys = (
        await client.get(
            f"/api/v1/users/{people.cast.bob.id}/api-keys", headers=people.cast.bob.headers
        )
    ).json()
    assert "sneaky" not in [k["name"] for k in keys["items"]]
