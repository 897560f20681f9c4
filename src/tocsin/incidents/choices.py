"""What a person looking at incidents can pick from: the teams and services to filter the
list by (only those they may see), the people and policies an incident can be reassigned
to, and the names behind the user ids of a timeline."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from tocsin.auth.accounts import Principal
from tocsin.auth.models import User
from tocsin.auth.permissions import visible_team_ids
from tocsin.catalog.models import Service
from tocsin.escalation.models import EscalationPolicy
from tocsin.integrations.models import Integration
from tocsin.teams.membership import active_member_names
from tocsin.teams.models import Team, TeamMember, TeamRole


@dataclass(frozen=True)
class Choice:
    id: uuid.UUID
    name: str
    group: str = ""  # the team of a service, for a grouped list


async def visible_teams(session: AsyncSession, principal: Principal) -> list[Choice]:
    stmt = select(Team.id, Team.name).order_by(Team.name)
    visible = await visible_team_ids(session, principal)
    if visible is not None:
        stmt = stmt.where(Team.id.in_(visible))
    return [Choice(row.id, row.name) for row in await session.execute(stmt)]


async def _grouped_by_team(
    session: AsyncSession,
    principal: Principal,
    id_column: InstrumentedAttribute[uuid.UUID],
    name_column: InstrumentedAttribute[str],
    team_column: InstrumentedAttribute[uuid.UUID],
) -> list[Choice]:
    """The rows of one team-owned table as choices grouped by team, of the teams this user
    may see (every team for admins)."""
    stmt = (
        select(id_column, name_column, Team.name)
        .join(Team, Team.id == team_column)
        .order_by(Team.name, name_column)
    )
    visible = await visible_team_ids(session, principal)
    if visible is not None:
        stmt = stmt.where(team_column.in_(visible))
    rows = await session.execute(stmt)
    return [Choice(row_id, name, team) for row_id, name, team in rows]


async def visible_services(session: AsyncSession, principal: Principal) -> list[Choice]:
    return await _grouped_by_team(session, principal, Service.id, Service.name, Service.team_id)


@dataclass(frozen=True)
class ReassignTargets:
    people: list[Choice]
    policies: list[Choice]


async def reassign_targets(session: AsyncSession, team_id: uuid.UUID) -> ReassignTargets:
    """The team's active members and its escalation policies."""
    people = await active_member_names(session, team_id)
    policies = await session.execute(
        select(EscalationPolicy.id, EscalationPolicy.name)
        .where(EscalationPolicy.team_id == team_id)
        .order_by(EscalationPolicy.name)
    )
    return ReassignTargets(
        people=[Choice(user_id, name) for user_id, name in people],
        policies=[Choice(row.id, row.name) for row in policies],
    )


async def _names(
    session: AsyncSession,
    ids: Iterable[uuid.UUID],
    id_column: InstrumentedAttribute[uuid.UUID],
    name_column: InstrumentedAttribute[str],
) -> dict[uuid.UUID, str]:
    """The name of each of these ids in one table; no query when there are none."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await session.execute(select(id_column, name_column).where(id_column.in_(wanted)))
    return {row_id: name for row_id, name in rows}


async def user_names(session: AsyncSession, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    return await _names(session, user_ids, User.id, User.name)


async def integration_names(
    session: AsyncSession, integration_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    return await _names(session, integration_ids, Integration.id, Integration.name)


async def policy_choices(session: AsyncSession, principal: Principal) -> list[Choice]:
    """The escalation policies of the teams this user belongs to (all for admins), grouped
    by team: what a service may be given."""
    return await _grouped_by_team(
        session, principal, EscalationPolicy.id, EscalationPolicy.name, EscalationPolicy.team_id
    )


async def team_names(session: AsyncSession) -> dict[uuid.UUID, str]:
    """Every team's name: the catalog and the integrations are readable by anyone signed in,
    and show which team each service belongs to."""
    return {row.id: row.name for row in await session.execute(select(Team.id, Team.name))}


async def service_names(session: AsyncSession) -> dict[uuid.UUID, tuple[str, uuid.UUID]]:
    """Every service's name and team."""
    rows = await session.execute(select(Service.id, Service.name, Service.team_id))
    return {row.id: (row.name, row.team_id) for row in rows}


async def policy_names(
    session: AsyncSession, policy_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    return await _names(session, policy_ids, EscalationPolicy.id, EscalationPolicy.name)


async def managed_teams(session: AsyncSession, principal: Principal) -> list[Choice]:
    """The teams this user may configure: those they manage (every team for admins)."""
    stmt = select(Team.id, Team.name).order_by(Team.name)
    if not principal.is_admin:
        stmt = stmt.join(TeamMember, TeamMember.team_id == Team.id).where(
            TeamMember.user_id == principal.user_id, TeamMember.role == TeamRole.MANAGER
        )
    return [Choice(row.id, row.name) for row in await session.execute(stmt)]
