"""Migration 0019 (the due-row queue's uniform lease columns) on a database with rows in it:
leases held by the previous release's workers carry over, and the new workers respect them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import sqlalchemy as sa

from tests.migrations.test_upgrade import (
    NOW,
    OPENED,
    PREVIOUS_RELEASE,
    Ids,
    _insert,
    _value,
    fill_previous_release,
)
from tocsin.db import create_engine
from tocsin.escalation.step import claim_due_jobs
from tocsin.migrations import upgrade

BEFORE_QUEUE = "0021"
LEASE_END = NOW + timedelta(minutes=1)
MONITOR = uuid.uuid4()


async def test_leases_of_the_previous_release_carry_over_into_the_uniform_columns(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    await asyncio.to_thread(upgrade, url, PREVIOUS_RELEASE)
    await fill_previous_release(url)
    await asyncio.to_thread(upgrade, url, BEFORE_QUEUE)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            dialect = conn.dialect.name
            # An old worker holds the pending level timer and is sending the delivery.
            await conn.execute(
                sa.text(
                    "UPDATE escalation_jobs SET claimed_by = 'old-worker', lease_until = :until, "
                    "attempts = 1 WHERE id = :id"
                ),
                {"until": _value(dialect, LEASE_END), "id": _value(dialect, Ids.level_timer)},
            )
            await conn.execute(
                sa.text(
                    "UPDATE deliveries SET status = 'pending', lease_owner = 'old-worker', "
                    "lease_expires_at = :until WHERE id = :id"
                ),
                {"until": _value(dialect, LEASE_END), "id": _value(dialect, Ids.delivery)},
            )
            await _insert(
                conn,
                "heartbeat_monitors",
                {
                    "id": MONITOR,
                    "name": "nightly backup",
                    "service_id": Ids.service,
                    "integration_id": Ids.integration,
                    "interval_seconds": 300,
                    "grace_seconds": 60,
                    "severity": "high",
                    "key_hash": "0" * 64,
                    "key_prefix": "hb_0000",
                    "state": "up",
                    "last_ping_at": OPENED,
                    "due_at": OPENED + timedelta(minutes=6),
                    "late_since": None,
                    "incident_id": None,
                    "created_at": OPENED,
                    "updated_at": OPENED,
                },
            )
        await engine.dispose()

        await asyncio.to_thread(upgrade, url)

        engine = create_engine(url)
        async with engine.connect() as conn:
            timer = (
                await conn.execute(
                    sa.text(
                        "SELECT lease_owner, attempts, parked_at FROM escalation_jobs "
                        "WHERE id = :id"
                    ),
                    {"id": _value(conn.dialect.name, Ids.level_timer)},
                )
            ).one()
            delivery = (
                await conn.execute(
                    sa.text("SELECT lease_owner, lease_until FROM deliveries WHERE id = :id"),
                    {"id": _value(conn.dialect.name, Ids.delivery)},
                )
            ).one()
            monitor = (
                await conn.execute(
                    sa.text(
                        "SELECT lease_owner, lease_until, attempts, parked_at, state "
                        "FROM heartbeat_monitors"
                    )
                )
            ).one()
        assert tuple(timer) == ("old-worker", 1, None)
        assert delivery[0] == "old-worker" and delivery[1] is not None
        assert tuple(monitor) == (None, None, 0, None, "up")

        # Due 30 minutes after opening, while an old worker's lease still holds it: a new
        # worker leaves it alone until that lease ends, then takes it (a second attempt).
        due = OPENED + timedelta(minutes=31)
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("UPDATE escalation_jobs SET lease_until = :until WHERE id = :id"),
                {
                    "until": _value(conn.dialect.name, due + timedelta(minutes=1)),
                    "id": _value(conn.dialect.name, Ids.level_timer),
                },
            )
        lease = timedelta(seconds=60)
        held = await claim_due_jobs(engine, worker_id="new-worker", now=due, lease=lease, limit=10)
        assert held == []
        later = due + timedelta(minutes=2)
        taken = await claim_due_jobs(
            engine, worker_id="new-worker", now=later, lease=lease, limit=10
        )
        assert [(job.id, job.attempts) for job in taken] == [(Ids.level_timer, 2)]
    finally:
        await engine.dispose()
