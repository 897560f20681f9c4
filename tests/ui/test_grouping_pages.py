"""The incident page's alert list, merge and split, and the service form's grouping, in
process: the page does what the API does, and refuses as it does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World
from tests.noise.test_grouping import alerts_of, cpu, detail, group_service, send
from tests.ui.support import csrf_of, give_password, sign_in
from tocsin.clock import FrozenClock


@pytest.fixture
async def people(engine: AsyncEngine, world: World) -> World:
    cast = world.cast
    await give_password(engine, cast.alice.id, cast.bob.id, cast.olive.id)
    return world


async def test_the_incident_page_lists_its_alerts_and_splits_one_out(
    client: AsyncClient, people: World, clock: FrozenClock
) -> None:
    await group_service(client, people, ["alertname"])
    first = (await send(client, people, cpu("web-1")))["incident_id"]
    clock.advance(timedelta(seconds=1))
    await send(client, people, cpu("web-2"))
    await send(client, people, cpu("web-1", status="resolved"))
    await sign_in(client, "bob@example.com")
    page = await client.get(f"/incidents/{first}")
    assert page.status_code == 200
    assert "Alert list" in page.text
    assert page.text.count('data-alert-status="resolved"') == 1
    assert page.text.count('data-alert-status="firing"') == 1
    assert "grouped by alertname=&#39;HighCPU&#39;" in page.text
    web_2 = (await alerts_of(client, people, first))[1]["alert_id"]
    split = await client.post(
        f"/incidents/{first}/alerts/{web_2}/split", data={"csrf_token": csrf_of(page)}
    )
    assert split.status_code == 303
    new_id = split.headers["location"].split("/")[2].split("?")[0]
    assert (await detail(client, people, new_id))["timeline"][0]["data"]["split_from"] == first
    # What was left had only resolved alerts: it resolved.
    assert (await detail(client, people, first))["status"] == "resolved"


async def test_merging_on_the_page_and_its_refusals(client: AsyncClient, people: World) -> None:
    target = (await send(client, people, cpu("web-1")))["incident_id"]
    source = (await send(client, people, cpu("web-2")))["incident_id"]
    await sign_in(client, "olive@example.com")
    assert "Merge incidents into this one" not in (await client.get(f"/incidents/{target}")).text
    await sign_in(client, "bob@example.com")
    page = await client.get(f"/incidents/{target}")
    assert f'value="{source}"' in page.text
    empty = await client.post(f"/incidents/{target}/merge", data={"csrf_token": csrf_of(page)})
    assert empty.status_code == 422
    assert "choose the incidents to merge into this one" in empty.text
    merged = await client.post(
        f"/incidents/{target}/merge", data={"csrf_token": csrf_of(page), "source_ids": [source]}
    )
    assert merged.status_code == 303
    assert (await detail(client, people, source))["status"] == "resolved"
    assert len(await alerts_of(client, people, target)) == 2


async def test_the_service_form_saves_grouping_and_shows_a_bad_window_beside_it(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "alice@example.com")
    form = await client.get(f"/services/{people.service}/edit")
    fields = {
        "csrf_token": csrf_of(form),
        "name": "Payments API",
        "routing_key": "payments-api",
        "team_id": str(people.cast.payments),
        "status": "active",
        "urgency": "severity_based",
        "group_by": "alertname, cluster",
        "group_window_seconds": "-5",
    }
    refused = await client.post(f"/services/{people.service}", data=fields)
    assert refused.status_code == 422
    assert (
        'id="group_window_seconds"' in refused.text and "greater than or equal to 1" in refused.text
    )
    saved = await client.post(
        f"/services/{people.service}", data={**fields, "group_window_seconds": "120"}
    )
    assert saved.status_code == 303
    shown = await client.get(f"/api/v1/services/{people.service}", headers=people.cast.bob.headers)
    assert (shown.json()["group_by"], shown.json()["group_window_seconds"]) == (
        ["alertname", "cluster"],
        120,
    )
    assert (
        "by alertname, cluster within 120 s"
        in (await client.get(f"/services/{people.service}")).text
    )
