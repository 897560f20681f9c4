"""Claiming due rows reads the partial index written for it, not the whole table.

Timers and deliveries stay in their tables long after they are done (until retention), so a
claim that cannot use the index reads every timer ever written, on every worker round. Each
backend is asked for its plan: SQLite's planner uses a partial index only when the query
states the index's condition as written; PostgreSQL is told not to scan tables, so a plan
without the index says it could not use it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tocsin.notifications.models import DELIVERIES
from tocsin.store.queue import DueRows, due_now
from tocsin.timers.models import TIMERS


async def _plan(conn: AsyncConnection, rows: DueRows) -> str:
    now = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
    statement = select(rows.table.c.id).where(*due_now(rows, now)).order_by(rows.due).limit(50)
    compiled = statement.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    positional = tuple(params[name] for name in compiled.positiontup or ())
    if conn.dialect.name == "sqlite":
        found = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional)
        return "\n".join(str(row[-1]) for row in found)
    await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    found = await conn.exec_driver_sql(f"EXPLAIN {compiled}", positional)
    return "\n".join(str(row[0]) for row in found)


@pytest.mark.parametrize(
    ("rows", "index"),
    [(TIMERS, "ix_escalation_jobs_due"), (DELIVERIES, "ix_deliveries_pending_due")],
)
async def test_the_claim_of_due_rows_uses_their_partial_index(
    engine: AsyncEngine, rows: DueRows, index: str
) -> None:
    async with engine.begin() as conn:
        plan = await _plan(conn, rows)
    assert index in plan, plan
