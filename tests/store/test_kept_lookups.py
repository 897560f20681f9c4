"""The ingest path keeps its integration and route lookups per process (tocsin/store/stamp.py),
yet a change made anywhere (another process, or plain SQL) is seen by the very next alert."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.factories import World, make_service
from tocsin.app import create_app
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.integrations.lookup import find_active_integration
from tocsin.integrations.models import Integration
from tocsin.routing.route import _BY_ROUTING_KEY
from tocsin.store.quickreads import QuickReads, driver_ready, kept_first
from tocsin.teams.models import Team


@pytest.fixture
async def other_process(settings: Settings, clock: FrozenClock) -> AsyncIterator[AsyncClient]:
    """A second app on the same database, with its own runtime and its own kept lookups:
    what another `tocsin serve` would be."""
    application: FastAPI = create_app(settings, clock=clock, run_worker=False)
    async with (
        application.router.lifespan_context(application),
        AsyncClient(transport=ASGITransport(app=application), base_url="http://test") as http,
    ):
        yield http


async def alert(client: AsyncClient, url: str, routing_key: str = "payments-api") -> int:
    response = await client.post(url, json={"title": "Disk full", "routing_key": routing_key})
    return response.status_code


async def test_a_key_rotated_in_another_process_is_refused_at_the_next_alert(
    client: AsyncClient, other_process: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    assert await alert(client, world.integration.url) == 202  # now kept by this process
    rotated = await other_process.post(
        f"/api/v1/integrations/{world.integration.id}/rotate-key",
        headers=world.cast.admin.headers,
    )
    assert rotated.status_code == 200
    assert await alert(client, world.integration.url) == 404
    assert await alert(client, f"/webhooks/{rotated.json()['key']}") == 202
    assert await count_rows(engine, "alerts") == 2


async def test_an_integration_deactivated_in_another_process_is_refused_at_once(
    client: AsyncClient, other_process: AsyncClient, world: World
) -> None:
    assert await alert(client, world.integration.url) == 202
    assert await alert(other_process, world.integration.url) == 202
    changed = await other_process.patch(
        f"/api/v1/integrations/{world.integration.id}",
        json={"active": False},
        headers=world.cast.admin.headers,
    )
    assert changed.status_code == 200
    assert await alert(client, world.integration.url) == 404
    assert await alert(other_process, world.integration.url) == 404


async def test_a_change_made_in_plain_sql_is_seen_too(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    assert await alert(client, world.integration.url) == 202
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(Integration)
            .where(Integration.id == world.integration.id)
            .values(active=False)
        )
    assert await alert(client, world.integration.url) == 404


async def test_a_service_archived_in_another_process_no_longer_routes_the_next_alert(
    client: AsyncClient, other_process: AsyncClient, world: World
) -> None:
    first = await client.post(
        world.integration.url, json={"title": "Disk full", "routing_key": "payments-api"}
    )
    assert first.json()["incident_id"] is not None
    archived = await other_process.patch(
        f"/api/v1/services/{world.service}",
        json={"status": "archived"},
        headers=world.cast.admin.headers,
    )
    assert archived.status_code == 200
    second = await client.post(
        world.integration.url,
        json={"title": "Disk full again", "routing_key": "payments-api", "dedup_key": "other"},
    )
    assert second.status_code == 202
    assert second.json()["incident_id"] is None  # unrouted now: no team owns the alert


async def test_a_routing_key_given_to_another_service_routes_there_at_once(
    client: AsyncClient,
    other_process: AsyncClient,
    world: World,
    engine: AsyncEngine,
    clock: FrozenClock,
) -> None:
    async def service_of(dedup_key: str) -> str:
        answer = await client.post(
            world.integration.url,
            json={"title": "Cart errors", "routing_key": "payments-api", "dedup_key": dedup_key},
        )
        incident = await client.get(
            f"/api/v1/incidents/{answer.json()['incident_id']}", headers=world.cast.admin.headers
        )
        return str(incident.json()["service"]["id"])

    assert await service_of("first") == str(world.service)
    checkout = await make_service(engine, clock.now(), team_id=world.cast.payments, routing_key="x")
    for service, key in ((world.service, "payments-old"), (checkout, "payments-api")):
        moved = await other_process.patch(
            f"/api/v1/services/{service}",
            json={"routing_key": key},
            headers=world.cast.admin.headers,
        )
        assert moved.status_code == 200
    assert await service_of("second") == str(checkout)


async def test_one_lookup_reads_the_stamp_and_no_row_while_nothing_changed(
    engine: AsyncEngine, world: World
) -> None:
    reads = QuickReads(engine)
    calls: list[str] = []
    run = reads.run

    async def counted(statement: sa.Select[tuple[int]], parameters: object) -> object:
        calls.append("stamp" if "ingest_lookups_stamp" in str(statement) else "row")
        return await run(statement, parameters)  # type: ignore[arg-type]

    reads.run = counted  # type: ignore[method-assign]
    try:
        for _ in range(3):
            async with reads.connect() as conn:
                found = await kept_first(
                    conn, _BY_ROUTING_KEY, {"routing_key": "payments-api"}, tuple
                )
            assert found is not None
        assert calls == ["stamp", "row", "stamp", "stamp"]
    finally:
        await reads.dispose()


def test_a_lookup_of_tables_without_a_stamp_cannot_be_kept() -> None:
    with pytest.raises(ValueError, match="teams"):
        driver_ready(sa.select(Team.id).where(Team.name == sa.bindparam("name")), kept=True)


async def test_lookups_at_the_same_time_share_stamp_reads_and_each_sees_what_came_before_it(
    engine: AsyncEngine, world: World
) -> None:
    """Many alerts at once: on PostgreSQL, lookups waiting together share one read of the
    stamp, yet one that asks after a change was committed is answered by a read that
    started after it asked, so it sees the change (a read already running when it asked
    is not good enough)."""
    key = world.integration.url.rsplit("/", 1)[1]
    reads = QuickReads(engine)
    assert reads.driver is not None
    stamp_reads = 0
    holding = False
    first_read_done = asyncio.Event()
    hold_first = asyncio.Event()
    run = reads.run

    async def slow_first_stamp(statement: sa.Select[tuple[int]], parameters: object) -> object:
        nonlocal stamp_reads, holding
        rows = await run(statement, parameters)  # type: ignore[arg-type]
        if "ingest_lookups_stamp" in str(statement):
            stamp_reads += 1
            if holding and stamp_reads == 1:  # read before the change below, answered after it
                first_read_done.set()
                await hold_first.wait()
        return rows

    async def lookup() -> object:
        async with reads.connect() as conn:
            return await find_active_integration(conn, key)

    reads.run = slow_first_stamp  # type: ignore[method-assign]
    try:
        assert await lookup() is not None  # kept now
        stamp_reads, holding = 0, True
        before = asyncio.create_task(lookup())
        await first_read_done.wait()
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(Integration)
                .where(Integration.id == world.integration.id)
                .values(active=False)
            )
        after = [asyncio.create_task(lookup()) for _ in range(20)]
        await asyncio.sleep(0.05)  # they are all waiting now, behind the held read
        hold_first.set()
        await before  # it asked before the change: either answer is right for it
        assert await asyncio.gather(*after) == [None] * 20  # every one sees it
        if reads.driver.awaits:
            assert stamp_reads == 2  # the held read, then one for all twenty
        else:  # SQLite's reads never wait, so there is nothing to share
            assert stamp_reads == 21
    finally:
        await reads.dispose()
