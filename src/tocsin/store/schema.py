"""The declarative Base, ids and the column types whose storage differs between SQLite and
PostgreSQL (timestamps, JSON)."""

from __future__ import annotations

import enum
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ColumnElement, DateTime, Dialect, Index, MetaData, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import NullType, TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC going in and coming out.

    SQLite keeps no zone, so naive values read back are UTC by construction; a naive value
    going in is a bug in the caller and is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} refused: store timezone-aware UTC")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONType}


def new_id() -> uuid.UUID:
    return uuid.uuid4()


_last_ordered = (0, 0)  # (milliseconds, 74-bit sequence) of the last id handed out


def new_ordered_id() -> uuid.UUID:
    """A UUIDv7 (millisecond time first) that grows within this process, so rows written in
    one instant (the timeline entries of one transaction) keep their order."""
    global _last_ordered
    millis = time.time_ns() // 1_000_000
    last_millis, last_seq = _last_ordered
    if millis <= last_millis:
        millis, seq = last_millis, last_seq + 1
    else:
        seq = secrets.randbits(72)  # room left to count up within the millisecond
    _last_ordered = (millis, seq)
    value = (
        (millis << 80)
        | (0x7 << 76)  # version 7
        | (((seq >> 62) & 0xFFF) << 64)
        | (0x2 << 62)  # RFC 4122 variant
        | (seq & ((1 << 62) - 1))
    )
    return uuid.UUID(int=value)


def enum_values(enum_cls: type[enum.Enum]) -> list[str]:
    """Store an enum by its value (`open`), not its Python name (`OPEN`)."""
    return [str(member.value) for member in enum_cls]


def partial_index(name: str, *columns: str, where: str, unique: bool = False) -> Index:
    """An index of only the rows for which the SQL condition `where` holds. Each dialect
    takes the condition separately, and one not given it would index every row (a partial
    unique index would then refuse rows it should allow), so both are given it here."""
    return Index(
        name, *columns, unique=unique, sqlite_where=text(where), postgresql_where=text(where)
    )


class _Unset(ColumnElement[Any]):
    """`NOT column`, rendered so on every backend (see `unset`)."""

    __visit_name__ = "tocsin_unset"
    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]
    type = NullType()  # not Boolean: SQLite would wrap it again in `... = 1`

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column


@compiles(_Unset)
def _render_unset(element: _Unset, compiler: SQLCompiler, **kw: Any) -> str:
    return f"NOT {compiler.process(element.column, **kw)}"


def unset(column: ColumnElement[bool] | QueryableAttribute[bool]) -> ColumnElement[bool]:
    """The flag is false, written `NOT column` on every backend.

    The partial indexes on flags are written that way (`WHERE NOT completed ...`), and a
    partial index serves a query only when the planner can tell the query implies its
    condition: neither SQLite nor PostgreSQL derives `NOT completed` from `completed IS
    false` (SQLAlchemy's `is_(False)`), and SQLite not from `completed = 0` (its `not_`).
    With those, claiming due timers read the whole table on every worker round."""
    if isinstance(column, QueryableAttribute):
        return _Unset(column.__clause_element__())
    return _Unset(column)
