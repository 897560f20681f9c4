"""Running totals of what retention deleted, so /metrics on any node can report them."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base

KINDS = ("incidents", "alerts", "timeline", "pages", "deliveries", "payload_log")


class RetentionCount(Base):
    """Rows of one kind deleted since installation (one row per kind, made by migration 0017)."""

    __tablename__ = "retention_counts"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    purged: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
