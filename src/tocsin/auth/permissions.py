"""Who may touch which team: admins everything, members by role, everyone else nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.accounts import Principal
from tocsin.errors import Forbidden
from tocsin.store.rows import get_or_raise
from tocsin.teams.models import TeamMember, TeamRole

RESPONDER_ROLES = frozenset({TeamRole.MANAGER, TeamRole.RESPONDER})


class TeamOwned(Protocol):
    @property
    def team_id(self) -> uuid.UUID: ...


Owned = TypeVar("Owned", bound=TeamOwned)


async def find_team_role(
    session: AsyncSession, principal: Principal, team_id: uuid.UUID
) -> TeamRole | None:
    """The user's role in the team; None for a key restricted to another team."""
    if principal.team_id is not None and principal.team_id != team_id:
        return None
    result = await session.execute(
        select(TeamMember.role).where(
            TeamMember.team_id == team_id, TeamMember.user_id == principal.user_id
        )
    )
    return result.scalar_one_or_none()


def require_admin(principal: Principal) -> None:
    if principal.team_id is not None:
        raise Forbidden(
            "this API key is restricted to one team: administrator actions need another key"
        )
    if not principal.is_admin:
        raise Forbidden("only an administrator may do this")


async def require_team_reader(
    session: AsyncSession, principal: Principal, team_id: uuid.UUID
) -> None:
    """Any member of the team, observers included, or an admin."""
    if principal.is_admin:
        return
    if await find_team_role(session, principal, team_id) is None:
        raise Forbidden("you are not a member of this team")


async def get_team_readable(
    session: AsyncSession,
    principal: Principal,
    model: type[Owned],
    row_id: uuid.UUID,
    missing: Callable[[uuid.UUID], Exception],
) -> Owned:
    """The team-owned row if the principal may read its team; `missing(row_id)` when there is
    no such row, Forbidden when it belongs to another team."""
    row = await get_or_raise(session, model, row_id, missing)
    await require_team_reader(session, principal, row.team_id)
    return row


async def require_team_responder(
    session: AsyncSession, principal: Principal, team_id: uuid.UUID
) -> None:
    """Managers and responders of the team, or an admin: those who may act on incidents."""
    if principal.is_admin:
        return
    role = await find_team_role(session, principal, team_id)
    if role is None:
        raise Forbidden("you are not a member of the team that owns this incident")
    if role not in RESPONDER_ROLES:
        raise Forbidden("observers may only read this team's incidents")


async def require_team_manager(
    session: AsyncSession, principal: Principal, team_id: uuid.UUID
) -> None:
    """Managers of the team, or an admin: those who may change its configuration."""
    if principal.is_admin:
        return
    if await find_team_role(session, principal, team_id) != TeamRole.MANAGER:
        raise Forbidden("only a manager of this team or an administrator may do this")


async def visible_team_ids(session: AsyncSession, principal: Principal) -> set[uuid.UUID] | None:
    """The teams whose incidents this user may see; None means all of them (admins)."""
    if principal.is_admin:
        return None
    result = await session.execute(
        select(TeamMember.team_id).where(TeamMember.user_id == principal.user_id)
    )
    teams = set(result.scalars())
    if principal.team_id is not None:
        teams &= {principal.team_id}
    return teams
