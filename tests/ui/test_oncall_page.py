"""/oncall: who is on call now in each schedule and on each level of the team's policies,
until when, and the next hand-off, in the viewer's zone; other teams are not shown."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World
from tests.ui.support import give_password, sign_in
from tocsin.auth.models import User
from tocsin.db import create_session_factory


@pytest.fixture
async def people(engine: AsyncEngine, world: World) -> World:
    cast = world.cast
    await give_password(engine, cast.alice.id, cast.bob.id, cast.mallory.id)
    async with create_session_factory(engine)() as session, session.begin():
        await session.execute(
            update(User).where(User.id == cast.bob.id).values(time_zone="Europe/Paris")
        )
    return world


async def weekly_schedule(client: AsyncClient, world: World) -> dict[str, Any]:
    cast = world.cast
    made = await client.post(
        "/api/v1/schedules",
        json={
            "team_id": str(cast.payments),
            "name": "Primary",
            "time_zone": "UTC",
            "layers": [
                {
                    "rotation": "weekly",
                    "handoff": "2026-03-09T09:00",
                    "start": "2026-03-01T00:00:00Z",
                    "participants": [
                        {"user_ids": [str(cast.alice.id)]},
                        {"user_ids": [str(cast.bob.id)]},
                    ],
                }
            ],
        },
        headers=cast.alice.headers,
    )
    assert made.status_code == 201, made.text
    schedule: dict[str, Any] = made.json()
    return schedule


async def test_it_names_who_is_on_call_until_when_and_who_is_next(
    client: AsyncClient, people: World
) -> None:
    schedule = await weekly_schedule(client, people)
    level = await client.patch(
        f"/api/v1/escalation-policies/{people.policy}",
        json={
            "levels": [
                {"level_number": 1, "target_type": "schedule", "target_id": schedule["id"]},
                {"level_number": 2, "target_type": "user", "target_id": str(people.cast.bob.id)},
            ]
        },
        headers=people.cast.alice.headers,
    )
    assert level.status_code == 200
    await sign_in(client, "bob@example.com")
    page = await client.get("/oncall")
    assert page.status_code == 200
    text = page.text
    assert "Payments" in text and f'href="/schedules/{schedule["id"]}"' in text
    # Now is Tue 10 March 09:00 UTC (10:00 in Paris): Alice's week ends Mon 16 March 09:00 UTC.
    assert "until <time" in text and "Mon 16 Mar 10:00 CET" in text
    assert '→ <span class="people"><span class="person">Bob</span>' in text
    assert "Level 1" in text and "Level 2" in text
    assert "Times in your zone, <strong>Europe/Paris</strong>" in text
    # The API agrees on who is on call now.
    api = await client.get(
        f"/api/v1/oncall?team_id={people.cast.payments}", headers=people.cast.bob.headers
    )
    assert api.json()["items"][0]["user_ids"] == [str(people.cast.alice.id)]


async def test_a_schedule_with_nobody_on_call_says_so(client: AsyncClient, people: World) -> None:
    made = await client.post(
        "/api/v1/schedules",
        json={"team_id": str(people.cast.payments), "name": "Empty", "time_zone": "UTC"},
        headers=people.cast.alice.headers,
    )
    assert made.status_code == 201
    await sign_in(client, "alice@example.com")
    page = await client.get("/oncall")
    assert "No one on call" in page.text


async def test_someone_in_no_team_sees_no_team_and_gets_404_for_one(
    client: AsyncClient, people: World
) -> None:
    await weekly_schedule(client, people)
    await sign_in(client, "mallory@example.com")
    page = await client.get("/oncall")
    assert page.status_code == 200
    assert "Primary" not in page.text and "not a member of any team" in page.text
    refused = await client.get(f"/oncall?team={people.cast.payments}")
    assert refused.status_code == 404
    assert "Primary" not in refused.text
