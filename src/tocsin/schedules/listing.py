"""Which schedules a person may see, a page at a time: what the API's list and the
schedule pages both show."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.accounts import Principal
from tocsin.auth.permissions import visible_team_ids
from tocsin.schedules.models import Schedule
from tocsin.store.pages import newest_first


async def list_visible_schedules(
    session: AsyncSession,
    principal: Principal,
    *,
    team_id: uuid.UUID | None = None,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[Schedule], str | None]:
    """Schedules of the teams the caller belongs to (all of them for admins), newest first,
    and the cursor of the next page (None on the last)."""
    stmt = select(Schedule)
    visible = await visible_team_ids(session, principal)
    if visible is not None:
        stmt = stmt.where(Schedule.team_id.in_(visible))
    if team_id is not None:
        stmt = stmt.where(Schedule.team_id == team_id)
    return await newest_first(
        session, stmt, created=Schedule.created_at, row_id=Schedule.id, limit=limit, cursor=cursor
    )
