"""Each process keeps its parsed silences and inhibition rules until one changes: a change
made through another process (another app, another engine) is seen by the next batch, and a
silence still starts and ends by the clock without any change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World
from tests.noise.test_suppression import ALERT, inhibition, send, silence
from tocsin.app import create_app
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.noise.models import NoiseRulesVersion


@asynccontextmanager
async def other_process(settings: Settings, clock: FrozenClock) -> AsyncIterator[AsyncClient]:
    """A second app on the same database, with its own engine and so its own cache."""
    application = create_app(settings, clock=clock, run_worker=False)
    async with (
        application.router.lifespan_context(application),
        AsyncClient(transport=ASGITransport(app=application), base_url="http://test") as http,
    ):
        yield http


async def test_a_silence_made_in_another_process_applies_to_the_next_batch(
    client: AsyncClient, world: World, clock: FrozenClock, settings: Settings
) -> None:
    # This process has parsed the (empty) rules once already.
    assert (await send(client, world, dedup_key="a"))["incident_id"] is not None
    async with other_process(settings, clock) as other:
        made = await silence(
            other, world, clock, [{"field": "tag", "name": "instance", "op": "=", "value": "db-1"}]
        )
        assert (await send(client, world, dedup_key="b"))["suppressed"]["id"] == made["id"]
        await other.post(f"/api/v1/silences/{made['id']}/expire", headers=world.cast.bob.headers)
    assert (await send(client, world, dedup_key="c"))["incident_id"] is not None


async def test_an_inhibition_rule_deleted_in_another_process_stops_inhibiting(
    client: AsyncClient, world: World, clock: FrozenClock, settings: Settings
) -> None:
    node_down = {"title": "Node down", "tags": {"alertname": "NodeDown", "instance": "db-1"}}
    async with other_process(settings, clock) as other:
        rule = await inhibition(other, world)
        await send(client, world, dedup_key="node", **node_down)
        assert (await send(client, world))["suppressed"]["kind"] == "inhibition"
        deleted = await other.delete(
            f"/api/v1/inhibition-rules/{rule['id']}", headers=world.cast.alice.headers
        )
        assert deleted.status_code == 204
    assert (await send(client, world))["incident_id"] is not None


async def test_a_cached_silence_starts_and_ends_by_the_clock(
    client: AsyncClient, world: World, clock: FrozenClock
) -> None:
    start = clock.now() + timedelta(minutes=10)
    await silence(
        client,
        world,
        clock,
        [{"field": "title", "op": "=", "value": ALERT["title"]}],
        starts_at=start.isoformat(),
        ends_at=(start + timedelta(minutes=30)).isoformat(),
    )
    assert (await send(client, world, dedup_key="before"))["incident_id"] is not None
    clock.advance(timedelta(minutes=10))
    assert (await send(client, world, dedup_key="during"))["suppressed"]["kind"] == "silence"
    # Past its end and not yet marked expired by the worker: no longer applies.
    clock.advance(timedelta(minutes=30))
    assert (await send(client, world, dedup_key="after"))["incident_id"] is not None


async def test_without_the_stamp_row_rules_are_read_every_batch(
    client: AsyncClient, world: World, clock: FrozenClock, engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(NoiseRulesVersion))
    assert (await send(client, world, dedup_key="a"))["incident_id"] is not None
    await silence(client, world, clock, [{"field": "source", "op": "=", "value": "node-7"}])
    assert (await send(client, world, dedup_key="b"))["suppressed"]["kind"] == "silence"
