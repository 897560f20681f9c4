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
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import Dialect, Select, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tocsin.store.engine import asyncpg_dsn, is_sqlite_url, read_only
from tocsin.store.inline import InlineEngine, inline_where_possible

S = TypeVar("S")

# Statements that may run on the driver, by identity; they are module constants, so they
# live as long as the process and their ids stay theirs.
_DRIVER_READY: dict[int, Select[Any]] = {}

# How long a read on SQLite waits if the database is momentarily locked (a WAL reset);
# in WAL mode a reader otherwise never waits.
SQLITE_READ_BUSY_MS = 2_000
PG_POOL_MAX = 8


def driver_ready(stmt: S) -> S:
    """Mark a statement built once at import as one QuickReads may run on the driver. It must
    be a plain SELECT whose parameters are `bindparam`s given by name at execution."""
    if not isinstance(stmt, Select):
        raise TypeError(f"only a SELECT can be driver-ready, not {type(stmt).__name__}")
    _DRIVER_READY[id(stmt)] = stmt
    return stmt


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


def _plan(stmt: Select[Any], dialect: Dialect) -> _Plan:
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


class _Result:
    """The part of a SQLAlchemy Result the ingest path reads."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[tuple[Any, ...]]:
        return self._rows

    def scalar_one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise ValueError("more than one row")
        return self._rows[0][0] if self._rows else None


class _Driver:
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


class QuickConnection:
    """What `QuickReads.connect` yields: an AsyncConnection look-alike whose `execute` runs a
    driver-ready statement on the driver, and anything else through SQLAlchemy on a
    connection opened the first time it is needed."""

    def __init__(self, reads: QuickReads, stack: AsyncExitStack) -> None:
        self._reads = reads
        self._stack = stack
        self._fallback: AsyncConnection | None = None

    @property
    def dialect(self) -> Dialect:
        return self._reads.dialect

    async def execute(self, statement: Any, parameters: dict[str, Any] | None = None) -> Any:
        if id(statement) in _DRIVER_READY and self._reads.driver is not None:
            return await self._reads.run(statement, parameters)
        if self._fallback is None:
            self._fallback = await self._stack.enter_async_context(self._reads.engine.connect())
        return await self._fallback.execute(statement, parameters)


class QuickReads:
    """Connections for the short indexed reads on the ingest path (see the module's doc)."""

    def __init__(self, engine: AsyncEngine, *, driver: bool = True) -> None:
        self.dialect = engine.dialect
        inline = inline_where_possible(engine)
        url = engine.url.render_as_string(hide_password=False)
        self.driver: _Driver | None = None
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
        self._plans: dict[int, _Plan] = {}

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with AsyncExitStack() as stack:
            yield cast(AsyncConnection, QuickConnection(self, stack))

    async def run(self, statement: Select[Any], parameters: dict[str, Any] | None) -> _Result:
        assert self.driver is not None
        plan = self._plans.get(id(statement))
        if plan is None:
            plan = self._plans[id(statement)] = _plan(statement, self.dialect)
        raw = await self.driver.fetch(plan, plan.parameters(parameters))
        return _Result([plan.make_row(r) for r in raw])

    async def dispose(self) -> None:
        """Closes what only this holds (the app disposes of its own engine)."""
        if self.driver is not None:
            await self.driver.close()
        if isinstance(self.engine, InlineEngine):
            await self.engine.dispose()
