"""Retention: the worker deletes resolved incidents (with their alerts, timeline, pages and
deliveries) and payload log entries older than the settings, a batch at a time; nothing
younger and nothing of an incident still open goes; /metrics counts what went."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Escalate
from tests.factories import World
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.retention.purge import RetentionStep
from tocsin.worker.context import WorkerContext

DAY = timedelta(days=1)


async def open_incident(client: AsyncClient, world: World, title: str) -> str:
    response = await client.post(
        world.integration.url, json={"title": title, "routing_key": "payments-api"}
    )
    assert response.status_code == 202, response.text
    incident_id: str = response.json()["incident_id"]
    return incident_id


async def act(client: AsyncClient, world: World, incident_id: str, action: str) -> None:
    response = await client.post(
        f"/api/v1/incidents/{incident_id}/{action}", headers=world.cast.bob.headers, json={}
    )
    assert response.status_code == 200, response.text


async def rows_of(engine: AsyncEngine, table: str, incident_id: str) -> int:
    async with engine.connect() as conn:
        found = await conn.execute(
            text(f"SELECT count(*) FROM {table} WHERE incident_id = :id"),
            {"id": _db_id(engine, incident_id)},
        )
        return int(found.scalar_one())


def _db_id(engine: AsyncEngine, value: str) -> Any:
    # SQLite stores a Uuid column as 32 hex digits; PostgreSQL as a uuid.
    return uuid.UUID(value).hex if engine.dialect.name == "sqlite" else uuid.UUID(value)


async def incident_exists(engine: AsyncEngine, incident_id: str) -> bool:
    async with engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM incidents WHERE id = :id"),
            {"id": _db_id(engine, incident_id)},
        )
        return bool(found.scalar_one())


def worker(engine: AsyncEngine, clock: FrozenClock, settings: Settings) -> WorkerContext:
    return WorkerContext(engine, clock, settings, worker_id="test-retention")


async def test_old_resolved_incidents_go_with_their_rows_and_nothing_else_does(
    app: FastAPI,
    client: AsyncClient,
    world: World,
    clock: FrozenClock,
    engine: AsyncEngine,
    settings: Settings,
    escalate: Escalate,
) -> None:
    old = await open_incident(client, world, "Old and resolved")
    still_open = await open_incident(client, world, "Old and still open")
    acknowledged = await open_incident(client, world, "Old and acknowledged")
    await escalate()  # pages Bob for each: pages and deliveries rows exist
    await act(client, world, old, "resolve")
    await act(client, world, acknowledged, "acknowledge")
    clock.advance(DAY)
    younger = await open_incident(client, world, "Resolved a day later")
    await act(client, world, younger, "resolve")
    assert await rows_of(engine, "pages", old) > 0
    assert await rows_of(engine, "alerts", still_open) == 1

    # The webhook bodies so far are in the payload log (written in the background: now).
    await app.state.tocsin.payload_log.flush()

    # 400 days after the first was resolved: it goes, the one resolved a day later stays.
    clock.advance(timedelta(days=399, hours=12))
    step = RetentionStep()
    assert await step(worker(engine, clock, settings)) is False  # one short batch: caught up
    assert not await incident_exists(engine, old)
    for table in ("alerts", "incident_events", "pages", "deliveries", "escalation_jobs"):
        assert await rows_of(engine, table, old) == 0, table
    for kept in (younger, still_open, acknowledged):
        assert await incident_exists(engine, kept)
    for table in ("alerts", "incident_events", "pages"):
        assert await rows_of(engine, table, still_open) > 0, table
        assert await rows_of(engine, table, acknowledged) > 0, table
    detail = await client.get(f"/api/v1/incidents/{still_open}", headers=world.cast.bob.headers)
    assert detail.json()["alert_count"] == 1

    metrics = (await client.get("/metrics")).text
    assert 'tocsin_retention_purged_rows_total{kind="incidents"} 1.0' in metrics
    assert 'tocsin_retention_purged_rows_total{kind="alerts"} 1.0' in metrics
    # The webhook bodies of those first days were in the payload log: gone after 7 days.
    assert 'tocsin_retention_purged_rows_total{kind="payload_log"} 0.0' not in metrics

    # A day later the younger one's time has come; the open ones still stay.
    clock.advance(DAY)
    step.resting_until = None
    await step(worker(engine, clock, settings))
    assert not await incident_exists(engine, younger)
    assert await incident_exists(engine, still_open)
    assert await incident_exists(engine, acknowledged)


async def test_it_works_in_small_batches_and_then_rests(
    client: AsyncClient,
    world: World,
    clock: FrozenClock,
    engine: AsyncEngine,
    settings: Settings,
) -> None:
    ids = [await open_incident(client, world, f"Incident {n}") for n in range(5)]
    for incident_id in ids:
        await act(client, world, incident_id, "resolve")
    clock.advance(timedelta(minutes=5))
    later = await open_incident(client, world, "Resolved five minutes later")
    await act(client, world, later, "resolve")
    clock.advance(timedelta(days=400, minutes=-4))
    step = RetentionStep(batch_size=2)
    ctx = worker(engine, clock, settings)
    assert [await step(ctx) for _ in range(3)] == [True, True, False]
    assert not any([await incident_exists(engine, i) for i in ids])
    assert await incident_exists(engine, later)
    # Caught up: it does not look again before check_every has passed.
    clock.advance(timedelta(minutes=5))
    assert await step(ctx) is False
    assert await incident_exists(engine, later)
    clock.advance(step.check_every)
    await step(ctx)
    assert not await incident_exists(engine, later)


async def test_zero_days_keeps_everything(
    client: AsyncClient, world: World, clock: FrozenClock, engine: AsyncEngine, settings: Settings
) -> None:
    incident_id = await open_incident(client, world, "Kept forever")
    await act(client, world, incident_id, "resolve")
    clock.advance(timedelta(days=4000))
    keep = settings.model_copy(update={"retention_days": 0})
    await RetentionStep()(worker(engine, clock, keep))
    assert await incident_exists(engine, incident_id)


async def test_payload_log_entries_older_than_seven_days_go(
    world: World, clock: FrozenClock, engine: AsyncEngine, settings: Settings
) -> None:
    now = clock.now()
    integration = _db_id(engine, str(world.integration.id))
    async with engine.begin() as conn:
        for age_days in (30, 8, 6, 1):
            await conn.execute(
                text(
                    "INSERT INTO integration_payloads (id, integration_id, received_at, "
                    "status_code, content_type, body, body_truncated, mapping) VALUES "
                    "(:id, :integration, :at, 202, 'application/json', '{}', false, '{}')"
                ),
                {
                    "id": _db_id(engine, str(uuid.uuid4())),
                    "integration": integration,
                    "at": now - timedelta(days=age_days),
                },
            )
    await RetentionStep()(worker(engine, clock, settings))
    async with engine.connect() as conn:
        left = await conn.execute(text("SELECT count(*) FROM integration_payloads"))
        assert left.scalar_one() == 2
