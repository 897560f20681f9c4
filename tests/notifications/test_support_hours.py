"""Urgency by support hours: a service's weekly windows on its zone's wall clock decide
whether a new incident is high or low urgency (DST included); adaptive downgrade sends a
busy person's further low-urgency pages to their quiet channel, and says so on the
timeline."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.notifications.conftest import HttpReceiver, Paging, SmtpServer, open_incident
from tests.notifications.helpers import add_rule, add_verified_webhook, drain
from tests.ui.support import give_password, sign_in
from tocsin.catalog.support_hours import SupportHours, SupportWindow, within_support_hours
from tocsin.clock import FrozenClock
from tocsin.worker.context import WorkerContext

PARIS = "Europe/Paris"
WEEKDAYS = frozenset({1, 2, 3, 4, 5})


def hours(start: str, end: str, days: frozenset[int] = WEEKDAYS) -> SupportHours:
    return SupportHours(
        PARIS, (SupportWindow(days, time.fromisoformat(start), time.fromisoformat(end)),)
    )


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("support", "at", "inside"),
    [
        # Paris is UTC+1 in winter, UTC+2 in summer.
        (hours("09:00", "18:00"), utc(2026, 1, 14, 8, 0), True),  # Wed 09:00 local
        (hours("09:00", "18:00"), utc(2026, 1, 14, 7, 59), False),
        (hours("09:00", "18:00"), utc(2026, 1, 14, 17, 0), False),  # 18:00 local: ended
        (hours("09:00", "18:00"), utc(2026, 1, 17, 10, 0), False),  # Saturday
        # Friday 29 March -> Monday 30 March 2026: clocks go forward on Sunday 29 March.
        (hours("09:00", "18:00"), utc(2026, 3, 27, 8, 0), True),  # Fri 09:00 CET
        (hours("09:00", "18:00"), utc(2026, 3, 30, 7, 0), True),  # Mon 09:00 CEST
        (hours("09:00", "18:00"), utc(2026, 3, 30, 6, 30), False),  # Mon 08:30 CEST
        (hours("09:00", "18:00"), utc(2026, 3, 30, 15, 59), True),  # Mon 17:59 CEST
        # Clocks go back on Sunday 25 October 2026.
        (hours("09:00", "18:00"), utc(2026, 10, 26, 8, 0), True),  # Mon 09:00 CET
        (hours("09:00", "18:00"), utc(2026, 10, 26, 7, 30), False),  # Mon 08:30 CET
        # Overnight: 22:00 -> 06:00, starting on weekdays (Friday's runs into Saturday).
        (hours("22:00", "06:00"), utc(2026, 1, 17, 4, 0), True),  # Sat 05:00
        (hours("22:00", "06:00"), utc(2026, 1, 18, 4, 0), False),  # Sun 05:00 (Sat's: none)
        (hours("22:00", "06:00"), utc(2026, 1, 14, 20, 59), False),  # Wed 21:59
        # Across the spring-forward night: Sunday 22:00 CET -> Monday 06:00 CEST is 7 hours.
        (hours("22:00", "06:00", frozenset({7})), utc(2026, 3, 30, 3, 59), True),
        (hours("22:00", "06:00", frozenset({7})), utc(2026, 3, 30, 4, 0), False),
        # A start inside the gap (02:30 on 29 March does not exist): taken as 03:30 CEST.
        (hours("02:30", "04:00", frozenset({7})), utc(2026, 3, 29, 1, 29), False),
        (hours("02:30", "04:00", frozenset({7})), utc(2026, 3, 29, 1, 30), True),
    ],
)
def test_support_hours_follow_the_zones_wall_clock(
    support: SupportHours, at: datetime, inside: bool
) -> None:
    assert within_support_hours(support, at) is inside


SUPPORT: dict[str, Any] = {
    "timezone": PARIS,
    "windows": [{"weekdays": [1, 2, 3, 4, 5], "start_time": "09:00", "end_time": "18:00"}],
}


async def use_support_hours(client: AsyncClient, paging: Paging) -> None:
    response = await client.patch(
        f"/api/v1/services/{paging.service}",
        json={"urgency": "support_hours", "support_hours": SUPPORT},
        headers=paging.world.cast.alice.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["support_hours"] == SUPPORT


async def hooks(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, receiver: HttpReceiver
) -> int:
    bob = paging.world.cast.bob
    for urgency in ("high", "low"):
        method = await add_verified_webhook(client, ctx, receiver, bob, f"/{urgency}")
        added = await add_rule(client, bob, method_id=method["id"], urgency=urgency, delay=0)
        assert added.status_code == 201, added.text
    return len(receiver.requests)


async def test_support_hours_make_an_incident_high_inside_and_low_outside_across_dst(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    receiver: HttpReceiver,
    clock: FrozenClock,
) -> None:
    first = await hooks(client, paging, ctx, receiver)
    await use_support_hours(client, paging)
    # Friday 27 March 2026 08:30 UTC = 09:30 CET: inside.
    clock.set(utc(2026, 3, 27, 8, 30))
    inside = await open_incident(client, paging, title="Checkout slow", severity="info")
    await drain(ctx)
    # Monday 30 March 06:30 UTC = 08:30 CEST (summer time now): outside, though 07:30 CET
    # would be the same UTC hour in winter.
    clock.set(utc(2026, 3, 30, 6, 30))
    outside = await open_incident(client, paging, title="Checkout down", severity="critical")
    await drain(ctx)
    assert [r.path for r in receiver.requests[first:]] == ["/high", "/low"]
    bob = paging.world.cast.bob.headers
    for incident_id, urgency in ((inside, "high"), (outside, "low")):
        shown = await client.get(f"/api/v1/incidents/{incident_id}", headers=bob)
        assert shown.json()["urgency"] == urgency


async def test_support_hours_urgency_needs_support_hours_and_bad_ones_get_422(
    client: AsyncClient, paging: Paging, engine: AsyncEngine
) -> None:
    alice = paging.world.cast.alice.headers
    url = f"/api/v1/services/{paging.service}"
    refused = await client.patch(url, json={"urgency": "support_hours"}, headers=alice)
    assert refused.status_code == 422
    assert "support_hours" in refused.text
    for bad in (
        {"timezone": "Mars/Olympus", "windows": SUPPORT["windows"]},
        {"timezone": PARIS, "windows": []},
        {
            "timezone": PARIS,
            "windows": [{"weekdays": [8], "start_time": "09:00", "end_time": "18:00"}],
        },
        {
            "timezone": PARIS,
            "windows": [{"weekdays": [1], "start_time": "9am", "end_time": "18:00"}],
        },
    ):
        response = await client.patch(
            url, json={"urgency": "support_hours", "support_hours": bad}, headers=alice
        )
        assert response.status_code == 422, bad
        assert "support_hours" in response.text
    shown = await client.get(url, headers=alice)
    assert shown.json()["urgency"] == "severity_based"
    assert shown.json()["support_hours"] is None


async def set_limit(
    client: AsyncClient, paging: Paging, body: dict[str, Any], *, as_: Any = None
) -> Any:
    bob = paging.world.cast.bob
    return await client.put(
        f"/api/v1/users/{bob.id}/paging-preferences",
        json=body,
        headers=(as_ or bob).headers,
    )


async def test_after_n_pages_in_an_hour_low_urgency_goes_to_the_quiet_channel(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    receiver: HttpReceiver,
    clock: FrozenClock,
    engine: AsyncEngine,
) -> None:
    first = await hooks(client, paging, ctx, receiver)
    bob = paging.world.cast.bob
    quiet = await add_verified_webhook(client, ctx, receiver, bob, "/quiet")
    first = len(receiver.requests)
    saved = await set_limit(
        client, paging, {"pages_per_hour": 2, "quiet_contact_method_id": quiet["id"]}
    )
    assert saved.status_code == 200, saved.text
    titles = ["Slow 1", "Slow 2", "Slow 3", "Down", "Slow 4"]
    ids = []
    for title in titles:
        severity = "critical" if title == "Down" else "info"
        ids.append(await open_incident(client, paging, title=title, severity=severity))
        await drain(ctx)
        clock.advance(timedelta(minutes=5))
    # Two low pages as usual; then the third low one goes quiet; high urgency is untouched.
    assert [r.path for r in receiver.requests[first:]] == [
        "/low",
        "/low",
        "/quiet",
        "/high",
        "/quiet",
    ]
    timeline = await client.get(f"/api/v1/incidents/{ids[2]}", headers=bob.headers)
    kinds = [e["kind"] for e in timeline.json()["timeline"]]
    assert "page_downgraded" in kinds
    entry = next(e for e in timeline.json()["timeline"] if e["kind"] == "page_downgraded")
    assert entry["data"]["pages_in_last_hour"] == 2
    assert "quiet channel" in entry["note"]
    # An hour later the count has gone down: back to the usual rules.
    clock.advance(timedelta(hours=1))
    await open_incident(client, paging, title="Slow 5", severity="info")
    await drain(ctx)
    assert receiver.requests[-1].path == "/low"


async def test_without_a_quiet_method_downgraded_pages_go_to_the_account_email(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    receiver: HttpReceiver,
    smtp: SmtpServer,
) -> None:
    await hooks(client, paging, ctx, receiver)
    assert (await set_limit(client, paging, {"pages_per_hour": 1})).status_code == 200
    await open_incident(client, paging, title="Slow 1", severity="info")
    await open_incident(client, paging, title="Slow 2", severity="info")
    await drain(ctx)
    assert any(
        m["To"] == "bob@example.com" and "Slow 2" in str(m["Subject"]) for m in smtp.box.messages
    )


async def test_paging_preferences_refuse_others_methods_unverified_ones_and_other_users(
    client: AsyncClient, paging: Paging, engine: AsyncEngine
) -> None:
    cast = paging.world.cast
    alice_method = await client.post(
        f"/api/v1/users/{cast.alice.id}/contact-methods",
        json={"kind": "email", "name": "mine", "address": "alice@example.com"},
        headers=cast.alice.headers,
    )
    refused = await set_limit(
        client, paging, {"pages_per_hour": 3, "quiet_contact_method_id": alice_method.json()["id"]}
    )
    assert refused.status_code == 422
    assert "quiet_contact_method_id" in refused.text
    bad = await set_limit(client, paging, {"pages_per_hour": -1})
    assert bad.status_code == 422 and "pages_per_hour" in bad.text
    assert (
        await set_limit(client, paging, {"pages_per_hour": 3}, as_=cast.mallory)
    ).status_code == 403
    assert await count_rows(engine, "paging_preferences") == 0
    shown = await client.get(
        f"/api/v1/users/{cast.bob.id}/paging-preferences", headers=cast.bob.headers
    )
    assert shown.json() == {
        "user_id": str(cast.bob.id),
        "pages_per_hour": None,
        "quiet_contact_method_id": None,
    }


async def test_simulate_says_which_urgency_the_incident_would_have(
    client: AsyncClient, paging: Paging, clock: FrozenClock
) -> None:
    await use_support_hours(client, paging)
    clock.set(utc(2026, 3, 28, 10, 0))  # Saturday: outside support hours
    response = await client.post(
        "/api/v1/simulate",
        json={
            "integration_id": str(paging.world.integration.id),
            "payload": {
                "title": "Checkout down",
                "severity": "critical",
                "routing_key": "checkout",
            },
        },
        headers=paging.world.cast.bob.headers,
    )
    assert response.status_code == 200, response.text
    (simulated,) = response.json()["alerts"]
    assert simulated["urgency"] == "low"


async def test_the_service_page_shows_support_hours(
    client: AsyncClient, paging: Paging, engine: AsyncEngine
) -> None:
    await use_support_hours(client, paging)
    await give_password(engine, paging.world.cast.alice.id)
    await sign_in(client, "alice@example.com")
    page = await client.get(f"/services/{paging.service}")
    assert page.status_code == 200
    assert "Mon,Tue,Wed,Thu,Fri 09:00-18:00" in page.text
    assert PARIS in page.text
