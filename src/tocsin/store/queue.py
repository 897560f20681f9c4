"""The due-row queue: one protocol for every kind of row that becomes due (escalation timers,
deliveries, heartbeat monitors).

Each such table has the same lease columns: `lease_owner` (the worker that claimed the row),
`lease_until` (until when nobody else may take it), `attempts` (claims so far) and
`parked_at` (set when the queue gave up on the row), plus its own due-time column and a
condition saying which of its rows still wait. A worker

1. claims due rows with `claim` in a short transaction of its own: `FOR UPDATE SKIP LOCKED`
   on PostgreSQL, so workers on many machines take disjoint rows (SQLite renders no locking
   clause: its single writer serialises the claims);
2. works each row in a transaction that re-checks the lease is still its own (`held_by`);
3. finishes the row, or leaves it leased when the work failed: nobody retries it before the
   lease ends, so a row that always fails cannot spin the loop;
4. gives back at shutdown, with `release`, what it claimed and did not work.

Every claim counts an attempt. A row claimed more than its kind's cap (`kept_failing`) is
parked instead of worked: `parked_at` is set, it is never claimed again, and its kind records
why where a person sees it (a timeline entry, a failed delivery, a monitor's state).
`next_due_of` tells the loop when to wake: for all the kinds it runs, in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.elements import BindParameter, ColumnClause, KeyedColumnElement

from tocsin.store.connection import Connection


@dataclass(frozen=True)
class DueRows:
    """A table of due rows: its due-time column and which of its rows still wait."""

    table: Table
    due: KeyedColumnElement[Any]
    # Rows not done yet (not completed, sent, cancelled...): the ones a claim may take.
    waiting: tuple[ColumnElement[bool], ...]
    # A lease column of the previous release, written and respected alongside the new one
    # while old processes may still run during a rolling upgrade (dropped in the next
    # release). Timers name their owner `claimed_by`, deliveries their end
    # `lease_expires_at`.
    legacy_owner: KeyedColumnElement[Any] | None = None
    legacy_until: KeyedColumnElement[Any] | None = None

    @property
    def lease_owner(self) -> ColumnClause[Any]:
        return self.table.c.lease_owner

    @property
    def lease_until(self) -> ColumnClause[Any]:
        return self.table.c.lease_until

    @property
    def attempts(self) -> ColumnClause[Any]:
        return self.table.c.attempts

    @property
    def parked_at(self) -> ColumnClause[Any]:
        return self.table.c.parked_at


def _free(rows: DueRows, now: datetime | BindParameter[Any]) -> list[ColumnElement[bool]]:
    """Not leased, or the lease has run out (its worker died or was cut off)."""
    free = [or_(rows.lease_until.is_(None), rows.lease_until < now)]
    if rows.legacy_until is not None:
        free.append(or_(rows.legacy_until.is_(None), rows.legacy_until < now))
    return free


def due_now(rows: DueRows, now: datetime) -> list[ColumnElement[bool]]:
    """The conditions of a row that may be claimed at `now`."""
    return [*rows.waiting, rows.parked_at.is_(None), rows.due <= now, *_free(rows, now)]


def held_by(rows: DueRows, owner: str) -> list[ColumnElement[bool]]:
    """The conditions of a row still waiting and still leased to `owner`: what the work
    re-checks, in its own transaction, before it acts."""
    return [*rows.waiting, rows.parked_at.is_(None), rows.lease_owner == owner]


def _lease(rows: DueRows, owner: str | None, until: datetime | None) -> dict[str, Any]:
    values: dict[str, Any] = {"lease_owner": owner, "lease_until": until}
    if rows.legacy_owner is not None:
        values[rows.legacy_owner.key] = owner
    if rows.legacy_until is not None:
        values[rows.legacy_until.key] = until
    return values


def released(rows: DueRows) -> dict[str, Any]:
    """The column values of a row given back (to be written with whatever finished it)."""
    return _lease(rows, None, None)


async def claim(
    conn: Connection,
    rows: DueRows,
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    where: Sequence[ColumnElement[bool]] = (),
    returning: Sequence[ColumnElement[Any] | QueryableAttribute[Any]] = (),
    values: dict[str, Any] | None = None,
) -> list[Row[Any]]:
    """Lease up to `limit` rows due at `now` (and matching `where`) to `owner`, earliest due
    first, counting an attempt on each; the claimed rows with the `returning` columns (after
    the claim: `attempts` includes this one). In the caller's transaction: commit it before
    working the rows, so the lease protects them while they are worked."""
    candidates = (
        select(rows.table.c.id)
        .where(*due_now(rows, now), *where)
        .order_by(rows.due)
        .limit(limit)
        # PostgreSQL: lock the chosen rows, skipping rows another worker is claiming instead
        # of queueing behind it; a locked row's conditions were checked again on its latest
        # version, and nobody else can change it before this transaction ends. SQLite renders
        # nothing here: its writer holds the database's write lock from BEGIN (IMMEDIATE).
        .with_for_update(skip_locked=True)
    )
    ids = list((await conn.execute(candidates)).scalars())
    if not ids:
        return []
    # Two statements, not `UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE)`: with the
    # table's statistics behind (a storm writes thousands of timers in seconds), PostgreSQL
    # planned that as a nested loop running the locking subquery once per due row, about a
    # second per claim with 2,000 due (docs/benchmarks.md). By primary key there is no plan
    # to get wrong.
    result = await conn.execute(
        update(rows.table)
        .where(rows.table.c.id.in_(ids))
        .values(
            **_lease(rows, owner, now + lease),
            attempts=rows.attempts + 1,
            **(values or {}),
        )
        .returning(rows.due, *returning)
    )
    # RETURNING gives no order: put the earliest due first again.
    return sorted(result.all(), key=lambda row: row[0])


def kept_failing(attempts: int, *, cap: int) -> bool:
    """True for a row claimed more than `cap` times without ever being finished: every
    worker that took it died or failed on it. Park it rather than try again."""
    return attempts > cap


async def park(
    conn: Connection,
    rows: DueRows,
    row_id: Any,
    *,
    owner: str,
    now: datetime,
    values: dict[str, Any] | None = None,
) -> bool:
    """Give up on a row that keeps failing: never claimed again, with the kind's own
    `values` (its visible trace). False when it is no longer ours (cancelled or taken)."""
    result = await conn.execute(
        update(rows.table)
        .where(rows.table.c.id == row_id, *held_by(rows, owner))
        .values(**released(rows), parked_at=now, **(values or {}))
    )
    return bool(result.rowcount)


async def release(conn: Connection, rows: DueRows, *, owner: str) -> int:
    """Give back every row leased to `owner` and not finished (at shutdown): due again at
    once for others, and the claim counts as no attempt. Returns how many."""
    result = await conn.execute(
        update(rows.table)
        .where(*held_by(rows, owner))
        .values(**released(rows), attempts=rows.attempts - 1)
    )
    return result.rowcount or 0


# The next-due statement of each combination of kinds, built once: the loop asks before
# every sleep, and building the statement anew each time cost more than running it.
_NEXT_DUE: dict[tuple[int, ...], tuple[tuple[DueRows, ...], Select[tuple[Any, ...]]]] = {}


def _next_due_statement(kinds: Sequence[DueRows]) -> Select[tuple[Any, ...]]:
    key = tuple(id(rows) for rows in kinds)
    known = _NEXT_DUE.get(key)
    if known is not None:
        return known[1]
    parts = []
    for rows in kinds:
        now = bindparam("now", type_=rows.due.type)
        waiting = (*rows.waiting, rows.parked_at.is_(None))
        # Free rows by their due time; leased ones (another worker's) by the end of the lease.
        parts.append(select(func.min(rows.due).label("at")).where(*waiting, *_free(rows, now)))
        parts.append(
            select(func.min(rows.lease_until).label("at")).where(*waiting, rows.lease_until >= now)
        )
    every = union_all(*parts).subquery()
    # Every kind's due column is a UTC timestamp: the minimum is read back as one.
    statement = select(func.min(every.c.at, type_=kinds[0].due.type))
    # Keep the kinds alive with their statement, so that their ids are never reused.
    _NEXT_DUE[key] = (tuple(kinds), statement)
    return statement


async def next_due_of(
    conn: Connection, kinds: Sequence[DueRows], *, now: datetime
) -> datetime | None:
    """When the first waiting row of any of `kinds` becomes claimable: its due time, or for
    one leased, the end of that lease; in one statement. The loop sleeps until then (or until
    woken)."""
    if not kinds:
        return None
    at: datetime | None = (
        await conn.execute(_next_due_statement(kinds), {"now": now})
    ).scalar_one_or_none()
    return at


async def next_due_at(conn: Connection, rows: DueRows, *, now: datetime) -> datetime | None:
    """When a waiting row of `rows` next becomes claimable (see `next_due_of`)."""
    return await next_due_of(conn, [rows], now=now)


def and_all(conditions: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    """The conditions as one expression (for a caller that composes them)."""
    return and_(*conditions)
