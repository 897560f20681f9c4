"""The escalation timer table: "at scheduled_for, do this to the incident". A row is written
in the same transaction as the change that causes it (a new incident, an acknowledgement, an
un-acknowledgement, a level paged) and fired by the worker, which claims due rows through the
due-row queue (tocsin.store.queue)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, enum_values, new_id
from tocsin.store.queue import DueRows
from tocsin.store.schema import partial_index, unset


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
    # The incident is OPEN again (un-acknowledged by a person, its acknowledgement timed out,
    # its snooze ended): due at once; the worker pages its current level again and restarts
    # that level's timeout (escalation/engine.py: resume_escalation).
    RESUME = "resume"
    # A person moved the escalation by hand (escalate now, reassign to a policy): the request
    # set its position and step (escalation/actions.py); due at once, the worker pages from
    # scheduled_level, as a LEVEL timer does, if that step is still the escalation's.
    ESCALATE = "escalate"
    # The incident was reassigned to a person (responder_user_id): due at once, the worker
    # pages them once if that step is still the escalation's.
    REASSIGN = "reassign"


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
        partial_index(
            "ix_escalation_jobs_due",
            "scheduled_for",
            where="NOT completed AND cancelled_at IS NULL",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # Typed here, not borrowed from incidents.id: this table is imported before incidents'
    # is (tests/store/test_column_types.py).
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
    # A RESPONDER timer pages this person, or this policy's first level, once; a REASSIGN
    # timer pages this person (the new assignee).
    responder_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    responder_policy_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)


# Timers as due rows: waiting until fired (completed) or cancelled.
TIMERS = DueRows(
    EscalationJob.__table__,  # type: ignore[arg-type]
    due=EscalationJob.__table__.c.scheduled_for,
    waiting=(
        unset(EscalationJob.__table__.c.completed),
        EscalationJob.__table__.c.cancelled_at.is_(None),
    ),
    legacy_owner=EscalationJob.__table__.c.claimed_by,
)
