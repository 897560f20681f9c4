"""The Integration table: where alerts come in, and how they are deduplicated."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, enum_values, new_id


class IntegrationType(enum.StrEnum):
    GENERIC = "generic"


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
        ForeignKey("services.id", ondelete="SET NULL"), nullable=True
    )
    dedup_window_minutes: Mapped[int] = mapped_column(Integer, default=60)
    auto_resolve: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
