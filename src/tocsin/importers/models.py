"""The import ledger: which Tocsin object each imported source object became.

Re-running an import finds its earlier objects here by (source, kind, source id), so it updates
them instead of creating duplicates; the fingerprint says whether anything changed since.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base


class ImportRecord(Base):
    __tablename__ = "import_records"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    source_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    object_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    # SHA-256 of the converted object as last written; equal means "unchanged".
    fingerprint: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime]
    updated_at: Mapped[datetime]
