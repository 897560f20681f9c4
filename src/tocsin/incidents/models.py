"""Incidents and their timeline."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Sequence,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.alerts.models import Severity
from tocsin.db import Base, enum_values, new_id
from tocsin.store.schema import partial_index

# PostgreSQL hands out incident numbers from this sequence; SQLite has one writer and
# takes max(number) + 1 inside the insert (see incidents/dedup.py).
INCIDENT_NUMBER_SEQ = Sequence("incident_number_seq", metadata=Base.metadata)


class IncidentStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_team_status", "team_id", "status"),
        Index("ix_incidents_fingerprint_status_created", "fingerprint", "status", "created_at"),
        Index("ix_incidents_assignee_status", "assigned_user_id", "status"),
        Index("ix_incidents_status_created", "status", "created_at"),
        Index("ix_incidents_service", "service_id"),
        Index("ix_incidents_snoozed_until", "snoozed_until"),
        # Ingest looks up the active incident of a group (noise/grouping.py) by this.
        Index("ix_incidents_group_key_status", "group_key", "status"),
        # The incident list: newest first, a page at a time, stops after the page's rows.
        Index("ix_incidents_created_id", "created_at", "id"),
        # At most one incident per (integration, fingerprint) takes new alerts. This index,
        # not a read-then-write, is what makes two identical alerts sent at once one incident.
        partial_index(
            "uq_incidents_dedup_open",
            "integration_id",
            "fingerprint",
            unique=True,
            where="dedup_open",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    number: Mapped[int] = mapped_column(BigInteger, unique=True)
    integration_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("integrations.id", ondelete="SET NULL"), nullable=True
    )
    fingerprint: Mapped[str] = mapped_column(String(128))
    # True while this incident may absorb new alerts of its fingerprint; cleared when it is
    # resolved, or when an alert arrives after the dedup window and opens a new incident.
    dedup_open: Mapped[bool] = mapped_column(Boolean)
    title: Mapped[str] = mapped_column(String(1024))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[IncidentStatus] = mapped_column(
        Enum(IncidentStatus, native_enum=False, values_callable=enum_values, length=20)
    )
    priority: Mapped[Severity] = mapped_column(
        Enum(Severity, native_enum=False, values_callable=enum_values, length=20)
    )
    team_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("teams.id"))
    escalation_policy_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("escalation_policies.id", ondelete="SET NULL"), nullable=True
    )
    service_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("services.id", ondelete="SET NULL"), nullable=True
    )
    current_level: Mapped[int] = mapped_column(Integer, default=0)
    current_repeat: Mapped[int] = mapped_column(Integer, default=0)
    assigned_user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    alert_count: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_escalated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Acknowledged and snoozed: the worker returns it to open (and paging) at this instant.
    snoozed_until: Mapped[datetime | None] = mapped_column(nullable=True)
    # "high" or "low", decided when it opened (None: older incidents, paged by severity).
    urgency: Mapped[str | None] = mapped_column(String(10), nullable=True)
    # Set when the incident holds alerts of several fingerprints (noise/grouping.py): the
    # group's key (service + group_by values) for an incident a group opened, or a marker of
    # its own for one that merge or split made. It then resolves when every alert has.
    group_key: Mapped[str | None] = mapped_column(String(128), nullable=True)


class ActorType(enum.StrEnum):
    USER = "user"
    INTEGRATION = "integration"
    SYSTEM = "system"


class IncidentEvent(Base):
    """One timeline entry: who or what changed the incident, when, and from what to what."""

    __tablename__ = "incident_events"
    __table_args__ = (Index("ix_incident_events_incident_at", "incident_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    incident_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("incidents.id", ondelete="CASCADE")
    )
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    actor_type: Mapped[ActorType] = mapped_column(
        Enum(ActorType, native_enum=False, values_callable=enum_values, length=20)
    )
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    old_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    new_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]]
