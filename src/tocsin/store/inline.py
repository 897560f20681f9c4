"""SQLite transactions run inline on the caller's thread, for the ingest committer and the
worker (see InlineEngine for why and why it is safe)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVarTuple

from sqlalchemy import URL, Connection, CursorResult, Dialect, Engine, Executable
from sqlalchemy.engine.interfaces import _CoreAnyExecuteParams
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.typing import TupleAny

from tocsin.store.connection import Database, ExecutesStatements
from tocsin.store.engine import READ_ONLY_OPTION, create_sqlite_sync_engine, is_sqlite_url

_Ts = TypeVarTuple("_Ts")


class WriteLockTimeout(RuntimeError):
    """SQLite's write lock stayed taken for longer than we wait."""


class InlineEngine:
    """The AsyncEngine surface that ingest and the worker use (`begin`, `connect`,
    `execution_options`, `dialect`, `url`, `dispose`), for SQLite, with every statement run
    inline on the caller's thread.

    Why: aiosqlite hands each DB-API call to a thread of its own and back (four hand-offs per
    statement), and on a busy process each hand-off waits for the event loop and the GIL. A
    transaction of twenty statements then holds SQLite's single write lock for a hundred
    milliseconds or more, and every other writer queues behind it. Run inline, the same
    transaction takes a few milliseconds.

    How it stays safe to block the event loop: a transaction here never awaits anything but
    its own statements, which complete at once, so it runs start to end without yielding;
    reads never wait in WAL mode; and the write lock is taken without waiting (busy timeout
    0): when another writer has it, `begin` gives the loop back, sleeps a moment and tries
    again, so a writer that needs this loop to finish is never blocked by us."""

    LOCK_WAIT_SECONDS = 30.0

    def __init__(self, url: str, *, read_only: bool = False, sync: Engine | None = None) -> None:
        made = sync or create_sqlite_sync_engine(url, busy_timeout_ms=0)
        if made is None:
            raise ValueError(f"{url!r} is not a SQLite file")
        self._sync = made
        self._read_only = read_only

    @property
    def dialect(self) -> Dialect:
        return self._sync.dialect

    @property
    def url(self) -> URL:
        return self._sync.url

    @property
    def sync_engine(self) -> Engine:
        return self._sync

    def execution_options(self, **options: Any) -> InlineEngine:
        return InlineEngine(
            "", read_only=bool(options.get(READ_ONLY_OPTION, self._read_only)), sync=self._sync
        )

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[InlineConnection]:
        """A connection for reads (writes need `begin`)."""
        with self._sync.execution_options(**{READ_ONLY_OPTION: True}).connect() as sync:
            yield InlineConnection(sync)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[InlineConnection]:
        """A write transaction, committed at the end of the block, rolled back on error."""
        if self._read_only:
            async with self.connect() as conn:
                yield conn
            return
        sync = await self._take_write_lock()
        try:
            yield InlineConnection(sync)
            # The commit waits for the disk (fsync): let the event loop run meanwhile.
            await asyncio.to_thread(sync.commit)
        except BaseException:
            sync.rollback()
            raise
        finally:
            sync.close()

    async def _take_write_lock(self) -> Connection:
        waited, pause = 0.0, 0.0005
        while True:
            sync = self._sync.connect()
            try:
                sync.begin()  # BEGIN IMMEDIATE (see _tune_sqlite), failing at once if taken
                return sync
            except OperationalError as exc:
                sync.close()
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
            if waited >= self.LOCK_WAIT_SECONDS:
                raise WriteLockTimeout(f"SQLite's write lock was taken for {waited:.0f} s")
            await asyncio.sleep(pause)
            waited += pause
            pause = min(pause * 2, 0.02)

    async def dispose(self) -> None:
        self._sync.dispose()


def inline_where_possible(engine: AsyncEngine) -> Database:
    """The engine for the ingest committer and the worker: on a SQLite file an InlineEngine on
    the same file (typed as the AsyncEngine whose part it offers), else `engine` itself."""
    url = engine.url.render_as_string(hide_password=False)
    if not is_sqlite_url(url) or create_sqlite_sync_engine(url) is None:
        return engine
    return InlineEngine(url)


class InlineConnection(ExecutesStatements):
    """A store Connection (tocsin.store.connection) over a blocking Connection: `await
    conn.execute(...)` runs the statement at once, in the caller's thread, without a
    hand-off to a driver thread; the result is the driver's own, buffered (SQLite)."""

    def __init__(self, sync: Connection) -> None:
        self._sync = sync

    @property
    def dialect(self) -> Dialect:
        return self._sync.dialect

    @property
    def sync_engine(self) -> Engine:
        return self._sync.engine

    async def run_statement(
        self, statement: Executable, parameters: _CoreAnyExecuteParams | None
    ) -> CursorResult[*TupleAny]:
        return self._sync.execute(statement, parameters)
