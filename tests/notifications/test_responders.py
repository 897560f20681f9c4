"""Adding a responder pages one more person (or a policy's first level) through the worker,
with a timeline entry; changing the priority is on the timeline too. Only the team's
managers and responders act, and only the team's people and policies can be added."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import make_policy, make_team
from tests.notifications.conftest import Paging, SmtpServer, open_incident
from tests.notifications.helpers import drain
from tocsin.clock import FrozenClock
from tocsin.escalation.models import TargetType
from tocsin.teams.models import TeamRole
from tocsin.worker.context import WorkerContext


async def responder_timers(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM escalation_jobs WHERE kind = 'responder'")
        )
        return int(found.scalar_one())


def kinds(detail: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in detail["timeline"]]


async def test_an_added_responder_is_paged_by_the_worker_and_escalation_goes_on(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, smtp: SmtpServer
) -> None:
    cast = paging.world.cast
    incident_id = await open_incident(client, paging)
    await drain(ctx)
    before = (await client.get(f"/api/v1/incidents/{incident_id}", headers=cast.bob.headers)).json()
    response = await client.post(
        f"/api/v1/incidents/{incident_id}/responders",
        json={"user_id": str(cast.alice.id), "note": "need the DBA"},
        headers=cast.bob.headers,
    )
    assert response.status_code == 202, response.text
    assert "responder_added" in kinds(response.json())
    # Nothing sent by the request itself: the worker pages.
    pages = await client.get(f"/api/v1/incidents/{incident_id}/pages", headers=cast.bob.headers)
    assert str(cast.alice.id) not in [p["user_id"] for p in pages.json()]
    assert not [m for m in smtp.box.messages if m["To"] == "alice@example.com"]
    await drain(ctx)
    pages = await client.get(f"/api/v1/incidents/{incident_id}/pages", headers=cast.bob.headers)
    added = [p for p in pages.json() if p["user_id"] == str(cast.alice.id)]
    assert [p["via"] for p in added] == ["responder"]
    assert [m for m in smtp.box.messages if m["To"] == "alice@example.com"]
    after = (await client.get(f"/api/v1/incidents/{incident_id}", headers=cast.bob.headers)).json()
    assert after["current_level"] == before["current_level"]
    paged = [e for e in after["timeline"] if e["kind"] == "paged" and e["data"].get("responder")]
    assert paged and paged[0]["data"]["user_ids"] == [str(cast.alice.id)]
    # Asked again, she is paged again.
    await client.post(
        f"/api/v1/incidents/{incident_id}/responders",
        json={"user_id": str(cast.alice.id)},
        headers=cast.bob.headers,
    )
    await drain(ctx)
    pages = await client.get(f"/api/v1/incidents/{incident_id}/pages", headers=cast.bob.headers)
    assert len([p for p in pages.json() if p["user_id"] == str(cast.alice.id)]) == 2


async def test_an_added_policy_pages_its_first_level(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    engine: AsyncEngine,
    clock: FrozenClock,
) -> None:
    cast = paging.world.cast
    dba = await make_policy(
        engine,
        clock.now(),
        team_id=cast.payments,
        name="DBAs",
        is_default=False,
        targets=[(TargetType.USER, cast.alice.id), (TargetType.USER, cast.bob.id)],
    )
    incident_id = await open_incident(client, paging)
    response = await client.post(
        f"/api/v1/incidents/{incident_id}/responders",
        json={"escalation_policy_id": str(dba)},
        headers=cast.bob.headers,
    )
    assert response.status_code == 202, response.text
    await drain(ctx)
    pages = await client.get(f"/api/v1/incidents/{incident_id}/pages", headers=cast.bob.headers)
    responders = [p["user_id"] for p in pages.json() if p["via"] == "responder"]
    assert responders == [str(cast.alice.id)]


async def test_bad_or_foreign_responders_are_refused_and_nothing_is_stored(
    client: AsyncClient, paging: Paging, engine: AsyncEngine, clock: FrozenClock
) -> None:
    cast = paging.world.cast
    other_team = await make_team(
        engine, clock.now(), name="Search", members={cast.mallory.id: TeamRole.MANAGER}
    )
    foreign_policy = await make_policy(engine, clock.now(), team_id=other_team)
    incident_id = await open_incident(client, paging)
    url = f"/api/v1/incidents/{incident_id}/responders"
    cases = [
        ({"user_id": str(cast.mallory.id)}, cast.bob, 422, "user_id"),
        ({"user_id": str(cast.olive.id)}, cast.bob, 422, "user_id"),
        ({"escalation_policy_id": str(foreign_policy)}, cast.bob, 422, "escalation_policy_id"),
        ({}, cast.bob, 422, "user_id"),
        (
            {"user_id": str(cast.alice.id), "escalation_policy_id": str(paging.policy)},
            cast.bob,
            422,
            "user_id",
        ),
        ({"user_id": "not-a-uuid"}, cast.bob, 422, "user_id"),
        ({"user_id": str(cast.alice.id)}, cast.olive, 403, ""),
        ({"user_id": str(cast.alice.id)}, cast.mallory, 403, ""),
    ]
    for body, who, status, field in cases:
        response = await client.post(url, json=body, headers=who.headers)
        assert response.status_code == status, (body, response.text)
        assert field in response.text
    assert await responder_timers(engine) == 0
    await client.post(f"/api/v1/incidents/{incident_id}/resolve", headers=cast.bob.headers)
    late = await client.post(url, json={"user_id": str(cast.alice.id)}, headers=cast.bob.headers)
    assert late.status_code == 409
    assert await responder_timers(engine) == 0


async def test_changing_the_priority_is_on_the_timeline(
    client: AsyncClient, paging: Paging
) -> None:
    cast = paging.world.cast
    incident_id = await open_incident(client, paging, severity="critical")
    url = f"/api/v1/incidents/{incident_id}/priority"
    changed = await client.post(url, json={"priority": "low"}, headers=cast.bob.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["priority"] == "low"
    entry = next(e for e in changed.json()["timeline"] if e["kind"] == "priority_changed")
    assert entry["data"] == {"from": "critical", "to": "low"}
    # The urgency decided at opening stays.
    assert changed.json()["urgency"] == "high"
    bad = await client.post(url, json={"priority": "urgent"}, headers=cast.bob.headers)
    assert bad.status_code == 422 and "priority" in bad.text
    refused = await client.post(url, json={"priority": "high"}, headers=cast.olive.headers)
    assert refused.status_code == 403
    shown = await client.get(f"/api/v1/incidents/{incident_id}", headers=cast.bob.headers)
    assert shown.json()["priority"] == "low"
