"""The worker loop: woken at once by new work (in-process and across processes), carrying
on past failing or stuck steps, stopping cleanly; and /metrics."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
import sqlalchemy as sa
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Escalate
from tests.factories import World
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.db import create_engine
from tocsin.worker.context import WorkerContext
from tocsin.worker.loop import WorkerLoop
from tocsin.worker.wakeup import announce_work, wake_local


class Counting:
    """A step that counts its calls and finds no work."""

    def __init__(self) -> None:
        self.calls = 0
        self.called = asyncio.Event()

    async def __call__(self, _ctx: WorkerContext) -> bool:
        self.calls += 1
        self.called.set()
        return False


async def _wait_for(step: Counting, calls: int, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while step.calls < calls:
            step.called.clear()
            await step.called.wait()


def _loop(
    engine: AsyncEngine, settings: Settings, clock: FrozenClock, *steps: object
) -> WorkerLoop:
    ctx = WorkerContext(engine, clock, settings, "test-worker")
    # Polls only every 30 s: anything sooner than that was a wake-up.
    return WorkerLoop(ctx, steps=list(steps), poll_seconds=30, next_due=())  # type: ignore[arg-type]


async def test_new_work_wakes_a_sleeping_worker_at_once(
    engine: AsyncEngine, settings: Settings, clock: FrozenClock
) -> None:
    step = Counting()
    loop = _loop(engine, settings, clock, step)
    task = asyncio.create_task(loop.run())
    try:
        await _wait_for(step, 1)
        async with engine.begin() as conn:
            await announce_work(conn)
        await _wait_for(step, 2, within=2)
    finally:
        loop.stop()
        await task


async def test_a_notify_from_another_process_wakes_the_worker(
    engine: AsyncEngine, settings: Settings, clock: FrozenClock, backend: str, database_url: str
) -> None:
    if backend != "postgres":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    step = Counting()
    loop = _loop(engine, settings, clock, step)
    task = asyncio.create_task(loop.run())
    try:
        await _wait_for(step, 1)
        await asyncio.sleep(0.3)  # the listener connects after the first round
        # NOTIFY straight from SQL on another connection: no in-process event is involved.
        other = create_engine(database_url)
        async with other.begin() as conn:
            await conn.execute(sa.text("SELECT pg_notify('tocsin_work', '')"))
        await other.dispose()
        await _wait_for(step, 2, within=3)
    finally:
        loop.stop()
        await task


async def test_a_failing_step_is_logged_and_the_loop_goes_on(
    engine: AsyncEngine, settings: Settings, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(_ctx: WorkerContext) -> bool:
        raise RuntimeError("bad row")

    after = Counting()
    loop = _loop(engine, settings, clock, broken, after)
    task = asyncio.create_task(loop.run())
    try:
        await _wait_for(after, 1)
        async with engine.begin() as conn:
            await announce_work(conn)
        await _wait_for(after, 2, within=2)
    finally:
        loop.stop()
        await task
    assert "bad row" in caplog.text


async def test_work_trickling_in_is_taken_a_few_rows_a_round_not_one_by_one(
    engine: AsyncEngine, settings: Settings, clock: FrozenClock
) -> None:
    """A storm: a row every 2 ms, each announced. Rounds are paced (a round begins no
    sooner than `round_gap` after the last began), so each takes what came meanwhile,
    and every row is still taken."""
    pending: list[int] = []
    batches: list[int] = []

    async def take(_ctx: WorkerContext) -> bool:
        taken = len(pending)
        if taken:
            batches.append(taken)
            pending.clear()
        return bool(taken)

    loop = _loop(engine, settings, clock, take)
    loop.round_gap = 0.05
    task = asyncio.create_task(loop.run())
    try:
        for n in range(150):  # 0.3 s of work
            pending.append(n)
            wake_local()
            await asyncio.sleep(0.002)
        async with asyncio.timeout(5):
            while pending:  # noqa: ASYNC110 (the step empties a plain list)
                await asyncio.sleep(0.01)
    finally:
        loop.stop()
        await task
    assert sum(batches) == 150
    # 0.3 s at one round per 50 ms at most: about 7 rounds, not 150 (some slack for a
    # loaded machine's sleeps running late, which only makes rounds fewer).
    assert len(batches) <= 9, batches


async def test_a_stuck_step_is_cut_off_by_its_timeout(
    engine: AsyncEngine, settings: Settings, clock: FrozenClock
) -> None:
    async def stuck(_ctx: WorkerContext) -> bool:
        await asyncio.sleep(3600)
        return True

    after = Counting()
    loop = _loop(engine, settings, clock, stuck, after)
    loop.step_timeout = 0.2
    task = asyncio.create_task(loop.run())
    try:
        await _wait_for(after, 1, within=3)
    finally:
        loop.stop()
        await task


async def test_metrics_report_pending_timers_in_prometheus_format(
    client: AsyncClient, world: World, clock: FrozenClock, escalate: Escalate
) -> None:
    await client.post(world.integration.url, json={"title": "Down", "routing_key": "payments-api"})
    await escalate()  # level 1 paged; the next level's timer waits
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert "tocsin_escalation_timers_pending 1.0" in lines
    assert "tocsin_escalation_timers_overdue 0.0" in lines
    assert any(line.startswith("tocsin_escalation_timer_lateness_seconds_bucket") for line in lines)
    clock.advance(timedelta(hours=1))
    response = await client.get("/metrics")
    assert "tocsin_escalation_timers_overdue 1.0" in response.text.splitlines()


async def test_the_worker_command_stops_cleanly_on_sigterm(database_url: str) -> None:
    env = {**os.environ, "TOCSIN_DATABASE_URL": database_url, "TOCSIN_SECRET_KEY": "test-secret"}
    process = subprocess.Popen(  # noqa: ASYNC220 (started once; waited on in a thread)
        [sys.executable, "-m", "tocsin.cli", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.to_thread(process.stdout.readline)
        assert b"worker" in line and b"running" in line
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 15) == 0
    finally:
        if process.poll() is None:
            process.kill()


async def test_the_app_runs_the_worker_in_process_unless_told_not_to(
    settings: Settings, clock: FrozenClock, world: World, engine: AsyncEngine
) -> None:
    from tocsin.app import create_app
    from tocsin.escalation.models import Page

    application = create_app(settings, clock=clock, run_worker=True)
    async with (
        application.router.lifespan_context(application),
        AsyncClient(
            transport=ASGITransport(app=application),  # type: ignore[arg-type]
            base_url="http://test",
        ) as http,
    ):
        response = await http.post(
            world.integration.url, json={"title": "Down", "routing_key": "payments-api"}
        )
        assert response.status_code == 202
        incident = response.json()["incident_id"]

        async def wait_for_entry(kind: str) -> None:
            async with asyncio.timeout(5):
                while True:
                    detail = (
                        await http.get(
                            f"/api/v1/incidents/{incident}", headers=world.cast.bob.headers
                        )
                    ).json()
                    # Delivery attempts may be logged after it, so look for it anywhere.
                    if any(e["kind"] == kind for e in detail["timeline"]):
                        return
                    await asyncio.sleep(0.05)

        # Level 1 is paged at once, the clock standing still: the commit woke the worker.
        await wait_for_entry("paged")
        # The default policy's only level times out after 30 minutes: exhausted then.
        clock.advance(timedelta(minutes=30))
        async with engine.begin() as conn:
            await announce_work(conn)
        await wait_for_entry("escalation_exhausted")
    async with engine.connect() as conn:
        pages = (await conn.execute(sa.select(sa.func.count()).select_from(Page))).scalar_one()
    assert pages == 2  # Alice and Bob, level 1, once
