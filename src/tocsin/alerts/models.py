"""Alerts as received, normalised, whether or not they were routed."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Enum, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, enum_values, new_id


class Severity(enum.StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class AlertStatus(enum.StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_routed_received", "routed", "received_at"),
        Index("ix_alerts_integration_fingerprint", "integration_id", "fingerprint"),
        Index("ix_alerts_suppressed_by", "suppressed_by"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    integration_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("integrations.id", ondelete="CASCADE")
    )
    incident_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True, index=True
    )
    fingerprint: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(1024))
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[Severity] = mapped_column(
        Enum(Severity, native_enum=False, values_callable=enum_values, length=20)
    )
    status: Mapped[AlertStatus] = mapped_column(
        Enum(AlertStatus, native_enum=False, values_callable=enum_values, length=20)
    )
    source: Mapped[str] = mapped_column(String(512), default="")
    dedup_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    routing_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tags: Mapped[dict[str, Any]]
    details: Mapped[dict[str, Any]]
    routed: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime]
    # Why a firing alert opened no incident (noise/decide.py): "maintenance", "silence" or
    # "inhibition", the window's, silence's or rule's id, and a sentence for people.
    suppressed_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    suppressed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    suppression_reason: Mapped[str | None] = mapped_column(String(1024), nullable=True)
