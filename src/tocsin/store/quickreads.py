"""The ingest path's point reads (the integration by its key, the service an alert routes to),
run straight on the database driver.

Every webhook makes two or three such reads. Through SQLAlchemy each costs about 200 µs of
Python (connection checkout, transaction events, execution context, result wrapping) around
10 µs of database work; on a process that is CPU-bound at a few hundred alerts a second,
that was a third of the time per alert. So the statements on that path are marked
`driver_ready` where they are defined: each is still written with SQLAlchemy (one source
of truth for tables and types), compiled once per dialect, and then run with the driver's
own call, its parameters and results converted by the same type processors SQLAlchemy
would use. Any other statement given to the same connection runs through SQLAlchemy.

- SQLite: one plain `sqlite3` connection in autocommit mode, used from the event loop's
  thread. A single SELECT in WAL mode never waits for the writer and sees what is committed.
- PostgreSQL: a small asyncpg pool of its own; asyncpg prepares each statement once per
  connection and reuses it. Each read is one round trip, in autocommit.

Lookups marked `kept=True` (the integration by key, the service's route) go one step further:
`kept_first` keeps what they found, per process, for as long as the lookups stamp
(tocsin/store/stamp.py) is unchanged, so each such lookup reads one stamp row instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import namedtuple
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, TypeVarTuple, cast

import orjson
from sqlalchemy import CursorResult, Dialect, Engine, Executable, Select, make_url, select
from sqlalchemy.engine.interfaces import _CoreAnyExecuteParams
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.util import find_tables
from sqlalchemy.util.typing import TupleAny

from tocsin.store.connection import Connection, Database, ExecutesStatements
from tocsin.store.engine import asyncpg_dsn, is_sqlite_url, read_only
from tocsin.store.inline import InlineEngine, inline_where_possible
from tocsin.store.stamp import STAMP_ROW, STAMPED_TABLES, lookups_stamp

Ts = TypeVarTuple("Ts")
T = TypeVar("T")

# The execution options that mark a statement as one the driver may run (see driver_ready),
# and one whose findings may be kept while the lookups stamp holds.
DRIVER_READY_OPTION = "tocsin_driver_ready"
KEPT_OPTION = "tocsin_kept"

# At most this many kept values per process (one per integration key and routing key in
# use); past it they are all dropped and read again, so memory stays bounded.
KEPT_MAX = 10_000

# How long a read on SQLite waits if the database is momentarily locked (a WAL reset);
# in WAL mode a reader otherwise never waits.
SQLITE_READ_BUSY_MS = 2_000
PG_POOL_MAX = 8


def driver_ready(stmt: Select[*Ts], *, kept: bool = False) -> Select[*Ts]:
    """The statement, marked (by an execution option) as one QuickReads may run on the
    driver; run it with `first_row`. It must be a plain SELECT built once at import, whose
    parameters are `bindparam`s given by name at execution. With `kept`, `kept_first` may
    keep what it finds while the lookups stamp holds: it must read only stamped tables."""
    given: object = stmt
    if not isinstance(given, Select):
        raise TypeError(f"only a SELECT can be driver-ready, not {type(given).__name__}")
    if kept:
        unstamped = {t.name for t in find_tables(stmt)} - STAMPED_TABLES
        if unstamped:
            raise ValueError(f"a kept lookup reads tables whose changes go unnoticed: {unstamped}")
    return stmt.execution_options(**{DRIVER_READY_OPTION: True, KEPT_OPTION: kept})


async def first_row(
    conn: Connection, statement: Select[*Ts], parameters: dict[str, Any] | None = None
) -> Any:
    """The first row `statement` reads (its columns by name and position), or None: on the
    driver, as a named tuple, when `conn` is a QuickConnection and the statement is
    driver-ready; else through SQLAlchemy, as a Row."""
    if isinstance(conn, QuickConnection) and conn.runs_on_driver(statement):
        return await conn.read_on_driver(statement, parameters)
    return (await conn.execute(statement, parameters)).first()


async def kept_first(
    conn: Connection,
    statement: Select[*Ts],
    parameters: dict[str, Hashable],
    build: Callable[[Any], T],
) -> T | None:
    """`build(row)` for the first row `statement` reads, or None when it reads none. For a
    statement marked `kept` on a QuickConnection with a driver, what `build` made is kept and
    handed out again (the same object: it must not be changed) until the lookups stamp
    changes; not-found is never kept. `build` must be a module-level function (it is part of
    the key) and free of side effects."""
    if isinstance(conn, QuickConnection) and conn.runs_on_driver(statement):
        if statement.get_execution_options().get(KEPT_OPTION):
            return await conn.reads.kept(statement, parameters, build)
        row = await conn.read_on_driver(statement, parameters)
    else:
        row = (await conn.execute(statement, parameters)).first()
    return None if row is None else build(row)


Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Plan:
    """A statement compiled for one dialect, with everything needed to run it bare."""

    sql: str
    names: tuple[str, ...]  # the parameters, in their positional order
    binds: tuple[Processor, ...]
    given: dict[str, Any]  # values the statement itself carries (`status != 'archived'`)
    results: tuple[Processor, ...]
    row: type[tuple[Any, ...]]

    def parameters(self, params: dict[str, Any] | None) -> list[Any]:
        values = {**self.given, **(params or {})}
        out = []
        for name, process in zip(self.names, self.binds, strict=True):
            value = values[name]
            out.append(process(value) if process is not None and value is not None else value)
        return out

    def make_row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return self.row(
            *(
                process(value) if process is not None else value
                for process, value in zip(self.results, raw, strict=True)
            )
        )


def _plan(stmt: Select[*TupleAny], dialect: Dialect) -> _Plan:
    compiled = stmt.compile(dialect=dialect)
    names = tuple(compiled.positiontup or ())
    binds = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    given = {
        name: compiled.binds[name].effective_value
        for name in names
        if not compiled.binds[name].required
    }
    columns = list(stmt.selected_columns)
    results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
    row = namedtuple("Row", list(stmt.selected_columns.keys()))  # type: ignore[misc]
    return _Plan(compiled.string, names, binds, given, results, row)


class _Driver:
    # Whether reads await the database (another request runs meanwhile), so that lookups
    # made at the same time can share one read of the stamp (_SharedReads).
    awaits = False

    async def fetch(self, plan: _Plan, args: list[Any]) -> list[Sequence[Any]]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class _SqliteDriver(_Driver):
    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None  # opened at the first read

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, cached_statements=64
            )
            self._conn.execute(f"PRAGMA busy_timeout={SQLITE_READ_BUSY_MS}")
            self._conn.execute("PRAGMA query_only=ON")
        return self._conn

    async def fetch(self, plan: _Plan, args: list[Any]) -> list[Sequence[Any]]:
        return self._connection().execute(plan.sql, args).fetchall()

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _PostgresDriver(_Driver):
    awaits = True

    def __init__(self, url: str) -> None:
        self._dsn = asyncpg_dsn(url)
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def _get_pool(self) -> Any:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    import asyncpg

                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=1,
                        max_size=PG_POOL_MAX,
                        init=_json_codecs,
                        reset=_nothing_to_reset,
                    )
        return self._pool

    async def fetch(self, plan: _Plan, args: list[Any]) -> list[Sequence[Any]]:
        pool = await self._get_pool()
        async with pool.acquire() as conn:
            return cast(list[Sequence[Any]], await conn.fetch(plan.sql, *args))

    async def close(self) -> None:
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.close(), timeout=5)
            self._pool = None


async def _nothing_to_reset(conn: Any) -> None:
    """These connections only ever run single SELECTs in autocommit: they hold no locks,
    cursors, listeners or settings, so asyncpg's reset (a round trip after every read,
    `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`) has nothing to undo."""


async def _json_codecs(conn: Any) -> None:
    """JSON in and out as Python values, as SQLAlchemy's asyncpg dialect sets them up."""
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
            format="text",
        )


class QuickConnection(ExecutesStatements):
    """What `QuickReads.connect` yields: a store Connection (tocsin.store.connection) that
    can also read a driver-ready statement on the driver (see `first_row`)."""

    def __init__(self, reads: QuickReads, stack: AsyncExitStack) -> None:
        self._reads = reads
        self._stack = stack
        self._fallback: Connection | None = None

    @property
    def dialect(self) -> Dialect:
        return self._reads.dialect

    @property
    def reads(self) -> QuickReads:
        return self._reads

    @property
    def sync_engine(self) -> Engine:
        return self._reads.engine.sync_engine

    def runs_on_driver(self, statement: Executable) -> bool:
        """Whether `read_on_driver` may run this statement."""
        return self._reads.driver is not None and bool(
            statement.get_execution_options().get(DRIVER_READY_OPTION)
        )

    async def read_on_driver(
        self, statement: Select[*Ts], parameters: dict[str, Any] | None
    ) -> tuple[Any, ...] | None:
        """The statement's first row (a named tuple), read straight on the driver."""
        rows = await self._reads.run(statement, parameters)
        return rows[0] if rows else None

    async def run_statement(
        self, statement: Executable, parameters: _CoreAnyExecuteParams | None
    ) -> CursorResult[*TupleAny]:
        """Through SQLAlchemy, on a connection opened the first time it is needed."""
        if self._fallback is None:
            self._fallback = await self._stack.enter_async_context(self._reads.engine.connect())
        return await self._fallback.execute(statement, parameters)


_STAMP = driver_ready(select(lookups_stamp.c.version).where(lookups_stamp.c.id == STAMP_ROW))


class _SharedReads:
    """One statement's reads shared by the callers that want it at the same time, each
    getting the answer of a read that *started after it asked*: so each sees everything
    committed before it asked, as with a read of its own.

    A caller that finds no read running starts one. Callers arriving while one runs wait
    for the next, which starts as soon as the running one ends and answers all of them.
    Under load (hundreds of alerts a second, each reading the lookups stamp before each of
    its kept lookups) this turns a round trip per lookup into about two per round trip's
    time, however many lookups wait."""

    def __init__(self, read: Callable[[], Awaitable[list[tuple[Any, ...]]]]) -> None:
        self._read = read
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: asyncio.Task[None] | None = None
        self._next: asyncio.Future[list[tuple[Any, ...]]] | None = None

    async def fresh(self) -> list[tuple[Any, ...]]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or used from another event loop since
            self._loop, self._running, self._next = loop, None, None
        waiting = self._next
        if waiting is None:
            waiting = self._next = loop.create_future()
            if self._running is None:
                self._start()
        # Shielded: a caller cancelled (its request gone) must not cancel the others' read.
        return await asyncio.shield(waiting)

    def _start(self) -> None:
        answers, self._next = self._next, None
        assert answers is not None
        self._running = asyncio.ensure_future(self._run(answers))

    async def _run(self, answers: asyncio.Future[list[tuple[Any, ...]]]) -> None:
        try:
            answers.set_result(await self._read())
        except asyncio.CancelledError:  # the loop is closing: so are the waiters
            answers.cancel()
            raise
        except Exception as exc:  # every waiter gets the failure, as its own read would
            answers.set_exception(exc)
        finally:
            self._running = None
            if self._next is not None:
                self._start()


@dataclass
class _Kept:
    """Values found by kept lookups, all read after the stamp had this value."""

    stamp: int
    values: dict[tuple[Any, ...], Any] = field(default_factory=dict)


class QuickReads:
    """Connections for the short indexed reads on the ingest path (see the module's doc)."""

    def __init__(self, engine: AsyncEngine, *, driver: bool = True) -> None:
        self.dialect = engine.dialect
        inline = inline_where_possible(engine)
        url = engine.url.render_as_string(hide_password=False)
        self.driver: _Driver | None = None
        self.engine: Database
        if inline is engine:
            # One statement per read: no BEGIN and ROLLBACK round trips around it.
            self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
            if driver and engine.dialect.driver == "asyncpg":
                self.driver = _PostgresDriver(url)
        else:
            self.engine = read_only(inline)
            database = make_url(url).database
            if driver and is_sqlite_url(url) and database:
                self.driver = _SqliteDriver(database)
        # Keyed by the statement itself: driver-ready ones are module constants.
        self._plans: dict[Select[*TupleAny], _Plan] = {}
        self._kept: _Kept | None = None
        self._stamp_reads = _SharedReads(self._read_stamp)

    async def _read_stamp(self) -> list[tuple[Any, ...]]:
        return await self.run(_STAMP, None)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[QuickConnection]:
        async with AsyncExitStack() as stack:
            yield QuickConnection(self, stack)

    async def run(
        self, statement: Select[*Ts], parameters: dict[str, Any] | None
    ) -> list[tuple[Any, ...]]:
        """The rows of a driver-ready statement, read on the driver."""
        assert self.driver is not None
        plan = self._plans.get(statement)
        if plan is None:
            plan = self._plans[statement] = _plan(statement, self.dialect)
        raw = await self.driver.fetch(plan, plan.parameters(parameters))
        return [plan.make_row(r) for r in raw]

    async def kept(
        self,
        statement: Select[*Ts],
        parameters: dict[str, Hashable],
        build: Callable[[Any], T],
    ) -> T | None:
        """See `kept_first`. The stamp is read before the row: a change committed between
        the two leaves a newer value kept under the older stamp, which the next lookup finds
        changed and reads again; the other order could keep a stale value for good."""
        assert self.driver is not None
        if self.driver.awaits:
            stamps = await self._stamp_reads.fresh()
        else:  # a read that never awaits has nobody to share it with
            stamps = await self._read_stamp()
        if not stamps:  # no stamp row (a database emptied by hand): keep nothing
            rows = await self.run(statement, parameters)
            return build(rows[0]) if rows else None
        stamp: int = stamps[0][0]
        kept = self._kept
        if kept is None or kept.stamp != stamp or len(kept.values) >= KEPT_MAX:
            kept = self._kept = _Kept(stamp)
        key = (statement, build, *sorted(parameters.items()))
        value = kept.values.get(key)
        if value is not None:
            return cast(T, value)
        rows = await self.run(statement, parameters)
        if not rows:
            return None
        value = build(rows[0])
        # Into the values of the stamp read above, even if a concurrent lookup (on
        # PostgreSQL the reads await) has since replaced them with a newer stamp's.
        kept.values[key] = value
        return value

    async def dispose(self) -> None:
        """Closes what only this holds (the app disposes of its own engine)."""
        if self.driver is not None:
            await self.driver.close()
        if isinstance(self.engine, InlineEngine):
            await self.engine.dispose()
