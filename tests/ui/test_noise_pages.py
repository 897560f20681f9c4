"""The silences page, a service's maintenance page and the incident page's snooze, in-process:
what a form saves is what the API then shows, bad input is shown with nothing saved, and an
outsider can neither see nor change another team's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.factories import World
from tests.ui.support import csrf_of, give_password, sign_in
from tocsin.clock import FrozenClock

ALERT = {"title": "Disk full", "routing_key": "payments-api", "tags": {"instance": "db-1"}}


@pytest.fixture
async def people(engine: AsyncEngine, world: World) -> World:
    cast = world.cast
    await give_password(engine, cast.alice.id, cast.bob.id, cast.mallory.id)
    return world


async def test_a_silence_made_on_the_page_silences_alerts_and_is_listed(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "bob@example.com")
    page = await client.get("/silences")
    assert page.status_code == 200
    assert 'href="/silences"' in page.text  # in the navigation
    saved = await client.post(
        "/silences",
        data={
            "csrf_token": csrf_of(page),
            "team_id": str(people.cast.payments),
            "m0_field": "tag",
            "m0_name": "instance",
            "m0_op": "=~",
            "m0_value": "db-.*",
            "ends_at": "2099-01-01T00:00",
            "comment": "swapping disks",
        },
    )
    assert saved.status_code == 303, saved.text
    listed = await client.get("/api/v1/silences", headers=people.cast.bob.headers)
    (silence,) = listed.json()
    assert silence["matchers"] == [
        {"field": "tag", "name": "instance", "op": "=~", "value": "db-.*"}
    ]
    sent = await client.post(people.integration.url, json=ALERT)
    assert sent.json()["suppressed"]["kind"] == "silence"
    page = await client.get("/silences")
    assert "swapping disks" in page.text
    assert "Disk full" in page.text  # among the recently suppressed alerts


async def test_a_bad_regex_is_shown_and_nothing_is_saved(
    client: AsyncClient, people: World, engine: AsyncEngine
) -> None:
    await sign_in(client, "bob@example.com")
    page = await client.get("/silences")
    refused = await client.post(
        "/silences",
        data={
            "csrf_token": csrf_of(page),
            "team_id": str(people.cast.payments),
            "m0_field": "title",
            "m0_op": "=~",
            "m0_value": "(",
            "ends_at": "2099-01-01T00:00",
        },
    )
    assert refused.status_code == 422
    assert "not a valid regular expression" in refused.text
    assert await count_rows(engine, "silences") == 0


async def test_silence_like_this_prefills_the_editor_from_the_incident(
    client: AsyncClient, people: World
) -> None:
    incident_id = (await client.post(people.integration.url, json=ALERT)).json()["incident_id"]
    await sign_in(client, "bob@example.com")
    detail = await client.get(f"/incidents/{incident_id}")
    assert f"/silences?incident_id={incident_id}" in detail.text
    page = await client.get(f"/silences?incident_id={incident_id}")
    assert 'value="instance"' in page.text and 'value="db-1"' in page.text
    assert 'value="Payments API"' in page.text


async def test_snoozing_from_the_incident_page(
    client: AsyncClient, people: World, clock: FrozenClock
) -> None:
    incident_id = (await client.post(people.integration.url, json=ALERT)).json()["incident_id"]
    await client.post(
        f"/api/v1/incidents/{incident_id}/acknowledge", headers=people.cast.bob.headers
    )
    await sign_in(client, "bob@example.com")
    detail = await client.get(f"/incidents/{incident_id}")
    assert "Snooze" in detail.text
    done = await client.post(
        f"/incidents/{incident_id}/snooze", data={"csrf_token": csrf_of(detail), "hours": "2"}
    )
    assert done.status_code == 303
    api = await client.get(f"/api/v1/incidents/{incident_id}", headers=people.cast.bob.headers)
    assert api.json()["timeline"][-1]["kind"] == "snoozed"
    again = await client.get(f"/incidents/{incident_id}")
    assert "Snoozed until" in again.text
    assert clock.now() + timedelta(hours=2) > clock.now()


async def test_a_weekly_maintenance_window_made_on_the_service_page(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "alice@example.com")
    service_page = await client.get(f"/services/{people.service}")
    assert f'href="/services/{people.service}/maintenance"' in service_page.text
    page = await client.get(f"/services/{people.service}/maintenance")
    assert page.status_code == 200
    saved = await client.post(
        f"/services/{people.service}/maintenance",
        data={
            "csrf_token": csrf_of(page),
            "kind": "weekly",
            "description": "patch night",
            "weekdays": ["2", "4"],
            "start_time": "23:00",
            "duration_minutes": "120",
            "timezone": "Europe/Paris",
        },
    )
    assert saved.status_code == 303, saved.text
    listed = await client.get(
        f"/api/v1/services/{people.service}/maintenance-windows", headers=people.cast.alice.headers
    )
    (window,) = listed.json()
    assert (window["weekdays"], window["start_time"], window["timezone"]) == (
        [2, 4],
        "23:00",
        "Europe/Paris",
    )
    bad = await client.post(
        f"/services/{people.service}/maintenance",
        data={"csrf_token": csrf_of(page), "kind": "weekly", "timezone": "Mars/Olympus"},
    )
    assert bad.status_code == 422
    assert "unknown time zone" in bad.text


async def test_an_outsider_sees_no_maintenance_page_and_no_team_silences(
    client: AsyncClient, people: World, clock: FrozenClock
) -> None:
    made = await client.post(
        "/api/v1/silences",
        json={
            "team_id": str(people.cast.payments),
            "matchers": [{"field": "title", "op": "=", "value": "secret thing"}],
            "ends_at": (clock.now() + timedelta(hours=1)).isoformat(),
        },
        headers=people.cast.bob.headers,
    )
    assert made.status_code == 201
    await sign_in(client, "mallory@example.com")
    assert (await client.get(f"/services/{people.service}/maintenance")).status_code == 404
    page = await client.get("/silences")
    assert "secret thing" not in page.text
    expire = await client.post(
        f"/silences/{made.json()['id']}/expire", data={"csrf_token": csrf_of(page)}
    )
    assert expire.status_code == 403
