"""The process registry: every serve and worker keeps its row fresh; the silent ones are
shown as gone and, after a day, pruned."""

from __future__ import annotations

from datetime import timedelta

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tocsin.clock import FrozenClock
from tocsin.db import read_only
from tocsin.operations.models import ProcessKind
from tocsin.operations.processes import (
    GONE_AFTER,
    PRUNE_AFTER,
    ProcessHeartbeat,
    ProcessSeen,
    ProcessState,
    list_processes,
)


async def seen(engine: AsyncEngine, clock: FrozenClock) -> dict[str, ProcessSeen]:
    async with read_only(engine).connect() as conn:
        return {p.id: p for p in await list_processes(conn, now=clock.now())}


async def test_a_beating_process_is_running_and_one_unseen_for_long_is_gone(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    worker = ProcessHeartbeat(engine, clock, kind=ProcessKind.WORKER, process_id="w1:42:abcd")
    api = ProcessHeartbeat(engine, clock, kind=ProcessKind.API, process_id="a1:7:beef")
    await worker.beat()
    await api.beat()
    started = clock.now()

    clock.advance(GONE_AFTER)
    await api.beat()
    processes = await seen(engine, clock)
    assert processes["w1:42:abcd"].state == ProcessState.RUNNING, "exactly at the limit"
    assert processes["w1:42:abcd"].kind == ProcessKind.WORKER
    assert processes["w1:42:abcd"].started_at == started

    clock.advance(timedelta(seconds=1))
    processes = await seen(engine, clock)
    assert processes["w1:42:abcd"].state == ProcessState.GONE
    assert processes["w1:42:abcd"].last_seen == started
    assert processes["a1:7:beef"].state == ProcessState.RUNNING
    assert processes["a1:7:beef"].last_seen == started + GONE_AFTER
    assert processes["a1:7:beef"].started_at == started


async def test_a_process_that_stops_cleanly_says_so(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    heartbeat = ProcessHeartbeat(engine, clock, kind=ProcessKind.API_AND_WORKER, interval=3600)
    await heartbeat.start()
    clock.advance(timedelta(seconds=3))
    await heartbeat.stop()
    process = (await seen(engine, clock))[heartbeat.process_id]
    assert process.state == ProcessState.STOPPED
    assert process.stopped_at == clock.now()
    assert process.kind == ProcessKind.API_AND_WORKER


async def test_rows_unseen_for_a_day_are_pruned_by_a_live_process(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    old = ProcessHeartbeat(engine, clock, kind=ProcessKind.WORKER, process_id="old:1:0")
    await old.beat()
    clock.advance(PRUNE_AFTER)
    live = ProcessHeartbeat(engine, clock, kind=ProcessKind.WORKER, process_id="new:2:0")
    await live.beat()
    assert set(await seen(engine, clock)) == {"old:1:0", "new:2:0"}, "a day is still shown"
    clock.advance(timedelta(seconds=5))
    await live.beat()
    assert set(await seen(engine, clock)) == {"new:2:0"}


async def test_a_pruned_process_that_beats_again_is_listed_again(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    paused = ProcessHeartbeat(engine, clock, kind=ProcessKind.WORKER, process_id="p:1:0")
    await paused.beat()
    clock.advance(PRUNE_AFTER + timedelta(minutes=1))
    other = ProcessHeartbeat(engine, clock, kind=ProcessKind.API, process_id="o:2:0")
    await other.beat()
    assert "p:1:0" not in await seen(engine, clock)
    await paused.beat()
    assert (await seen(engine, clock))["p:1:0"].state == ProcessState.RUNNING


async def test_the_server_registers_itself_while_it_runs(
    client: AsyncClient, engine: AsyncEngine, clock: FrozenClock
) -> None:
    processes = list((await seen(engine, clock)).values())
    assert [(p.kind, p.state) for p in processes] == [(ProcessKind.API, ProcessState.RUNNING)]
    assert processes[0].version
    assert processes[0].pid > 0
