"""SQLite's inline writer (the ingest committer's and the in-process worker's): writers of one
process take turns in the order they asked, each let in as the one before it finishes; a
writer outside the process still gets its turn; what is committed stays committed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text

from tocsin.store.inline import InlineEngine


@pytest.fixture
def sqlite_file(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}"
    setup = create_sync_engine(f"sqlite:///{tmp_path / 'inline.db'}")
    with setup.begin() as conn:
        conn.execute(text("PRAGMA journal_mode=WAL"))
        conn.execute(text("CREATE TABLE log (n INTEGER NOT NULL)"))
    setup.dispose()
    return url


async def _rows(engine: InlineEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT n FROM log ORDER BY rowid"))).scalars())


async def test_writers_of_one_process_take_turns_in_the_order_they_asked(
    sqlite_file: str,
) -> None:
    engine = InlineEngine(sqlite_file)
    first_in = asyncio.Event()
    go_on = asyncio.Event()

    async def first() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO log (n) VALUES (0)"))
            first_in.set()
            await go_on.wait()  # holds the write lock while the others line up

    async def write(n: int) -> None:
        # Through an engine derived for other options: the same queue.
        async with engine.execution_options(tag=n).begin() as conn:
            await conn.execute(text("INSERT INTO log (n) VALUES (:n)"), {"n": n})

    holder = asyncio.create_task(first())
    await first_in.wait()
    waiting = []
    for n in range(1, 21):
        waiting.append(asyncio.create_task(write(n)))
        await asyncio.sleep(0)  # each one asks before the next
    go_on.set()
    async with asyncio.timeout(10):
        await asyncio.gather(holder, *waiting)
    assert await _rows(engine) == list(range(21))
    await engine.dispose()


async def test_a_writer_outside_the_process_queue_still_gets_its_turn(
    sqlite_file: str,
) -> None:
    engine = InlineEngine(sqlite_file)
    outside = create_sync_engine(sqlite_file.replace("+aiosqlite", ""))
    with outside.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        conn.exec_driver_sql("INSERT INTO log (n) VALUES (1)")

        async def write() -> None:
            async with engine.begin() as inline:
                await inline.execute(text("INSERT INTO log (n) VALUES (2)"))

        task = asyncio.create_task(write())
        await asyncio.sleep(0.05)
        assert not task.done()  # waits for the outside writer's lock
        conn.commit()
    async with asyncio.timeout(10):
        await task
    # A transaction that wrote nothing commits too (at once, in place).
    async with engine.begin() as inline:
        await inline.execute(text("DELETE FROM log WHERE n = 99"))
    assert await _rows(engine) == [1, 2]
    outside.dispose()
    await engine.dispose()
