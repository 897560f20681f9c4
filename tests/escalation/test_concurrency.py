"""Leases, races and crashes: a due timer pages once, never after an acknowledgement, and
survives a worker dying with it in hand."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.escalation.conftest import Scene
from tocsin.escalation.models import EscalationJob, Page
from tocsin.escalation.step import claim_due_jobs, fire_due_escalations
from tocsin.operations.models import ProcessRow


async def test_a_dead_workers_timer_is_taken_again_after_its_lease(scene: Scene) -> None:
    incident = await scene.open_incident()
    scene.clock.advance(timedelta(minutes=5))
    # worker-1 claims the timer and dies before firing it.
    claimed = await claim_due_jobs(
        scene.engine,
        worker_id="worker-1",
        now=scene.clock.now(),
        lease=timedelta(seconds=60),
        limit=10,
    )
    assert len(claimed) == 1
    ctx = scene.context("worker-2")
    scene.clock.advance(timedelta(seconds=59))
    assert await fire_due_escalations(ctx) is False
    assert len(await scene.pages(incident)) == 1
    scene.clock.advance(timedelta(seconds=2))
    assert await fire_due_escalations(ctx) is True
    assert [p.level for p in await scene.pages(incident)] == [1, 2]
    # worker-1 comes back to life: its claim is gone, it fires nothing.
    from tocsin.escalation.step import fire_job

    async with scene.engine.begin() as conn:
        assert await fire_job(conn, claimed[0], worker_id="worker-1", now=scene.clock.now()) is None
    assert len(await scene.pages(incident)) == 2


async def test_firing_the_same_timer_twice_pages_once(scene: Scene) -> None:
    incident = await scene.open_incident()
    scene.clock.advance(timedelta(minutes=5))
    await scene.run_worker()
    # A second pass over the same (now completed) timer, as after a retry: nothing new.
    async with scene.engine.begin() as conn:
        await conn.execute(
            sa.update(EscalationJob)
            .where(EscalationJob.incident_id == uuid.UUID(incident))
            .values(lease_until=None)
        )
    await scene.run_worker("worker-2")
    assert [p.level for p in await scene.pages(incident)] == [1, 2]


async def test_an_acknowledgement_racing_a_timer_is_never_followed_by_a_page(
    scene: Scene, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("real concurrency needs PostgreSQL; SQLite has one writer")
    for _ in range(12):
        incident = await scene.open_incident(f"race {uuid.uuid4()}")
        scene.clock.advance(timedelta(minutes=5))
        counted_after_ack: list[int] = []

        async def acknowledge(
            incident: str = incident, counted_after_ack: list[int] = counted_after_ack
        ) -> None:
            await asyncio.sleep(random.uniform(0, 0.02))
            response = await scene.act(incident, "acknowledge", scene.cast.bob)
            assert response.status_code in (200, 409)
            counted_after_ack.append(len(await scene.pages(incident)))

        async def fire() -> None:
            await asyncio.sleep(random.uniform(0, 0.02))
            await scene.run_worker(f"w-{uuid.uuid4()}")

        await asyncio.gather(acknowledge(), fire(), fire())
        # Whatever the interleaving: no page appeared after the acknowledgement committed.
        assert len(await scene.pages(incident)) == counted_after_ack[0]
        assert await scene.pending_timers(incident) == 0


def _start_worker(database_url: str, name: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TOCSIN_DATABASE_URL": database_url,
        "TOCSIN_SECRET_KEY": "test-secret",  # a separate worker refuses to start without it
        "TOCSIN_LOG_LEVEL": "warning",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tocsin.cli",
            "worker",
            "--steps",
            "escalation",
            "--lease-seconds",
            "2",
            "--worker-id",
            name,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _registered(scene: Scene, name: str) -> None:
    """Wait until worker `name` has installed its signal handlers and joined the registry."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        async with scene.engine.connect() as conn:
            seen = await conn.scalar(sa.select(ProcessRow.id).where(ProcessRow.id == name))
        if seen is not None:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"worker {name} never registered")


async def test_workers_killed_at_random_lose_and_double_no_page(
    scene: Scene, backend: str, database_url: str
) -> None:
    if backend != "postgres":
        pytest.skip("several worker processes share work on PostgreSQL only")
    scene.clock.set(datetime.now(UTC))
    incidents = [await scene.open_incident(f"crash {n}") for n in range(30)]
    # Their level-2 timers fall due over the next few seconds, real time.
    start = datetime.now(UTC) + timedelta(seconds=1)
    async with scene.engine.begin() as conn:
        for n, incident in enumerate(incidents):
            await conn.execute(
                sa.update(EscalationJob)
                .where(EscalationJob.incident_id == uuid.UUID(incident))
                .values(scheduled_for=start + timedelta(seconds=n * 0.15))
            )
    names = [f"crash-{n}" for n in range(2)]
    workers = [_start_worker(database_url, name) for name in names]
    kills = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            await asyncio.sleep(random.uniform(0.3, 1.0))
            if kills < 3:
                victim = random.randrange(len(workers))
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                names[victim] = f"crash-restarted-{kills}"
                workers[victim] = _start_worker(database_url, names[victim])
                kills += 1
                continue
            async with scene.engine.connect() as conn:
                left = (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(EscalationJob)
                        .where(
                            EscalationJob.completed.is_(False),
                            EscalationJob.cancelled_at.is_(None),
                            EscalationJob.scheduled_level == 2,
                        )
                    )
                ).scalar_one()
            if left == 0:
                break
    finally:
        # A worker restarted a moment ago may still be importing, before its SIGTERM handler
        # exists (seconds on a loaded machine): stop each once it has said it is running.
        for name in names:
            await _registered(scene, name)
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            assert worker.wait(timeout=60) == 0
    async with scene.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(Page.incident_id, Page.level_number, sa.func.count()).group_by(
                    Page.incident_id, Page.level_number
                )
            )
        ).all()
    counts = {(str(r[0]), r[1]): r[2] for r in rows}
    for incident in incidents:
        assert counts.get((incident, 1)) == 1
        assert counts.get((incident, 2)) == 1, f"incident {incident} level 2"
