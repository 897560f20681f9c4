"""One row by its primary key, for the routes and pages that answer 404 when it is gone; and
a flush whose integrity error (a duplicate) is the caller's own Conflict."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

M = TypeVar("M")


async def get_or_raise(
    session: AsyncSession,
    model: type[M],
    row_id: uuid.UUID,
    missing: Callable[[uuid.UUID], Exception],
) -> M:
    """The `model` row with this id; raises `missing(row_id)` (a NotFound) when there is none."""
    row = await session.get(model, row_id)
    if row is None:
        raise missing(row_id)
    return row


async def flush_or_raise(session: AsyncSession, conflict: Exception) -> None:
    """Flush the session's changes; raises `conflict` (a Conflict saying what already exists)
    when the database refuses them, a unique constraint being the usual reason."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise conflict from exc
