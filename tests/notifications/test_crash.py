"""A worker SIGKILLed while deliveries are in flight: after a restart every delivery has gone
out at least once, and each repeat carries the key that lets a receiver drop it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Cast
from tests.notifications.conftest import HttpReceiver
from tocsin.notifications.dispatch import delivery_row
from tocsin.notifications.models import (
    ContactKind,
    ContactMethod,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
)

COUNT = 12


def start_worker(database_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TOCSIN_DATABASE_URL": database_url,
        "TOCSIN_SECRET_KEY": "test-secret",
        "TOCSIN_OUTBOUND_ALLOW": "127.0.0.0/8",  # the receiver is on loopback
        "TOCSIN_NOTIFY_BATCH_SIZE": "5",
        "TOCSIN_NOTIFY_TIMEOUT_SECONDS": "5",
        "TOCSIN_LOG_LEVEL": "warning",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tocsin.cli", "worker", "--lease-seconds", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_for(condition: object, within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if await condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def test_deliveries_in_flight_when_the_worker_dies_go_out_after_restart(
    engine: AsyncEngine, database_url: str, cast: Cast, receiver: HttpReceiver
) -> None:
    now = datetime.now(UTC)
    method_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            insert(ContactMethod).values(
                id=method_id,
                user_id=cast.bob.id,
                kind=ContactKind.WEBHOOK,
                name="crash",
                address=receiver.base_url + "/crash",
                signing_secret="s",
                verified_at=now,
                verification_failures=0,
                created_at=now,
                updated_at=now,
            )
        )
        rows = [
            delivery_row(
                kind=DeliveryKind.TEST,
                idempotency_key=f"crash:{n}",
                user_id=cast.bob.id,
                contact_kind=ContactKind.WEBHOOK,
                address=receiver.base_url + "/crash",
                due_at=now,
                now=now,
                contact_method_id=method_id,
            )
            for n in range(COUNT)
        ]
        await conn.execute(insert(Delivery), rows)
    # Slow answers keep a batch in flight long enough to kill the worker inside it.
    receiver.delay = 1.0

    first = start_worker(database_url)
    try:

        async def some_in_flight() -> bool:
            return len(receiver.requests) >= 3

        await wait_for(some_in_flight, 60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()

    async def pending() -> int:
        async with engine.connect() as conn:
            return int(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(Delivery)
                        .where(Delivery.status != DeliveryStatus.SENT)
                    )
                ).scalar_one()
            )

    assert await pending() > 0
    receiver.delay = 0.0
    second = start_worker(database_url)
    try:

        async def all_sent() -> bool:
            return await pending() == 0

        await wait_for(all_sent, 90)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    keys = {f"crash:{n}" for n in range(COUNT)}
    received = [r.headers["idempotency-key"] for r in receiver.requests]
    assert set(received) == keys  # every delivery arrived at least once
    # The batch the first worker died in was sent again, with the same keys: a receiver that
    # remembers keys acts on each delivery exactly once.
    assert len(received) > COUNT
    assert set(receiver.accepted) == keys
