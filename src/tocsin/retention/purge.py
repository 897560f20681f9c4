"""The worker's retention step: deletes resolved incidents (with their alerts, timeline,
pages and deliveries) and payload log entries older than the settings keep.

Each call deletes one small batch in one short transaction, so a purge of millions of rows
never holds a lock for long and ingest goes on between batches. The incidents of a batch are
locked as they are picked (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer),
so an incident being reopened or acknowledged at that moment is either left alone or
finished first and then no longer qualifies.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from tocsin.alerts.models import Alert
from tocsin.escalation.models import Page
from tocsin.incidents.models import Incident, IncidentEvent, IncidentStatus
from tocsin.integrations.models import IntegrationPayload
from tocsin.notifications.models import Delivery
from tocsin.retention.models import RetentionCount
from tocsin.store.connection import Connection
from tocsin.store.inserts import insert_ignoring
from tocsin.worker.context import WorkerContext

log = logging.getLogger(__name__)

BATCH_SIZE = 100  # incidents per transaction; their rows follow them
PAYLOAD_BATCH_SIZE = 1000
# How often a worker looks for expired rows once it has caught up.
CHECK_EVERY = timedelta(minutes=10)
FINISHED = (IncidentStatus.RESOLVED, IncidentStatus.CLOSED)

# What goes with an incident, counted by kind; the rest (escalation timers, delivery
# attempts, used links...) goes by the foreign keys' ON DELETE CASCADE.
INCIDENT_ROWS: tuple[tuple[str, Any], ...] = (
    ("deliveries", Delivery),
    ("pages", Page),
    ("timeline", IncidentEvent),
    ("alerts", Alert),
)


async def purge_incidents(conn: Connection, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` incidents resolved (or closed) before `before`, and their rows;
    returns how many incidents went."""
    ended = func.coalesce(Incident.resolved_at, Incident.closed_at)
    picked = (
        await conn.execute(
            select(Incident.id)
            .where(
                Incident.status.in_(FINISHED),
                # Started before the cutoff too: lets the (status, created_at) index narrow it.
                Incident.created_at < before,
                ended < before,
            )
            .order_by(Incident.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    ids: list[uuid.UUID] = list(picked)
    if not ids:
        return 0
    for kind, table in INCIDENT_ROWS:
        gone = await conn.execute(delete(table).where(table.incident_id.in_(ids)))
        await _count(conn, kind, gone.rowcount or 0)
    gone = await conn.execute(delete(Incident).where(Incident.id.in_(ids)))
    await _count(conn, "incidents", gone.rowcount or 0)
    return len(ids)


async def _count(conn: Connection, kind: str, rows: int) -> None:
    """Add to the running total /metrics reports, in the transaction that deleted them."""
    if not rows:
        return
    add = (
        update(RetentionCount)
        .where(RetentionCount.kind == kind)
        .values(purged=RetentionCount.purged + rows)
    )
    if (await conn.execute(add)).rowcount:
        return
    # Migration 0017 made the row; a database restored without it gets it back here.
    made = await insert_ignoring(conn, RetentionCount, {"kind": kind, "purged": rows})
    if not made.rowcount:  # another worker made it first
        await conn.execute(add)


async def purge_payload_log(conn: Connection, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` payload log entries received before `before`; returns how many."""
    oldest = (
        select(IntegrationPayload.id)
        .where(IntegrationPayload.received_at < before)
        .order_by(IntegrationPayload.received_at)
        .limit(limit)
    )
    gone = await conn.execute(
        delete(IntegrationPayload).where(IntegrationPayload.id.in_(oldest.scalar_subquery()))
    )
    count = gone.rowcount or 0
    await _count(conn, "payload_log", count)
    return count


@dataclass
class RetentionStep:
    """A worker step: one batch of each kind per call while there is a backlog (True),
    then it rests for CHECK_EVERY before looking again."""

    check_every: timedelta = CHECK_EVERY
    batch_size: int = BATCH_SIZE
    payload_batch_size: int = PAYLOAD_BATCH_SIZE
    resting_until: datetime | None = field(default=None)

    async def __call__(self, ctx: WorkerContext) -> bool:
        now = ctx.clock.now()
        if self.resting_until is not None and now < self.resting_until:
            return False
        settings = ctx.settings
        incidents = payloads = 0
        if settings.retention_days > 0:
            async with ctx.engine.begin() as conn:
                incidents = await purge_incidents(
                    conn,
                    before=now - timedelta(days=settings.retention_days),
                    limit=self.batch_size,
                )
        if settings.payload_log_retention_days > 0:
            async with ctx.engine.begin() as conn:
                payloads = await purge_payload_log(
                    conn,
                    before=now - timedelta(days=settings.payload_log_retention_days),
                    limit=self.payload_batch_size,
                )
        if incidents:
            log.info("retention: deleted %d resolved incidents with their rows", incidents)
        more = incidents == self.batch_size or payloads == self.payload_batch_size
        if not more:
            self.resting_until = now + self.check_every
        return more


def retention_step() -> RetentionStep:
    return RetentionStep()
