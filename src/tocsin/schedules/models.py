"""Schedule tables: schedules, their layers and participants, overrides, calendar tokens.

The rows hold a schedule definition and nothing computed: who is on call is always worked out
from them by the pure code in this package (see `store.load_schedule`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
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

from tocsin.db import Base, JSONType, enum_values, new_id, new_ordered_id
from tocsin.schedules.definition import Rotation


class Schedule(Base):
    __tablename__ = "schedules"
    __table_args__ = (UniqueConstraint("team_id", "name", name="uq_schedules_team_name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    team_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("teams.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    time_zone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ScheduleLayer(Base):
    """One rotation layer; `position` 0 is the lowest precedence, the highest one wins."""

    __tablename__ = "schedule_layers"
    __table_args__ = (
        UniqueConstraint("schedule_id", "position", name="uq_schedule_layers_schedule_position"),
        CheckConstraint("turn_length >= 1", name="turn_length_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    schedule_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("schedules.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    start: Mapped[datetime]
    end: Mapped[datetime | None] = mapped_column(nullable=True)
    rotation: Mapped[Rotation] = mapped_column(
        Enum(Rotation, native_enum=False, values_callable=enum_values, length=20)
    )
    turn_length: Mapped[int] = mapped_column(Integer, default=1)
    # A wall-clock reading in the schedule's zone, deliberately without a zone: converting it
    # to an instant once would freeze one UTC offset and break every handoff after a DST change.
    handoff: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    # [{"days": ["mon", ...] | null, "start": "09:00", "end": "17:00"}, ...]
    restrictions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ScheduleParticipant(Base):
    """One user of the participant at `position` of a layer's rotation order.

    A participant is a group: every row sharing (layer_id, position) is on call together. The
    same user may appear at several positions (twice as many turns).
    """

    __tablename__ = "schedule_participants"

    layer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("schedule_layers.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id"), primary_key=True, index=True
    )


class ScheduleOverride(Base):
    """These users are on call instead of the layers over [start, end).

    Ids are time-ordered (UUIDv7): where overrides overlap, the later one wins, and ordering by
    id gives that order without a second column.
    """

    __tablename__ = "schedule_overrides"
    __table_args__ = (
        CheckConstraint('"end" > start', name="end_after_start"),
        Index("ix_schedule_overrides_schedule_end", "schedule_id", "end"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_ordered_id)
    schedule_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("schedules.id", ondelete="CASCADE")
    )
    start: Mapped[datetime]
    end: Mapped[datetime]
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime]


class ScheduleOverrideUser(Base):
    __tablename__ = "schedule_override_users"

    override_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("schedule_overrides.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id"), primary_key=True, index=True
    )


class CalendarToken(Base):
    """A user's secret for iCalendar subscription URLs; only its SHA-256 is kept."""

    __tablename__ = "calendar_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
