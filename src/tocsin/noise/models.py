"""Silences, inhibition rules and maintenance windows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, JSONType, new_id


class Silence(Base):
    """Alerts matching every matcher, between starts_at and ends_at, open no incident.

    team_id None: an administrator's silence over every team's alerts."""

    __tablename__ = "silences"
    __table_args__ = (Index("ix_silences_ends_at", "ends_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("teams.id", ondelete="CASCADE"), nullable=True
    )
    # [{"field": "tag"|"title"|"source"|"severity"|"service", "name": str, "op": "=", "value": str}]
    matchers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    comment: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime]
    # Set by the worker once ends_at has passed (or by hand, when expired early).
    expired_at: Mapped[datetime | None] = mapped_column(nullable=True)


class InhibitionRule(Base):
    """While an alert matching source_matchers fires, alerts matching target_matchers with
    the same values of the `equal` tags open no incident (Alertmanager's inhibit_rules)."""

    __tablename__ = "inhibition_rules"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("teams.id", ondelete="CASCADE"), nullable=True
    )
    name: Mapped[str] = mapped_column(String(200))
    source_matchers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    target_matchers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    equal: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime]


class MaintenanceWindow(Base):
    """A service's alerts are stored but page nobody: once (starts_at..ends_at) or every week
    on `weekdays` from `start_time` for `duration_minutes`, on the wall clock of `timezone`."""

    __tablename__ = "maintenance_windows"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    service_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("services.id", ondelete="CASCADE"), index=True
    )
    description: Mapped[str] = mapped_column(Text, default="")
    # One-off
    starts_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Recurring: ISO weekdays 1 (Monday) .. 7, "HH:MM" local time, minutes, IANA zone.
    weekdays: Mapped[list[int] | None] = mapped_column(JSONType, nullable=True)
    start_time: Mapped[str | None] = mapped_column(String(5), nullable=True)
    duration_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime]


class NoiseRulesVersion(Base):
    """One row whose `version` changes (to a new random stamp) with every change to a silence
    or an inhibition rule: how each process knows its parsed copy is stale (rulecache.py)."""

    __tablename__ = "noise_rules_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)
