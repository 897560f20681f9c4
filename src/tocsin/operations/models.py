"""The process registry: one row per running `tocsin serve` or `tocsin worker`."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, enum_values


class ProcessKind(enum.StrEnum):
    API = "api"  # tocsin serve --no-worker
    WORKER = "worker"  # tocsin worker
    API_AND_WORKER = "api+worker"  # tocsin serve, with the worker in-process


class ProcessRow(Base):
    """A process says it is alive by moving last_seen every few seconds; one that stops
    cleanly sets stopped_at. Rows of processes unseen for a day are pruned."""

    __tablename__ = "processes"

    # For a process that runs a worker, its worker id: the name in the lease columns of the
    # rows it claims (host:pid:random).
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[ProcessKind] = mapped_column(
        Enum(ProcessKind, native_enum=False, values_callable=enum_values, length=20)
    )
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(50))
    started_at: Mapped[datetime]
    last_seen: Mapped[datetime]
    stopped_at: Mapped[datetime | None] = mapped_column(nullable=True)
