"""Who is in a team and in which role: adding, re-roling and removing members."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.models import User
from tocsin.errors import Conflict, InvalidInput, NotFound
from tocsin.escalation.models import EscalationLevel, EscalationPolicy, TargetType
from tocsin.teams.models import TeamMember, TeamRole


class MemberNotFound(NotFound):
    def __init__(self, team_id: uuid.UUID, user_id: uuid.UUID) -> None:
        super().__init__(f"user {user_id} is not a member of team {team_id}")


class AlreadyMember(Conflict):
    def __init__(self, team_id: uuid.UUID, user_id: uuid.UUID) -> None:
        super().__init__(f"user {user_id} is already a member of team {team_id}")


class MemberIsEscalationTarget(Conflict):
    """Removing the member would leave a level of the team's policies paging an outsider."""

    def __init__(self, user_id: uuid.UUID, policy_names: list[str]) -> None:
        names = ", ".join(repr(n) for n in policy_names)
        super().__init__(
            f"user {user_id} is a target of the escalation policies {names}; "
            "change those policies first"
        )
        self.policy_names = policy_names


async def list_members(session: AsyncSession, team_id: uuid.UUID) -> list[TeamMember]:
    """The team's members, longest-standing first."""
    result = await session.execute(
        select(TeamMember)
        .where(TeamMember.team_id == team_id)
        .order_by(TeamMember.created_at, TeamMember.user_id)
    )
    return list(result.scalars())


async def active_member_names(
    session: AsyncSession, team_id: uuid.UUID
) -> list[tuple[uuid.UUID, str]]:
    """The (user id, name) of the team's active members, by name: whom a form offers."""
    result = await session.execute(
        select(User.id, User.name)
        .join(TeamMember, TeamMember.user_id == User.id)
        .where(TeamMember.team_id == team_id, User.is_active.is_(True))
        .order_by(User.name)
    )
    return [(row.id, row.name) for row in result]


async def find_member(
    session: AsyncSession, *, team_id: uuid.UUID, user_id: uuid.UUID
) -> TeamMember | None:
    return await session.get(TeamMember, (team_id, user_id))


async def add_member(
    session: AsyncSession,
    *,
    team_id: uuid.UUID,
    user_id: uuid.UUID,
    role: TeamRole,
    now: datetime,
) -> TeamMember:
    """Make an existing user a member; an unknown user is bad input, a member a Conflict."""
    if await session.get(User, user_id) is None:
        raise InvalidInput(f"user {user_id} does not exist", field="user_id")
    if await find_member(session, team_id=team_id, user_id=user_id) is not None:
        raise AlreadyMember(team_id, user_id)
    member = TeamMember(team_id=team_id, user_id=user_id, role=role, created_at=now)
    session.add(member)
    await session.flush()
    return member


async def change_role(
    session: AsyncSession, *, team_id: uuid.UUID, user_id: uuid.UUID, role: TeamRole
) -> TeamMember:
    member = await find_member(session, team_id=team_id, user_id=user_id)
    if member is None:
        raise MemberNotFound(team_id, user_id)
    member.role = role
    await session.flush()
    return member


async def _policies_targeting(
    session: AsyncSession, *, team_id: uuid.UUID, user_id: uuid.UUID
) -> list[str]:
    """Names of the team's escalation policies with a level that pages this user."""
    result = await session.execute(
        select(EscalationPolicy.name)
        .join(EscalationLevel, EscalationLevel.policy_id == EscalationPolicy.id)
        .where(
            EscalationPolicy.team_id == team_id,
            EscalationLevel.target_type == TargetType.USER,
            EscalationLevel.target_id == user_id,
        )
        .distinct()
        .order_by(EscalationPolicy.name)
    )
    return list(result.scalars())


async def remove_member(session: AsyncSession, *, team_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Take the user out of the team, unless one of its escalation policies pages them."""
    member = await find_member(session, team_id=team_id, user_id=user_id)
    if member is None:
        raise MemberNotFound(team_id, user_id)
    targeting = await _policies_targeting(session, team_id=team_id, user_id=user_id)
    if targeting:
        raise MemberIsEscalationTarget(user_id, targeting)
    await session.delete(member)
    await session.flush()
