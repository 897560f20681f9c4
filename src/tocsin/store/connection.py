"""What domain code may do with a connection, whichever kind the store handed out: an
AsyncConnection, or on SQLite's write path an InlineConnection (tocsin.store.inline)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVarTuple, overload

from sqlalchemy import URL, CursorResult, Dialect, Engine, Executable
from sqlalchemy.engine.interfaces import _CoreAnyExecuteParams
from sqlalchemy.sql.selectable import TypedReturnsRows
from sqlalchemy.util.typing import TupleAny

_Ts = TypeVarTuple("_Ts")


class Connection(Protocol):
    """A connection inside a transaction: statements in, buffered results out. Only the
    store reads `dialect`, to pick a backend's form of a statement."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def sync_engine(self) -> Engine:
        """The database this connection is on, as a key for per-database caches."""
        ...

    @overload
    async def execute(
        self,
        statement: TypedReturnsRows[*_Ts],
        parameters: _CoreAnyExecuteParams | None = None,
    ) -> CursorResult[*_Ts]: ...

    @overload
    async def execute(
        self,
        statement: Executable,
        parameters: _CoreAnyExecuteParams | None = None,
    ) -> CursorResult[*TupleAny]: ...


class Database(Protocol):
    """Where connections come from: an AsyncEngine, or on a SQLite file the InlineEngine the
    ingest committer and the worker write through (tocsin.store.inline)."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def url(self) -> URL: ...

    @property
    def sync_engine(self) -> Engine: ...

    def begin(self) -> AbstractAsyncContextManager[Connection]:
        """A transaction, committed at the end of the block, rolled back on error."""
        ...

    def connect(self) -> AbstractAsyncContextManager[Connection]:
        """A connection for reads."""
        ...

    def execution_options(self, **options: Any) -> Database: ...

    async def dispose(self) -> None: ...


class ExecutesStatements:
    """The typed `execute` of a store Connection, for the store's own connection classes:
    they say how a statement runs (`run_statement`), and callers keep the result's row type."""

    @overload
    async def execute(
        self,
        statement: TypedReturnsRows[*_Ts],
        parameters: _CoreAnyExecuteParams | None = None,
    ) -> CursorResult[*_Ts]: ...

    @overload
    async def execute(
        self,
        statement: Executable,
        parameters: _CoreAnyExecuteParams | None = None,
    ) -> CursorResult[*TupleAny]: ...

    async def execute(
        self, statement: Executable, parameters: _CoreAnyExecuteParams | None = None
    ) -> CursorResult[*TupleAny]:
        return await self.run_statement(statement, parameters)

    async def run_statement(
        self, statement: Executable, parameters: _CoreAnyExecuteParams | None
    ) -> CursorResult[*TupleAny]:
        raise NotImplementedError
