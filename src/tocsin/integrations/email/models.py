"""Which Message-ID carried which alert, so a reply lands on the same incident."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base


class EmailThread(Base):
    __tablename__ = "email_threads"

    integration_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True
    )
    message_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    # The dedup key the alert of this message got; replies reuse it.
    dedup_key: Mapped[str] = mapped_column(String(512))
    received_at: Mapped[datetime]
