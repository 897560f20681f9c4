"""Teams, members with roles, and team tags."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, enum_values, new_id


class TeamRole(enum.StrEnum):
    MANAGER = "manager"
    RESPONDER = "responder"
    OBSERVER = "observer"


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[TeamRole] = mapped_column(
        Enum(TeamRole, native_enum=False, values_callable=enum_values, length=20)
    )
    created_at: Mapped[datetime]


class TeamTag(Base):
    """A key=value label; an alert carrying the same tag may be routed to this team."""

    __tablename__ = "team_tags"
    __table_args__ = (
        UniqueConstraint("team_id", "key", "value", name="uq_team_tags_team_key_value"),
        Index("ix_team_tags_key_value", "key", "value"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    team_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("teams.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    value: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
