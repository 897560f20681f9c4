"""A team's key=value tags, which route alerts carrying the same tags to the team."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.errors import Conflict, NotFound
from tocsin.teams.models import TeamTag


class TagNotFound(NotFound):
    def __init__(self, team_id: uuid.UUID, tag_id: uuid.UUID) -> None:
        super().__init__(f"team {team_id} has no tag {tag_id}")


class DuplicateTag(Conflict):
    def __init__(self, key: str, value: str) -> None:
        super().__init__(f"the team already has the tag {key}={value}")


async def list_tags(session: AsyncSession, team_id: uuid.UUID) -> list[TeamTag]:
    """The team's tags in key, value order."""
    result = await session.execute(
        select(TeamTag).where(TeamTag.team_id == team_id).order_by(TeamTag.key, TeamTag.value)
    )
    return list(result.scalars())


async def add_tag(
    session: AsyncSession, *, team_id: uuid.UUID, key: str, value: str, now: datetime
) -> TeamTag:
    """Tag the team; a tag it already has is a Conflict."""
    existing = await session.execute(
        select(TeamTag.id).where(
            TeamTag.team_id == team_id, TeamTag.key == key, TeamTag.value == value
        )
    )
    if existing.first() is not None:
        raise DuplicateTag(key, value)
    tag = TeamTag(team_id=team_id, key=key, value=value, created_at=now)
    session.add(tag)
    await session.flush()
    return tag


async def remove_tag(session: AsyncSession, *, team_id: uuid.UUID, tag_id: uuid.UUID) -> None:
    tag = await session.get(TeamTag, tag_id)
    if tag is None or tag.team_id != team_id:
        raise TagNotFound(team_id, tag_id)
    await session.delete(tag)
    await session.flush()
