"""The heartbeat monitor table: a job that must ping every so often, or an alert opens."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.alerts.models import Severity
from tocsin.db import Base, enum_values, new_id
from tocsin.store.queue import DueRows


class HeartbeatState(enum.StrEnum):
    WAITING = "waiting"  # created, never pinged: nothing can be late yet
    UP = "up"
    LATE = "late"


class HeartbeatMonitor(Base):
    __tablename__ = "heartbeat_monitors"
    __table_args__ = (
        # The worker's one query: monitors whose deadline has passed. due_at is NULL unless
        # the monitor is up, so the index holds only monitors that could go late.
        Index("ix_heartbeat_monitors_due_at", "due_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    service_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("services.id", ondelete="CASCADE"), index=True
    )
    # The monitor's own integration: the alerts it raises and their incidents point at it,
    # so they deduplicate, resolve and show up like any other integration's.
    integration_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("integrations.id", ondelete="CASCADE"), unique=True
    )
    interval_seconds: Mapped[int] = mapped_column(Integer)
    grace_seconds: Mapped[int] = mapped_column(Integer)
    severity: Mapped[Severity] = mapped_column(
        Enum(Severity, native_enum=False, values_callable=enum_values, length=20)
    )
    # Only the SHA-256 of the ping key is stored, like integration keys.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    state: Mapped[HeartbeatState] = mapped_column(
        Enum(HeartbeatState, native_enum=False, values_callable=enum_values, length=20)
    )
    last_ping_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # last_ping_at + interval + grace while UP; NULL while WAITING or LATE.
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    late_since: Mapped[datetime | None] = mapped_column(nullable=True)
    # The due-row queue's lease (tocsin/store/queue.py), while a worker raises its alert.
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    parked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    incident_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# Monitors as due rows: an UP monitor is due at its deadline (WAITING and LATE ones wait for
# a ping, not for the worker).
MONITORS = DueRows(
    HeartbeatMonitor.__table__,  # type: ignore[arg-type]
    due=HeartbeatMonitor.__table__.c.due_at,
    waiting=(HeartbeatMonitor.__table__.c.state == HeartbeatState.UP,),
)
