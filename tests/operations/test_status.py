"""`tocsin status`: what is due, what is late and by how much, what was given up on, who runs,
and how big the database is, judged at the injected clock's now."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World, make_integration
from tocsin.alerts.models import Severity
from tocsin.clock import FrozenClock
from tocsin.db import create_session_factory, read_only
from tocsin.heartbeats.models import HeartbeatMonitor, HeartbeatState
from tocsin.notifications.models import ContactKind, Delivery, DeliveryKind, DeliveryStatus
from tocsin.operations.models import ProcessKind
from tocsin.operations.processes import ProcessHeartbeat
from tocsin.operations.status import DueKind, StatusReport, gather_status
from tocsin.operations.status_text import render

HEAD = "head-of-this-test"


async def status(engine: AsyncEngine, clock: FrozenClock) -> StatusReport:
    async with read_only(engine).connect() as conn:
        return await gather_status(conn, now=clock.now(), schema_head=HEAD)


async def add_delivery(
    engine: AsyncEngine,
    world: World,
    *,
    status: DeliveryStatus,
    due_at: datetime,
    updated_at: datetime,
    incident_id: uuid.UUID | None = None,
) -> uuid.UUID:
    async with create_session_factory(engine)() as session, session.begin():
        delivery = Delivery(
            kind=DeliveryKind.PAGE,
            idempotency_key=str(uuid.uuid4()),
            incident_id=incident_id,
            user_id=world.cast.bob.id,
            contact_kind=ContactKind.EMAIL,
            address="bob@example.com",
            status=status,
            due_at=due_at,
            payload={},
            created_at=updated_at,
            updated_at=updated_at,
        )
        session.add(delivery)
        await session.flush()
        return delivery.id


async def add_up_monitor(engine: AsyncEngine, world: World, *, due_at: datetime) -> uuid.UUID:
    integration = await make_integration(engine, due_at, name="cron")
    async with create_session_factory(engine)() as session, session.begin():
        monitor = HeartbeatMonitor(
            name="nightly backup",
            service_id=world.service,
            integration_id=integration.id,
            interval_seconds=3600,
            grace_seconds=60,
            severity=Severity.HIGH,
            key_hash=uuid.uuid4().hex,
            key_prefix="hb_x",
            state=HeartbeatState.UP,
            due_at=due_at,
            created_at=due_at,
            updated_at=due_at,
        )
        session.add(monitor)
        await session.flush()
        return monitor.id


def backlog(report: StatusReport, kind: DueKind) -> tuple[int, int]:
    found = next(b for b in report.backlogs if b.kind == kind)
    return found.pending, found.overdue


async def test_an_empty_installation_has_nothing_due_and_no_process(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    report = await status(engine, clock)
    assert [backlog(report, kind) for kind in DueKind] == [(0, 0)] * 3
    assert report.oldest_overdue is None
    assert not report.overdue_beyond(timedelta(0))
    assert report.processes == []
    assert report.database.size_bytes > 0
    assert report.database.schema_revision is not None
    assert not report.database.schema_current, "this test's head is made up"


async def test_it_counts_pending_and_overdue_work_and_names_the_oldest_overdue_item(
    client: AsyncClient, engine: AsyncEngine, clock: FrozenClock, world: World
) -> None:
    opened = await client.post(
        world.integration.url, json={"title": "Disk full", "routing_key": "payments-api"}
    )
    assert opened.status_code == 202, opened.text
    incident_id = uuid.UUID(opened.json()["incident_id"])
    report = await status(engine, clock)
    assert backlog(report, DueKind.ESCALATION_TIMERS) == (1, 0), "due now is not late yet"

    opened_at = clock.now()
    clock.advance(timedelta(minutes=5))
    now = clock.now()
    await add_delivery(
        engine,
        world,
        status=DeliveryStatus.PENDING,
        due_at=now - timedelta(minutes=2),
        updated_at=now,
        incident_id=incident_id,
    )
    await add_delivery(
        engine,
        world,
        status=DeliveryStatus.PENDING,
        due_at=now + timedelta(minutes=1),
        updated_at=now,
    )
    await add_delivery(
        engine,
        world,
        status=DeliveryStatus.SENT,
        due_at=now - timedelta(hours=1),
        updated_at=now,
    )
    await add_up_monitor(engine, world, due_at=now - timedelta(seconds=30))

    report = await status(engine, clock)
    assert backlog(report, DueKind.ESCALATION_TIMERS) == (1, 1)
    assert backlog(report, DueKind.DELIVERIES) == (2, 1)
    assert backlog(report, DueKind.HEARTBEAT_DEADLINES) == (1, 1)
    oldest = report.oldest_overdue
    assert oldest is not None
    assert (oldest.kind, oldest.incident_id, oldest.due_at) == (
        DueKind.ESCALATION_TIMERS,
        incident_id,
        opened_at,
    )
    assert oldest.late_seconds == 300
    assert report.overdue_beyond(timedelta(seconds=299))
    assert not report.overdue_beyond(timedelta(seconds=300))

    text = render(report, threshold=timedelta(seconds=60))
    assert f"escalation timer {oldest.id} of incident {incident_id}" in text
    assert "5 min late" in text
    assert text.splitlines()[-1].startswith("OVERDUE")
    body: dict[str, Any] = json.loads(json.dumps(report.as_json()))
    assert body["oldest_overdue"]["incident_id"] == str(incident_id)
    assert body["oldest_overdue"]["kind"] == "escalation_timers"
    assert [b["overdue"] for b in body["backlogs"]] == [1, 1, 1]


async def test_acknowledging_clears_the_overdue_timer(
    client: AsyncClient, engine: AsyncEngine, clock: FrozenClock, world: World
) -> None:
    opened = await client.post(
        world.integration.url, json={"title": "Disk full", "routing_key": "payments-api"}
    )
    clock.advance(timedelta(minutes=5))
    acked = await client.post(
        f"/api/v1/incidents/{opened.json()['incident_id']}/acknowledge",
        headers=world.cast.bob.headers,
    )
    assert acked.status_code == 200, acked.text
    report = await status(engine, clock)
    assert backlog(report, DueKind.ESCALATION_TIMERS) == (0, 0)
    assert report.oldest_overdue is None


async def test_deliveries_that_failed_for_good_are_shown_as_parked(
    engine: AsyncEngine, clock: FrozenClock, world: World
) -> None:
    now = clock.now()
    for days_ago in (0, 0, 3):
        await add_delivery(
            engine,
            world,
            status=DeliveryStatus.FAILED,
            due_at=now - timedelta(days=days_ago),
            updated_at=now - timedelta(days=days_ago, minutes=1),
        )
    await add_delivery(engine, world, status=DeliveryStatus.CANCELLED, due_at=now, updated_at=now)
    report = await status(engine, clock)
    parked, timers = report.parked
    assert (timers.kind, timers.count) == ("parked_timers", 0)
    assert (parked.kind, parked.count, parked.recent) == ("failed_deliveries", 3, 2)
    assert parked.newest_at == now - timedelta(minutes=1)
    assert backlog(report, DueKind.DELIVERIES) == (0, 0), "parked rows are not due work"
    assert "failed deliveries          3  (2 in the last 24 h" in render(
        report, threshold=timedelta(seconds=60)
    )


async def test_it_lists_the_processes_with_their_last_heartbeat(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    worker = ProcessHeartbeat(engine, clock, kind=ProcessKind.WORKER, process_id="h:1:a")
    await worker.beat()
    clock.advance(timedelta(minutes=2))
    api = ProcessHeartbeat(engine, clock, kind=ProcessKind.API, process_id="h:2:b")
    await api.beat()
    report = await status(engine, clock)
    assert [(p.id, p.state.value) for p in report.processes] == [
        ("h:2:b", "running"),
        ("h:1:a", "gone"),
    ]
    text = render(report, threshold=timedelta(seconds=60))
    assert "GONE     worker" in text
    assert "last seen 2 min ago" in text
    assert "running  api " in text
