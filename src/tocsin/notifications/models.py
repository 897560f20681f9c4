"""Contact methods, notification rules, and the delivery outbox with its attempts."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
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
from tocsin.store.queue import DueRows
from tocsin.store.schema import partial_index


class ContactKind(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    VOICE = "voice"
    CHAT = "chat"  # any Apprise URL: Slack, Teams, Discord, Telegram, ntfy, ...
    WEBHOOK = "webhook"


class Urgency(enum.StrEnum):
    HIGH = "high"
    LOW = "low"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for due_at, or for its next retry
    SENT = "sent"
    FAILED = "failed"  # permanent error, or out of attempts
    CANCELLED = "cancelled"  # the incident was acknowledged or resolved first


class DeliveryKind(enum.StrEnum):
    PAGE = "page"
    TEST = "test"
    VERIFICATION = "verification"


class AttemptStatus(enum.StrEnum):
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"


class ContactMethod(Base):
    __tablename__ = "contact_methods"
    __table_args__ = (
        UniqueConstraint("user_id", "kind", "address", name="uq_contact_methods_user_kind_address"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[ContactKind] = mapped_column(
        Enum(ContactKind, native_enum=False, values_callable=enum_values, length=20)
    )
    name: Mapped[str] = mapped_column(String(200))
    # An email address, an E.164 phone number, an Apprise URL or a webhook URL.
    address: Mapped[str] = mapped_column(String(2048))
    # Signs outgoing webhooks; kept in clear because signing needs it.
    signing_secret: Mapped[str | None] = mapped_column(String(100), nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(nullable=True)
    verification_code_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    verification_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Wrong codes since verification_failures_since; limited per hour (limits.py), and not
    # reset by asking for a new code.
    verification_failures: Mapped[int] = mapped_column(Integer, default=0)
    verification_failures_since: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class NotificationRule(Base):
    """ "After delay_minutes of a page of this urgency, use contact method M"."""

    __tablename__ = "notification_rules"
    __table_args__ = (
        UniqueConstraint(
            "user_id",
            "urgency",
            "contact_method_id",
            "delay_minutes",
            name="uq_notification_rules_user_urgency_method_delay",
        ),
        CheckConstraint("delay_minutes BETWEEN 0 AND 1440", name="delay_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    urgency: Mapped[Urgency] = mapped_column(
        Enum(Urgency, native_enum=False, values_callable=enum_values, length=10)
    )
    delay_minutes: Mapped[int] = mapped_column(Integer)
    contact_method_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contact_methods.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]


class Delivery(Base):
    """One message to send: the outbox row the worker claims, retries and records."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # The worker's claim: pending rows by due time.
        partial_index("ix_deliveries_pending_due", "due_at", where="status = 'pending'"),
        Index("ix_deliveries_incident", "incident_id", "created_at"),
        Index("ix_deliveries_user_method_sent", "user_id", "contact_method_id", "sent_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[DeliveryKind] = mapped_column(
        Enum(DeliveryKind, native_enum=False, values_callable=enum_values, length=20)
    )
    # Sent with every try; receivers that honour it (webhooks) drop repeats after a crash.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    incident_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=True
    )
    page_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    contact_method_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("contact_methods.id", ondelete="SET NULL"), nullable=True
    )
    rule_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    contact_kind: Mapped[ContactKind] = mapped_column(
        Enum(ContactKind, native_enum=False, values_callable=enum_values, length=20)
    )
    address: Mapped[str] = mapped_column(String(2048))
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, native_enum=False, values_callable=enum_values, length=20)
    )
    due_at: Mapped[datetime]
    # The due-row queue's lease (tocsin/store/queue.py): the worker that claimed the row,
    # until when nobody else may take it, claims so far, and when the queue gave up on it.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    parked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The lease's end as the previous release names it, still written for its workers during
    # a rolling upgrade (migration 0019); dropped in the next release.
    lease_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    channel: Mapped[str | None] = mapped_column(String(100), nullable=True)
    provider_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Set when this row went out inside another row's bundle (throttling).
    bundled_into_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    bundle_size: Mapped[int] = mapped_column(Integer, default=1)
    # Only what the message needs beyond the incident (a verification code until it is sent).
    payload: Mapped[dict[str, Any]]
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# Deliveries as due rows: waiting while pending (sent, failed and cancelled ones are done).
DELIVERIES = DueRows(
    Delivery.__table__,  # type: ignore[arg-type]
    due=Delivery.__table__.c.due_at,
    waiting=(Delivery.__table__.c.status == DeliveryStatus.PENDING,),
    legacy_until=Delivery.__table__.c.lease_expires_at,
)


class DeliveryAttempt(Base):
    """One try at sending a delivery, kept whatever its outcome."""

    __tablename__ = "delivery_attempts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[AttemptStatus] = mapped_column(
        Enum(AttemptStatus, native_enum=False, values_callable=enum_values, length=20)
    )
    channel: Mapped[str] = mapped_column(String(100))
    worker_id: Mapped[str] = mapped_column(String(100))
    provider_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]


class UsedLink(Base):
    """A one-click link that has done its job: each link works once (links.py). Kept until
    the link would have expired anyway, then pruned."""

    __tablename__ = "used_links"

    link_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(20))
    used_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class PagingPreference(Base):
    """Adaptive downgrade for one person: once they have been paged `pages_per_hour` times
    in the last hour, further low-urgency pages go only to `quiet_contact_method_id` (or, with
    none, their account email) instead of their low-urgency rules. High urgency is untouched."""

    __tablename__ = "paging_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # None: the `TOCSIN_QUIET_AFTER_PAGES_PER_HOUR` setting; 0: never downgrade.
    pages_per_hour: Mapped[int | None] = mapped_column(Integer, nullable=True)
    quiet_contact_method_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("contact_methods.id", ondelete="SET NULL"), nullable=True
    )
    updated_at: Mapped[datetime]
