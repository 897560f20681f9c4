"""Pages of a list, newest first, and the opaque cursor that leads from one page to the next.

A cursor is the (time, id) of the last row of a page, so a row written meanwhile neither
shifts the next page nor shows up twice; id breaks ties between rows of the same instant.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from tocsin.errors import InvalidInput

T = TypeVar("T")


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    """The cursor that starts the page after the row (at, row_id)."""
    raw = f"{at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (time, id) a cursor of ours carries; InvalidInput (field `cursor`) for any other."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, _, row_id = base64.urlsafe_b64decode(padded).decode().partition("|")
        at = datetime.fromisoformat(created)
        if at.tzinfo is None:
            raise ValueError("cursor time has no zone")
        return at, uuid.UUID(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor is not one this API handed out", field="cursor") from exc


async def newest_first(
    session: AsyncSession,
    stmt: Select[T],
    *,
    created: InstrumentedAttribute[datetime] | None = None,
    row_id: InstrumentedAttribute[uuid.UUID] | None = None,
    limit: int,
    cursor: str | None,
) -> tuple[list[T], str | None]:
    """One page of the objects `stmt` selects, ordered newest first by (created, id) and
    starting after `cursor`, and the cursor of the next page (None on the last). `created`
    and `row_id` are the selected table's `created_at` and `id` unless given."""
    if created is None or row_id is None:
        selected: Any = stmt.column_descriptions[0]["entity"]
        created = created if created is not None else selected.created_at
        row_id = row_id if row_id is not None else selected.id
    if cursor:
        at, last_id = decode_cursor(cursor)
        stmt = stmt.where(or_(created < at, and_(created == at, row_id < last_id)))
    # One row more than the page tells whether there is a next page.
    stmt = stmt.order_by(created.desc(), row_id.desc()).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars())
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    last: Any = page[-1]
    return page, encode_cursor(getattr(last, created.key), getattr(last, row_id.key))
