"""Users and their API keys."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, enum_values, new_id


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    password_hash: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class KeyScope(enum.StrEnum):
    """What an API key may do: `read` only reads, `respond` also acts on incidents
    (acknowledge, resolve, notes...), `full` may do whatever its user may."""

    READ = "read"
    RESPOND = "respond"
    FULL = "full"

    def covers(self, needed: KeyScope) -> bool:
        order = (KeyScope.READ, KeyScope.RESPOND, KeyScope.FULL)
        return order.index(self) >= order.index(needed)


class ApiKey(Base):
    """An API key; only its SHA-256 is kept, so a stolen database yields no usable key.
    A key may be narrower than its user: a scope, one team, an expiry."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    scope: Mapped[KeyScope] = mapped_column(
        Enum(KeyScope, native_enum=False, length=16, values_callable=enum_values),
        default=KeyScope.FULL,
        server_default=KeyScope.FULL.value,
    )
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("teams.id", ondelete="CASCADE"), nullable=True
    )
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)


class LoginSession(Base):
    """A signed-in browser or API client. Only the SHA-256 of its key is kept; it ends at
    `expires_at`, or earlier when revoked (sign-out, a password change)."""

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class LoginFailure(Base):
    """One failed login, counted per email and per client address to slow down guessing.
    The email is kept as a SHA-256 (people type passwords into the email field)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_scope_subject_at", "scope", "subject", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    scope: Mapped[str] = mapped_column(String(16))  # "email" or "address"
    subject: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
