"""The Integration table: where alerts come in, and how they are deduplicated; plus what the
adapters keep about inbound traffic (payload log, change events, seen deliveries)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, JSONType, enum_values, new_id


class IntegrationType(enum.StrEnum):
    GENERIC = "generic"
    PAGERDUTY = "pagerduty"
    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    DATADOG = "datadog"
    CLOUDWATCH = "cloudwatch"
    OPSGENIE = "opsgenie"
    EMAIL = "email"
    # A heartbeat monitor's own integration (heartbeats/watch.py), made with it.
    HEARTBEAT = "heartbeat"


class Integration(Base):
    __tablename__ = "integrations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[IntegrationType] = mapped_column(
        Enum(IntegrationType, native_enum=False, values_callable=enum_values, length=40)
    )
    # Only the SHA-256 of the secret key is stored; the key itself is shown once.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    default_service_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("services.id", ondelete="SET NULL"), nullable=True
    )
    dedup_window_minutes: Mapped[int] = mapped_column(Integer, default=60)
    auto_resolve: Mapped[bool] = mapped_column(Boolean, default=True)
    # Adapter settings, checked against the adapter's options model when saved.
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Jinja2 overrides for title, severity, dedup_key and routing_key.
    templates: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Requests accepted per minute; None means no limit.
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Grouping for the alerts of this integration, overriding their service's; None: the
    # service's. An empty list groups this integration's alerts by fingerprint only.
    group_by: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    group_window_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class IntegrationPayload(Base):
    """One received payload and what it was mapped to: a bounded ring per integration."""

    __tablename__ = "integration_payloads"
    __table_args__ = (
        Index("ix_integration_payloads_integration_received", "integration_id", "received_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    integration_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("integrations.id", ondelete="CASCADE")
    )
    received_at: Mapped[datetime]
    status_code: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(200), default="")
    # The body as received, cut to a few kilobytes.
    body: Mapped[str] = mapped_column(Text)
    body_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    # What it became: alerts (title, status, dedup key...), signals, ignored parts, or error.
    mapping: Mapped[dict[str, Any]]


class ChangeEvent(Base):
    """An informational event (a deploy, a config change): shown, never paging."""

    __tablename__ = "change_events"
    __table_args__ = (Index("ix_change_events_service_at", "service_id", "received_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    integration_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("integrations.id", ondelete="SET NULL"), nullable=True, index=True
    )
    service_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("services.id", ondelete="CASCADE"), nullable=True
    )
    summary: Mapped[str] = mapped_column(String(1024))
    source: Mapped[str] = mapped_column(String(512), default="")
    happened_at: Mapped[datetime]
    received_at: Mapped[datetime]
    custom_details: Mapped[dict[str, Any]]
    links: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)


class InboundDelivery(Base):
    """A delivery id already processed (an SNS MessageId), so a retried delivery is ignored."""

    __tablename__ = "inbound_deliveries"

    integration_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True
    )
    delivery_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
