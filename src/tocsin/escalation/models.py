"""Escalation policies, their levels, each incident's escalation state (with the policy
snapshot it escalates through) and its pages. The timer rows that drive them (EscalationJob)
live in tocsin.timers, below incidents; they are re-exported here."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, enum_values, new_id
from tocsin.store.schema import partial_index
from tocsin.timers.models import TIMERS, EscalationJob, JobKind, JobOutcome

__all__ = [
    "TIMERS",
    "EscalationJob",
    "EscalationLevel",
    "EscalationPolicy",
    "EscalationState",
    "IncidentEscalation",
    "JobKind",
    "JobOutcome",
    "Page",
    "PageVia",
    "TargetType",
]


class TargetType(enum.StrEnum):
    USER = "user"
    SCHEDULE = "schedule"
    ENTIRE_TEAM = "entire_team"


class EscalationPolicy(Base):
    __tablename__ = "escalation_policies"
    __table_args__ = (
        CheckConstraint("repeat_count BETWEEN 1 AND 9", name="repeat_count_range"),
        # One default policy per team, enforced by the database.
        partial_index(
            "uq_escalation_policies_team_default", "team_id", unique=True, where="is_default"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    team_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("teams.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    repeat_count: Mapped[int] = mapped_column(Integer, default=1)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # When set, an acknowledged incident that is neither resolved nor acknowledged again
    # within this many minutes returns to OPEN and escalation resumes.
    ack_timeout_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class EscalationLevel(Base):
    __tablename__ = "escalation_levels"
    __table_args__ = (
        UniqueConstraint("policy_id", "level_number", name="uq_escalation_levels_policy_level"),
        CheckConstraint("timeout_minutes >= 1", name="timeout_positive"),
        CheckConstraint("level_number >= 1", name="level_number_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    policy_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("escalation_policies.id", ondelete="CASCADE")
    )
    level_number: Mapped[int] = mapped_column(Integer)
    target_type: Mapped[TargetType] = mapped_column(
        Enum(TargetType, native_enum=False, values_callable=enum_values, length=20)
    )
    target_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    timeout_minutes: Mapped[int] = mapped_column(Integer, default=30)


class EscalationState(enum.StrEnum):
    ESCALATING = "escalating"
    # Reassigned to one user: that user was paged and the policy no longer runs.
    DIRECT = "direct"
    # Every cycle ran out with nobody acknowledging; the incident stays open.
    EXHAUSTED = "exhausted"


class IncidentEscalation(Base):
    """Where an incident is in its escalation, and the policy as it was when the incident
    opened (or was reassigned to it): later edits of the policy do not reach it."""

    __tablename__ = "incident_escalations"

    incident_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    policy_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    # {"name", "repeat_count", "ack_timeout_minutes", "levels": [{"level_number",
    #  "target_type", "target_id", "timeout_minutes"}]}
    policy_snapshot: Mapped[dict[str, Any]]
    state: Mapped[EscalationState] = mapped_column(
        Enum(EscalationState, native_enum=False, values_callable=enum_values, length=20)
    )
    level: Mapped[int] = mapped_column(Integer)
    repeat: Mapped[int] = mapped_column(Integer)
    # Grows by one each time the incident reaches a level (or is reassigned); timers and
    # pages carry it, so a stale timer is recognised and a page can never be written twice.
    seq: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class PageVia(enum.StrEnum):
    USER = "user"
    SCHEDULE = "schedule"
    ENTIRE_TEAM = "entire_team"
    REASSIGN = "reassign"
    RESPONDER = "responder"


class Page(Base):
    """One person paged for an incident: what the notifications module delivers."""

    __tablename__ = "pages"
    __table_args__ = (
        # The same step of the same incident pages a person once, however often it runs.
        UniqueConstraint("incident_id", "escalation_seq", "user_id", name="uq_pages_step_user"),
        Index("ix_pages_incident_created", "incident_id", "created_at"),
        Index("ix_pages_user_created", "user_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    incident_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("incidents.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    # The timer that caused it; None when a person's action did (open, escalate now, ...).
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("escalation_jobs.id", ondelete="SET NULL"), nullable=True
    )
    level_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    repeat: Mapped[int] = mapped_column(Integer, default=0)
    escalation_seq: Mapped[int] = mapped_column(Integer)
    via: Mapped[PageVia] = mapped_column(
        Enum(PageVia, native_enum=False, values_callable=enum_values, length=20)
    )
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    layer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    override_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    created_at: Mapped[datetime]
