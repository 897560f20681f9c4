"""The runtime: what it starts it stops (every task ended, every pool closed), a worker-only
runtime has no HTTP parts, and a start that fails half-way leaves nothing running."""

from __future__ import annotations

import asyncio
import socket

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.db import read_only
from tocsin.notifications.channels.http import guarded_client, shared_client
from tocsin.notifications.outbound import guard_for
from tocsin.operations.models import ProcessKind
from tocsin.operations.processes import list_processes
from tocsin.runtime import NotServing, Runtime, WorkerOptions


def _with_smtp_listener(settings: Settings, port: int = 0) -> Settings:
    return settings.model_copy(update={"smtp_listen_port": port, "smtp_listen_host": "127.0.0.1"})


def _others(before: set[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task not in before and not task.done()}


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def _stopped_processes(engine: AsyncEngine, clock: FrozenClock) -> dict[str, ProcessKind]:
    async with read_only(engine).connect() as conn:
        return {p.id: p.kind for p in await list_processes(conn, now=clock.now()) if p.stopped_at}


async def test_a_serving_runtime_ends_every_task_and_closes_every_pool_when_stopped(
    settings: Settings, clock: FrozenClock, engine: AsyncEngine
) -> None:
    before = set(asyncio.all_tasks())
    runtime = Runtime(_with_smtp_listener(settings), clock=clock, worker=WorkerOptions())
    await runtime.start()
    assert runtime.started
    running = {task.get_name() for task in _others(before)}
    assert {"tocsin-worker", "tocsin-process-heartbeat", "payload-log"} <= running
    assert any(name.startswith("ingest-committer") for name in running)
    listener = runtime.smtp_listener
    assert listener is not None
    smtp_port = listener.port
    assert _accepts(smtp_port)
    async with runtime.read_engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    http = shared_client()
    guarded = guarded_client(guard_for(settings))

    await runtime.stop()

    assert not _others(before), "every task the runtime started has ended"
    assert http.is_closed and guarded.is_closed
    assert not _accepts(smtp_port)
    assert runtime.engine.pool.checkedin() == 0 and runtime.engine.pool.checkedout() == 0
    assert await _stopped_processes(engine, clock) == {
        runtime.process_id: ProcessKind.API_AND_WORKER
    }
    await runtime.stop()  # a second stop does nothing
    with pytest.raises(RuntimeError, match="starts once"):
        await runtime.start()


async def test_a_worker_only_runtime_serves_no_http(
    settings: Settings, clock: FrozenClock, engine: AsyncEngine
) -> None:
    before = set(asyncio.all_tasks())
    # Even with an SMTP port configured: only `tocsin serve` listens.
    runtime = Runtime(
        _with_smtp_listener(settings),
        clock=clock,
        serve_http=False,
        worker=WorkerOptions(worker_id="w1:42:abcd"),
    )
    await runtime.start()
    assert not runtime.serves_http
    assert runtime.smtp_listener is None
    for part in ("hub", "intake", "batcher", "payload_log"):
        with pytest.raises(NotServing):
            getattr(runtime, part)
    running = {task.get_name() for task in _others(before)}
    assert "tocsin-worker" in running
    assert not any(name.startswith("ingest-committer") for name in running)
    assert "payload-log" not in running
    assert runtime.worker is not None and runtime.worker.ctx.worker_id == "w1:42:abcd"

    runtime.worker.stop()  # as SIGTERM does
    await runtime.wait()
    await runtime.stop()

    assert not _others(before)
    assert await _stopped_processes(engine, clock) == {"w1:42:abcd": ProcessKind.WORKER}


async def test_a_start_that_fails_half_way_stops_what_it_had_started(
    settings: Settings, clock: FrozenClock
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        before = set(asyncio.all_tasks())
        runtime = Runtime(
            _with_smtp_listener(settings, taken.getsockname()[1]),
            clock=clock,
            worker=WorkerOptions(),
        )
        with pytest.raises(OSError):
            await runtime.start()
    assert not runtime.started
    assert not _others(before)
