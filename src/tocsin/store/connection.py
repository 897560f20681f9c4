"""What domain code may do with a connection, whichever kind the store handed out: an
AsyncConnection, or on SQLite's write path an InlineConnection (tocsin.store.inline)."""

from __future__ import annotations

from typing import Protocol, TypeVarTuple, overload

from sqlalchemy import CursorResult, Dialect, Executable
from sqlalchemy.engine.interfaces import _CoreAnyExecuteParams
from sqlalchemy.sql.selectable import TypedReturnsRows
from sqlalchemy.util.typing import TupleAny

_Ts = TypeVarTuple("_Ts")


class Connection(Protocol):
    """A connection inside a transaction: statements in, buffered results out. Only the
    store reads `dialect`, to pick a backend's form of a statement."""

    @property
    def dialect(self) -> Dialect: ...

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
