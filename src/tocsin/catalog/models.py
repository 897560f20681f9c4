"""The Service table."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, JSONType, enum_values, new_id


class ServiceStatus(enum.StrEnum):
    ACTIVE = "active"
    DEPRECATED = "deprecated"
    ARCHIVED = "archived"


class ServiceUrgency(enum.StrEnum):
    """How urgently the service's incidents page people: by their severity, or always high
    or always low whatever the severity (a batch job's critical can wait for the morning)."""

    SEVERITY_BASED = "severity_based"
    HIGH = "high"
    LOW = "low"
    # High urgency inside the service's support hours, low outside them.
    SUPPORT_HOURS = "support_hours"


class Service(Base):
    __tablename__ = "services"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    routing_key: Mapped[str] = mapped_column(String(200), unique=True)
    team_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("teams.id"), index=True)
    escalation_policy_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("escalation_policies.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[ServiceStatus] = mapped_column(
        Enum(ServiceStatus, native_enum=False, values_callable=enum_values, length=20),
        default=ServiceStatus.ACTIVE,
    )
    urgency: Mapped[ServiceUrgency] = mapped_column(
        Enum(ServiceUrgency, native_enum=False, values_callable=enum_values, length=20),
        default=ServiceUrgency.SEVERITY_BASED,
        server_default=ServiceUrgency.SEVERITY_BASED.value,
    )
    # {"timezone": "Europe/Paris", "windows": [{"weekdays": [1..7], "start_time": "HH:MM",
    #  "end_time": "HH:MM"}]}: when someone is there to answer (see incidents/urgency.py).
    support_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    # Grouping (noise/grouping.py): alerts with equal values of these tags open one incident
    # while it is active and younger than the window. Empty: grouped by fingerprint only.
    group_by: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default="[]")
    group_window_seconds: Mapped[int] = mapped_column(Integer, default=300, server_default="300")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
