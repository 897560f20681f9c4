"""What `tocsin status` reports: the processes seen, the due work waiting (and how late the
oldest of it is), the rows parked after failing for good, the schema and the database size.

Everything is read in one read-only pass and judged against `now`, so the report is a
picture of one moment; `overdue_beyond` turns it into the yes/no a monitoring check wants.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.escalation.models import EscalationJob, JobOutcome
from tocsin.heartbeats.models import MONITORS
from tocsin.notifications.models import DELIVERIES, Delivery, DeliveryStatus
from tocsin.operations.processes import ProcessSeen, list_processes
from tocsin.store import backend as store_backend
from tocsin.store.queue import DueRows
from tocsin.timers.models import TIMERS

# How far back "recently parked" looks.
RECENT = timedelta(hours=24)


class DueKind(enum.StrEnum):
    ESCALATION_TIMERS = "escalation_timers"
    DELIVERIES = "deliveries"
    HEARTBEAT_DEADLINES = "heartbeat_deadlines"


@dataclass(frozen=True)
class OverdueItem:
    kind: DueKind
    id: uuid.UUID
    due_at: datetime
    late_seconds: float
    incident_id: uuid.UUID | None


@dataclass(frozen=True)
class Backlog:
    """Rows of one kind waiting for a worker: `pending` in all, `overdue` past their due time."""

    kind: DueKind
    pending: int
    overdue: int
    oldest_overdue: OverdueItem | None


@dataclass(frozen=True)
class Parked:
    """Rows that failed for good and wait for a person: never retried by themselves."""

    kind: str
    count: int
    recent: int  # parked within RECENT of now
    newest_at: datetime | None


@dataclass(frozen=True)
class DatabaseInfo:
    backend: str  # "sqlite" or "postgresql"
    size_bytes: int
    # SQLite: the main file and the write-ahead log, which holds commits not yet copied back.
    file_bytes: int | None
    wal_bytes: int | None
    schema_revision: str | None
    schema_head: str | None

    @property
    def schema_current(self) -> bool:
        return self.schema_revision == self.schema_head


@dataclass(frozen=True)
class StatusReport:
    now: datetime
    database: DatabaseInfo
    processes: list[ProcessSeen]
    backlogs: list[Backlog]
    parked: list[Parked]

    @property
    def oldest_overdue(self) -> OverdueItem | None:
        found = [b.oldest_overdue for b in self.backlogs if b.oldest_overdue is not None]
        return min(found, key=lambda item: item.due_at) if found else None

    def overdue_beyond(self, threshold: timedelta) -> bool:
        """True when some due work has waited longer than `threshold` past its due time."""
        oldest = self.oldest_overdue
        return oldest is not None and oldest.late_seconds > threshold.total_seconds()

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = _jsonable(dataclasses.asdict(self))
        body["oldest_overdue"] = _jsonable(
            dataclasses.asdict(self.oldest_overdue) if self.oldest_overdue else None
        )
        body["database"]["schema_current"] = self.database.schema_current
        return body


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID | enum.Enum):
        return str(value.value if isinstance(value, enum.Enum) else value)
    return value


async def _backlog(
    conn: AsyncConnection, kind: DueKind, rows: DueRows, *, now: datetime
) -> Backlog:
    """How many of the kind's rows wait (as its due-row queue defines waiting), how many of
    them are overdue, and the oldest overdue one."""
    pending = and_(*rows.waiting)
    due, row_id, incident_id = rows.due, rows.table.c.id, rows.table.c.incident_id
    counts = (
        await conn.execute(
            select(
                func.count(),
                func.count().filter(due < now),
            ).where(pending)
        )
    ).one()
    oldest_stmt: Select[Any] = (
        select(row_id, due, incident_id).where(pending, due < now).order_by(due).limit(1)
    )
    oldest = (await conn.execute(oldest_stmt)).first()
    item = None
    if oldest is not None:
        item = OverdueItem(
            kind=kind,
            id=oldest[0],
            due_at=oldest[1],
            late_seconds=(now - oldest[1]).total_seconds(),
            incident_id=oldest[2],
        )
    return Backlog(kind, pending=counts[0], overdue=counts[1], oldest_overdue=item)


async def due_work(conn: AsyncConnection, *, now: datetime) -> list[Backlog]:
    """Timers, deliveries and heartbeat deadlines waiting for a worker."""
    return [
        await _backlog(conn, DueKind.ESCALATION_TIMERS, TIMERS, now=now),
        await _backlog(conn, DueKind.DELIVERIES, DELIVERIES, now=now),
        # An UP monitor past its deadline is the worker's to raise an alert for.
        await _backlog(conn, DueKind.HEARTBEAT_DEADLINES, MONITORS, now=now),
    ]


async def parked_rows(conn: AsyncConnection, *, now: datetime) -> list[Parked]:
    """Rows given up on: deliveries that failed for good (a permanent error, or out of
    attempts) and escalation timers that kept failing (paging is stuck)."""
    failed = Delivery.status == DeliveryStatus.FAILED
    count, recent, newest = (
        await conn.execute(
            select(
                func.count(),
                func.count().filter(Delivery.updated_at >= now - RECENT),
                func.max(Delivery.updated_at),
            ).where(failed)
        )
    ).one()
    timers, timers_recent, timers_newest = (
        await conn.execute(
            select(
                func.count(),
                func.count().filter(EscalationJob.executed_at >= now - RECENT),
                func.max(EscalationJob.executed_at),
            ).where(EscalationJob.outcome == JobOutcome.PARKED)
        )
    ).one()
    return [
        Parked("failed_deliveries", count=count, recent=recent, newest_at=newest),
        Parked("parked_timers", count=timers, recent=timers_recent, newest_at=timers_newest),
    ]


async def schema_revision(conn: AsyncConnection) -> str | None:
    """The Alembic revision the database is at; None when it has no Tocsin schema."""
    if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
        return None
    return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()


async def gather_status(
    conn: AsyncConnection, *, now: datetime, schema_head: str | None
) -> StatusReport:
    """The whole report, read on one connection. Needs a schema with the process registry;
    check `schema_revision` first on a database that may be older."""
    revision = await schema_revision(conn)
    size, file_bytes, wal_bytes = await store_backend.database_size(conn)
    database = DatabaseInfo(
        backend=store_backend.backend_name(conn),
        size_bytes=size,
        file_bytes=file_bytes,
        wal_bytes=wal_bytes,
        schema_revision=revision,
        schema_head=schema_head,
    )
    return StatusReport(
        now=now,
        database=database,
        processes=await list_processes(conn, now=now),
        backlogs=await due_work(conn, now=now),
        parked=await parked_rows(conn, now=now),
    )
