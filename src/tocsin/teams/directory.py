"""The team directory: creating, changing and removing teams."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.catalog.models import Service
from tocsin.errors import Conflict, NotFound
from tocsin.escalation.models import EscalationPolicy
from tocsin.incidents.models import Incident
from tocsin.schedules.models import Schedule
from tocsin.store.pages import newest_first
from tocsin.teams.models import Team


class TeamNotFound(NotFound):
    def __init__(self, team_id: uuid.UUID) -> None:
        super().__init__(f"team {team_id} not found")


class TeamNameTaken(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"a team named {name!r} already exists")


class TeamNotEmpty(Conflict):
    """The team still owns rows that cannot live without it."""

    def __init__(self, team_id: uuid.UUID, owned: dict[str, int]) -> None:
        listed = ", ".join(f"{count} {what}" for what, count in owned.items())
        super().__init__(f"team {team_id} still owns {listed}; move or delete them first")
        self.owned = owned


async def find_team(session: AsyncSession, team_id: uuid.UUID) -> Team | None:
    return await session.get(Team, team_id)


async def list_teams(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[list[Team], str | None]:
    """One page of teams, newest first, and the cursor of the next page."""
    return await newest_first(
        session, select(Team), created=Team.created_at, row_id=Team.id, limit=limit, cursor=cursor
    )


async def _refuse_taken_name(
    session: AsyncSession, name: str, *, except_id: uuid.UUID | None = None
) -> None:
    stmt = select(Team.id).where(Team.name == name)
    if except_id is not None:
        stmt = stmt.where(Team.id != except_id)
    if (await session.execute(stmt.limit(1))).first() is not None:
        raise TeamNameTaken(name)


async def create_team(session: AsyncSession, *, name: str, description: str, now: datetime) -> Team:
    """A new team with no members; a taken name is a Conflict."""
    await _refuse_taken_name(session, name)
    team = Team(name=name, description=description, created_at=now, updated_at=now)
    session.add(team)
    await session.flush()
    return team


async def change_team(
    session: AsyncSession, team: Team, changes: dict[str, Any], *, now: datetime
) -> None:
    """Apply name and description changes; a name another team has is a Conflict."""
    if "name" in changes:
        await _refuse_taken_name(session, changes["name"], except_id=team.id)
    for name, value in changes.items():
        setattr(team, name, value)
    team.updated_at = now
    await session.flush()


# Members and tags go with the team (ON DELETE CASCADE); these do not, and silently
# deleting a service or an incident history with its team would lose too much.
_OWNED = {
    "services": Service.team_id,
    "escalation policies": EscalationPolicy.team_id,
    "incidents": Incident.team_id,
    "schedules": Schedule.team_id,
}


async def delete_team(session: AsyncSession, team: Team) -> None:
    """Delete the team with its members and tags; TeamNotEmpty while it owns anything else."""
    owned: dict[str, int] = {}
    for what, column in _OWNED.items():
        count = (await session.execute(select(func.count()).where(column == team.id))).scalar_one()
        if count:
            owned[what] = count
    if owned:
        raise TeamNotEmpty(team.id, owned)
    await session.delete(team)
    await session.flush()
