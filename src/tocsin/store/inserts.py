"""Insert rows, skipping those a unique index already holds: `INSERT ... ON CONFLICT DO
NOTHING`, which both backends speak, built with each one's dialect of SQLAlchemy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, Executable, Table, TextClause, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute

from tocsin.store.connection import Connection

Rows = Mapping[str, Any] | Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Numbering:
    """A column numbered 1, 2, 3... as rows are inserted. PostgreSQL draws from `sequence`;
    SQLite has a single writer, holding the database for the whole transaction, so numbers
    counted on from the largest cannot collide there."""

    column: InstrumentedAttribute[int]
    sequence: str


async def insert_ignoring(
    conn: Connection,
    table: type[DeclarativeBase] | Table,
    rows: Rows,
    *,
    unique: Sequence[str] | None = None,
    where: ColumnElement[bool] | TextClause | None = None,
    returning: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]] = (),
    numbering: Numbering | None = None,
) -> CursorResult[Any]:
    """Insert `rows` (one mapping, or a list for one multi-row statement), skipping any that
    would repeat a row of the unique index on `unique` (the partial index `where`), or of
    any unique index when `unique` is None. The result's rowcount (single row) or RETURNING
    rows say which were inserted."""
    postgres = conn.dialect.name == "postgresql"
    if numbering is not None and not postgres:
        largest = _LARGEST.get(numbering)
        if largest is None:
            largest = _LARGEST[numbering] = select(func.max(numbering.column))
        last = (await conn.execute(largest)).scalar()
        start = int(last or 0)
        many = [rows] if isinstance(rows, Mapping) else list(rows)
        numbered = [{**row, numbering.column.key: start + n} for n, row in enumerate(many, start=1)]
        rows = numbered[0] if isinstance(rows, Mapping) else numbered
    # Reusing the statement object reuses its cache key too (building one costs ~50 µs).
    key = (
        postgres,
        table,
        None if unique is None else tuple(unique),
        None if where is None else str(where),
        tuple(str(column) for column in returning),
        numbering,
    )
    stmt = _BUILT.get(key) if where is None or isinstance(where, TextClause) else None
    if stmt is None:
        stmt = _build(postgres, table, unique, where, returning, numbering)
        if where is None or isinstance(where, TextClause):
            _BUILT[key] = stmt
    return await conn.execute(stmt, rows)


_BUILT: dict[tuple[Any, ...], Executable] = {}
# SQLite's `SELECT max(number)`, built once per numbered column (as _BUILT, for its cache key).
_LARGEST: dict[Numbering, Executable] = {}


def _build(
    postgres: bool,
    table: type[DeclarativeBase] | Table,
    unique: Sequence[str] | None,
    where: ColumnElement[bool] | TextClause | None,
    returning: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]],
    numbering: Numbering | None,
) -> Executable:
    insert = (postgresql.insert if postgres else sqlite.insert)(table)
    if numbering is not None and postgres:
        insert = insert.values({numbering.column.key: func.nextval(numbering.sequence)})
    stmt = insert.on_conflict_do_nothing(index_elements=unique, index_where=where)
    return stmt.returning(*returning) if returning else stmt
