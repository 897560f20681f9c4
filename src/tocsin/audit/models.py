"""The audit log's one table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, new_ordered_id


class AuditEntry(Base):
    """One created, changed or deleted configuration object. No foreign keys: an entry
    outlives the user who made the change and the object it names."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_at_id", "at", "id"),
        Index("ix_audit_entries_object", "object_type", "object_id", "at"),
        Index("ix_audit_entries_actor", "actor_user_id", "at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_ordered_id)
    at: Mapped[datetime]
    # None when the change came from the command line (`via` = "cli").
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    via: Mapped[str] = mapped_column(String(16))  # api_key, session or cli
    via_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)  # key or session
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(16))  # created, changed, deleted
    object_type: Mapped[str] = mapped_column(String(64))  # the table: services, api_keys...
    object_id: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    # {field: {"before": value, "after": value}}; secrets appear as "(secret)".
    changes: Mapped[dict[str, Any]]
