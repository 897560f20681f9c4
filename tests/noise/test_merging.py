"""Merging incidents and splitting an alert out, by hand: alerts move, timelines on both
sides, the split incident pages through the worker, and another team's incidents are
refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World, make_person, make_service, make_team
from tests.noise.test_grouping import alerts_of, cpu, detail, group_service, send
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.escalation.step import fire_due_escalations
from tocsin.teams.models import TeamRole
from tocsin.worker.context import WorkerContext


async def merge(
    client: AsyncClient, world: World, target: str, sources: list[str], **more: Any
) -> Any:
    headers = more.pop("headers", world.cast.bob.headers)
    return await client.post(
        f"/api/v1/incidents/{target}/merge", json={"source_ids": sources, **more}, headers=headers
    )


async def test_merging_moves_the_alerts_and_resolves_the_sources(
    client: AsyncClient, world: World, clock: FrozenClock
) -> None:
    target = (await send(client, world, cpu("web-1")))["incident_id"]
    clock.advance(timedelta(seconds=1))
    one = (await send(client, world, cpu("web-2")))["incident_id"]
    clock.advance(timedelta(seconds=1))
    two = (await send(client, world, cpu("web-3")))["incident_id"]
    assert len({target, one, two}) == 3
    response = await merge(client, world, target, [one, two])
    assert response.status_code == 200, response.text
    merged = response.json()
    assert merged["alert_count"] == 3
    assert [a["tags"]["instance"] for a in merged["grouped_alerts"]] == ["web-1", "web-2", "web-3"]
    entry = merged["timeline"][-1]
    assert entry["kind"] == "merged"
    assert entry["data"]["source_ids"] == [one, two]
    assert entry["note"] == "merged #2, #3 into this incident"
    source = await detail(client, world, one)
    assert source["status"] == "resolved"
    assert source["grouped_alerts"] == []
    kinds = [(e["kind"], e["data"].get("target_id")) for e in source["timeline"]]
    assert ("merged_into", target) in kinds
    assert source["timeline"][-1]["note"] == "merged into incident #1"
    # The merged incident resolves when every one of its alerts has.
    for instance in ("web-1", "web-2"):
        await send(client, world, cpu(instance, status="resolved"))
    assert (await detail(client, world, target))["status"] == "open"
    await send(client, world, cpu("web-3", status="resolved"))
    assert (await detail(client, world, target))["status"] == "resolved"


async def test_merge_refuses_other_teams_unknown_and_bad_input_changing_nothing(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    target = (await send(client, world, cpu("web-1")))["incident_id"]
    source = (await send(client, world, cpu("web-2")))["incident_id"]
    now = clock.now()
    carol = await make_person(engine, now, email="carol@example.com", name="Carol")
    search = await make_team(engine, now, name="Search", members={carol.id: TeamRole.RESPONDER})
    await make_service(engine, now, team_id=search, routing_key="search")
    theirs = (await send(client, world, {**cpu("web-3"), "routing_key": "search"}))["incident_id"]
    assert (await merge(client, world, target, [theirs])).status_code == 403
    as_carol = await merge(client, world, theirs, [target], headers=carol.headers)
    assert as_carol.status_code == 403
    as_mallory = await merge(client, world, target, [source], headers=world.cast.mallory.headers)
    assert as_mallory.status_code == 403
    as_olive = await merge(client, world, target, [source], headers=world.cast.olive.headers)
    assert as_olive.status_code == 403
    unknown = await merge(client, world, target, ["00000000-0000-4000-8000-000000000000"])
    assert unknown.status_code == 404
    for sources in ([], [target], [source, source], ["nope"]):
        response = await merge(client, world, target, sources)
        assert response.status_code == 422, sources
        assert "source_ids" in response.text
    assert (await detail(client, world, source))["status"] == "open"
    assert len(await alerts_of(client, world, target)) == 1


async def test_splitting_an_alert_out_opens_an_incident_that_pages(
    client: AsyncClient,
    world: World,
    engine: AsyncEngine,
    clock: FrozenClock,
    settings: Settings,
) -> None:
    await group_service(client, world, ["alertname"])
    first = (await send(client, world, cpu("web-1")))["incident_id"]
    clock.advance(timedelta(seconds=1))
    await send(client, world, cpu("web-2"))
    ctx = WorkerContext(engine, clock, settings, worker_id="split-test")
    while await fire_due_escalations(ctx):
        pass
    listed = await alerts_of(client, world, first)
    web_2 = listed[1]["alert_id"]
    response = await client.post(
        f"/api/v1/incidents/{first}/alerts/{web_2}/split", headers=world.cast.bob.headers
    )
    assert response.status_code == 201, response.text
    opened = response.json()
    assert opened["id"] != first
    assert [a["tags"]["instance"] for a in opened["grouped_alerts"]] == ["web-2"]
    created = opened["timeline"][0]
    assert (created["kind"], created["data"]["split_from"]) == ("created", first)
    left = await detail(client, world, first)
    assert [a["tags"]["instance"] for a in left["grouped_alerts"]] == ["web-1"]
    assert left["alert_count"] == 1
    split = left["timeline"][-1]
    assert (split["kind"], split["data"]["incident_id"]) == ("split", opened["id"])
    # The worker pages the new incident as any new one.
    while await fire_due_escalations(ctx):
        pass
    pages = await client.get(
        f"/api/v1/incidents/{opened['id']}/pages", headers=world.cast.bob.headers
    )
    assert pages.json(), "the split incident paged nobody"
    # Its later alerts go to it, not back to the group's incident.
    again = await send(client, world, cpu("web-2"))
    assert again["incident_id"] == opened["id"]


async def test_split_refuses_the_last_alert_an_alert_of_another_incident_and_outsiders(
    client: AsyncClient, world: World, clock: FrozenClock
) -> None:
    first = (await send(client, world, cpu("web-1")))["incident_id"]
    other = (await send(client, world, cpu("web-2")))["incident_id"]
    (only,) = await alerts_of(client, world, first)
    (foreign,) = await alerts_of(client, world, other)
    url = f"/api/v1/incidents/{first}/alerts"
    last = await client.post(f"{url}/{only['alert_id']}/split", headers=world.cast.bob.headers)
    assert last.status_code == 409
    elsewhere = await client.post(
        f"{url}/{foreign['alert_id']}/split", headers=world.cast.bob.headers
    )
    assert elsewhere.status_code == 404
    outsider = await client.post(
        f"{url}/{only['alert_id']}/split", headers=world.cast.mallory.headers
    )
    assert outsider.status_code == 403


async def test_splitting_out_the_alert_that_opened_the_incident_takes_its_later_alerts(
    client: AsyncClient, world: World, clock: FrozenClock
) -> None:
    await group_service(client, world, ["alertname"])
    first = (await send(client, world, cpu("web-1")))["incident_id"]
    clock.advance(timedelta(seconds=1))
    await send(client, world, cpu("web-2"))
    web_1 = (await alerts_of(client, world, first))[0]["alert_id"]
    response = await client.post(
        f"/api/v1/incidents/{first}/alerts/{web_1}/split", headers=world.cast.bob.headers
    )
    assert response.status_code == 201, response.text
    opened = response.json()["id"]
    assert (await send(client, world, cpu("web-1")))["incident_id"] == opened
    assert (await send(client, world, cpu("web-2")))["incident_id"] == first
    # Resolving the split alert resolves its incident; the one it left stays open.
    await send(client, world, cpu("web-1", status="resolved"))
    assert (await detail(client, world, opened))["status"] == "resolved"
    assert (await detail(client, world, first))["status"] == "open"
