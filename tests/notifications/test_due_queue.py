"""The due-row queue seen from deliveries: a page claimed for an incident that is no longer
open is not sent; a worker stopping gives back what it leased, of every kind."""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.notifications.conftest import Paging, SmtpServer, open_incident
from tests.notifications.helpers import drain
from tocsin.clock import FrozenClock
from tocsin.escalation.models import TIMERS
from tocsin.escalation.step import fire_due_escalations
from tocsin.heartbeats.models import MONITORS
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.notifications.delivery import send_due_deliveries
from tocsin.notifications.models import DELIVERIES, Delivery, DeliveryStatus
from tocsin.store import queue
from tocsin.worker.context import WorkerContext
from tocsin.worker.loop import WorkerLoop


async def test_a_page_claimed_for_an_acknowledged_incident_is_not_sent(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    smtp: SmtpServer,
    engine: AsyncEngine,
) -> None:
    incident_id = await open_incident(client, paging, title="Checkout down")
    while await fire_due_escalations(ctx):
        pass
    # Acknowledged behind the queue's back (no cancellation written): the claim re-checks.
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(Incident)
            .where(Incident.id == uuid.UUID(incident_id))
            .values(status=IncidentStatus.ACKNOWLEDGED)
        )
    assert await send_due_deliveries(ctx) is True
    await drain(ctx)
    assert smtp.box.messages == []
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(Delivery.status, Delivery.lease_owner))).all()
    assert rows == [(DeliveryStatus.CANCELLED, None)]


async def test_a_stopping_worker_gives_back_timers_deliveries_and_monitors(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    engine: AsyncEngine,
    clock: FrozenClock,
) -> None:
    await open_incident(client, paging, title="Checkout down")
    while await fire_due_escalations(ctx):
        pass  # level 1 paged: a delivery pending, the next level's timer waiting
    alice = paging.world.cast.alice
    created = await client.post(
        "/api/v1/heartbeats",
        json={
            "name": "backup",
            "service_id": str(paging.world.service),
            "interval_seconds": 60,
            "grace_seconds": 0,
        },
        headers=alice.headers,
    )
    assert created.status_code == 201, created.text
    assert (await client.get(f"/heartbeats/{created.json()['key']}")).status_code == 200
    clock.advance(timedelta(hours=2))  # everything due
    now = clock.now()
    async with engine.begin() as conn:
        for rows in (TIMERS, DELIVERIES, MONITORS):
            claimed = await queue.claim(
                conn, rows, owner=ctx.worker_id, now=now, lease=timedelta(minutes=5), limit=10
            )
            assert len(claimed) == 1
    loop = WorkerLoop(ctx)
    assert await loop.release() == 3
    async with engine.connect() as conn:
        for rows in (TIMERS, DELIVERIES, MONITORS):
            leased = (
                await conn.execute(
                    sa.select(sa.func.count()).where(*rows.waiting, rows.lease_owner.is_not(None))
                )
            ).scalar_one()
            attempts = (
                await conn.execute(sa.select(sa.func.max(rows.attempts)).where(*rows.waiting))
            ).scalar_one()
            assert (leased, attempts) == (0, 0), rows.table.name
            # Due again at once for the next worker.
            assert await queue.next_due_at(conn, rows, now=now) is not None
    # And the work is done by the next worker as if nothing happened.
    assert await send_due_deliveries(ctx) is True


async def test_the_worker_sleeps_until_the_first_row_due_of_any_kind(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    engine: AsyncEngine,
    clock: FrozenClock,
) -> None:
    await open_incident(client, paging, title="Checkout down")
    while await fire_due_escalations(ctx):
        pass  # level 1 paged: a delivery due now, the next level's timer later
    now = clock.now()
    loop = WorkerLoop(ctx, poll_seconds=86_400)
    async with engine.connect() as conn:
        timer_due = await queue.next_due_at(conn, TIMERS, now=now)
        assert await queue.next_due_at(conn, MONITORS, now=now) is None
        assert await queue.next_due_at(conn, DELIVERIES, now=now) == now
    assert timer_due is not None and timer_due > now
    assert await loop._sleep_seconds() == 0  # the page is due
    # Sent meanwhile by someone else: the next is the timer.
    async with engine.begin() as conn:
        await conn.execute(sa.update(Delivery).values(status=DeliveryStatus.SENT, sent_at=now))
    assert await loop._sleep_seconds() == (timer_due - now).total_seconds()
    # Claimed by another worker, which died: due again when its lease runs out.
    clock.advance(timer_due - now)
    async with engine.begin() as conn:
        claimed = await queue.claim(
            conn, TIMERS, owner="gone", now=clock.now(), lease=timedelta(seconds=90), limit=1
        )
    assert len(claimed) == 1
    assert await loop._sleep_seconds() == 90
    async with engine.connect() as conn:
        both = await queue.next_due_of(conn, [TIMERS, DELIVERIES, MONITORS], now=clock.now())
    assert both == clock.now() + timedelta(seconds=90)
