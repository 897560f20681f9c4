"""Deduplication: one incident per fingerprint within the window, decided by the database."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.factories import World, make_integration
from tocsin.alerts.ingest import commit_alert, prepare
from tocsin.alerts.models import Severity
from tocsin.alerts.normalised import NormalisedAlert
from tocsin.app import create_app
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.integrations.lookup import find_active_integration

ALERT = {"title": "Disk full", "source": "node-7", "routing_key": "payments-api"}


async def send(client: AsyncClient, url: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(url, json=payload)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def incident(client: AsyncClient, world: World, incident_id: str) -> dict[str, Any]:
    response = await client.get(
        f"/api/v1/incidents/{incident_id}", headers=world.cast.admin.headers
    )
    body: dict[str, Any] = response.json()
    return body


async def test_the_same_dedup_key_joins_the_open_incident(
    client: AsyncClient, world: World
) -> None:
    first = await send(client, world.integration.url, {**ALERT, "dedup_key": "disk-7"})
    second = await send(
        client, world.integration.url, {**ALERT, "title": "Disk still full", "dedup_key": "disk-7"}
    )
    assert second["incident_id"] == first["incident_id"]
    assert (second["deduplicated"], first["deduplicated"]) == (True, False)
    detail = await incident(client, world, first["incident_id"])
    assert detail["alert_count"] == 2
    assert len(detail["alerts"]) == 2
    assert [e["kind"] for e in detail["timeline"]][-1] == "alert_added"


async def test_without_a_dedup_key_title_and_source_make_the_fingerprint(
    client: AsyncClient, world: World
) -> None:
    first = await send(client, world.integration.url, ALERT)
    same = await send(client, world.integration.url, ALERT)
    other_source = await send(client, world.integration.url, {**ALERT, "source": "node-8"})
    other_title = await send(client, world.integration.url, {**ALERT, "title": "Disk almost full"})
    assert same["incident_id"] == first["incident_id"]
    assert other_source["incident_id"] != first["incident_id"]
    assert other_title["incident_id"] not in (first["incident_id"], other_source["incident_id"])


async def test_fingerprints_are_scoped_to_the_integration(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    other = await make_integration(engine, clock.now(), name="other tool")
    first = await send(client, world.integration.url, {**ALERT, "dedup_key": "k"})
    second = await send(client, other.url, {**ALERT, "dedup_key": "k"})
    assert first["incident_id"] != second["incident_id"]
    assert second["deduplicated"] is False


async def test_an_alert_after_the_window_opens_a_new_incident(
    client: AsyncClient, world: World, clock: FrozenClock
) -> None:
    first = await send(client, world.integration.url, ALERT)
    clock.advance(timedelta(minutes=59))
    inside = await send(client, world.integration.url, ALERT)
    clock.advance(timedelta(minutes=2))
    after = await send(client, world.integration.url, ALERT)
    assert inside["incident_id"] == first["incident_id"]
    assert after["incident_id"] != first["incident_id"]
    assert after["deduplicated"] is False
    # The old incident is left as it was; the new one takes the next alerts.
    again = await send(client, world.integration.url, ALERT)
    assert again["incident_id"] == after["incident_id"]
    assert (await incident(client, world, first["incident_id"]))["status"] == "open"


async def test_an_acknowledged_incident_still_absorbs_alerts(
    client: AsyncClient, world: World
) -> None:
    first = await send(client, world.integration.url, ALERT)
    await client.post(
        f"/api/v1/incidents/{first['incident_id']}/acknowledge", headers=world.cast.bob.headers
    )
    second = await send(client, world.integration.url, ALERT)
    assert second["incident_id"] == first["incident_id"]


async def test_a_resolved_incident_is_never_reopened_by_an_alert(
    client: AsyncClient, world: World
) -> None:
    first = await send(client, world.integration.url, ALERT)
    await client.post(
        f"/api/v1/incidents/{first['incident_id']}/resolve", headers=world.cast.bob.headers
    )
    second = await send(client, world.integration.url, ALERT)
    assert second["incident_id"] != first["incident_id"]
    assert (await incident(client, world, first["incident_id"]))["status"] == "resolved"


async def test_identical_alerts_sent_at_once_make_one_incident(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    results = await asyncio.gather(
        *(send(client, world.integration.url, {**ALERT, "dedup_key": "storm"}) for _ in range(25))
    )
    assert len({r["incident_id"] for r in results}) == 1
    assert sum(1 for r in results if not r["deduplicated"]) == 1
    assert await count_rows(engine, "incidents") == 1
    assert (await incident(client, world, results[0]["incident_id"]))["alert_count"] == 25


async def test_two_transactions_racing_on_one_fingerprint_make_one_incident(
    world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    """Past the batcher: two connections each open a transaction, both see no incident,
    both try to insert one. The unique index lets one win; the other joins it."""
    async with engine.connect() as conn:
        integration = await find_active_integration(conn, world.integration.key)
        assert integration is not None
        alert = NormalisedAlert(
            title="race", severity=Severity.HIGH, dedup_key="race", routing_key="payments-api"
        )
        prepared = await prepare(conn, integration, alert)

    first_inserted = asyncio.Event()

    async def first() -> Any:
        async with engine.begin() as conn:
            outcome = await commit_alert(conn, prepared, now=clock.now())
            first_inserted.set()
            await asyncio.sleep(0.3)  # hold the transaction open while the second one runs
            return outcome

    async def second() -> Any:
        await first_inserted.wait()
        async with engine.begin() as conn:
            return await commit_alert(conn, prepared, now=clock.now())

    one, two = await asyncio.gather(first(), second())
    assert one.incident_id == two.incident_id
    assert (one.deduplicated, two.deduplicated) == (False, True)
    assert await count_rows(engine, "incidents") == 1
    assert await count_rows(engine, "alerts") == 2


async def test_a_resolved_alert_resolves_its_incident_and_cancels_timers(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    first = await send(client, world.integration.url, {**ALERT, "dedup_key": "d"})
    resolved = await send(
        client, world.integration.url, {**ALERT, "dedup_key": "d", "status": "resolved"}
    )
    assert resolved["incident_id"] == first["incident_id"]
    detail = await incident(client, world, first["incident_id"])
    assert detail["status"] == "resolved"
    assert detail["resolved_at"] is not None
    last = detail["timeline"][-1]
    assert (last["kind"], last["actor_type"], last["old_status"], last["new_status"]) == (
        "resolved",
        "integration",
        "open",
        "resolved",
    )
    async with engine.connect() as conn:
        from sqlalchemy import text

        pending = await conn.execute(
            text("SELECT count(*) FROM escalation_jobs WHERE cancelled_at IS NULL")
        )
        assert pending.scalar_one() == 0


async def test_a_resolve_also_closes_older_incidents_left_open_past_the_window(
    client: AsyncClient, world: World, clock: FrozenClock
) -> None:
    old = await send(client, world.integration.url, ALERT)
    clock.advance(timedelta(hours=2))
    new = await send(client, world.integration.url, ALERT)
    await send(client, world.integration.url, {**ALERT, "status": "resolved"})
    assert (await incident(client, world, old["incident_id"]))["status"] == "resolved"
    assert (await incident(client, world, new["incident_id"]))["status"] == "resolved"


async def test_an_integration_may_turn_auto_resolve_off(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    manual = await make_integration(engine, clock.now(), auto_resolve=False)
    first = await send(client, manual.url, ALERT)
    resolved = await send(client, manual.url, {**ALERT, "status": "resolved"})
    assert resolved["incident_id"] == first["incident_id"]
    detail = await incident(client, world, first["incident_id"])
    assert detail["status"] == "open"
    assert detail["alert_count"] == 2


async def test_a_resolve_for_nothing_open_is_stored_and_changes_nothing(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    body = await send(client, world.integration.url, {**ALERT, "status": "resolved"})
    assert body["incident_id"] is None
    assert await count_rows(engine, "alerts") == 1
    assert await count_rows(engine, "incidents") == 0


async def test_two_api_nodes_taking_the_same_alert_at_once_make_one_incident(
    world: World, engine: AsyncEngine, settings: Settings, clock: FrozenClock
) -> None:
    """Two apps, each with its own engine and group-commit batcher, as two API processes
    sharing one database would have: only the database can tell them apart."""
    nodes = [create_app(settings, clock=clock) for _ in range(2)]
    async with AsyncExitStack() as stack:
        clients = []
        for node in nodes:
            await stack.enter_async_context(node.router.lifespan_context(node))
            clients.append(
                await stack.enter_async_context(
                    AsyncClient(transport=ASGITransport(app=node), base_url="http://test")
                )
            )
        results = await asyncio.gather(
            *(
                send(clients[n % 2], world.integration.url, {**ALERT, "dedup_key": "two-nodes"})
                for n in range(20)
            )
        )
    assert len({r["incident_id"] for r in results}) == 1
    assert sum(1 for r in results if not r["deduplicated"]) == 1
    assert await count_rows(engine, "incidents") == 1
    assert await count_rows(engine, "alerts") == 20
