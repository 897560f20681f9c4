"""Escalation policies, their levels, and the timer rows (EscalationJob) that drive them."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

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
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, enum_values, new_id


class TargetType(enum.StrEnum):
    USER = "user"
    SCHEDULE = "schedule"
    ENTIRE_TEAM = "entire_team"


class EscalationPolicy(Base):
    __tablename__ = "escalation_policies"
    __table_args__ = (
        CheckConstraint("repeat_count BETWEEN 1 AND 9", name="repeat_count_range"),
        # One default policy per team, enforced by the database.
        Index(
            "uq_escalation_policies_team_default",
            "team_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    repeat_count: Mapped[int] = mapped_column(Integer, default=1)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
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
        ForeignKey("escalation_policies.id", ondelete="CASCADE")
    )
    level_number: Mapped[int] = mapped_column(Integer)
    target_type: Mapped[TargetType] = mapped_column(
        Enum(TargetType, native_enum=False, values_callable=enum_values, length=20)
    )
    target_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    timeout_minutes: Mapped[int] = mapped_column(Integer, default=30)


class EscalationJob(Base):
    """A timer: "at scheduled_for, take this incident to scheduled_level". Written in the
    same transaction as the state change that causes it; the worker claims due rows."""

    __tablename__ = "escalation_jobs"
    __table_args__ = (
        Index(
            "ix_escalation_jobs_due",
            "scheduled_for",
            sqlite_where=text("NOT completed AND cancelled_at IS NULL"),
            postgresql_where=text("NOT completed AND cancelled_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    incident_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    scheduled_level: Mapped[int] = mapped_column(Integer)
    scheduled_repeat: Mapped[int] = mapped_column(Integer, default=0)
    scheduled_for: Mapped[datetime]
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    executed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime]
