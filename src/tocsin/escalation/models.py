"""Escalation policies, their levels, the timer rows (EscalationJob) that drive them, each
incident's escalation state (with the policy snapshot it escalates through) and its pages."""

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
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, enum_values, new_id
from tocsin.store.queue import DueRows


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


class JobKind(enum.StrEnum):
    # A new incident's escalation: written with the incident, due at once; the worker
    # snapshots the policy and pages level 1 (with the timer for what comes next).
    START = "start"
    # The current level's timeout: move on to the next level (or repeat, or exhaust).
    LEVEL = "level"
    # The policy's acknowledgement timeout: an acknowledged incident returns to OPEN.
    ACK_TIMEOUT = "ack_timeout"
    # An added responder (escalation/responders.py): page one person, or a policy's first
    # level, once; the incident's own escalation is untouched.
    RESPONDER = "responder"


class JobOutcome(enum.StrEnum):
    FIRED = "fired"
    # The incident had moved on (acknowledged, escalated by hand...) before the timer fired.
    STALE = "stale"
    # Failed `timer_max_attempts` times: given up on and left for a person (never retried).
    PARKED = "parked"


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
        Uuid, ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    scheduled_level: Mapped[int] = mapped_column(Integer)
    scheduled_repeat: Mapped[int] = mapped_column(Integer, default=0)
    scheduled_for: Mapped[datetime]
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    executed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime]
    kind: Mapped[JobKind] = mapped_column(
        Enum(JobKind, native_enum=False, values_callable=enum_values, length=20),
        default=JobKind.LEVEL,
    )
    # The incident's escalation seq when the timer was made; it fires only if still equal.
    escalation_seq: Mapped[int] = mapped_column(Integer, default=0)
    # The due-row queue's lease (tocsin/store/queue.py): the worker that claimed the row,
    # until when nobody else may take it, claims so far, and when the queue gave up on it.
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    parked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The owner's column of the previous release, still written for its workers during a
    # rolling upgrade (migration 0019); dropped in the next release.
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    outcome: Mapped[JobOutcome | None] = mapped_column(
        Enum(JobOutcome, native_enum=False, values_callable=enum_values, length=20),
        nullable=True,
    )
    # A RESPONDER timer pages this person, or this policy's first level, once.
    responder_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    responder_policy_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)


# Timers as due rows: waiting until fired (completed) or cancelled.
TIMERS = DueRows(
    EscalationJob.__table__,  # type: ignore[arg-type]
    due=EscalationJob.__table__.c.scheduled_for,
    waiting=(
        EscalationJob.__table__.c.completed.is_(False),
        EscalationJob.__table__.c.cancelled_at.is_(None),
    ),
    legacy_owner=EscalationJob.__table__.c.claimed_by,
)


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
