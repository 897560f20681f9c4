"""Turning pages into delivery rows, in the transaction that wrote the pages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection


async def plan_deliveries(
    conn: AsyncConnection, page_ids: Sequence[uuid.UUID], *, now: datetime
) -> None:
    """Write the delivery rows for these pages (inside the caller's transaction)."""
    # Filled in by the notifications issue; until then a page is recorded, not delivered.
    return None
